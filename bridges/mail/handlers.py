"""What the bridge does with the events its sync loop hands it.

- in its direct chat with a professional: ``!connecter`` (the command is redacted at once:
  it carries a password), ``!aide``;
- in a Courriers room, from its owner: a reply to a mail → the answer is mailed;
  ``!courrier`` → a new mail; ``!classer`` (as a reply to a mail) → filed in the dossier;
  a file → kept to be attached to the next mail.
Anyone else's messages in a Courriers room (there should be none) are ignored.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any

from nio import (
    AsyncClient,
    Event,
    JoinError,
    MatrixRoom,
    RoomMessage,
    RoomMessageText,
    RoomRedactResponse,
)

from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    PowerLevels,
    RoomFacts,
    Text,
    UserError,
)
from bots.dossier_client import DossierClient
from bots.handlers import _ReplyToCommand
from bots.matrix.io import MatrixIO, room_link, txn_for
from bots.outbox import Refused, Unavailable
from bridges.mail import compose_text
from bridges.mail.filing import Filing
from bridges.mail.message import parse_mail
from bridges.mail.outbound import (
    MailSender,
    OutgoingFile,
    SendRefused,
    SendUnavailable,
    compose,
    message_id_for,
    reply_subject,
)
from bridges.mail.render import sent_notice
from bridges.mail.store import BridgeStore, Mailbox

log = logging.getLogger(__name__)

DISCONNECTED = (
    "Votre boîte est déconnectée : reliez-la de nouveau (!connecter <adresse> <mot de passe>, "
    "ou la page Courriers du dossier)."
)

FileFetcher = Callable[[Mapping[str, Any]], Awaitable[bytes]]
MailFetcher = Callable[[Mailbox, str], Awaitable[bytes]]  # (mailbox, mail event) -> raw mail


@dataclass
class MailCommandContext(CommandContext):
    """A command with the message it came in (``!courrier`` reads the following lines)."""

    content: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BridgeHandlers:
    client: AsyncClient
    io: MatrixIO
    store: BridgeStore
    sender: MailSender
    _: KW_ONLY
    server_name: str
    connect_mailbox: Callable[[str, str, str], Awaitable[str]]
    fetch_mail: MailFetcher
    fetch_file: FileFetcher
    filing: Filing | None
    directory: DossierClient | None = None
    registry: CommandRegistry = field(init=False)
    _joining: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.registry = CommandRegistry("!", _levels())
        self._register()

    # -- commands --
    def _register(self) -> None:
        r = self.registry

        @r.command(
            "connecter",
            aliases=("connect",),
            args=(Text("adresse et mot de passe", label="l'adresse et le mot de passe"),),
            help="relie votre boîte de messagerie sécurisée (MSSanté) à un salon Courriers ; "
            "ici ou dans votre salon Courriers (pour changer de mot de passe)",
        )
        async def connect(ctx: MailCommandContext, **values: Any) -> None:
            courriers = self.store.mailbox_of_room(ctx.room_id)
            if not ctx.facts.is_direct and (courriers is None or courriers.owner != ctx.sender):
                raise UserError(
                    "Cette commande s'utilise dans votre conversation directe avec ce bot ou "
                    "dans votre salon Courriers."
                )
            erased = await self._redact(ctx)  # first: the password must not stay in the room
            address, password = compose_text.parse_connect(values["adresse et mot de passe"])
            room_id = await self.connect_mailbox(ctx.sender, address, password)
            link = room_link(room_id, self.server_name)
            note = (
                "votre message contenant le mot de passe a été effacé"
                if erased
                else "supprimez votre message contenant le mot de passe (menu du message → "
                "Supprimer) : le pont n'a pas le droit de l'effacer dans cette conversation"
            )
            await ctx.reply(
                f"Boîte {address} reliée. Vos courriers arrivent dans le salon Courriers : {link} "
                f"({note}).",
                f"Boîte {html.escape(address)} reliée. Vos courriers arrivent dans le salon "
                f'<a href="{html.escape(link)}">Courriers</a> ({html.escape(note)}).',
            )

        @r.command(
            "courrier",
            aliases=("mail",),
            args=(Text("à … objet …", label="le destinataire et l'objet", max_length=20_000),),
            help="écrit un courrier : « !courrier à <adresse> objet <objet> » puis le texte à "
            "la ligne (les fichiers envoyés avant dans le salon sont joints)",
        )
        async def new_mail(ctx: MailCommandContext, **values: Any) -> None:
            mailbox = self._own_mailbox(ctx)
            draft = compose_text.parse_compose(
                values["à … objet …"], str(ctx.content.get("body", ""))
            )
            if not draft.to:
                draft = dataclasses.replace(draft, to=(await self._from_directory(draft.to_words),))
            files = await self._room_files(mailbox, ctx.event_id)
            message = compose(
                sender=mailbox.address,
                to=draft.to,
                subject=draft.subject,
                text=draft.text,
                message_id=message_id_for(ctx.event_id, mailbox.address),
                date=_at(ctx.origin_server_ts),
                files=[f for _, f in files],
            )
            await self._send(ctx, mailbox, message)
            self.store.use_room_files([e for e, _ in files], ctx.event_id)

        @r.command(
            "classer",
            aliases=("file",),
            args=(
                Text(
                    "patient",
                    label="le patient (nom, libellé ou identifiant du dossier)",
                    optional=True,
                ),
            ),
            help="en réponse à un courrier : le classe avec ses pièces jointes dans le dossier "
            "du patient (catégorie « courrier » ou celle écrite à la fin)",
        )
        async def file_mail(ctx: MailCommandContext, **values: Any) -> None:
            mailbox = self._own_mailbox(ctx)
            if self.filing is None:
                raise UserError("Le classement est indisponible : aucun dossier n'est configuré.")
            mail_event = compose_text.replied_event(ctx.content)
            if mail_event is None or self.store.mail_of_event(mail_event) is None:
                raise UserError("Répondez au courrier à classer avec !classer <patient>.")
            raw = await self.fetch_mail(mailbox, mail_event)
            await self.filing.file(ctx, mailbox, parse_mail(raw), values.get("patient") or "")

        @r.command("aide", aliases=("help",), help="cette aide")
        async def help_(ctx: MailCommandContext, **_: Any) -> None:
            plain, body = self.registry.help_text()
            await ctx.reply(
                plain.replace("bot Cercle", "pont Courriers"),
                body.replace("bot Cercle", "pont Courriers"),
            )

    # -- the sync loop's interface --
    def wants(self, event: Event, room: MatrixRoom) -> bool:
        if event.sender == self.client.user_id:
            return False
        mailbox = self.store.mailbox_of_room(room.room_id)
        if mailbox is not None:
            return event.sender == mailbox.owner and isinstance(event, RoomMessage)
        if isinstance(event, RoomMessageText) and len(room.users) <= 2:
            # only its direct chats: in a shared room, "!urgent" is the coordination bot's
            return self.registry.is_command(str(event.source.get("content", {}).get("body", "")))
        return False

    def observe_state(self, room_id: str, event: Event) -> None:
        return None

    async def on_invite(self, room_id: str, inviter: str | None, *, direct: bool = False) -> None:
        """``direct`` (a direct chat) changes nothing here: the bridge greets in its own words."""
        if room_id in self._joining or room_id in self.client.rooms:
            return
        self._joining.add(room_id)
        if inviter is None or not inviter.endswith(f":{self.server_name}"):
            log.info("invitation ignorée room=%s (hors du serveur)", room_id)
            return
        resp = await self.client.join(room_id)
        if isinstance(resp, JoinError):
            log.warning("impossible de rejoindre room=%s (%s)", room_id, resp.status_code)
            self._joining.discard(room_id)

    async def handle(self, event: Event, room: MatrixRoom) -> None:
        content: Mapping[str, Any] = event.source.get("content", {})
        mailbox = self.store.mailbox_of_room(room.room_id)
        if mailbox is not None and not isinstance(event, RoomMessageText):
            if isinstance(content.get("file") or content.get("url"), Mapping | str):
                self.store.add_room_file(event.event_id, mailbox.owner, json.dumps(dict(content)))
                log.info("fichier gardé pour le prochain courrier event=%s", event.event_id)
            return
        ctx = MailCommandContext(
            room_id=room.room_id,
            sender=event.sender,
            event_id=event.event_id,
            facts=RoomFacts(
                sender_is_member=event.sender in room.users,
                sender_power_level=0,
                is_direct=mailbox is None and len(room.users) <= 2,
                is_patient_room=False,
            ),
            replier=_ReplyToCommand(self.io, room.room_id, event.event_id),
            origin_server_ts=event.server_timestamp,
            content=content,
        )
        text = compose_text.reply_text(content)
        if self.registry.is_command(text):
            await self.registry.execute(text, ctx)
            return
        replied = compose_text.replied_event(content)
        if mailbox is not None and replied is not None:
            try:
                await self._reply(ctx, mailbox, replied, text)
            except UserError as exc:  # a reply is not a command: the refusal is told the same
                await ctx.reply(exc.message, exc.html_message or html.escape(exc.message))

    # -- mail replies --
    async def _reply(
        self, ctx: MailCommandContext, mailbox: Mailbox, replied: str, text: str
    ) -> None:
        if self.store.outgoing(ctx.event_id) is None:  # first time: compose from the original
            if self.store.mail_of_event(replied) is None:
                return  # a reply to something else than a mail: a conversation, not a mail
            if not mailbox.connected:
                raise UserError(DISCONNECTED)
            if not text:
                return
            original = parse_mail(await self.fetch_mail(mailbox, replied))
            to = original.reply_to or original.sender_address
            message = compose(
                sender=mailbox.address,
                to=[to],
                subject=reply_subject(original.subject),
                text=text,
                message_id=message_id_for(ctx.event_id, mailbox.address),
                date=_at(ctx.origin_server_ts),
                in_reply_to=original.message_id,
                references=original.references,
            )
            await self._send(ctx, mailbox, message)
        else:  # a replay after a crash: the stored mail is carried on
            await self._send(ctx, mailbox, None)

    async def _send(self, ctx: MailCommandContext, mailbox: Mailbox, message: Any) -> None:
        try:
            carried = await self.sender.send(ctx.event_id, mailbox, message)
        except SendRefused as exc:
            raise UserError(f"Courrier non envoyé : {exc.message}.") from None
        except SendUnavailable:
            raise UserError(
                "Courrier non envoyé pour l'instant : le serveur d'envoi ne répond pas. "
                "Il sera envoyé automatiquement dès que possible."
            ) from None
        if carried is not None:  # None: sent before a restart, its notice already posted
            plain, body = sent_notice(*carried)
            await self.io.send_notice(
                ctx.room_id,
                plain,
                body,
                txn_id=txn_for(ctx.event_id, "sent"),
                reply_to=ctx.event_id,
            )

    # -- helpers --
    def _own_mailbox(self, ctx: CommandContext) -> Mailbox:
        mailbox = self.store.mailbox_of_room(ctx.room_id)
        if mailbox is None or mailbox.owner != ctx.sender:
            raise UserError("Cette commande s'utilise dans votre salon Courriers.")
        if not mailbox.connected:
            raise UserError(DISCONNECTED)
        return mailbox

    async def _room_files(self, mailbox: Mailbox, event_id: str) -> list[tuple[str, OutgoingFile]]:
        out = []
        for file_event, raw in self.store.pending_room_files(mailbox.owner, event_id):
            content = json.loads(raw)
            data = await self.fetch_file(content)
            info = content.get("info") if isinstance(content.get("info"), dict) else {}
            name = str(content.get("filename") or content.get("body") or "piece-jointe")
            out.append(
                (
                    file_event,
                    OutgoingFile(
                        name, str(info.get("mimetype") or "application/octet-stream"), data
                    ),
                )
            )
        return out

    async def _from_directory(self, words: str) -> str:
        if self.directory is None:
            raise UserError("Écrivez l'adresse du destinataire (l'annuaire n'est pas configuré).")
        try:
            body = await self.directory.request(
                "GET", "/annuaire", params={"q": words, "par_page": 5}
            )
        except (Unavailable, Refused):
            raise UserError(
                "L'annuaire ne répond pas : écrivez l'adresse du destinataire."
            ) from None
        results = body.get("resultats", []) if isinstance(body, Mapping) else []
        return compose_text.directory_choice(words, results)

    async def _redact(self, ctx: CommandContext) -> bool:
        resp = await self.client.room_redact(ctx.room_id, ctx.event_id, reason="mot de passe")
        if isinstance(resp, RoomRedactResponse):
            return True
        log.warning("effacement impossible event=%s", ctx.event_id)
        return False


def _levels() -> PowerLevels:
    return PowerLevels(flag=0, admin=0)  # the Courriers room has one professional in it


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else datetime.now(UTC)
