"""``!cercle``: the care circle listed; coordinators add (``ajouter @qui [rôle] [sans-accès]``)
or end (``retirer @qui``) a member's participation."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from nio import AsyncClient

from bots.commands.dossier.access import (
    FileAccess,
    away,
    by,
    require_coordinator,
    require_member,
)
from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    Text,
    UsageError,
    UserError,
    Where,
)
from bots.dossier_link.arrivals import Arrivals
from bots.dossier_link.operations import EndInCircle
from bots.dossier_link.roles import RoleLabels
from bots.matrix.io import member_name, mention_html
from bots.outbox import Unavailable

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
NO_ACCESS_WORDS = ("sans-accès", "sans-acces", "sans_accès", "sans_acces", "salon-seul")
ACTION = "ajouter @qui [rôle] [sans-accès] | retirer @qui"


def register(
    registry: CommandRegistry,
    access: FileAccess,
    arrivals: Arrivals,
    roles: RoleLabels,
) -> None:
    client = access.client

    @registry.command(
        "cercle",
        aliases=("circle",),
        args=(Text(ACTION, optional=True, max_length=300, label="l'action"),),
        help="liste le cercle de soins ; les coordinateurs y ajoutent ou retirent un professionnel",
        where=Where.SHARED_ROOM,
    )
    async def cercle(ctx: CommandContext, **values: str | None) -> None:
        action = (values.get(ACTION) or "").split()
        pid = await access.patient_of(ctx)
        members = await access.circle_of(pid)
        if not action:
            require_member(members, ctx.sender)  # the circle just read: no second request
            await list_circle(ctx, members)
            return
        verb = action[0].lower()
        if verb in ("ajouter", "add") and len(action) >= 2:
            require_coordinator(members, ctx.sender)
            await add(ctx, members, *read_addition(action[1:]))
            return
        if verb in ("retirer", "remove") and len(action) == 2:
            require_coordinator(members, ctx.sender)
            await end(ctx, members, action[1])
            return
        raise UsageError(
            "Action inconnue : « ajouter @qui [rôle] [sans-accès] » ou « retirer @qui »."
        )

    async def role_labels() -> Mapping[str, str]:
        try:
            return await roles.get()
        except Unavailable:
            raise away() from None

    async def add(
        ctx: CommandContext, members: list[dict[str, Any]], user: str, role: str, has_access: bool
    ) -> None:
        if any(m.get("matrix_user_id") == user for m in members):
            raise UserError(f"{user} fait déjà partie du cercle de soins.")
        name = member_name(client, ctx.room_id, user)
        labels = await role_labels()  # before anyone is invited: the reply needs it
        welcome = await arrivals.bring_in(
            ctx.room_id,
            user,
            actor=ctx.sender,
            origin=ctx.event_id,
            role=role,
            has_access=has_access,
            name=name,
        )
        label = labels.get(role, role) + ("" if has_access else ", sans accès au dossier")
        head = f"👥 {name} ajouté(e) au cercle de soins ({label})"
        head_html = (
            f"👥 {mention_html(user, name)} ajouté(e) au cercle de soins ({html.escape(label)})"
        )
        tail = f"Historique : {welcome.way}." if welcome.invited else "Déjà dans ce salon."
        note = f"\n{welcome.circle_note}" if welcome.circle_note else ""
        await ctx.reply(
            f"{head}.\n{tail}{note}",
            f"{head_html}.<br>{html.escape(tail)}{html.escape(note).replace(chr(10), '<br>')}",
        )

    async def end(ctx: CommandContext, members: list[dict[str, Any]], user: str) -> None:
        found = [m for m in members if m.get("matrix_user_id") == user]
        if not found:
            raise UserError(f"{user} ne fait pas partie du cercle de soins.")
        op = EndInCircle(member_id=found[0]["id"], **by(ctx))
        if await access.write(ctx, "circle-end", op, "le retrait du cercle de soins") is None:
            return
        name = str(found[0].get("display_name") or user)
        await ctx.reply(
            f"👥 Fin de participation de {name} au cercle de soins enregistrée.",
            f"👥 Fin de participation de {mention_html(user, name)} au cercle de soins "
            "enregistrée.",
        )

    async def list_circle(ctx: CommandContext, members: list[dict[str, Any]]) -> None:
        if not members:
            await ctx.reply("Le cercle de soins est vide.", "Le cercle de soins est vide.")
            return
        labels = await role_labels()
        plain = ["Cercle de soins :"]
        rich = ["<p><strong>Cercle de soins</strong></p><ul>"]
        for m in members:
            name = str(m.get("display_name") or m.get("matrix_user_id") or "?")
            profession = str(m.get("profession") or "").strip() or "—"
            role = labels.get(str(m.get("role")), str(m.get("role")))
            access_word = "habilité" if m.get("has_access") else "sans accès au dossier"
            if m.get("kind") == "structure":  # issue 18: its members hold the access
                finess = f"FINESS {m.get('directory_id')}, " if m.get("directory_id") else ""
                access_word = finess + (
                    "avec accès au dossier (ses membres)"
                    if m.get("has_access")
                    else "sans accès au dossier"
                )
            left = " (hors de la conversation)" if m.get("left_room_at") else ""
            plain.append(f"• {name} — {profession} — {role} — {access_word}{left}")
            who = (
                mention_html(m["matrix_user_id"], name)
                if m.get("matrix_user_id")
                else html.escape(name)
            )
            rich.append(
                f"<li>{who} — {html.escape(profession)} — {html.escape(role)} — "
                f"{access_word}{left}</li>"
            )
        rich.append("</ul>")
        outside = outside_circle(client, ctx.room_id, members)
        if outside:  # members from before issue 11: the room and the circle must agree
            text = f"Dans la conversation sans être dans le cercle de soins : {', '.join(outside)}"
            plain.append(text)
            rich.append(f"<p>{html.escape(text)}</p>")
        await ctx.reply("\n".join(plain), "".join(rich))


def outside_circle(client: AsyncClient, room_id: str, members: list[dict[str, Any]]) -> list[str]:
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


def read_addition(words: Sequence[str]) -> tuple[str, str, bool]:
    """Pure: ``@qui [rôle] [sans-accès]`` → (user, role, has_access)."""
    user, rest = words[0], [w.lower() for w in words[1:]]
    if not user.startswith("@") or ":" not in user:
        raise UsageError("Identifiant Matrix attendu (forme @nom:serveur).")
    text = " ".join(rest)
    has_access = True
    for phrase in (
        "sans accès au dossier",
        "sans acces au dossier",
        "sans accès",
        "sans acces",
        *NO_ACCESS_WORDS,
    ):
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
