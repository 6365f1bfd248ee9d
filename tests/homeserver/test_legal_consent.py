"""Documents juridiques in the real Synapse: someone who has not accepted the current
version cannot send (French error with the link) and gets a server notice with the link;
after accepting on the consent page they can; a new version asks again. Service accounts
(bot, admin) are exempt."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from support import SynapseUnderTest, eventually, password_login, start_synapse

from homeserver import legal
from homeserver.render import render

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseUnderTest]:
    synapse = start_synapse(
        tmp_path_factory.mktemp("cercle-legal"), extra={"homeserver": {"legal": {"enabled": True}}}
    )
    try:
        yield synapse
    finally:
        synapse.stop()


class Caller:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token
        self.txn = 0

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method,
            f"{self.base}/_matrix/client/v3{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            return resp.status, await resp.json()

    async def send(self, room_id: str, text: str) -> tuple[int, Any]:
        """An (opaque) encrypted event, as clients send into Cercle's encrypted rooms."""
        self.txn += 1
        return await self.call(
            "PUT",
            f"/rooms/{quote(room_id)}/send/m.room.encrypted/t{self.txn}",
            {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": text,
                "session_id": "s",
                "sender_key": "k",
                "device_id": "D",
            },
        )


async def _notice_text(me: Caller, notices_user: str) -> str:
    """The server notice, in the notices room the server joined the user to."""

    async def notices() -> list[str]:
        _, body = await me.call("GET", "/sync?timeout=0")
        return [
            e["content"].get("body", "")
            for room in body.get("rooms", {}).get("join", {}).values()
            for e in room.get("timeline", {}).get("events", [])
            if e["type"] == "m.room.message" and e["sender"] == notices_user
        ]

    found = await eventually(notices, bool, what="avis du serveur")
    return str(found[0])


async def _accept(http: aiohttp.ClientSession, consent_uri: str) -> str:
    async with http.get(consent_uri) as resp:
        page = await resp.text()
        assert resp.status == 200, page[:300]
    assert "Conditions générales d'utilisation" in page and "Politique de confidentialité" in page
    fields = dict(re.findall(r'name="([uvh])" value="([^"]*)"', page))
    base = consent_uri.split("?")[0]
    async with http.post(base, data={k: html.unescape(v) for k, v in fields.items()}) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_accept_before_joining_or_sending_then_again_for_a_new_version(
    hs: SynapseUnderTest,
) -> None:
    user = hs.register("ide.consentement", "mot-de-passe-de-test")
    async with aiohttp.ClientSession() as http:
        admin = Caller(http, hs.base_url, hs.admin_token)  # service account: exempt
        status, room = await admin.call(
            "POST", "/createRoom", {"preset": "private_chat", "invite": [user["user_id"]]}
        )
        assert status == 200, room
        room_id = room["room_id"]
        me = Caller(http, hs.base_url, user["access_token"])
        status, refused = await me.call("POST", f"/rooms/{quote(room_id)}/join", {})
        assert status == 403 and refused["errcode"] == "M_CONSENT_NOT_GIVEN", refused
        assert "accepter les documents juridiques de Cercle (version 1.0)" in refused["error"]

        notice = await _notice_text(me, f"@cercle-avis:{hs.server_name}")
        assert "lisez et acceptez les documents juridiques" in notice
        assert "/_matrix/consent?u=" in notice

        await _accept(http, refused["consent_uri"])
        status, _ = await me.call("POST", f"/rooms/{quote(room_id)}/join", {})
        assert status == 200
        # accepted 1.0 once more on the same page: nothing to accept again
        async with http.get(refused["consent_uri"]) as resp:
            assert "Vous avez accepté cette version" in await resp.text()

        legal.publish(hs.profile, "1.1", actor="@cercle-admin:test")
        render(hs.profile, hs.secrets)
        hs.restart()
        status, refused = await me.send(room_id, "bonjour")
        assert status == 403 and refused["errcode"] == "M_CONSENT_NOT_GIVEN", refused
        assert "accepter les documents juridiques de Cercle (version 1.1)" in refused["error"]
        consent_uri = refused["consent_uri"]
        assert consent_uri.startswith(f"{hs.profile.public_baseurl}_matrix/consent?u=")
        assert consent_uri in refused["error"]

        done = await _accept(http, consent_uri)
        assert "Votre acceptation des documents juridiques est enregistrée" in done
        status, _ = await me.send(room_id, "bonjour")
        assert status == 200
        async with http.get(
            f"{hs.base_url}/_synapse/admin/v2/users/{quote(user['user_id'])}",
            headers={"Authorization": f"Bearer {hs.admin_token}"},
        ) as resp:
            info = await resp.json()
        assert info["consent_version"] == "1.1" and info["consent_ts"] > 0


async def test_the_public_page_shows_the_current_documents(hs: SynapseUnderTest) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{hs.base_url}/_matrix/consent") as resp:
        page = await resp.text()
    assert resp.status == 200
    assert "Documents juridiques de Cercle" in page and "Version publique" in page
    assert 'name="h"' not in page  # nothing to accept without the personal link


def test_every_version_is_kept() -> None:
    root = Path(__file__).resolve().parents[2] / "config" / "legal"
    assert {"1.0.html", "1.1.html", "success.html"} <= {p.name for p in root.iterdir()}


def test_admin_user_show_says_which_version_was_accepted_and_when(
    hs: SynapseUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    import yaml

    from cercle.cli import main

    config = tmp_path / "cercle.yaml"
    config.write_text(yaml.safe_dump(dict(hs.profile.data)), encoding="utf-8")
    user = hs.register("ide.fiche", "mot-de-passe-de-test")

    def show() -> str:
        assert main(["--config", str(config), "admin", "user", "show", user["user_id"]]) == 0
        return capsys.readouterr().out

    current = legal.current_version(hs.profile)
    assert f"Documents juridiques : non acceptés (version en vigueur : {current})" in show()

    async def accept() -> None:
        async with aiohttp.ClientSession() as http:
            me = Caller(http, hs.base_url, user["access_token"])
            _, refused = await me.call("POST", "/createRoom", {"preset": "private_chat"})
            assert refused["errcode"] == "M_CONSENT_NOT_GIVEN"
            await _accept(http, refused["consent_uri"])

    asyncio.run(accept())
    out = show()
    assert re.search(
        rf"Documents juridiques : version {re.escape(current)} acceptée le "
        r"\d\d/\d\d/\d{4} \d\d:\d\d \(Paris\)",
        out,
    ), out
    assert (
        main(["--config", str(config), "admin", "user", "show", f"@cercle-bot:{hs.server_name}"])
        == 0
    )
    assert "dispensé (compte de service)" in capsys.readouterr().out
    assert main(["--config", str(config), "admin", "user", "show", "@personne:ailleurs"]) == 1


async def test_the_bot_and_the_admin_account_are_exempt(hs: SynapseUnderTest) -> None:
    async with aiohttp.ClientSession() as http:
        _, session = await password_login(http, hs.base_url, hs.bot_user_id, hs.bot_password)
        bot_token = session["access_token"]
        for token in (bot_token, hs.admin_token):
            caller = Caller(http, hs.base_url, token)
            status, room = await caller.call("POST", "/createRoom", {"preset": "private_chat"})
            assert status == 200, room
            status, sent = await caller.send(room["room_id"], "sans consentement")
            assert status == 200, sent
