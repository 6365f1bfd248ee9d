"""Pure parsing of `!tache` and French dates."""

from __future__ import annotations

from datetime import date

import pytest

from bots.dossier_link.parsing import ParseProblem, parse_day, parse_task, task_order_key

TODAY = date(2026, 11, 25)  # a Wednesday


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("aujourd'hui", TODAY),
        ("demain", date(2026, 11, 26)),
        ("vendredi", date(2026, 11, 27)),
        ("mercredi", date(2026, 12, 2)),  # the same weekday means next week
        ("1/12", date(2026, 12, 1)),
        ("01/12/2026", date(2026, 12, 1)),
        ("1/12/27", date(2027, 12, 1)),
        ("2026-12-24", date(2026, 12, 24)),
    ],
)
def test_days(word: str, expected: date) -> None:
    assert parse_day(word, TODAY) == expected


@pytest.mark.parametrize("word", ["31/02/2026", "bientôt", "12-2026"])
def test_bad_days(word: str) -> None:
    with pytest.raises(ParseProblem):
        parse_day(word, TODAY)


def test_task_with_assignees_and_due_in_either_order() -> None:
    a = parse_task("Renouveler l'ordonnance pour @gp:x, @ide:x échéance vendredi", TODAY)
    b = parse_task("Renouveler l'ordonnance échéance vendredi pour @gp:x et @ide:x", TODAY)
    assert a == b
    assert a.label == "Renouveler l'ordonnance"
    assert a.assignees == ("@gp:x", "@ide:x")
    assert a.due == date(2026, 11, 27)


def test_task_plain_label_keeps_words_like_pour() -> None:
    task = parse_task("Appeler pour le bilan", TODAY)
    assert task.label == "Appeler pour le bilan" and task.assignees == () and task.due is None


def test_task_refusals() -> None:
    with pytest.raises(ParseProblem, match="libellé"):
        parse_task("pour @gp:x", TODAY)
    with pytest.raises(ParseProblem, match="passée"):
        parse_task("Bilan échéance 01/01/2026", TODAY)
    with pytest.raises(ParseProblem, match="trop long"):
        parse_task("x" * 501, TODAY)


def test_task_numbering_order() -> None:
    tasks = [
        {"id": "c", "due_date": None, "created_at": "2026-11-01"},
        {"id": "b", "due_date": "2026-12-01", "created_at": "2026-11-03"},
        {"id": "a", "due_date": "2026-11-28", "created_at": "2026-11-05"},
    ]
    assert [t["id"] for t in sorted(tasks, key=task_order_key)] == ["a", "b", "c"]
