"""A declarative command registry: commands are declared with their names, typed arguments,
help text and who may run them; parsing, help and error replies come from the declaration.

The registry is an object built by the application (never a module global); each command
family registers onto it. Parsing is pure (``CommandRegistry.parse``) and tested without
Matrix; ``CommandRegistry.execute`` applies the access rules and turns failures into the
three kinds of reply: a user error (its French text), a usage error (the precise problem
and the usage line), anything else ("Erreur interne (réf. XXXX)", traceback logged).
"""

from __future__ import annotations

import enum
import html
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deployment.conventions import MATRIX_USER_ID, ToldError
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

_COMMAND_WORD = re.compile(r"^[^\W\d_]{2,}$")


class UserError(ToldError):
    """An expected refusal, replied as is (French)."""

    def __init__(self, message: str, html_message: str | None = None) -> None:
        super().__init__(message)
        self.html_message = html_message


class UsageError(ToldError):
    """Bad arguments: the reply is this precise message followed by the usage line."""


# --- typed arguments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    name: str
    optional: bool = False

    def usage(self) -> str:
        return f"[{self.name}]" if self.optional else f"<{self.name}>"

    def take(self, rest: str) -> tuple[Any, str]:
        """Consume this argument from the front of ``rest``; return (value, remaining)."""
        raise NotImplementedError


def _split_first(rest: str) -> tuple[str, str]:
    parts = rest.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


@dataclass(frozen=True)
class Text(Argument):
    """The rest of the line, whitespace collapsed at both ends."""

    max_length: int = 500
    label: str = "le texte"

    def take(self, rest: str) -> tuple[Any, str]:
        value = rest.strip()
        if not value:
            if self.optional:
                return None, ""
            raise UsageError(f"Il manque {self.label}.")
        if len(value) > self.max_length:
            raise UsageError(
                f"{self.label[0].upper()}{self.label[1:]} est trop long : {len(value)} "
                f"caractères (maximum {self.max_length})."
            )
        return value, ""


@dataclass(frozen=True)
class MatrixUser(Argument):
    """A Matrix user id ``@name:server``. Optional: only taken when the word starts with @."""

    def usage(self) -> str:
        return f"[@{self.name}]" if self.optional else f"<@{self.name}>"

    def take(self, rest: str) -> tuple[Any, str]:
        word, remaining = _split_first(rest)
        if not word or (self.optional and not word.startswith("@")):
            if self.optional:
                return None, rest
            raise UsageError("Il manque l'identifiant de la personne (forme @nom:serveur).")
        if not MATRIX_USER_ID.match(word):
            raise UsageError(
                f"« {word[:60]} » n'est pas un identifiant Matrix valide (forme attendue : "
                "@nom:serveur)."
            )
        return word, remaining


@dataclass(frozen=True)
class Choice(Argument):
    """One word among a fixed set; ``choices`` maps every accepted word to its value."""

    choices: Mapping[str, str] = field(default_factory=dict)

    def take(self, rest: str) -> tuple[Any, str]:
        word, remaining = _split_first(rest)
        if not word:
            if self.optional:
                return None, rest
            raise UsageError(f"Il manque {self.name} ({self.expected()}).")
        value = self.choices.get(word.lower())
        if value is None:
            raise UsageError(f"« {word[:60]} » : valeur inconnue ; attendu : {self.expected()}.")
        return value, remaining

    def expected(self) -> str:
        names = sorted(set(self.choices.values()))
        return ", ".join(names[:-1]) + " ou " + names[-1] if len(names) > 1 else names[0]


# --- who may run a command -------------------------------------------------------------


class Where(enum.Enum):
    ANYWHERE = "anywhere"
    DIRECT = "direct"  # the direct chat with the bot
    SHARED_ROOM = "shared_room"  # any room but the direct chat (flags)
    PATIENT_ROOM = "patient_room"


class Power(enum.Enum):
    MEMBER = "member"
    FLAG = "flag"  # config: flag_power_level
    ADMIN = "admin"  # config: admin_power_level


@dataclass(frozen=True)
class RoomFacts:
    """What the access rules need to know about the room and the sender (gathered by I/O)."""

    sender_is_member: bool
    sender_power_level: int
    is_direct: bool
    is_patient_room: bool


@dataclass(frozen=True)
class PowerLevels:
    flag: int
    admin: int


