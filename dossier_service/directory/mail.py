"""The activation link by e-mail, when the deployment configures SMTP (``annuaire.smtp``)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 20.0


def smtp_from_section(section: Mapping[str, Any] | None) -> SmtpSettings | None:
    """``annuaire.smtp: {host, port, sender, starttls, username, password}`` or None."""
    if not section or not section.get("host"):
        return None
    return SmtpSettings(
        host=str(section["host"]),
        port=int(section.get("port", 25)),
        sender=str(section.get("sender") or "cercle@localhost"),
        starttls=bool(section.get("starttls", False)),
        username=section.get("username"),
        password=section.get("password"),
    )


def activation_message(
    *, sender: str, to: str, display_name: str, mxid: str, url: str, expires: str
) -> EmailMessage:
    """Pure: the French e-mail that carries the one-time activation link."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Cercle : activez votre compte"
    msg.set_content(
        f"Bonjour,\n\n"
        f"Votre demande de compte Cercle a été acceptée.\n"
        f"Nom affiché : {display_name}\n"
        f"Identifiant Matrix : {mxid}\n\n"
        f"Choisissez votre mot de passe avec ce lien, utilisable une seule fois, "
        f"valable jusqu'au {expires} (heure de Paris) :\n{url}\n\n"
        f"Connectez-vous ensuite dans Element avec cet identifiant.\n"
        f"Si vous n'avez pas demandé de compte, ignorez ce message.\n"
    )
    return msg


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Blocking: call it in a thread from async code."""
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)
