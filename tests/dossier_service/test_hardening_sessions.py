"""Issue 12, finding 5: logout ends the session on the server (bearer and cookie), and an
account's sessions end with it (``POST /api/v1/sessions/revoke``, called when it is
deactivated)."""

from __future__ import annotations

from dossier_service import auth
from tests.dossier_service.conftest import MEMBER, SESSION_KEY, Api, service_headers


def _bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue_session(SESSION_KEY, user, lifetime=3600)}"}


async def test_logout_ends_the_bearer_session(api: Api) -> None:
    headers = _bearer(MEMBER)
    other = _bearer(MEMBER)  # a second device keeps its own session
    await api.ok("GET", "/api/v1/me", headers=headers)
    await api.ok("POST", "/api/v1/logout", headers=headers)
    status, body = await api.call("GET", "/api/v1/me", headers=headers)
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN", body
    await api.ok("GET", "/api/v1/me", headers=other)
    assert await api.count("audit_log", "WHERE action = 'logout'") == 1


async def test_logout_ends_the_cookie_session(api: Api) -> None:
    token = auth.issue_session(SESSION_KEY, MEMBER, lifetime=3600)
    cookie = {"Cookie": f"{auth.SESSION_COOKIE}={token}"}
    await api.ok("GET", "/api/v1/me", headers=cookie)
    await api.ok("POST", "/api/v1/logout", headers=cookie)
    status, _ = await api.call("GET", "/api/v1/me", headers=cookie)
    assert status == 401
    # the same token as a bearer is the same ended session
    status, _ = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401


async def test_a_deactivated_account_loses_every_session(api: Api) -> None:
    sessions = [_bearer(MEMBER), _bearer(MEMBER)]
    status, _ = await api.call(
        "POST", "/api/v1/sessions/revoke", headers=sessions[0], json={"user_id": MEMBER}
    )
    assert status == 403  # a person cannot end others' sessions (nor call it at all)
    await api.ok(
        "POST", "/api/v1/sessions/revoke", headers=service_headers(), json={"user_id": MEMBER}
    )
    for headers in sessions:
        status, _ = await api.call("GET", "/api/v1/me", headers=headers)
        assert status == 401
    await api.ok("GET", "/api/v1/me", headers=_bearer(MEMBER))  # a new login works again


async def test_sqlite_answers_from_memory_and_a_logout_still_counts_at_once(api: Api) -> None:
    """The one writer of its database (SQLite) keeps the ended sessions in memory: a request
    no longer pays a transaction to ask the table, and a logout is seen by the next request."""
    from sqlalchemy import event

    from dossier_service import appkeys

    database = api.app[appkeys.DATABASE]
    asked: list[str] = []

    def statement(_conn, _cursor, sql: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "session_revocations" in sql and sql.lstrip().upper().startswith("SELECT"):
            asked.append(sql)

    event.listen(database.engine.sync_engine, "before_cursor_execute", statement)
    try:
        headers, other = _bearer(MEMBER), _bearer(MEMBER)
        for _ in range(3):
            await api.ok("GET", "/api/v1/me", headers=headers)
        first = len(asked)
        await api.ok("POST", "/api/v1/logout", headers=headers)
        status, _ = await api.call("GET", "/api/v1/me", headers=headers)
        assert status == 401
        await api.ok("GET", "/api/v1/me", headers=other)
        await api.ok("GET", "/api/v1/me", headers=other)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", statement)
    if database.is_sqlite:
        assert database.revoked is not None
        assert first == 1 and len(asked) == 2  # read once, then once after the logout
    else:  # several processes may end sessions: the table is asked on every request
        assert database.revoked is None and len(asked) >= 7


def test_a_reload_racing_a_logout_is_not_kept() -> None:
    """Memory read while another transaction ended a session is not kept: the next check
    asks the table again rather than trust a view older than that commit."""
    from datetime import UTC, datetime

    from dossier_service.revoked_sessions import RevokedSessions
    from dossier_service.services.sessions import nonce_hash

    session = auth.Session(user_id=MEMBER, nonce="n", issued_at=1_000.0, expires_at=2**40)
    revoked = RevokedSessions()
    assert revoked.answer(session) is None  # nothing read yet
    reading = revoked.generation
    revoked.ended()  # a logout commits while the table is being read
    revoked.keep(reading, [])
    assert revoked.answer(session) is None  # not "not revoked" from a stale read
    revoked.keep(revoked.generation, [(nonce_hash("n"), MEMBER, datetime.now(UTC))])
    assert revoked.answer(session) is True
    everyone = datetime.fromtimestamp(1_000.0, UTC)  # every session issued up to then
    revoked.keep(revoked.generation, [(None, MEMBER, everyone)])
    assert revoked.answer(session) is True
    later = auth.Session(user_id=MEMBER, nonce="m", issued_at=1_001.0, expires_at=2**40)
    assert revoked.answer(later) is False  # a session issued after it is valid
