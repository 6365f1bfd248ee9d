"""Dossier commands: the patient's file from the conversation.

``!patient lier <id>``, ``!cercle`` (list / ``ajouter @qui rôle`` / ``retirer @qui``),
``!note``, ``!transmission``, ``!doc <catégorie>`` (in reply to an attachment),
``!tache <libellé> [pour @qui] [échéance <date>]``, ``!tache fait <n>``, ``!taches``.

Writes go through the durable outbox under an idempotency key derived from the command's
event id: a command handled twice (replayed sync, restart) writes once, and a dossier that
is down gets the write as soon as it is back (the reply says so).
"""

from __future__ import annotations

import html
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient

from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    Power,
    Text,
    UsageError,
    UserError,
    Where,
)
from bots.dossier_client import DossierClient
from bots.dossier_link.bridge import DossierBridge, NotLinked
from bots.dossier_link.notices import ROLE_LABELS, fr_date
from bots.dossier_link.parsing import ParseProblem, parse_task, task_order_key
from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.matrix.io import mention_html
from bots.outbox import DONE, FAILED, OutboxItem, Refused, Unavailable, idempotency_key

log = logging.getLogger(__name__)

ROLE_WORDS = {
    "intervenant": "intervenant",
    "coordinateur": "coordinateur",
    "coordinatrice": "coordinateur",
    "gestionnaire": "coordinateur",
    "medecin_traitant": "medecin_traitant",
    "médecin_traitant": "medecin_traitant",
    "médecin-traitant": "medecin_traitant",
    "medecin-traitant": "medecin_traitant",
    "mt": "medecin_traitant",
    "aidant": "aidant",
    "aidant_principal": "aidant_principal",
    "aidant-principal": "aidant_principal",
    "representant_legal": "representant_legal",
    "représentant_légal": "representant_legal",
}
UNAVAILABLE = (
    "⏳ Le dossier est momentanément indisponible : {what} sera enregistré(e) dès son retour."
)
DEFAULT_CATEGORIES = (
    "compte rendu",
    "ordonnance",
    "bilan",
    "courrier",
    "photo",
    "administratif",
    "autre",
)


