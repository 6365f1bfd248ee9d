"""``!classer``: a mail and its attachments filed as documents of a patient's file, through
the dossier's HTTP API with the service token, acting for the professional.

- The patient is found among the files whose care circle holds the professional with
  access (the service sees every file: the circle is checked here, as the bot does);
  by the words typed (label, names, file id) or, when none are typed, by the INS the mail
  carries (CDA, XDM metadata, MSSanté patient header).
- The mail itself is filed as a UTF-8 text document, each attachment as is when the dossier
  accepts its format (PDF, images, office, text); the others are named in the answer.
- A notebook entry "Courrier de … classé dans la catégorie …" is written; the dossier's
  event feed then makes the coordination bot post its notices in the patient's room.
- Every write carries an idempotency key derived from the command event: a replay after a
  crash files nothing twice.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from bots.commands.registry import CommandContext, UserError
from bots.dossier_client import DossierClient
from bots.dossier_link.notices import fr_date
from bots.outbox import Refused, Unavailable
from bridges.mail.compose_text import split_category
from bridges.mail.message import ParsedMail
from bridges.mail.store import Mailbox

DEFAULT_CATEGORY = "courrier"
MAX_CANDIDATES = 20


def mail_as_text(mail: ParsedMail) -> bytes:
    """Pure: the mail as the text document filed in the dossier."""
    lines = [
        f"Courrier de : {mail.sender}",
        f"Objet : {mail.subject}",
    ]
    if mail.date is not None:
        lines.append(f"Date : {fr_date(mail.date)}")
    if mail.attachments:
        lines.append("Pièces jointes : " + ", ".join(a.filename for a in mail.attachments))
    return ("\n".join(lines) + "\n\n" + (mail.text or "(message vide)") + "\n").encode()


def notebook_text(mail: ParsedMail, category: str) -> str:
    return f"Courrier de {mail.sender} classé dans la catégorie « {category} » (objet : {mail.subject})"


@dataclass(frozen=True)
class Filed:
    """What one filing did (told in the Courriers room and on the dossier's page)."""

    patient_id: str
    label: str
    url: str
    category: str
    filed: tuple[str, ...]
    refused: tuple[str, ...]

    def message(self) -> tuple[str, str]:
        """Pure: (plain, HTML) of the notice."""
        names = ", ".join(self.filed)
        plain = (
            f"Courrier classé dans le dossier « {self.label} », catégorie « {self.category} » : "
            f"{len(self.filed)} document(s) ({names}). {self.url}"
        )
        body = (
            f'Courrier classé dans le dossier <a href="{html.escape(self.url)}">'
            f"« {html.escape(self.label)} »</a>, catégorie « {html.escape(self.category)} » : "
            f"{len(self.filed)} document(s) ({html.escape(names)})."
        )
        if self.refused:
            extra = " Non classés (format refusé par le dossier) : " + ", ".join(self.refused) + "."
            plain += extra
            body += html.escape(extra)
        return plain, body


class Filing:
    """The one implementation of filing a mail, for ``!classer`` and the dossier's page."""

    def __init__(self, dossier: DossierClient) -> None:
        self.dossier = dossier

    async def file(
        self, ctx: CommandContext, mailbox: Mailbox, mail: ParsedMail, arguments: str
    ) -> None:
        """``!classer [patient] [catégorie]`` as a reply to the mail."""
        categories = await self._categories()
        words, category = split_category(arguments, categories, DEFAULT_CATEGORY)
        filed = await self.file_mail(
            owner=mailbox.owner,
            mail=mail,
            words=words,
            category=category,
            key=f"classer|{ctx.event_id}",
            categories=categories,
        )
        await ctx.reply(*filed.message())

    async def file_mail(
        self,
        *,
        owner: str,
        mail: ParsedMail,
        words: str,
        category: str,
        key: str,
        categories: list[str] | None = None,
    ) -> Filed:
        """File ``mail`` in the patient's file that ``words`` (or the mail's INS) names, among
        those whose care circle gives ``owner`` access; ``key`` makes every write idempotent."""
        try:
            if categories is None:
                categories = await self.dossier.document_categories()
            if category not in categories:
                raise UserError(f"Catégorie inconnue : « {category[:80]} ».")
            return await self._file(owner, mail, words, category, key)
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None

    async def _categories(self) -> list[str]:
        try:
            return list(await self.dossier.document_categories())
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None

    async def _file(
        self, owner: str, mail: ParsedMail, words: str, category: str, key: str
    ) -> Filed:
        patient = await self._patient(owner, words, mail.ins)
        pid = str(patient["id"])
        stamp = mail.date.strftime("%Y%m%d") if mail.date else "courrier"
        filed = [f"courrier-{stamp}.txt"]
        await self.dossier.upload_document(
            pid,
            category=category,
            filename=filed[0],
            data=mail_as_text(mail),
            actor=owner,
            key=f"{key}|mail",
        )
        refused: list[str] = []
        for i, attachment in enumerate(mail.attachments):
            try:
                await self.dossier.upload_document(
                    pid,
                    category=category,
                    filename=attachment.filename,
                    data=attachment.data,
                    actor=owner,
                    key=f"{key}|file-{i}",
                )
                filed.append(attachment.filename)
            except Refused:
                refused.append(attachment.filename)
        await self.dossier.add_notebook_entry(
            pid,
            kind="note",
            text=notebook_text(mail, category),
            actor=owner,
            key=f"{key}|note",
            from_matrix=False,
        )
        return Filed(
            pid,
            str(patient.get("label") or pid),
            self.dossier.patient_page_url(pid),
            category,
            tuple(filed),
            tuple(refused),
        )

    async def proposal(self, owner: str, ins: tuple[str, ...]) -> str | None:
        """The label of the one file of ``owner`` carrying this INS (shown with the mail);
        None when none or several match, or the dossier is away (the mail is posted anyway)."""
        try:
            found = [p for number in ins for p in await self._visible(owner, number)]
        except (Unavailable, Refused):
            return None
        return str(found[0].get("label") or found[0]["id"]) if len(found) == 1 else None

    async def _patient(self, owner: str, words: str, ins: tuple[str, ...]) -> dict[str, Any]:
        if words:
            candidates = await self._visible(owner, words)
            exact = [p for p in candidates if str(p.get("id")) == words]
            if exact:
                return exact[0]
            what = f"« {words[:80]} »"
        elif ins:
            candidates = []
            for number in ins:
                candidates += await self._visible(owner, number)
            what = "l'INS de ce courrier"
        else:
            raise UserError(
                "Précisez le patient : !classer <nom, libellé ou identifiant du dossier> "
                "[catégorie] (aucun INS trouvé dans ce courrier)."
            )
        if not candidates:
            raise UserError(
                f"Aucun dossier ne correspond à {what} parmi ceux dont vous êtes membre du "
                "cercle de soins."
            )
        if len(candidates) > 1:
            names = "; ".join(f"{p.get('label')} (!classer {p.get('id')})" for p in candidates[:5])
            raise UserError(f"Plusieurs dossiers correspondent à {what} : {names}.")
        return candidates[0]

    async def _visible(self, owner: str, query: str) -> list[dict[str, Any]]:
        body = await self.dossier.request(
            "GET", "/patients", params={"q": query, "limit": MAX_CANDIDATES}, actor=owner
        )
        items = body.get("items", []) if isinstance(body, dict) else []
        out = []
        for patient in items:
            members = await self.dossier.circle(str(patient["id"]))
            if any(m.get("matrix_user_id") == owner and m.get("has_access") for m in members):
                out.append(patient)
        return out
