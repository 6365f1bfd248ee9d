"""Who is calling: Matrix OpenID login, signed session cookies with CSRF, the bot's token.

- People log in by handing a Matrix OpenID token (``/user/{userId}/openid/request_token``);
  it is verified against the homeserver's ``/_matrix/federation/v1/openid/userinfo`` and
  exchanged for a session: an HMAC-signed value, sent back both as an HttpOnly SameSite
  cookie (pages) and in the body (programs, as ``Authorization: Bearer``).
- Requests authenticated by the cookie must carry the CSRF token on unsafe methods
  (``X-CSRF-Token`` header for the API, a form field for pages — see :func:`csrf_matches`).
- The bot presents ``Secrets.dossier_service_token`` as a Bearer token and may say on whose
  behalf it acts with ``X-Cercle-On-Behalf-Of: @user:server``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from deployment.conventions import MATRIX_USER_ID as _USER_ID
from dossier_service.config import DossierConfig
from dossier_service.policy import Principal
from dossier_service.refusal import Refusal

SESSION_COOKIE = "cercle_dossier_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
ON_BEHALF_HEADER = "X-Cercle-On-Behalf-Of"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuthError(Refusal):
    """Authentication failed (401 unless said otherwise)."""

    default_status = 401


@dataclass(frozen=True)
class Session:
    user_id: str
    expires_at: int
    nonce: str = field(repr=False)
    via_cookie: bool = False
    issued_at: float = 0.0  # tokens of before issue 12 carry none: ended by any revocation


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: str, message: str) -> str:
    return _b64(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest())


def issue_session(key: str, user_id: str, *, lifetime: int, now: float | None = None) -> str:
    now = time.time() if now is None else now
    body = _b64(
        json.dumps(
            {
                "u": user_id,
                "e": int(now) + lifetime,
                "n": secrets.token_urlsafe(16),
                "i": round(now, 6),
            }
        ).encode()
    )
    return f"{body}.{_sign(key, 'session|' + body)}"


def read_session(key: str, token: str, *, now: float | None = None) -> Session | None:
    """The session a token stands for, or None (bad signature, expired, malformed)."""
    if not token or len(token) > 1024 or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(key, "session|" + body)):
        return None
    try:
        data = json.loads(_unb64(body))
        session = Session(
            user_id=str(data["u"]),
            expires_at=int(data["e"]),
            nonce=str(data["n"]),
            issued_at=float(data.get("i", 0.0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if session.expires_at < (time.time() if now is None else now):
        return None
    return session


def csrf_token(key: str, session: Session) -> str:
    """The CSRF token bound to a session (put it in forms and in ``X-CSRF-Token``)."""
    return _sign(key, "csrf|" + session.nonce)


def csrf_matches(key: str, session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(key, session), str(token))


# Forms filled in without a session (the directory's "Demander un compte" and activation
# pages): the same signature, bound to a random nonce kept in a cookie (double submit).
FORM_CSRF_COOKIE = "cercle_formulaire"


def form_csrf_token(key: str) -> str:
    """A fresh token for a form without a session: put it in the cookie and the form."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(key, 'form-csrf|' + nonce)}"


def form_csrf_matches(key: str, cookie: str | None, token: str | None) -> bool:
    """The posted token equals the cookie, and the cookie was signed with ``key``."""
    if not cookie or not token or len(cookie) > 256 or not hmac.compare_digest(cookie, token):
        return False
    nonce, _, signature = cookie.partition(".")
    return hmac.compare_digest(signature, _sign(key, "form-csrf|" + nonce))


