"""Patient rooms: !patient nouveau <libellé>, !inviter <qui> and !historique.

A patient room is encrypted, invite-only, ``history_visibility: shared``; its
``fr.cercle.patient`` state holds only a generated pseudonymous id (the identity belongs to
the dossier and to encrypted messages); the requester and the bot are admins (100); it is
named after the label the professional chose.

Extension point (issue 6, dossier sync): ``PatientHooks.created`` listeners are awaited
after a room is created (e.g. ask the dossier service to open the file).
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nio import AsyncClient

from bots.commands.directory import LastResults, result_user
from bots.commands.invitee import read_invitee, resolve_invitee
from bots.commands.patient_label import confirmed_label
from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    Power,
    Text,
    UserError,
    Where,
)
from bots.dossier_link.arrivals import Arrivals
from bots.matrix.handover import Handover
from bots.matrix.initial_state import private_room
from bots.matrix.io import MatrixIO, member_name, mention_html, room_link
from bots.matrix.room_once import create_room_once
from bots.matrix.room_state import FLAGS_STATE, PATIENT_STATE
from bots.shards import Shards

log = logging.getLogger(__name__)

_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32


def new_pseudonym() -> str:
    """A random pseudonymous patient id, e.g. ``P-7K3M9Q2XHD`` (50 bits)."""
    return "P-" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class PatientRoomCreated:
    room_id: str
    pseudonym: str
    label: str
    requester: str
    handed: bool = False  # made for another of the bot's accounts, which lives in it


@dataclass
class PatientHooks:
    created: list[Callable[[PatientRoomCreated], Awaitable[None]]] = field(default_factory=list)


def patient_room_request(
    *, label: str, pseudonym: str, requester: str, bot_user_id: str, shard: str | None = None
) -> dict[str, object]:
    """Pure: the arguments of the room creation. ``shard``: the bot account the room is
    assigned to when it is not the creating one (bots/shards.py) — made a creator too
    (MSC4289, room version 12: a power no member can lower) and invited; the creating
    account then leaves the room to it."""
    handed = (
        {}
        if shard is None
        else {
            "room_version": "12",
            "creation_content": {"additional_creators": [shard]},
        }
    )
    return {
        **handed,
        "name": label,
        "invite": [requester, *([shard] if shard else [])],
        "initial_state": [
            *private_room(),
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "forbidden"},
            },
            {"type": PATIENT_STATE, "state_key": "", "content": {"id": pseudonym, "version": 1}},
        ],
        # Room version 12 (Synapse's default): the bot, creator, has unlimited power and
        # must not appear in ``users``; the requester is admin.
        "power_level_override": {
            "users": {requester: 100},
            "events": {
                PATIENT_STATE: 100,
                FLAGS_STATE: 100,
                "m.room.encryption": 100,
                "m.room.history_visibility": 100,
                "m.room.join_rules": 100,
                "m.room.power_levels": 100,
            },
        },
    }


def register(
    registry: CommandRegistry,
    *,
    client: AsyncClient,
    io: MatrixIO,
    server_name: str,
    label_max_length: int,
    hooks: PatientHooks,
    patient_rooms: dict[str, dict[str, object]],
    arrivals: Arrivals,
    directory_results: LastResults | None = None,
    shards: Shards | None = None,
    handover: Handover | None = None,
) -> None:
    @registry.command(
        "patient",
        subcommand="nouveau",
        sub_aliases=("new",),
        args=(Text("libellé", max_length=label_max_length, label="le libellé du salon"),),
        help="crée un salon patient chiffré, nommé d'après le libellé choisi (évitez le nom du patient)",
    )
    async def nouveau(ctx: CommandContext, **values: str) -> None:
        label = confirmed_label(values["libellé"], registry.prefix)
        pseudonym = new_pseudonym()
        intent = f"patient-nouveau|{ctx.event_id}"
        # the account the room lives with (the same on a replay: a hash of the intent)
        owner = (shards or Shards.single(str(client.user_id))).account_for(intent)
        handed = owner != client.user_id
        # once per command, even replayed after a crash (bots.matrix.room_once)
        room_id, created = await create_room_once(
            client,
            io,
            intent,
            patient_room_request(
                label=label,
                pseudonym=pseudonym,
                requester=ctx.sender,
                bot_user_id=client.user_id,
                shard=owner if handed else None,
            ),
        )
        if not created:  # made by the first attempt: its pseudonym is in its state
            made = await io.get_state(room_id, PATIENT_STATE) or {}
            pseudonym = str(made.get("id") or pseudonym)
        if handed and handover is not None:  # ours until its account has joined
            await handover.after_creation(room_id, owner)
        else:
            patient_rooms[room_id] = {"id": pseudonym, "version": 1}
        log.info(
            "salon patient %s room=%s pour event=%s%s",
            "créé" if created else "retrouvé",
            room_id,
            ctx.event_id,
            f" confié à {owner}" if handed else "",
        )
        for listener in hooks.created:
            await listener(PatientRoomCreated(room_id, pseudonym, label, ctx.sender, handed))
        link = room_link(room_id, server_name)
        plain = f"Salon patient « {label} » créé ({pseudonym}) : {link}\nVous y êtes invité(e) comme administrateur."
        body = (
            f'Salon patient <a href="{html.escape(link)}">« {html.escape(label)} »</a> créé '
            f"(<code>{pseudonym}</code>). Vous y êtes invité(e) comme administrateur."
        )
        await ctx.reply(plain, body)

    @registry.command(
        "inviter",
        aliases=("invite",),
        args=(Text("qui", max_length=200, label="la personne à inviter"),),
        help="invite un professionnel dans ce salon patient et son cercle de soins, avec "
        "l'historique : @nom:serveur, nom d'utilisateur, nom affiché exact, ou le résultat n "
        "de votre dernier !trouver",
        where=Where.PATIENT_ROOM,
        power=Power.ADMIN,
    )
    async def inviter(ctx: CommandContext, qui: str) -> None:
        def numbered(word: str) -> str:
            if directory_results is None:
                raise UserError("L'annuaire n'est pas disponible : indiquez l'identifiant.")
            return result_user(directory_results, ctx.room_id, ctx.sender, word, registry.prefix)

        user = await resolve_invitee(
            read_invitee(qui),
            server_name=server_name,
            exists=io.user_exists,
            search=io.search_users,
            numbered=numbered,
        )
        room = client.rooms.get(ctx.room_id)
        if room is not None and user in room.users:
            state = "déjà invité(e)" if user in room.invited_users else "déjà membre"
            raise UserError(f"{user} est {state} de ce salon.")
        welcome = await arrivals.bring_in(ctx.room_id, user, actor=ctx.sender, origin=ctx.event_id)
        extra = f"\n{welcome.circle_note}" if welcome.circle_note else ""
        # names, not ids: what a nurse reads (and what the PDF transcript prints)
        invitee = await _display_name(client, user)
        inviter = member_name(client, ctx.room_id, ctx.sender)
        plain = (
            f"{invitee} a été invité(e) dans ce salon par {inviter} (cercle de soins : "
            f"intervenant). Historique : {welcome.way}.{extra}"
        )
        body = (
            f"{mention_html(user, invitee)} a été invité(e) dans ce salon par "
            f"{mention_html(ctx.sender, inviter)} (cercle de soins : intervenant).<br>"
            f"Historique : {html.escape(welcome.way)}.{html.escape(extra).replace(chr(10), '<br>')}"
        )
        await ctx.reply(plain, body, mentions=[user])

    @registry.command(
        "historique",
        aliases=("history",),
        help="vous envoie, en conversation directe, l'historique de ce salon en PDF "
        "(si votre application ne peut pas le déchiffrer ; une fois par salon)",
        where=Where.PATIENT_ROOM,
    )
    async def historique(ctx: CommandContext) -> None:
        reason = "à sa demande"
        if await arrivals.fallback.send_transcript_once(ctx.room_id, ctx.sender, reason):
            return  # the notice of the transcript answers
        arrival = arrivals.store.get(ctx.room_id, ctx.sender)
        if arrival is not None and arrival.transcript_at_ms is not None:
            raise UserError(
                "L'historique de ce salon vous a déjà été envoyé en PDF dans votre conversation "
                "directe avec le bot."
            )
        raise UserError("La transcription n'a pas pu être envoyée ; réessayez dans un instant.")


async def _display_name(client: AsyncClient, user_id: str) -> str:
    """The Matrix profile's display name, or the id when there is none."""
    response = await client.get_displayname(user_id)
    name = getattr(response, "displayname", None)
    return name if isinstance(name, str) and name.strip() else user_id