def register(
    registry: CommandRegistry,
    *,
    client: AsyncClient,
    bridge: DossierBridge,
    dossier: DossierClient,
    homeserver_url: str,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    wait_seconds: float = 3.0,
    max_document_bytes: int = 25 * 1024 * 1024,
) -> None:
    async def patient_of(ctx: CommandContext) -> str:
        try:
            return await bridge.resolve_patient(ctx.room_id)
        except NotLinked:
            raise UserError(
                "Ce salon n'est lié à aucun dossier patient. Un coordinateur peut le lier : "
                "!patient lier <identifiant du dossier>"
            ) from None
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None

    async def require_access(ctx: CommandContext, pid: str, *, reading: bool) -> None:
        """The dossier's rule, applied by the bot acting for the sender: only members of the
        care circle with access read or write the file. The dossier away: writes are queued
        (the sender is in the patient's room), reads are refused."""
        try:
            members = await dossier.circle(pid)
        except Unavailable:
            if reading:
                raise UserError(
                    "Le dossier est momentanément indisponible ; réessayez dans un instant."
                ) from None
            return
        require_member(members, ctx.sender)

    async def require_in_circle(pid: str, users: Sequence[str]) -> None:
        """A task goes to people of the care circle (the dossier away: checked on delivery)."""
        try:
            members = {m.get("matrix_user_id") for m in await dossier.circle(pid)}
        except Unavailable:
            return
        outside = [u for u in users if u not in members]
        if outside:
            raise UserError(
                f"{', '.join(outside)} ne fait pas partie du cercle de soins de ce patient : "
                "ajoutez-le d'abord (!cercle ajouter ou !inviter)."
            )

    async def check_before_writing(ctx: CommandContext) -> None:
        """A write in the file for the sender: her access checked now, even when the bot
        does not know the room's file yet (asked to the dossier). With the dossier away,
        the write waits in the outbox and the dossier checks her access when it arrives
        (she is named as the acting person): it is never written unchecked."""
        try:
            pid = await bridge.resolve_patient(ctx.room_id)
        except NotLinked:
            raise UserError("Ce salon n'est lié à aucun dossier patient.") from None
        except Unavailable:
            return
        await require_access(ctx, pid, reading=False)

    def require_member(members: list[dict[str, Any]], user: str) -> None:
        if not any(m.get("matrix_user_id") == user and m.get("has_access") for m in members):
            raise UserError(
                "Vous ne faites pas partie du cercle de soins de ce patient avec accès au dossier : "
                "demandez à un coordinateur de vous y ajouter (!cercle ajouter)."
            )

    async def write(ctx: CommandContext, purpose: str, operation: str, payload: dict[str, Any],
                    what: str) -> OutboxItem | None:  # fmt: skip
        """Submit through the outbox; None (after replying) when the dossier is down."""
        assert bridge.worker is not None
        payload = {**payload, "actor": ctx.sender, "room_id": ctx.room_id}
        item = await bridge.worker.submit(
            idempotency_key(ctx.event_id, purpose), operation, payload, room_id=ctx.room_id,
            wait_seconds=wait_seconds,
        )  # fmt: skip
        if item.status == DONE:
            return item
        if item.status == FAILED:
            if item.last_error == "CERCLE_NOT_LINKED":
                raise UserError("Ce salon n'est lié à aucun dossier patient.")
            raise UserError(f"Le dossier a refusé {what} ({item.last_error}).")
        msg = UNAVAILABLE.format(what=what)
        await ctx.reply(msg, html.escape(msg))
        return None

    async def circle_of(pid: str) -> list[dict[str, Any]]:
        try:
            return await dossier.circle(pid)
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None

    def require_coordinator(members: list[dict[str, Any]], user: str) -> None:
        if not any(m.get("matrix_user_id") == user and m.get("role") == "coordinateur"
                   and m.get("has_access") for m in members):  # fmt: skip
            raise UserError("Réservé aux coordinateurs du cercle de soins de ce patient.")

    # -- !patient lier --
    @registry.command(
        "patient",
        subcommand="lier",
        sub_aliases=("link",),
        args=(Text("identifiant", max_length=40, label="l'identifiant du dossier"),),
        help="lie ce salon au dossier patient indiqué (coordinateurs du dossier)",
        where=Where.SHARED_ROOM,
        power=Power.ADMIN,
    )
    async def lier(ctx: CommandContext, identifiant: str) -> None:
        pid = identifiant.strip()
        if bridge.known_patient(ctx.room_id) == pid:
            raise UserError(f"Ce salon est déjà lié au dossier {pid}.")
        if not bridge.may_furnish(ctx.room_id):
            raise UserError(
                "Le bot doit être administrateur de ce salon (niveau 100) pour le lier à un "
                "dossier : donnez-lui ce niveau puis recommencez."
            )
        try:
            members = await dossier.circle(pid)
        except Refused:
            members = []
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None
        if not any(m.get("matrix_user_id") == ctx.sender and m.get("role") == "coordinateur"
                   and m.get("has_access") for m in members):  # fmt: skip
            raise UserError("Dossier introuvable, ou vous n'en êtes pas coordinateur.")
        item = await write(
            ctx, "link", "patient.link", {"patient_id": pid}, "la liaison au dossier"
        )
        if item is None:
            return
        url = bridge.file_url(pid)
        await ctx.reply(
            f"🔗 Salon lié au dossier {pid} : {url}",
            f'🔗 Salon lié au dossier <a href="{html.escape(url)}">{html.escape(pid)}</a>.',
        )

    # -- !cercle --
    @registry.command(
        "cercle",
        aliases=("circle",),
        args=(
            Text(
                "ajouter @qui [rôle] [sans-accès] | retirer @qui",
                optional=True,
                max_length=300,
                label="l'action",
            ),
        ),
        help="liste le cercle de soins ; les coordinateurs y ajoutent ou retirent un professionnel",
        where=Where.SHARED_ROOM,
    )
    async def cercle(ctx: CommandContext, **values: str | None) -> None:
        action = (values.get("ajouter @qui [rôle] [sans-accès] | retirer @qui") or "").split()
        pid = await patient_of(ctx)
        members = await circle_of(pid)
        if not action:
            require_member(members, ctx.sender)  # the circle just read: no second request
            await _list_circle(ctx, pid, members)
            return
        verb = action[0].lower()
        if verb in ("ajouter", "add") and len(action) >= 2:
            require_coordinator(members, ctx.sender)
            user, role, has_access = _read_addition(action[1:])
            if any(m.get("matrix_user_id") == user for m in members):
                raise UserError(f"{user} fait déjà partie du cercle de soins.")
            arrivals = bridge.arrivals
            assert arrivals is not None
            room = client.rooms.get(ctx.room_id)
            name = (room.user_name(user) if room and user in room.users else None) or user
            welcome = await arrivals.bring_in(
                ctx.room_id, user, actor=ctx.sender, origin=ctx.event_id, role=role,
                has_access=has_access, name=name,
            )  # fmt: skip
            access = "" if has_access else ", sans accès au dossier"
            head = f"👥 {name} ajouté(e) au cercle de soins ({ROLE_LABELS[role]}{access})"
            head_html = (
                f"👥 {mention_html(user, name)} ajouté(e) au cercle de soins "
                f"({html.escape(ROLE_LABELS[role] + access)})"
            )
            tail = f"Historique : {welcome.way}." if welcome.invited else "Déjà dans ce salon."
            note = f"\n{welcome.circle_note}" if welcome.circle_note else ""
            await ctx.reply(
                f"{head}.\n{tail}{note}",
                f"{head_html}.<br>{html.escape(tail)}{html.escape(note).replace(chr(10), '<br>')}",
            )
            return
        if verb in ("retirer", "remove") and len(action) == 2:
            require_coordinator(members, ctx.sender)
            user = action[1]
            found = [m for m in members if m.get("matrix_user_id") == user]
            if not found:
                raise UserError(f"{user} ne fait pas partie du cercle de soins.")
            item = await write(ctx, "circle-end", "circle.end", {"member_id": found[0]["id"]},
                               "le retrait du cercle de soins")  # fmt: skip
            if item is not None:
                name = str(found[0].get("display_name") or user)
                await ctx.reply(
                    f"👥 Fin de participation de {name} au cercle de soins enregistrée.",
                    f"👥 Fin de participation de {mention_html(user, name)} au cercle de soins "
                    "enregistrée.",
                )
            return
        raise UsageError(
            "Action inconnue : « ajouter @qui [rôle] [sans-accès] » ou « retirer @qui »."
        )

    async def _list_circle(ctx: CommandContext, pid: str, members: list[dict[str, Any]]) -> None:
        if not members:
            await ctx.reply("Le cercle de soins est vide.", "Le cercle de soins est vide.")
            return
        plain = ["Cercle de soins :"]
        rich = ["<p><strong>Cercle de soins</strong></p><ul>"]
        for m in members:
            name = str(m.get("display_name") or m.get("matrix_user_id") or "?")
            profession = str(m.get("profession") or "").strip() or "—"
            role = ROLE_LABELS.get(str(m.get("role")), str(m.get("role")))
            access = "habilité" if m.get("has_access") else "sans accès au dossier"
            if m.get("kind") == "structure":  # issue 18: its members hold the access
                finess = f"FINESS {m.get('directory_id')}, " if m.get("directory_id") else ""
                access = finess + (
                    "avec accès au dossier (ses membres)"
                    if m.get("has_access")
                    else "sans accès au dossier"
                )
            left = " (a quitté la conversation)" if m.get("left_room_at") else ""
            plain.append(f"• {name} — {profession} — {role} — {access}{left}")
            who = (
                mention_html(m["matrix_user_id"], name)
                if m.get("matrix_user_id")
                else html.escape(name)
            )
            rich.append(
                f"<li>{who} — {html.escape(profession)} — {html.escape(role)} — {access}{left}</li>"
            )
        rich.append("</ul>")
        outside = _outside_circle(client, ctx.room_id, members)
        if outside:  # members from before issue 11: the room and the circle must agree
            names = ", ".join(outside)
            text = f"Dans la conversation sans être dans le cercle de soins : {names}"
            plain.append(text)
            rich.append(f"<p>{html.escape(text)}</p>")
        await ctx.reply("\n".join(plain), "".join(rich))

    # -- !note / !transmission --
    def notebook_command(name: str, alias: str, kind: str, word: str) -> None:
        @registry.command(
            name,
            aliases=(alias,),
            args=(Text("texte", max_length=8000, label="le texte"),),
            help=f"écrit une {word} dans le cahier de liaison du dossier",
            where=Where.SHARED_ROOM,
        )
        async def handler(ctx: CommandContext, texte: str) -> None:
            await check_before_writing(ctx)
            item = await write(ctx, kind, "notebook.add", {"kind": kind, "text": texte},
                               f"la {word}")  # fmt: skip
            if item is not None:
                msg = f"🗒 {word[0].upper()}{word[1:]} enregistrée dans le cahier de liaison."
                await ctx.reply(msg, html.escape(msg))

    notebook_command("note", "memo", "note", "note")
    notebook_command("transmission", "handover", "transmission", "transmission")

    # -- !doc --
    @registry.command(
        "doc",
        aliases=("document",),
        args=(Text("catégorie", max_length=100, label="la catégorie"),),
        help="en réponse à une pièce jointe : la classe dans les documents du dossier",
        where=Where.SHARED_ROOM,
    )
    async def doc(ctx: CommandContext, **values: str) -> None:
        category = values["catégorie"].strip().lower()
        await check_before_writing(ctx)
        valid = await _categories()
        if category not in valid:
            listing = ", ".join(valid)
            raise UserError(f"Catégorie inconnue : « {category[:60]} ». Catégories : {listing}.")
        command = await bridge.io.event_content(ctx.room_id, ctx.event_id)
        reply_to = (((command or {}).get("m.relates_to") or {}).get("m.in_reply_to") or {}).get(
            "event_id"
        )
        if not isinstance(reply_to, str):
            raise UserError("Répondez au message qui porte la pièce jointe avec !doc <catégorie>.")
        target = await bridge.io.event_content(ctx.room_id, reply_to)
        source = MediaSource.from_content(target or {})
        if (
            target is None
            or source is None
            or target.get("msgtype") not in ("m.file", "m.image", "m.video", "m.audio")
        ):
            raise UserError("Le message auquel vous répondez ne porte pas de pièce jointe lisible.")
        filename = str(target.get("filename") or target.get("body") or "document")[:200]
        data = await _download(source)
        assert bridge.worker is not None
        blob = bridge.worker.outbox.store_blob(data)
        item = await write(ctx, "doc", "document.upload",
                           {"category": category, "filename": filename, "blob": blob},
                           "le document")  # fmt: skip
        if item is not None:
            msg = f"📄 « {filename} » classé dans les documents du dossier (catégorie {category})."
            await ctx.reply(msg, html.escape(msg))

    async def _categories() -> list[str]:
        try:
            found = await dossier.document_categories()
        except (Unavailable, Refused):
            found = []
        return found or list(categories)

    async def _download(source: MediaSource) -> bytes:
        with tempfile.TemporaryDirectory(prefix="cercle-doc-") as tmp:
            async with aiohttp.ClientSession() as session:
                fetcher = MediaFetcher(session, homeserver_url, str(client.access_token), Path(tmp),
                                       max_bytes=max_document_bytes)  # fmt: skip
                try:
                    fetched = await fetcher.fetch(source)
                except MediaError as exc:
                    raise UserError(f"Pièce jointe illisible : {exc.reason}.") from None
                return fetched.path.read_bytes()

    # -- tasks --
    @registry.command(
        "tache",
        aliases=("task", "tâche"),
        args=(
            Text("libellé [pour @qui] [échéance date] | fait n", max_length=700, label="la tâche"),
        ),
        help="crée une tâche sur le dossier (ou « !tache fait 2 » clôt la tâche n° 2 de !taches)",
        where=Where.SHARED_ROOM,
    )
    async def tache(ctx: CommandContext, **values: str) -> None:
        text = values["libellé [pour @qui] [échéance date] | fait n"].strip()
        words = text.split()
        if words and words[0].lower() in ("fait", "done") and len(words) == 2:
            await _close_task(ctx, words[1])
            return
        try:
            request = parse_task(text, bridge.today())
        except ParseProblem as exc:
            raise UsageError(str(exc)) from None
        pid = await patient_of(ctx)
        await require_access(ctx, pid, reading=False)
        if request.assignees:
            await require_in_circle(pid, request.assignees)
        payload: dict[str, Any] = {"label": request.label, "assignees": list(request.assignees),
                                   "due_date": request.due.isoformat() if request.due else None,
                                   "command": ctx.event_id}  # fmt: skip
        item = await write(ctx, "task", "task.create", payload, "la tâche")
        if item is None or request.assignees:
            return  # assigned: the room's « Nouvelle tâche » notice is the reply (one message)
        due = f" (échéance {fr_date(request.due)})" if request.due else ""
        await ctx.reply(
            f"📋 Tâche créée : « {request.label} »{due}.",
            f"📋 Tâche créée : « {html.escape(request.label)} »{html.escape(due)}.",
        )

    async def _open_tasks(pid: str) -> list[dict[str, Any]]:
        try:
            tasks = await dossier.open_tasks(pid)
        except Unavailable:
            raise UserError(
                "Le dossier est momentanément indisponible ; réessayez dans un instant."
            ) from None
        return sorted(tasks, key=task_order_key)

    async def _close_task(ctx: CommandContext, number: str) -> None:
        if not number.isdigit() or int(number) < 1:
            raise UsageError("Numéro de tâche attendu (voir !taches).")
        pid = await patient_of(ctx)
        await require_access(ctx, pid, reading=True)
        tasks = await _open_tasks(pid)
        n = int(number)
        if n > len(tasks):
            raise UserError(f"Pas de tâche ouverte n° {n} (voir !taches).")
        task = tasks[n - 1]
        item = await write(ctx, "task-close", "task.close", {"task_id": task["id"], "patient_id": pid},
                           "la clôture de la tâche")  # fmt: skip
        if item is not None:
            msg = f"✅ Tâche « {task.get('label')} » close."
            await ctx.reply(msg, html.escape(msg))

    @registry.command(
        "taches",
        aliases=("tasks", "tâches"),
        help="liste les tâches ouvertes du patient, numérotées",
        where=Where.SHARED_ROOM,
    )
    async def taches(ctx: CommandContext) -> None:
        pid = await patient_of(ctx)
        await require_access(ctx, pid, reading=True)
        tasks = await _open_tasks(pid)
        if not tasks:
            await ctx.reply("Aucune tâche ouverte.", "Aucune tâche ouverte.")
            return
        plain = ["Tâches ouvertes :"]
        rich = ["<p><strong>Tâches ouvertes</strong></p><ol>"]
        room = client.rooms.get(ctx.room_id)

        def name(ref: str) -> str:  # a person by the name the room knows, not the id
            return (room.user_name(ref) if room and ref in room.users else None) or ref

        for n, t in enumerate(tasks, 1):
            people = [name(a["ref"]) for a in t.get("assignees") or [] if isinstance(a, Mapping)]
            due = f" — échéance {fr_date(t.get('due_date'))}" if t.get("due_date") else ""
            late = " ⏰ en retard" if t.get("overdue") else ""
            who = f" — pour {', '.join(people)}" if people else ""
            plain.append(f"{n}. {t.get('label')}{who}{due}{late}")
            rich.append(
                f"<li>{html.escape(str(t.get('label')))}{html.escape(who)}{html.escape(due)}{late}</li>"
            )
        rich.append("</ol>")
        plain.append("Pour clore : !tache fait <n>")
        rich.append("<p>Pour clore : <code>!tache fait &lt;n&gt;</code></p>")
        await ctx.reply("\n".join(plain), "".join(rich))


