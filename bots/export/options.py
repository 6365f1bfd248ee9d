"""Options of the `!export` command, parsed from French (and English aliases).

Pure: no I/O, the current time is passed in.  Dates are read in the Europe/Paris
time zone and returned as aware UTC datetimes; the period is half-open
``[since, until)``.

    depuis <date>           since <date>
    jusqu'à <date>          until <date>        (also « jusqua », « jusqu'a »)
    sans pièces jointes     without attachments
    derniers <N>            last <N>
    en privé                private

A date is ``JJ/MM/AAAA``, ``JJ/MM/AAAA HH:MM``, ``hier`` / ``yesterday`` or
``aujourd'hui`` / ``today``.  A day alone given to ``jusqu'à`` includes the whole day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from deployment.conventions import PARIS, ToldError
from dossier_service.bounded import OutOfRange, check_day

MAX_LAST = 100_000

USAGE = (
    "Usage : !export [depuis <date>] [jusqu'à <date>] [derniers <N>] "
    "[sans pièces jointes] [en privé] — une date s'écrit JJ/MM/AAAA, "
    "JJ/MM/AAAA HH:MM, « hier » ou « aujourd'hui ». "
    "En réponse à un message, !export exporte à partir de ce message."
)


class ExportOptionError(ToldError, ValueError):
    """A bad option: ``message`` is French, meant to be shown to the requester."""


@dataclass(frozen=True)
class ExportOptions:
    since: datetime | None = None  # aware UTC, inclusive
    until: datetime | None = None  # aware UTC, exclusive
    last: int | None = None
    with_attachments: bool = True
    private: bool = False

    def period_label(self, tz: ZoneInfo = PARIS) -> str:
        """The period in French: « du 25/11/2026 14:30 au 26/11/2026 », « tout l'historique »."""
        if self.since and self.until:
            label = f"du {_show(self.since, tz)} au {_show_end(self.until, tz)}"
        elif self.since:
            label = f"depuis le {_show(self.since, tz)}"
        elif self.until:
            label = f"jusqu'au {_show_end(self.until, tz)}"
        else:
            label = "tout l'historique"
        if self.last is not None:
            label = f"{self.last} derniers messages, {label}"
        return label


def _show(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    if local.hour == 0 and local.minute == 0:
        return local.strftime("%d/%m/%Y")
    return local.strftime("%d/%m/%Y %H:%M")


def _show_end(until: datetime, tz: ZoneInfo) -> str:
    """An exclusive end: midnight means « the whole previous day », else the minute before."""
    local = until.astimezone(tz)
    if local.hour == 0 and local.minute == 0:
        return (local - timedelta(days=1)).strftime("%d/%m/%Y")
    return (local - timedelta(minutes=1)).strftime("%d/%m/%Y %H:%M")


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "ʼ": "'"})
_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_CLOCK = re.compile(r"^(\d{1,2})[:h](\d{2})$")

_SINCE = {"depuis", "since", "from", "du", "à partir de", "a partir de"}
_UNTIL = {"jusqu'à", "jusqu'a", "jusqua", "jusquà", "until", "to", "au"}
_TODAY = {"aujourd'hui", "aujourdhui", "today"}
_YESTERDAY = {"hier", "yesterday"}
_WITHOUT_FILES = (
    ("sans", "pièces", "jointes"),
    ("sans", "pieces", "jointes"),
    ("without", "attachments"),
    ("sans", "pj"),
    ("no", "attachments"),
)
_LAST = {"derniers", "dernier", "last"}
_PRIVATE = (("en", "privé"), ("en", "prive"), ("private",), ("privé",), ("prive",))