def access_refusal(where: Where, power: Power, facts: RoomFacts, levels: PowerLevels) -> str | None:
    """Pure: the French refusal for this sender in this room, or None when allowed."""
    if not facts.sender_is_member:
        return "Commande réservée aux membres de ce salon."
    if where is Where.DIRECT and not facts.is_direct:
        return "Cette commande s'utilise dans votre conversation directe avec le bot."
    if where is Where.SHARED_ROOM and facts.is_direct:
        return "Cette commande s'utilise dans le salon concerné, pas dans la conversation directe."
    if where is Where.PATIENT_ROOM and not facts.is_patient_room:
        return "Cette commande s'utilise dans un salon patient."
    needed = {Power.MEMBER: None, Power.FLAG: levels.flag, Power.ADMIN: levels.admin}[power]
    if needed is not None and facts.sender_power_level < needed:
        return f"Droits insuffisants : niveau {needed} requis dans ce salon."
    return None


# --- the registry ------------------------------------------------------------------------


class Replier(Protocol):
    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Sequence[str] = ()
    ) -> str | None: ...


@dataclass
class CommandContext:
    """One command being run: where, by whom, and how to answer."""

    room_id: str
    sender: str
    event_id: str
    facts: RoomFacts
    replier: Replier
    origin_server_ts: int = 0

    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Sequence[str] = ()
    ) -> str | None:
        return await self.replier.reply(plain, html_body, mentions)


Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str  # French, e.g. "patient"
    subcommand: str | None  # French, e.g. "nouveau"
    aliases: tuple[str, ...]  # names of the command (English first)
    sub_aliases: tuple[str, ...]
    args: tuple[Argument, ...]
    help: str
    where: Where
    power: Power
    handler: Handler

    def usage(self, prefix: str) -> str:
        words = [f"{prefix}{self.name}"]
        if self.subcommand:
            words.append(self.subcommand)
        words.extend(a.usage() for a in self.args)
        return " ".join(words)

    def english(self, prefix: str) -> str | None:
        if not self.aliases and not self.sub_aliases:
            return None
        words = [f"{prefix}{self.aliases[0] if self.aliases else self.name}"]
        if self.subcommand:
            words.append(self.sub_aliases[0] if self.sub_aliases else self.subcommand)
        return " ".join(words)