def _outside_circle(client: AsyncClient, room_id: str, members: list[dict[str, Any]]) -> list[str]:
    """The room's joined members (the bot aside) that the care circle does not list."""
    room = client.rooms.get(room_id)
    if room is None:
        return []
    listed = {m.get("matrix_user_id") for m in members}
    return sorted(
        room.user_name(u) or u
        for u in room.users
        if u not in room.invited_users and u != client.user_id and u not in listed
    )


NO_ACCESS_WORDS = ("sans-accès", "sans-acces", "sans_accès", "sans_acces", "salon-seul")


def _read_addition(words: Sequence[str]) -> tuple[str, str, bool]:
    """Pure: ``@qui [rôle] [sans-accès]`` → (user, role, has_access)."""
    user, rest = words[0], [w.lower() for w in words[1:]]
    if not user.startswith("@") or ":" not in user:
        raise UsageError("Identifiant Matrix attendu (forme @nom:serveur).")
    text = " ".join(rest)
    has_access = True
    for phrase in ("sans accès au dossier", "sans acces au dossier", "sans accès", "sans acces",
                   *NO_ACCESS_WORDS):  # fmt: skip
        if phrase in text:
            text, has_access = text.replace(phrase, " "), False
            break
    left = text.split()
    if len(left) > 1:
        raise UsageError("Forme attendue : !cercle ajouter @qui [rôle] [sans-accès].")
    role = ROLE_WORDS.get(left[0] if left else "intervenant")
    if role is None:
        raise UsageError(f"Rôle inconnu ; rôles : {', '.join(sorted(set(ROLE_WORDS.values())))}.")
    return user, role, has_access
