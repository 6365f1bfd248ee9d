"""Typed settings of the directory component, built from the deployment profile."""

from __future__ import annotations

import secrets as _random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mail import SmtpSettings, smtp_from_section
from .store import database_path

ADMIN_TOKEN_FILE = "admin_access_token"  # written by homeserver.accounts
CSRF_KEY_FILE = "annuaire_csrf_key"


@dataclass(frozen=True)
class DirectorySettings:
    database: Path
    server_name: str
    homeserver_url: str
    public_url: str
    csrf_key: str = field(repr=False)
    admin_token: str | None = field(default=None, repr=False)
    activation_hours: int = 72
    request_limit: int = 5  # account requests per IP ...
    request_window_seconds: int = 600  # ... per window
    frame_origin: str = "'self'"  # CSP frame-ancestors: the pages work as an Element widget
    smtp: SmtpSettings | None = None  # activation links e-mailed when configured
    legal_url: str = ""  # the Documents juridiques (Synapse's consent page), footer link


def settings_from_profile(profile: Any, secrets: Any) -> DirectorySettings:
    """``annuaire`` section of the profile + the operator admin token and a CSRF key."""
    from deployment.secrets import read_or_create

    section = profile.section("annuaire") or {}
    token_path = Path(secrets.directory) / ADMIN_TOKEN_FILE
    token = token_path.read_text(encoding="utf-8").strip() if token_path.exists() else None
    dossier = profile.section("dossier") or {}
    return DirectorySettings(
        database=database_path(section, Path(profile.var_dir)),
        server_name=profile.server_name,
        homeserver_url=profile.homeserver_url,
        public_url=str(profile.dossier_url),
        csrf_key=read_or_create(
            Path(secrets.directory), CSRF_KEY_FILE, lambda: _random.token_urlsafe(32)
        ),
        admin_token=token,
        activation_hours=int(section.get("activation_hours", 72)),
        request_limit=int(section.get("request_limit", 5)),
        request_window_seconds=int(section.get("request_window_seconds", 600)),
        frame_origin=f"'self' {dossier['element_origin']}"
        if dossier.get("element_origin")
        else "'self'",
        smtp=smtp_from_section(section.get("smtp")),
        legal_url=f"{profile.public_baseurl}_matrix/consent",
    )
