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
