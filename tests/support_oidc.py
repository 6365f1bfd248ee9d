"""A real OpenID Connect provider on loopback for the SSO tests, shaped like Pro Santé Connect.

`oidc-provider-mock` (PyPI) is the provider: discovery, JWKS with its own RSA signing key,
authorization-code grant, token and userinfo endpoints, claims set per subject with
``PUT /users/<sub>``. Two Flask hooks (Flask's public ``before_request`` /
``after_request``) add what PSC does and the package does not:

- PKCE S256 is enforced: the authorization request must carry a ``code_challenge`` and the
  token request the matching ``code_verifier`` (else ``invalid_grant``);
- ``userinfo_as_jwt`` answers userinfo as a signed JWT (``application/jwt``), as PSC does;
- ``tamper`` rewrites the ID token of the next token responses, for the refusal tests:
  ``signature`` (signed by another key), ``issuer``, ``audience`` or ``expired`` (re-signed
  with the provider's own key, so only that claim is wrong).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import flask
import oidc_provider_mock
import werkzeug.serving
from authlib import jose


def psc_claims(
    national_id: str | None,
    *,
    last_name: str = "BOYER",
    first_name: str = "RAPHAEL",
    profession: str = "60",
) -> dict[str, Any]:
    """Userinfo as Pro Santé Connect shapes it (SubjectNameID, SubjectRefPro…)."""
    claims: dict[str, Any] = {
        "family_name": last_name,
        "given_name": first_name,
        "preferred_username": national_id or "",
        "SubjectRefPro": {
            "codeCivilite": "M",
            "exercices": [
                {
                    "codeProfession": profession,
                    "codeCategorieProfessionnelle": "C",
                    "nomDExercice": last_name,
                    "prenomDExercice": first_name,
                    "activities": [],
                }
            ],
        },
        "Palier_Authentification": "APPPRIP3^1.2.250.1.213.1.5.1.1.1",
        "SubjectRole": [f"{profession}^1.2.250.1.213.1.1.5.5"],
    }
    if national_id is not None:
        claims["SubjectNameID"] = national_id
    return claims


@dataclass
class Provider:
    issuer: str
    server: werkzeug.serving.BaseWSGIServer
    tamper: str | None = None
    challenges: dict[str, str] = field(default_factory=dict)
    pkce_checked: int = 0
    authorize_queries: list[dict[str, str]] = field(default_factory=list)
    id_tokens: list[str] = field(default_factory=list)  # every ID token handed out
    userinfo_as_jwt: bool = False  # PSC answers its userinfo as a signed JWT
    userinfo_jwts: int = 0  # how many were served

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        """The claims the provider gives for ``sub`` (its ``PUT /users/<sub>``)."""
        request = urllib.request.Request(
            f"{self.issuer}/users/{sub}",
            data=json.dumps(claims).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 204


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _install_hooks(app: flask.Flask, provider: Provider) -> None:
    foreign_key = jose.RSAKey.generate_key(is_private=True)

    @app.before_request
    def check_pkce() -> Any:
        req = flask.request
        if req.path == "/oauth2/authorize" and req.method == "GET":
            provider.authorize_queries.append(dict(req.args))
        if req.path == "/oauth2/token" and req.form.get("grant_type") == "authorization_code":
            challenge = provider.challenges.pop(req.form.get("code", ""), None)
            verifier = req.form.get("code_verifier", "")
            if challenge is None or not verifier or _s256(verifier) != challenge:
                return flask.jsonify(error="invalid_grant", error_description="PKCE"), 400
            provider.pkce_checked += 1
        return None

    @app.after_request
    def remember_and_tamper(response: flask.Response) -> flask.Response:
        req = flask.request
        if req.path == "/oauth2/authorize" and response.status_code in (302, 303):
            query = parse_qs(urlparse(response.headers["Location"]).query)
            if "code" in query and req.args.get("code_challenge_method") == "S256":
                provider.challenges[query["code"][0]] = req.args.get("code_challenge", "")
        if req.path == "/oauth2/token" and response.status_code == 200 and provider.tamper:
            body = response.get_json()
            own_key = flask.g.oidc_provider_mock_storage.jwk
            claims = jose.jwt.decode(body["id_token"], own_key)
            key = own_key
            if provider.tamper == "signature":
                key = foreign_key
            elif provider.tamper == "issuer":
                claims["iss"] = "https://faux-fournisseur.example"
            elif provider.tamper == "audience":
                claims["aud"] = "un-autre-client"
            elif provider.tamper == "expired":
                claims["iat"] = int(time.time()) - 7200
                claims["exp"] = int(time.time()) - 3600
            header = {"alg": "RS256", "kid": own_key.as_dict()["kid"]}
            body["id_token"] = jose.jwt.encode(header, dict(claims), key).decode()
            response.set_data(flask.json.dumps(body))
        if req.path == "/oauth2/token" and response.status_code == 200:
            provider.id_tokens.append(response.get_json()["id_token"])
        if req.path == "/userinfo" and response.status_code == 200 and provider.userinfo_as_jwt:
            own_key = flask.g.oidc_provider_mock_storage.jwk
            header = {"alg": "RS256", "kid": own_key.as_dict()["kid"]}
            signed = jose.jwt.encode(header, response.get_json(), own_key)
            response.set_data(signed)
            response.headers["Content-Type"] = "application/jwt"
            provider.userinfo_jwts += 1
        return response


@contextmanager
def running_provider() -> Iterator[Provider]:
    app = oidc_provider_mock.app(require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    provider = Provider(issuer=f"http://127.0.0.1:{server.server_port}", server=server)
    _install_hooks(app, provider)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
