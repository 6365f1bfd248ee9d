"""The dossier's "Courriers" page end to end: the real dossier (API + pages, a signed-in
professional's session cookie and CSRF token), the real bridge on its control socket, real
Dovecot + relay, real Synapse. She connects her mailbox on the page (the login tried, the
password sealed, never shown back), files a mail of her Courriers room into a patient's
file (the same filing as ``!classer``: documents, notebook entry, feed events for the
patient room's notice, idempotent on resubmission), and disconnects it."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from mail_servers import free_port
from support import eventually

from bots.dossier_client import DossierClient
from bridges.mail.control_client import MailBridgeClient
from dossier_service import auth
from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.web import courriers
from tests.bridges.mail import mails
from tests.bridges.mail.test_inbound import mail_events, pro_factory, wait_count, wait_notice
from tests.bridges.mail.test_outbound import wait_mails
from tests.dossier_link.dossier_support import SERVICE_TOKEN, dossier_config

pytestmark = pytest.mark.integration
__all__ = ["pro_factory"]


class Site:
    """The dossier with its pages and the Courriers page, on loopback; the page talks to the
    mail bridge on ``socket``, its requests signed with ``secret``."""

    def __init__(
        self, config: DossierConfig, socket: Path, secret: str, bridge_factory: Any
    ) -> None:
        self.config = config
        self.socket, self.secret = socket, secret
        self.bridge_factory = bridge_factory
        client = MailBridgeClient(socket, secret, timeout=60)
        self.app = create_app(config, extensions=[lambda app: courriers.setup(app, client)])
        self.runner = web.AppRunner(self.app, access_log=None)
        self.http: ClientSession | None = None

    def bridge(self, **overrides: Any) -> Any:
        """A mail bridge (not started) that the page controls: on its socket, with its secret."""
        runner = self.bridge_factory(control_socket=self.socket, **overrides)
        runner.control_secret = self.secret
        return runner

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.config.port).start()
        self.http = ClientSession(self.config.public_url)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.runner.cleanup()

    def login(self, user_id: str) -> tuple[dict[str, str], str]:
        token = auth.issue_session(self.config.session_key, user_id, lifetime=3600)
        session = auth.read_session(self.config.session_key, token)
        assert session is not None
        cookie = {"Cookie": f"{auth.SESSION_COOKIE}={token}"}
        return cookie, auth.csrf_token(self.config.session_key, session)

    async def get(self, who: dict[str, str], path: str) -> tuple[int, str]:
        assert self.http is not None
        async with self.http.get(path, headers=who, allow_redirects=False) as resp:
            return resp.status, html.unescape(await resp.text())

    async def post(
        self, who: dict[str, str], path: str, data: dict[str, str]
    ) -> tuple[int, str, str]:
        assert self.http is not None
        async with self.http.post(path, data=data, headers=who, allow_redirects=False) as resp:
            return resp.status, html.unescape(await resp.text()), resp.headers.get("Location", "")


@pytest.fixture
async def site(
    tmp_path: Path, dossier_template: Path, synapse: Any, bridge_factory: Any
) -> AsyncIterator[Site]:
    socket = tmp_path / "run" / "mail-bridge.sock"
    secret = secrets.token_urlsafe(24)
    config = dossier_config(tmp_path / "dossier", dossier_template, server_name=synapse.server_name)
    one = Site(config, socket, secret, bridge_factory)
    await one.start()
    try:
        yield one
    finally:
        await one.stop()


def radio_values(page: str) -> list[str]:
    return re.findall(r'name="courrier" value="([^"]+)"', page)


def key_of(page: str) -> str:
    found = re.search(r'name="cle" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def test_courriers_page_connects_files_and_disconnects(
    pro_factory: Any,
    mailbox_factory: Any,
    mail_servers: Any,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    marie, marie_pw = mailbox_factory()
    runner = site.bridge(dossier_url=site.config.public_url)
    runner.dossier_token = SERVICE_TOKEN
    bridge = await runner.start()
    pro = await pro_factory()
    other = await pro_factory()
    me, csrf = site.login(pro.user_id)

    # not connected: the form; CSRF required; a wrong password stores nothing
    status, page = await site.get(me, "/courriers")
    assert (
        status == 200 and 'name="mot_de_passe"' in page and 'aria-current="page">Courriers' in page
    )
    status, _, _ = await site.post(
        me, "/courriers/boite", {"adresse": marie, "mot_de_passe": marie_pw}
    )
    assert status == 403
    status, page, _ = await site.post(
        me,
        "/courriers/boite",
        {"csrf_token": csrf, "adresse": marie, "mot_de_passe": "faux-mot-de-passe"},
    )
    assert status == 400 and "a refusé cet identifiant" in page
    assert "faux-mot-de-passe" not in page and bridge.store.mailbox(pro.user_id) is None

    status, _, where = await site.post(
        me, "/courriers/boite", {"csrf_token": csrf, "adresse": marie, "mot_de_passe": marie_pw}
    )
    assert status == 303 and where == "/courriers?fait=reliee"
    box = bridge.store.mailbox(pro.user_id)
    assert box is not None and box.connected and box.room_id is not None
    room_id = box.room_id
    assert marie_pw.encode() not in bridge.config.database_path.read_bytes()
    await pro.wait_member(room_id, pro.user_id)
    status, page = await site.get(me, "/courriers?fait=reliee")
    assert "Boîte reliée" in page and marie in page and marie_pw not in page
    assert 'name="mot_de_passe"' not in page

    # mails in her room; her files (and not another's) offered
    await asyncio.to_thread(mail_servers.deliver, mails.alternative(), marie)
    await asyncio.to_thread(mail_servers.deliver, mails.mssante_xdm(), marie)
    first, second = await wait_count(pro, room_id, mail_events, 2)
    # recorded once its attachments are posted too, a moment after its message shows
    await eventually(
        lambda: asyncio.sleep(0, bridge.store.count_posted(pro.user_id)),
        lambda n: n == 2,
        what="deux courriers enregistrés",
    )
    dossier = DossierClient(site.config.public_url, SERVICE_TOKEN)
    try:
        mine = await dossier.create_patient(
            room_id=None, label="Suivi Mme Dupré", coordinator=pro.user_id, key="page-p1"
        )
        theirs = await dossier.create_patient(
            room_id=None, label="Suivi M. Autre", coordinator=other.user_id, key="page-p2"
        )
        pid, other_pid = str(mine["id"]), str(theirs["id"])
        status, page = await site.get(me, "/courriers")
        assert radio_values(page) == [second.event_id, first.event_id]  # newest first
        assert "Compte rendu de sortie" in page and "Résultats avec dossier XDM" in page
        assert f'value="{pid}"' in page and f'value="{other_pid}"' not in page

        form = {
            "csrf_token": csrf,
            "courrier": first.event_id,
            "patient": pid,
            "categorie": "compte rendu",
            "cle": key_of(page),
        }
        status, page, _ = await site.post(me, "/courriers/classer", form)
        assert status == 200, page
        assert (
            "Courrier classé dans le dossier « Suivi Mme Dupré », catégorie « compte rendu »"
            in page
        )
        docs = await dossier.documents(pid)
        status, page, _ = await site.post(me, "/courriers/classer", form)  # resubmitted
        assert status == 200 and len(await dossier.documents(pid)) == len(docs) == 2
        notes = [e["text"] for e in await dossier.notebook(pid)]
        assert sum(1 for n in notes if "classé dans la catégorie « compte rendu »" in n) == 1
        feed = [e for e in await dossier.events(0, limit=500) if e.get("patient_id") == pid]
        kinds = [e.get("type") for e in feed]
        assert kinds.count("document.added") == 2 and kinds.count("notebook.entry") == 1
        # her Courriers room is told too, as after !classer
        await wait_notice(pro, room_id, "Courrier classé dans le dossier")

        # a file whose care circle she is not in: refused, nothing written there
        form = {**form, "patient": other_pid, "cle": secrets.token_urlsafe(12)}
        status, page, _ = await site.post(me, "/courriers/classer", form)
        assert status == 400 and "Aucun dossier ne correspond" in page
        assert await dossier.documents(other_pid) == []
        # someone else's session cannot file her mail (her mailbox is hers)
        them, their_csrf = site.login(other.user_id)
        status, page, _ = await site.post(
            them, "/courriers/classer", {**form, "csrf_token": their_csrf}
        )
        assert status == 400 and "Aucune boîte n'est reliée" in page
    finally:
        await dossier.close()

    # disconnected: the password erased, the watcher stopped, the room kept
    status, _, where = await site.post(me, "/courriers/deconnexion", {"csrf_token": csrf})
    assert status == 303 and where == "/courriers?fait=deconnectee"
    box = bridge.store.mailbox(pro.user_id)
    assert box is not None and not box.connected and box.room_id == room_id
    assert bridge.mailboxes.watchers.get(pro.user_id) is None
    start = pro.mark(room_id)
    await pro.say(room_id, "!courrier à quelqu.un@mss.test objet Test\nTexte.")
    await wait_notice(pro, room_id, "Votre boîte est déconnectée", start=start)
    status, page = await site.get(me, "/courriers")
    assert 'name="mot_de_passe"' in page
    # the password was in no log line (bridge, dossier, aiohttp, nio), at any level
    assert caplog.records and marie_pw not in caplog.text

    # the bridge stopped: the page says so in French, nothing breaks
    await runner.stop()
    status, page = await site.get(me, "/courriers")
    assert status == 200 and "Le pont Courriers ne répond pas" in page


async def test_courriers_page_with_her_own_servers_among_the_allowed(
    pro_factory: Any,
    mailbox_factory: Any,
    mail_servers: Any,
    site: Site,
) -> None:
    """The operator allows other servers (``allowed_servers``): she names hers on the page;
    a server outside the list is refused, a wrong port is caught before anything is stored,
    and her servers are the ones the bridge then reads and sends through."""
    marie, marie_pw = mailbox_factory()
    jean, _ = mailbox_factory()
    # the operator's default servers answer nothing here: whatever works went through hers
    runner = site.bridge(
        allowed_servers=("localhost",), imap_port=free_port(), smtp_port=free_port()
    )
    bridge = await runner.start()
    pro = await pro_factory()
    me, csrf = site.login(pro.user_id)
    status, page = await site.get(me, "/courriers")
    assert 'name="imap_hote"' in page and 'value="127.0.0.1"' in page

    form = {
        "csrf_token": csrf,
        "adresse": marie,
        "mot_de_passe": marie_pw,
        "imap_hote": "imap.ailleurs.example",
        "imap_port": str(mail_servers.imap_port),
        "smtp_hote": "localhost",
        "smtp_port": str(mail_servers.smtp_port),
        "smtp_securite": "tls",
    }
    status, page, _ = await site.post(me, "/courriers/boite", form)
    assert status == 400 and "n'est pas autorisé par l'exploitant" in page
    form.update(imap_hote="localhost", smtp_port=str(mail_servers.imap_port))  # IMAP's port
    status, page, _ = await site.post(me, "/courriers/boite", form)
    assert status == 400 and "Le serveur d'envoi ne répond pas" in page
    assert bridge.store.mailbox(pro.user_id) is None and 'value="localhost"' in page
    form.update(smtp_port=str(mail_servers.smtp_port))
    status, _, where = await site.post(me, "/courriers/boite", form)
    assert status == 303, where
    box = bridge.store.mailbox(pro.user_id)
    assert box is not None and (box.imap_host, box.smtp_host) == ("localhost", "localhost")
    assert box.room_id is not None
    await pro.wait_member(box.room_id, pro.user_id)
    status, page = await site.get(me, "/courriers")
    assert f"localhost:{mail_servers.imap_port}" in page

    # her servers are used: a mail in, a mail out (and filed in her Sent folder)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Par son serveur"), marie)
    await wait_count(pro, box.room_id, mail_events, 1)
    await pro.say(box.room_id, f"!courrier à {jean} objet Par localhost\nTexte.")
    await wait_notice(pro, box.room_id, "Courrier envoyé")
    (sent,) = await wait_mails(mail_servers, marie, 1, folder="Sent")
    assert sent["Subject"] == "Par localhost"
