"""Pure: the Matrix messages of the Courriers room (a mail, an unparseable mail, a sent mail).

A Matrix event is at most 65,536 bytes: a long mail is cut (plain text at ``MAX_TEXT``
characters, its HTML dropped past ``MAX_HTML``) and the original ``.eml`` is attached so
nothing is lost. Dates are shown in Europe/Paris.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from bots.dossier_link.notices import fr_date
from bridges.mail.message import ParsedMail

MAX_TEXT = 20_000
MAX_HTML = 30_000
MAIL_KEY = "fr.cercle.mail"  # inside the encrypted content: the mail's identity for replies


def mail_message(
    mail: ParsedMail, mail_ref: Mapping[str, Any], proposal: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The ``m.room.message`` content of an incoming mail, and whether it was cut.
    ``proposal``: the label of the patient file matching the mail's INS, if any."""
    text = mail.text
    cut = len(text) > MAX_TEXT or (mail.html is not None and len(mail.html) > MAX_HTML)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n[…] (suite dans le fichier courrier.eml joint)"
    head = [
        f"✉️ Courrier de {mail.sender}",
        f"Objet : {mail.subject}",
    ]
    if mail.date is not None:
        head.append(f"Date : {fr_date(mail.date)}")
    listing = _attachment_lines(mail)
    plain = "\n".join(head) + "\n\n" + (text or "(message vide)")
    if listing:
        plain += "\n\nPièces jointes :\n" + "\n".join(listing)
    hint = _ins_hint(mail, proposal)
    if hint:
        plain += "\n\n" + hint
    body_html = (
        mail.html
        if mail.html is not None and len(mail.html) <= MAX_HTML
        else "<p>" + html.escape(text or "(message vide)").replace("\n", "<br>") + "</p>"
    )
    formatted = (
        f"<p>✉️ <strong>Courrier de</strong> {html.escape(mail.sender)}<br>"
        f"<strong>Objet :</strong> {html.escape(mail.subject)}"
        + (f"<br><strong>Date :</strong> {html.escape(fr_date(mail.date))}" if mail.date else "")
        + "</p><hr>"
        + body_html
        + (_attachments_html(mail) if listing else "")
        + (f"<p><em>{html.escape(hint)}</em></p>" if hint else "")
    )
    content = {
        "msgtype": "m.text",
        "body": plain,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        MAIL_KEY: dict(mail_ref),
    }
    return content, cut


def _ins_hint(mail: ParsedMail, proposal: str | None) -> str:
    if not mail.ins:
        return ""
    if proposal:
        return (
            f"🗂 INS du patient {mail.ins[0]} : dossier « {proposal} ». Répondez « !classer » "
            "à ce courrier pour l'y classer."
        )
    return (
        f"🗂 INS du patient {mail.ins[0]} : aucun de vos dossiers ne le porte. Répondez "
        "« !classer <patient> » pour classer ce courrier."
    )


def _attachment_lines(mail: ParsedMail) -> list[str]:
    lines = []
    for a in mail.attachments:
        lines.append(f"• {a.filename}")
        lines.extend(f"    – {entry}" for entry in a.listing)
    return lines


def _attachments_html(mail: ParsedMail) -> str:
    items = []
    for a in mail.attachments:
        inner = ""
        if a.listing:
            inner = "<ul>" + "".join(f"<li>{html.escape(e)}</li>" for e in a.listing) + "</ul>"
        items.append(f"<li>{html.escape(a.filename)}{inner}</li>")
    return "<p><strong>Pièces jointes :</strong></p><ul>" + "".join(items) + "</ul>"


def unparseable_notice() -> tuple[str, str]:
    plain = (
        "Un courrier reçu n'a pas pu être mis en forme (format MIME invalide). "
        "Le message d'origine est joint tel quel (fichier .eml)."
    )
    return plain, html.escape(plain)


def sent_notice(to: str, subject: str) -> tuple[str, str]:
    plain = f"📤 Courrier envoyé à {to} — objet : {subject}"
    return plain, f"📤 Courrier envoyé à {html.escape(to)} — objet : {html.escape(subject)}"