def parse_export_options(text: str, *, now: datetime, tz: ZoneInfo = PARIS) -> ExportOptions:
    """Parse the arguments after ``!export``; raise ExportOptionError in French."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    words = text.translate(_APOSTROPHES).lower().split()
    words = _merge_multiword(words)
    since: datetime | None = None
    until: datetime | None = None
    last: int | None = None
    with_attachments = True
    private = False
    i = 0
    while i < len(words):
        word = words[i]
        phrase = _match_phrase(words, i, _WITHOUT_FILES)
        if phrase:
            with_attachments = False
            i += phrase
            continue
        phrase = _match_phrase(words, i, _PRIVATE)
        if phrase:
            private = True
            i += phrase
            continue
        if word in _SINCE or word in _UNTIL:
            is_since = word in _SINCE
            if (since if is_since else until) is not None:
                raise ExportOptionError(f"L'option « {word} » est donnée deux fois. {USAGE}")
            moment, used = _parse_moment(words, i + 1, word, now, tz, end_of_day=not is_since)
            if is_since:
                since = moment
            else:
                until = moment
            i += 1 + used
            continue
        if word in _LAST:
            if i + 1 >= len(words):
                raise ExportOptionError(f"Il manque le nombre après « {word} ». {USAGE}")
            count = words[i + 1]
            if not count.isdigit() or int(count) < 1:
                raise ExportOptionError(
                    f"« {count} » n'est pas un nombre de messages valide (entier ≥ 1). {USAGE}"
                )
            if int(count) > MAX_LAST:
                raise ExportOptionError(
                    f"Au plus {MAX_LAST} messages avec « {word} » (demandé : {count})."
                )
            last = int(count)
            i += 2
            continue
        raise ExportOptionError(f"Option inconnue : « {word} ». {USAGE}")
    if since is not None and until is not None and since >= until:
        raise ExportOptionError(
            f"La période est vide : le début ({_show(since, tz)}) n'est pas avant "
            f"la fin ({_show_end(until, tz)})."
        )
    if since is not None and since > now:
        raise ExportOptionError(f"La date de début ({_show(since, tz)}) est dans le futur.")
    return ExportOptions(since, until, last, with_attachments, private)


def _merge_multiword(words: list[str]) -> list[str]:
    """Join « jusqu ' à », « à partir de » and « aujourd ' hui » typed with spaces."""
    merged: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in ("à", "a") and words[i + 1 : i + 3] == ["partir", "de"]:
            merged.append("à partir de")
            i += 3
            continue
        if words[i] in ("jusqu'", "jusqu") and i + 1 < len(words) and words[i + 1] in ("à", "a"):
            merged.append("jusqu'à")
            i += 2
            continue
        merged.append(words[i])
        i += 1
    return merged


def _match_phrase(words: list[str], i: int, phrases: tuple[tuple[str, ...], ...]) -> int:
    for phrase in phrases:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def _parse_moment(
    words: list[str], i: int, option: str, now: datetime, tz: ZoneInfo, *, end_of_day: bool
) -> tuple[datetime, int]:
    """Read a date (and optional time) at words[i]; return (UTC moment, words used)."""
    if i >= len(words):
        raise ExportOptionError(f"Il manque la date après « {option} ». {USAGE}")
    word = words[i]
    today = now.astimezone(tz).date()
    day: date
    if word in _TODAY:
        day = today
    elif word in _YESTERDAY:
        day = today - timedelta(days=1)
    else:
        match = _DAY.match(word)
        if not match:
            raise ExportOptionError(
                f"Date invalide après « {option} » : « {word} ». Formats acceptés : "
                "JJ/MM/AAAA, JJ/MM/AAAA HH:MM, « hier », « aujourd'hui »."
            )
        d, m, y = (int(g) for g in match.groups())
        try:
            day = check_day(date(y, m, d))  # the one bound of every date received
        except OutOfRange as exc:
            raise ExportOptionError(f"La date « {word} » est hors limites ({exc}).") from None
        except ValueError:
            raise ExportOptionError(
                f"La date « {word} » n'existe pas (jour ou mois hors limites)."
            ) from None
    used = 1
    clock: time | None = None
    if i + 1 < len(words):
        match = _CLOCK.match(words[i + 1])
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            if hours > 23 or minutes > 59:
                raise ExportOptionError(f"Heure invalide : « {words[i + 1]} » (HH:MM attendu).")
            clock = time(hours, minutes)
            used = 2
    if clock is None:
        start = _local(day, time(0, 0), tz)
        moment = _local(day + timedelta(days=1), time(0, 0), tz) if end_of_day else start
    else:
        start = _local(day, clock, tz)
        moment = start + timedelta(minutes=1) if end_of_day else start
    return moment.astimezone(UTC), used


def _local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz)
