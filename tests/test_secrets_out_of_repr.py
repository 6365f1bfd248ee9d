"""Objects holding a credential or a key never show it in their repr: a log line or a
traceback printing one of them must not leak the secret (``deployment.Secrets`` is checked
in ``tests/deployment/test_profile_and_secrets.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots.export.media import MediaSource
from bots.matrix.io import UploadedFile
from bots.matrix.session import StoredSession
from bridges.mail.store import Mailbox
from dossier_service.api.session import LoggedIn, Me
from dossier_service.auth import Session
from dossier_service.directory.account_requests import Approval
from dossier_service.schemas import OpenIdLoginIn
from homeserver.accounts import BotAccount, ServiceAccounts
from homeserver.admin_api import RegisteredUser

SECRET = "s3cr3t-Vg9qXw"

HOLDERS = {
    "bot session": StoredSession("@cercle-bot:example.org", "CERCLEBOT", SECRET),
    "attachment to fetch": MediaSource("mxc://example.org/abc", key=SECRET, iv="iv"),
    "attachment uploaded": UploadedFile(
        "mxc://example.org/abc", {"key": {"k": SECRET}, "iv": "iv"}, 12
    ),
    "mailbox": Mailbox(
        owner="@pro:example.org",
        address="pro@mssante.fr",
        sealed_password=SECRET.encode(),
        credentials_version=1,
        room_id=None,
        space_id=None,
        uidvalidity=None,
        last_uid=0,
        state="connected",
        error=None,
        refused_version=None,
        last_mail_at=None,
    ),
    "service accounts": ServiceAccounts("@cercle-admin:example.org", SECRET, "@bot:example.org"),
    "bot account": BotAccount("@cercle-bot-2:example.org", SECRET, "Cercle (salons 2)"),
    "registered user": RegisteredUser("@pro:example.org", SECRET, "DEVICE"),
    "account approved": Approval(
        1, "@pro:example.org", "Dr Pro", SECRET, datetime(2026, 12, 3, tzinfo=UTC)
    ),
    "dossier session": Session("@pro:example.org", 0, SECRET),
    "dossier login": LoggedIn(
        user_id="@pro:example.org",
        session_token=SECRET,
        csrf_token=SECRET,
        expires_in=60,
        is_admin=False,
    ),
    "who is calling": Me(
        user_id="@pro:example.org", kind="user", is_admin=False, csrf_token=SECRET
    ),
    "OpenID token": OpenIdLoginIn(access_token=SECRET),
}


@pytest.mark.parametrize("holder", HOLDERS.values(), ids=HOLDERS.keys())
def test_the_secret_is_not_in_repr(holder: object) -> None:
    assert SECRET not in repr(holder)
    assert SECRET not in str(holder)
