"""Pure parsing of the dossier commands' free text (French dates, `pour @qui`, `échéance`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from deployment.conventions import MATRIX_USER_ID_TEXT as _USER
from dossier_service.bounded import OutOfRange, check_day

_DUE = re.compile(r"\s+(?:échéance|echeance|due|pour\s+le|avant\s+le)\s+(\S+)\s*$", re.I)
_FOR = re.compile(rf"\s+(?:pour|for)\s+((?:{_USER})(?:\s*,?\s*(?:et\s+)?{_USER})*)\s*$", re.I)
_USER_RE = re.compile(_USER)


class ParseProblem(ValueError):
    """French text for the person."""


def parse_day(word: str, today: date) -> date:
    """``25/11/2026``, ``25/11``, ``2026-11-25``, ``aujourd'hui``, ``demain``, ``lundi`` …"""
    w = word.strip().lower().rstrip(".,;")
    if w in ("aujourd'hui", "aujourd’hui", "today"):
        return today
    if w in ("demain", "tomorrow"):
        return today + timedelta(days=1)
    if w in ("après-demain", "apres-demain"):
        return today + timedelta(days=2)
    days = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
    if w in days:
        ahead = (days.index(w) - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?", w)
    try:
        if m:
            year = int(m.group(3)) if m.group(3) else today.year
            if year < 100:
                year += 2000
            return check_day(date(year, int(m.group(2)), int(m.group(1))))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", w):
            return check_day(date.fromisoformat(w))
    except OutOfRange as exc:
        raise ParseProblem(f"Date invalide : « {word[:30]} » ({exc}).") from None
    except ValueError:
        raise ParseProblem(f"Date invalide : « {word[:30]} ».") from None
    raise ParseProblem(
        f"Date non comprise : « {word[:30]} » (exemples : 25/11/2026, demain, vendredi)."
    )


@dataclass(frozen=True)
class TaskRequest:
    label: str
    assignees: tuple[str, ...]
    due: date | None


def parse_task(text: str, today: date) -> TaskRequest:
    """``<libellé> [pour @qui[, @autre]] [échéance <date>]`` (the two tails in either order)."""
    rest = " " + text.strip()
    due: date | None = None
    assignees: tuple[str, ...] = ()
    for _ in range(2):
        m = _DUE.search(rest)
        if m and due is None:
            strict = m.group(0).split()[0].lower() in ("échéance", "echeance", "due")
            try:
                due = parse_day(m.group(1), today)
            except ParseProblem:
                if strict:
                    raise
            else:
                rest = rest[: m.start()]
                continue
        m = _FOR.search(rest)
        if m and not assignees:
            assignees = tuple(dict.fromkeys(_USER_RE.findall(m.group(1))))
            rest = rest[: m.start()]
            continue
        break
    label = rest.strip()
    if not label:
        raise ParseProblem("Il manque le libellé de la tâche.")
    if len(label) > 500:
        raise ParseProblem(f"Le libellé est trop long : {len(label)} caractères (maximum 500).")
    if due is not None and due < today:
        raise ParseProblem("L'échéance est déjà passée.")
    return TaskRequest(label, assignees, due)


def task_order_key(task: dict[str, object]) -> tuple[str, str, str]:
    """How `!taches` numbers the open tasks: by due date (none last), then creation."""
    due = task.get("due_date")
    return (
        str(due) if due else "9999-99-99",
        str(task.get("created_at") or ""),
        str(task.get("id")),
    )