def set_session_cookie(response: web.StreamResponse, token: str, config: DossierConfig) -> None:
    """The session cookie. Element frames the pages (widget) from another site, and browsers
    send a ``SameSite=Lax`` cookie only to top-level navigations there: when the dossier's
    public URL is https (``config.secure_cookies``) the cookie is ``SameSite=None; Secure``
    so that the framed pages keep the session. Over plain http browsers refuse
    ``SameSite=None`` without ``Secure``: the cookie stays ``Lax`` (it works for the pages
    opened on their own), and inside Element's iframe each page that finds no session falls
    back to the login page, whose exchange needs no cookie (the signed login token of
    ``web.pages_login`` plus the widget API's OpenID token). Deploy the dossier over https
    for a framed session that lasts."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=config.session_lifetime_seconds,
        httponly=True,
        secure=config.secure_cookies,
        samesite="None" if config.secure_cookies else "Lax",
        path="/",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


async def verify_openid_token(
    http: aiohttp.ClientSession, *, homeserver_url: str, access_token: str, server_name: str
) -> str:
    """Ask the homeserver who owns an OpenID token; returns the Matrix user id."""
    url = f"{homeserver_url}/_matrix/federation/v1/openid/userinfo?access_token={quote(access_token, safe='')}"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                raise AuthError("M_UNKNOWN_TOKEN", "Jeton Matrix invalide ou expiré.")
            data: Any = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise AuthError(
            "CERCLE_HOMESERVER_UNREACHABLE", "Serveur Matrix injoignable, réessayez.", 503
        ) from exc
    user_id = data.get("sub") if isinstance(data, dict) else None
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise AuthError("M_UNKNOWN_TOKEN", "Jeton Matrix invalide ou expiré.")
    if user_id.split(":", 1)[1] != server_name:
        raise AuthError("M_FORBIDDEN", "Ce compte n'appartient pas à ce serveur.", 403)
    return user_id


# set by the session middleware when the request's session was ended on the server
REVOKED = web.RequestKey("dossier_session_revoked", bool)


def presented_session(request: web.Request, config: DossierConfig) -> Session | None:
    """The (signed, unexpired) person's session a request carries, bearer or cookie."""
    token = _bearer(request)
    if token is not None:
        if hmac.compare_digest(token.encode(), config.service_token.encode()):
            return None
        return read_session(config.session_key, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    return read_session(config.session_key, cookie) if cookie else None


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def authenticate(request: web.Request, config: DossierConfig) -> tuple[Principal, Session | None]:
    """The principal behind a request, or AuthError. The CSRF check is the caller's
    (:func:`check_api_csrf` for the API, :func:`csrf_matches` on a form field for pages)."""
    if request.get(REVOKED):
        raise AuthError("M_UNKNOWN_TOKEN", "Session terminée : reconnectez-vous.")
    token = _bearer(request)
    if token is not None:
        if hmac.compare_digest(token.encode(), config.service_token.encode()):
            on_behalf = request.headers.get(ON_BEHALF_HEADER)
            if on_behalf is not None and not _USER_ID.match(on_behalf):
                raise AuthError("M_INVALID_PARAM", "Identifiant d'utilisateur invalide.", 400)
            return Principal(user_id="service:bot", kind="service", on_behalf_of=on_behalf), None
        session = read_session(config.session_key, token)
        if session is None:
            raise AuthError("M_UNKNOWN_TOKEN", "Session invalide ou expirée.")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = read_session(config.session_key, cookie) if cookie else None
        if session is None:
            raise AuthError("M_MISSING_TOKEN", "Connexion requise.")
        session = replace(session, via_cookie=True)
    principal = Principal(user_id=session.user_id, is_admin=session.user_id in config.admins)
    return principal, session


def check_api_csrf(request: web.Request, config: DossierConfig, session: Session | None) -> None:
    """Cookie-authenticated unsafe API requests must echo the CSRF token in a header."""
    if session is None or not session.via_cookie or request.method in SAFE_METHODS:
        return
    if not csrf_matches(config.session_key, session, request.headers.get(CSRF_HEADER)):
        raise AuthError("M_FORBIDDEN", "Jeton anti-falsification (CSRF) manquant ou invalide.", 403)
