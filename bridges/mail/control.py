"""The bridge's control socket: what the dossier's "Courriers" page asks of the bridge.

Why a socket of the bridge rather than credentials kept by the dossier: the bridge owns its
store and its vault (``vault.py``, key in ``var/secrets``); the dossier, which serves the
internet, never holds the vault key nor a mailbox password at rest, and the page goes
through the very code ``!connecter`` and ``!classer`` use (the login tried before anything
is stored, the same filing). Like the account gateway, it is a Unix socket under
``var/run`` (no network), authenticated with its own secret; the dossier has signed the
professional in and says who she is (``owner``); each request acts on her mailbox only.

Routes (POST, JSON; errors ``{"errcode","error"}``, a refusal's ``error`` in French):

- ``/boite``: her mailbox's state (address, state, error, last mail) — never the password;
- ``/boite/connecter`` ``{address, password}``: as ``!connecter``;
- ``/boite/deconnecter``: the watcher stopped, the sealed password erased (room kept);
- ``/courriers`` ``{limit}``: her latest mails (event id, sender, subject, date read back
  from IMAP: the bridge stores no mail content);
- ``/courriers/classer`` ``{event_id, patient, category, key}``: as ``!classer``, the same
  ``Filing``, its notice posted in her Courriers room too.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, asdict, dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bots.commands.registry import UserError
from bots.matrix.io import MatrixIO, txn_for
from bridges.mail.compose_text import is_address
from bridges.mail.config import MailHosts
from bridges.mail.control_client import SECRET_FILE
from bridges.mail.filing import Filing
from bridges.mail.mailboxes import Mailboxes
from bridges.mail.message import parse_mail
from bridges.mail.store import BridgeStore, Mailbox
from deployment.incidents import new_reference
from deployment.local_requests import user_request

log = logging.getLogger(__name__)
__all__ = ["SECRET_FILE", "Control", "serve"]

MAX_RECENT = 50
_KEY = re.compile(r"^[A-Za-z0-9_\-|.:@]{8,200}$")


def _error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


@dataclass
class Control:
    store: BridgeStore
    mailboxes: Mailboxes
    filing: Filing | None
    io: MatrixIO
    _: KW_ONLY
    secret: str = field(repr=False)
    server_name: str

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024, middlewares=[self._errors])
        for path, handler in (
            ("/boite", self.state),
            ("/boite/connecter", self.connect),
            ("/boite/deconnecter", self.disconnect),
            ("/courriers", self.recent),
            ("/courriers/classer", self.file),
        ):
            app.router.add_post(path, handler)
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except UserError as exc:  # French, for the professional herself
            return _error(409, "CERCLE_REFUSED", exc.message)
        except web.HTTPException:
            raise
        except Exception:
            ref = new_reference()
            log.exception("socket de contrôle : erreur interne réf=%s", ref)
            return _error(500, "M_UNKNOWN", f"Erreur interne (réf. {ref})")

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return await user_request(
            request, secret=self.secret, server_name=self.server_name, user_key="owner"
        )

    def _connected(self, owner: str) -> Mailbox:
        mailbox = self.store.mailbox(owner)
        if mailbox is None or not mailbox.connected or mailbox.room_id is None:
            raise UserError("Aucune boîte n'est reliée : reliez d'abord votre boîte.")
        return mailbox

    async def state(self, request: web.Request) -> web.Response:
        owner, _ = await self._body(request)
        box = self.store.mailbox(owner)
        config = self.mailboxes.config
        default = config.default_hosts()
        choice = {
            "servers_choice": bool(config.allowed_servers),
            "default_servers": asdict(default),
        }
        if box is None or not box.connected:
            return web.json_response({"connected": False, **choice})
        hosts = box.hosts(default)
        return web.json_response(
            {
                "connected": True,
                "address": box.address,
                "state": box.state,
                "error": box.error,
                "last_mail_at": box.last_mail_at,
                "room_id": box.room_id,
                "imap": f"{hosts.imap_host}:{hosts.imap_port}",
                "smtp": f"{hosts.smtp_host}:{hosts.smtp_port} ({hosts.smtp_security})",
                **choice,
            }
        )

    async def connect(self, request: web.Request) -> web.Response:
        owner, body = await self._body(request)
        address, password = body.get("address"), body.get("password")
        if not isinstance(address, str) or not isinstance(password, str) or not password:
            raise web.HTTPBadRequest()
        if not is_address(address.strip()):
            raise UserError(f"Adresse invalide : « {address.strip()[:80]} ».")
        hosts = _hosts(body.get("servers"))
        room_id = await self.mailboxes.connect_mailbox(owner, address.strip(), password, hosts)
        return web.json_response({"room_id": room_id})

    async def disconnect(self, request: web.Request) -> web.Response:
        owner, _ = await self._body(request)
        return web.json_response({"disconnected": await self.mailboxes.disconnect(owner)})

    async def recent(self, request: web.Request) -> web.Response:
        owner, body = await self._body(request)
        limit = body.get("limit", 20)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_RECENT:
            raise web.HTTPBadRequest()
        mailbox = self._connected(owner)
        items = []
        for event_id, head in await self.mailboxes.recent(mailbox, limit):
            items.append({"event_id": event_id, **_headers(head)})
        return web.json_response({"mails": items})

    async def file(self, request: web.Request) -> web.Response:
        owner, body = await self._body(request)
        event_id, patient = body.get("event_id"), body.get("patient")
        category, key = body.get("category"), body.get("key")
        if not all(isinstance(v, str) and v for v in (event_id, patient, category, key)):
            raise web.HTTPBadRequest()
        assert isinstance(event_id, str) and isinstance(patient, str)
        assert isinstance(category, str) and isinstance(key, str)
        if not _KEY.match(key):
            raise web.HTTPBadRequest()
        if self.filing is None:
            raise UserError("Le classement est indisponible : aucun dossier n'est configuré.")
        mailbox = self._connected(owner)
        posted = self.store.mail_of_event(event_id)
        if posted is None or posted.owner != owner:
            raise UserError("Ce courrier n'est pas dans votre salon Courriers.")
        raw = await self.mailboxes.fetch_mail(mailbox, event_id)
        mail = await asyncio.to_thread(parse_mail, raw)
        filed = await self.filing.file_mail(
            owner=owner,
            mail=mail,
            words=patient[:200],
            category=category[:100],
            key=f"page|{owner}|{key}",
        )
        plain, html_body = filed.message()
        assert mailbox.room_id is not None
        await self.io.send_notice(
            mailbox.room_id,
            plain,
            html_body,
            txn_id=txn_for(f"page|{owner}|{key}", "filed"),
            reply_to=event_id,
        )
        return web.json_response(
            {
                "patient_id": filed.patient_id,
                "label": filed.label,
                "category": filed.category,
                "filed": list(filed.filed),
                "refused": list(filed.refused),
            }
        )


_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _hosts(value: Any) -> MailHosts | None:
    """The servers she named, checked for shape (the allow-list is the bridge's), or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest()
    hosts, ports = (
        [value.get("imap_host"), value.get("smtp_host")],
        [value.get("imap_port"), value.get("smtp_port")],
    )
    security = value.get("smtp_security", "tls")
    if not all(isinstance(h, str) and _HOST.match(h) for h in hosts):
        raise UserError("Nom de serveur invalide.")
    if not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
        raise UserError("Numéro de port invalide (1 à 65535).")
    if security not in ("tls", "starttls"):
        raise UserError("Sécurité du serveur d'envoi : TLS ou STARTTLS.")
    return MailHosts(str(hosts[0]), int(ports[0]), str(hosts[1]), int(ports[1]), str(security))  # type: ignore[arg-type]


def _headers(head: bytes | None) -> dict[str, Any]:
    if head is None:
        return {"sender": None, "subject": None, "date": None}
    msg = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    try:
        when = parsedate_to_datetime(str(msg.get("Date", ""))).isoformat()
    except (TypeError, ValueError):
        when = None
    return {
        "sender": str(msg.get("From", ""))[:300],
        "subject": str(msg.get("Subject", ""))[:300],
        "date": when,
    }


async def serve(control: Control, path: Path) -> web.AppRunner:
    """Listen on ``path`` (0600, in a 0700 directory); the caller cleans the runner up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
    runner = web.AppRunner(control.app(), access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    path.chmod(0o600)
    return runner