# told after a command succeeded: (ctx, command, its parsed values); a failure is logged
CommandObserver = Callable[[CommandContext, Command, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Parsed:
    command: Command
    values: dict[str, Any]


class CommandRegistry:
    def __init__(
        self, prefix: str, levels: PowerLevels, elsewhere: Mapping[str, str] | None = None
    ) -> None:
        self.prefix = prefix
        self.levels = levels
        # words that are another bot's commands: where to type them, instead of « inconnue »
        self.elsewhere: Mapping[str, str] = elsewhere or {}
        self._commands: list[Command] = []
        self._by_word: dict[str, list[Command]] = {}
        # issue 6 hook: awaited after a command succeeded, with (ctx, command, values)
        self.observers: list[CommandObserver] = []

    # -- declaration --
    def command(
        self,
        name: str,
        *,
        aliases: Sequence[str] = (),
        subcommand: str | None = None,
        sub_aliases: Sequence[str] = (),
        args: Sequence[Argument] = (),
        help: str,
        where: Where = Where.ANYWHERE,
        power: Power = Power.MEMBER,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(
                Command(
                    name=name,
                    subcommand=subcommand,
                    aliases=tuple(aliases),
                    sub_aliases=tuple(sub_aliases),
                    args=tuple(args),
                    help=help,
                    where=where,
                    power=power,
                    handler=handler,
                )
            )
            return handler

        return decorate

    def add(self, command: Command) -> None:
        for word in dict.fromkeys((command.name, *command.aliases)):
            existing = self._by_word.setdefault(word.lower(), [])
            for other in existing:
                if other.subcommand is None or command.subcommand is None:
                    raise ValueError(f"commande déjà déclarée : {word}")
                if {command.subcommand, *command.sub_aliases} & {
                    other.subcommand,
                    *other.sub_aliases,
                }:
                    raise ValueError(f"sous-commande déjà déclarée : {word}")
            existing.append(command)
        self._commands.append(command)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    # -- parsing (pure) --
    def is_command(self, text: str) -> bool:
        return text.lstrip().startswith(self.prefix)

    def parse(self, text: str) -> Parsed | None:
        """None when the first word is not a known command; UsageError on bad arguments."""
        text = text.strip()
        if not text.startswith(self.prefix):
            return None
        word, rest = _split_first(text)
        first = word[len(self.prefix) :]
        candidates = self._by_word.get(first.lower())
        if not first or not candidates:
            return None
        command = candidates[0]
        if command.subcommand is not None:
            word, after = _split_first(rest)
            for candidate in candidates:
                if word.lower() in {candidate.subcommand, *candidate.sub_aliases}:
                    command, rest = candidate, after
                    break
            else:
                lines = [c.usage(self.prefix) for c in candidates]
                raise SubcommandError(
                    "Sous-commande inconnue." if word else "Il manque la sous-commande.", lines
                )
        values: dict[str, Any] = {}
        remaining = rest
        for arg in command.args:
            try:
                values[arg.name], remaining = arg.take(remaining)
            except UsageError as exc:
                raise ParseError(command, exc.message) from None
        extra, _ = _split_first(remaining)
        if extra:
            raise ParseError(command, f"Argument en trop : « {extra[:60]} ».")
        return Parsed(command, values)

    def usage_reply(self, command: Command, message: str) -> tuple[str, str]:
        usage = command.usage(self.prefix)
        plain = f"{message}\nUsage : {usage}"
        return plain, f"{html.escape(message)}<br>Usage : <code>{html.escape(usage)}</code>"

    # -- help (generated) --
    def help_text(self, word: str | None = None) -> tuple[str, str]:
        if word:
            wanted = word.lower().removeprefix(self.prefix)
            found = self._by_word.get(wanted, [])
            if not found:
                msg = f"Commande inconnue : « {word[:40]} ». Tapez {self.prefix}aide pour la liste."
                return msg, html.escape(msg)
            commands = found
        else:
            commands = self._commands
        plain_lines = ["Commandes du bot Cercle :"] if not word else []
        html_lines = (
            ["<p><strong>Commandes du bot Cercle</strong></p><ul>"] if not word else ["<ul>"]
        )
        for c in commands:
            english = c.english(self.prefix)
            alias = f" (en anglais : {english})" if english else ""
            plain_lines.append(f"• {c.usage(self.prefix)} — {c.help}{alias}")
            html_lines.append(
                f"<li><code>{html.escape(c.usage(self.prefix))}</code> — {html.escape(c.help)}"
                + (f" <em>({html.escape('en anglais : ' + english)})</em>" if english else "")
                + "</li>"
            )
        html_lines.append("</ul>")
        return "\n".join(plain_lines), "".join(html_lines)

    # -- execution --
    async def execute(self, text: str, ctx: CommandContext) -> bool:
        """Run the command in ``text``. Returns False when the text is not a command at all."""
        if not self.is_command(text):
            return False
        try:
            parsed = self.parse(text)
        except ParseError as exc:
            plain, body = self.usage_reply(exc.command, exc.message)
            await ctx.reply(plain, body)
            return True
        except SubcommandError as exc:
            plain = exc.message + "\n" + "\n".join(f"Usage : {u}" for u in exc.usages)
            body = html.escape(exc.message) + "".join(
                f"<br>Usage : <code>{html.escape(u)}</code>" for u in exc.usages
            )
            await ctx.reply(plain, body)
            return True
        if parsed is None:
            word = _split_first(text)[0][len(self.prefix) :][:40]
            if not _COMMAND_WORD.match(word):
                return False  # "!!!", "!?" …: punctuation in a message, not a command
            msg = f"Commande inconnue : « {self.prefix}{word} ». Tapez {self.prefix}aide pour la liste."
            if word.lower() in self.elsewhere:
                msg = f"« {self.prefix}{word} » : {self.elsewhere[word.lower()]}"
            await ctx.reply(msg, html.escape(msg))
            return True
        refusal = access_refusal(parsed.command.where, parsed.command.power, ctx.facts, self.levels)
        if refusal:
            await ctx.reply(refusal, html.escape(refusal))
            return True
        try:
            await parsed.command.handler(ctx, **parsed.values)
            for observe in self.observers:
                try:
                    await observe(ctx, parsed.command, parsed.values)
                except Exception:
                    log.exception("observateur de commande en échec event=%s", ctx.event_id)
        except UserError as exc:
            await ctx.reply(exc.message, exc.html_message or html.escape(exc.message))
        except UsageError as exc:
            plain, body = self.usage_reply(parsed.command, exc.message)
            await ctx.reply(plain, body)
        except Exception:
            ref = new_reference()
            log.exception(
                "erreur interne réf=%s commande=%s event=%s room=%s",
                ref,
                parsed.command.usage(self.prefix).split()[0],
                ctx.event_id,
                ctx.room_id,
            )
            msg = f"Erreur interne (réf. {ref})."
            await ctx.reply(msg, html.escape(msg))
        return True


class ParseError(ToldError):
    def __init__(self, command: Command, message: str) -> None:
        super().__init__(message)
        self.command = command


class SubcommandError(ToldError):
    def __init__(self, message: str, usages: list[str]) -> None:
        super().__init__(message)
        self.usages = usages
