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


async def test_memory_answers_and_a_logout_still_counts_at_once(api: Api) -> None:
    """Each process keeps the ended sessions in memory (PostgreSQL: once it hears the others'
    notices): a request no longer pays a transaction to ask the table, and a logout is seen by
    the next request — added to memory as it commits, with no second read of the table."""
    import asyncio

    from sqlalchemy import event

    from dossier_service import appkeys

    database = api.app[appkeys.DATABASE]
    assert database.revoked is not None
    if database.notices is not None:  # PostgreSQL: the app's listener connects as it starts
        for _ in range(500):
            if database.notices.hearing:
                break
            await asyncio.sleep(0.02)
        assert database.notices.hearing
    asked: list[str] = []

    def statement(_conn, _cursor, sql: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "session_revocations" in sql and sql.lstrip().upper().startswith("SELECT"):
            asked.append(sql)

    event.listen(database.engine.sync_engine, "before_cursor_execute", statement)
    try:
        headers, other = _bearer(MEMBER), _bearer(MEMBER)
        for _ in range(3):
            await api.ok("GET", "/api/v1/me", headers=headers)
        await api.ok("POST", "/api/v1/logout", headers=headers)
        status, _ = await api.call("GET", "/api/v1/me", headers=headers)
        assert status == 401
        await api.ok("GET", "/api/v1/me", headers=other)
        await api.ok("GET", "/api/v1/me", headers=other)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", statement)
    assert len(asked) == 1  # read once; the logout added to memory as it committed


def _session(nonce: str, issued_at: float = 1_000.0) -> auth.Session:
    return auth.Session(user_id=MEMBER, nonce=nonce, issued_at=issued_at, expires_at=2**40)


def test_a_reload_racing_a_logout_is_not_kept() -> None:
    """Memory read while another transaction ended a session is not kept: the next check
    asks the table again rather than trust a view older than that commit."""
    from datetime import UTC, datetime

    from dossier_service.revoked_sessions import RevokedSessions
    from dossier_service.services.sessions import nonce_hash

    session = _session("n")
    revoked = RevokedSessions()
    assert revoked.answer(session) is None  # nothing read yet
    reading = revoked.generation
    revoked.add([(nonce_hash("n"), MEMBER, datetime.now(UTC), None)])  # commits meanwhile
    revoked.keep(reading, [])
    assert revoked.answer(session) is None  # not "not revoked" from a stale read
    revoked.keep(revoked.generation, [(nonce_hash("n"), MEMBER, datetime.now(UTC), None)])
    assert revoked.answer(session) is True
    everyone = datetime.fromtimestamp(1_000.0, UTC)  # every session issued up to then
    revoked.keep(revoked.generation, [(None, MEMBER, everyone, None)])
    assert revoked.answer(session) is True
    assert revoked.answer(_session("m", 1_001.0)) is False  # issued after it: valid


def test_rows_travel_in_a_notice_and_are_added_to_memory() -> None:
    """What another process ended reaches this one's memory through the notice's words,
    exactly (to the microsecond); "anything may have changed" makes it read the table again;
    memory drops the logged-out sessions past their expiry by itself; while the others cannot
    be heard, memory does not answer at all."""
    from datetime import UTC, datetime, timedelta

    from dossier_service.revoked_sessions import RevokedSessions, rows_of, words
    from dossier_service.services.sessions import nonce_hash

    at = datetime(2026, 12, 4, 10, 30, 15, 123457, tzinfo=UTC)
    rows = [
        (nonce_hash("n"), MEMBER, at, at + timedelta(hours=12)),
        (None, "@x:serveur.example:8448", at, None),
    ]
    said = words(rows)
    assert all("," not in w for w in said)
    back = rows_of(",".join(["p-1", *said, "-"]))  # among a notice's file ids
    assert [(n, t) for n, _, _, t in back][:1] == [(rows[0][0], rows[0][3])]
    assert back[1][1:3] == ("@x:serveur.example:8448", at)

    hearing = [True]
    revoked = RevokedSessions(trusted=lambda: hearing[0])
    revoked.keep(revoked.generation, [])
    assert revoked.answer(_session("n")) is False
    revoked.heard(",".join(said))
    assert revoked.answer(_session("n")) is True
    hearing[0] = False
    assert revoked.answer(_session("n")) is None  # deaf: ask the table
    hearing[0] = True
    revoked.heard("*")
    assert revoked.answer(_session("n")) is None  # read the table again

    revoked.keep(revoked.generation, [])
    past = datetime.now(UTC) - timedelta(seconds=1)
    revoked.add([(nonce_hash(f"old{i}"), MEMBER, past, past) for i in range(1_001)])
    revoked.add([(nonce_hash("live"), MEMBER, past, past + timedelta(hours=1))])
    assert revoked.answer(_session("old1")) is False  # expired: dropped (refused anyway)
    assert revoked.answer(_session("live")) is True
