"""Patient rooms: !patient nouveau <libellé> and !inviter @user:server.

A patient room is encrypted, invite-only, ``history_visibility: shared``; its
``fr.cercle.patient`` state holds only a generated pseudonymous id (the identity belongs to
the dossier and to encrypted messages); the requester and the bot are admins (100); it is
named after the label the professional chose.

Extension point (issue 6, dossier sync): ``PatientHooks.created`` listeners are awaited
after a room is created (e.g. ask the dossier service to open the file).
"""

from __future__ import annotations

import html
import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nio import AsyncClient

from bots.commands.directory import LastResults, UserOrResult, result_user
from bots.commands.patient_label import confirmed_label
from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    MatrixUser,
    Power,
    Text,
    UserError,
    Where,
)
from bots.matrix.io import MatrixIO, MatrixRequestError, mention_html, room_link
from bots.matrix.room_once import create_room_once
from bots.matrix.room_state import FLAGS_STATE, PATIENT_STATE

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


@dataclass
class PatientHooks:
    created: list[Callable[[PatientRoomCreated], Awaitable[None]]] = field(default_factory=list)


def patient_room_request(
    *, label: str, pseudonym: str, requester: str, bot_user_id: str
) -> dict[str, object]:
    """Pure: the arguments of the room creation."""
    return {
        "name": label,
        "invite": [requester],
        "initial_state": [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            },
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "shared"},
            },
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


def _share_history_hook() -> Callable[..., Awaitable[None]] | None:
    """The crypto engineer's MSC4268 bundle sender, when that module provides one."""
    try:
        module = importlib.import_module("bots.matrix.history")
    except ImportError:
        return None
    return getattr(module, "share_history_bundle", None)


def register(
    registry: CommandRegistry,
    *,
    client: AsyncClient,
    io: MatrixIO,
    server_name: str,
    label_max_length: int,
    hooks: PatientHooks,
    patient_rooms: dict[str, dict[str, object]],
    directory_results: LastResults | None = None,
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
        # once per command, even replayed after a crash (bots.matrix.room_once)
        room_id, created = await create_room_once(
            client, io, f"patient-nouveau|{ctx.event_id}",
            patient_room_request(
                label=label, pseudonym=pseudonym, requester=ctx.sender, bot_user_id=client.user_id
            ),
        )  # fmt: skip
        if not created:  # made by the first attempt: its pseudonym is in its state
            made = await io.get_state(room_id, PATIENT_STATE) or {}
            pseudonym = str(made.get("id") or pseudonym)
        patient_rooms[room_id] = {"id": pseudonym, "version": 1}
        log.info("salon patient %s room=%s pour event=%s",
                 "créé" if created else "retrouvé", room_id, ctx.event_id)  # fmt: skip
        for listener in hooks.created:
            await listener(PatientRoomCreated(room_id, pseudonym, label, ctx.sender))
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
        args=(
            UserOrResult("utilisateur")
            if directory_results is not None
            else MatrixUser("utilisateur"),
        ),
        help="invite un professionnel dans ce salon patient (avec l'historique partagé) ; "
        "ou le résultat n de votre dernier !trouver",
        where=Where.PATIENT_ROOM,
        power=Power.ADMIN,
    )
    async def inviter(ctx: CommandContext, utilisateur: str | int) -> None:
        if isinstance(utilisateur, int):
            assert directory_results is not None
            utilisateur = result_user(
                directory_results, ctx.room_id, ctx.sender, str(utilisateur), registry.prefix
            )
        room = client.rooms.get(ctx.room_id)
        if room is not None and utilisateur in room.users:
            state = "déjà invité(e)" if utilisateur in room.invited_users else "déjà membre"
            raise UserError(f"{utilisateur} est {state} de ce salon.")
        if not await io.user_exists(utilisateur):
            raise UserError(f"Impossible d'inviter {utilisateur} : compte introuvable.")
        share = _share_history_hook()
        if share is not None:
            try:
                await share(client, ctx.room_id, utilisateur)
            except Exception:
                log.warning("historique non partagé room=%s", ctx.room_id, exc_info=True)
        try:
            await io.invite(ctx.room_id, utilisateur)
        except MatrixRequestError as exc:
            if exc.errcode in ("M_NOT_FOUND", "M_UNKNOWN", "M_BAD_STATE") or exc.status == 404:
                raise UserError(
                    f"Impossible d'inviter {utilisateur} : compte introuvable."
                ) from None
            if exc.errcode == "M_FORBIDDEN":
                raise UserError(
                    f"L'invitation de {utilisateur} a été refusée par le serveur."
                ) from None
            raise
        # names, not ids: what a nurse reads (and what the PDF transcript prints)
        invitee = await _display_name(client, utilisateur)
        inviter = (room.user_name(ctx.sender) if room else None) or ctx.sender
        plain = f"{invitee} a été invité(e) dans ce salon par {inviter}."
        body = (
            f"{mention_html(utilisateur, invitee)} a été invité(e) dans ce salon par "
            f"{mention_html(ctx.sender, inviter)}."
        )
        await ctx.reply(plain, body, mentions=[utilisateur])


async def _display_name(client: AsyncClient, user_id: str) -> str:
    """The Matrix profile's display name, or the id when there is none."""
    response = await client.get_displayname(user_id)
    name = getattr(response, "displayname", None)
    return name if isinstance(name, str) and name.strip() else user_id
