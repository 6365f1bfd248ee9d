"""Property-based tests (hypothesis) of the bot's command parsing and of the RPPS extract's
line parser: any unicode text of any length gets exactly one reply (a command) or none (not
a command), never an exception; bad dates are French errors (issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bots.commands import dossier as dossier_commands
from bots.commands import export as export_commands
from bots.commands import flags as flag_commands
from bots.commands import help as help_commands
from bots.commands import patients as patient_commands
from bots.commands.registry import CommandContext, CommandRegistry, PowerLevels, RoomFacts
from bots.dossier_link.parsing import ParseProblem, parse_task
from bots.export.options import ExportOptionError, parse_export_options
from dossier_service.directory.rpps_format import OPTIONAL, REQUIRED, Layout, LineError

PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _declared_commands() -> CommandRegistry:
    """Every command family the bot declares (their handlers are never called here)."""
    declared = CommandRegistry("!", PowerLevels(flag=0, admin=50))
    nothing: Any = None
    patient_commands.register(
        declared,
        client=nothing,
        io=nothing,
        server_name="cercle.test",
        label_max_length=80,
        hooks=nothing,
        patient_rooms={},
        arrivals=nothing,
    )
    flag_commands.register(declared, nothing, motif_max_length=200)
    export_commands.register(declared, nothing)
    dossier_commands.register(
        declared,
        client=nothing,
        links=nothing,
        worker=nothing,
        roles=nothing,
        arrivals=nothing,
        dossier=nothing,
        homeserver_url="http://127.0.0.1:9",
    )
    help_commands.register(declared)
    return declared


class Replies:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Sequence[str] = ()
    ) -> str | None:
        self.sent.append(plain)
        return "$reply"


def _registry() -> CommandRegistry:
    """The bot's declarations, each handler answering once (what is tested is the parsing,
    the usage errors and the access rules in front of the handlers)."""

    async def answer(ctx: CommandContext, **values: Any) -> None:
        await ctx.reply("ok")

    registry = CommandRegistry("!", PowerLevels(flag=0, admin=50))
    for command in _declared_commands().commands:
        registry.add(replace(command, handler=answer))
    return registry


REGISTRY = _registry()
WORDS = sorted({w for c in REGISTRY.commands for w in (c.name, *c.aliases)})
FACTS = st.builds(
    RoomFacts,
    sender_is_member=st.booleans(),
    sender_power_level=st.integers(-10, 200),
    is_direct=st.booleans(),
    is_patient_room=st.booleans(),
)
TEXTS = st.one_of(
    st.text(max_size=3000),
    st.builds(lambda w, rest: f"!{w} {rest}", st.sampled_from(WORDS), st.text(max_size=9000)),
    st.builds(lambda w, rest: f"  !{w.upper()}{rest}", st.sampled_from(WORDS), st.text()),
    st.builds(lambda rest: "!" + rest, st.text(max_size=500)),
)


@PROPERTY
@given(text=TEXTS, facts=FACTS)
def test_any_text_gets_one_reply_or_none_and_never_an_exception(
    text: str, facts: RoomFacts
) -> None:
    replies = Replies()
    ctx = CommandContext(
        room_id="!r:cercle.test",
        sender="@a:cercle.test",
        event_id="$e",
        facts=facts,
        replier=replies,
    )
    handled = asyncio.run(REGISTRY.execute(text, ctx))
    assert len(replies.sent) == (1 if handled else 0), (text[:80], replies.sent)
    if handled:
        assert replies.sent[0].strip()
        assert "Traceback" not in replies.sent[0]


@PROPERTY
@given(text=st.text(max_size=800), today=st.dates(date(1950, 1, 1), date(2150, 1, 1)))
def test_task_text_parses_or_is_a_french_problem(text: str, today: date) -> None:
    try:
        request = parse_task(text, today)
    except ParseProblem as exc:
        assert str(exc)
        return
    assert request.due is None or date(1900, 1, 1) <= request.due <= date(2199, 12, 31)


@PROPERTY
@given(word=st.from_regex(r"\A\d{1,2}/\d{1,2}/\d{1,4}\Z|\A\d{4}-\d{2}-\d{2}\Z"))
def test_task_due_dates_are_bounded_or_refused(word: str) -> None:
    try:
        request = parse_task(f"Pansement échéance {word}", date(2026, 12, 2))
    except ParseProblem:
        return
    assert request.due is not None and 1900 <= request.due.year <= 2199


@PROPERTY
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda w, d: f"{w} {d}",
            st.sampled_from(["depuis", "jusqu'à", "jusqu'au"]),
            st.from_regex(r"\A\d{1,2}/\d{1,2}/\d{4}( \d{1,2}:\d{2})?\Z"),
        ),
    )
)
@example(text="jusqu'à 31/12/9999")
def test_export_options_parse_or_are_a_french_error(text: str) -> None:
    try:
        parse_export_options(text, now=datetime(2026, 12, 2, 9, tzinfo=UTC))
    except ExportOptionError as exc:
        assert exc.message


HEADER = "|".join((*REQUIRED, *OPTIONAL)) + "|"
LAYOUT = Layout(HEADER)
FIELD = st.text(st.characters(blacklist_characters="|\r\n"), max_size=60)


@PROPERTY
@given(
    line=st.one_of(
        st.text(max_size=2000),
        st.lists(FIELD, min_size=LAYOUT.width, max_size=LAYOUT.width).map(
            lambda f: "|".join(f) + "|"
        ),
        st.lists(FIELD, min_size=0, max_size=LAYOUT.width + 3).map("|".join),
    )
)
def test_rpps_lines_parse_or_are_a_line_error(line: str) -> None:
    try:
        person = LAYOUT.parse(line)
    except LineError as exc:
        assert str(exc)
        return
    assert person.national_id.strip() and person.last_name.strip()
