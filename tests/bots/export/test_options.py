from datetime import UTC, datetime

import pytest

from bots.export.options import ExportOptionError, ExportOptions, parse_export_options

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 16:00 in Paris


def parse(text: str) -> ExportOptions:
    return parse_export_options(text, now=NOW)


def test_no_option_exports_everything() -> None:
    assert parse("") == ExportOptions()
    assert parse("").period_label() == "tout l'historique"


def test_since_a_day_starts_at_paris_midnight() -> None:
    options = parse("depuis 25/11/2026")
    assert options.since == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert options.until is None


def test_until_a_day_includes_the_whole_day() -> None:
    options = parse("jusqu'à 24/11/2026")
    assert options.until == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert options.period_label() == "jusqu'au 24/11/2026"


def test_date_and_time_and_range_label() -> None:
    options = parse("depuis 20/11/2026 14:30 jusqu’à 24/11/2026 08:15")
    assert options.since == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    assert options.until == datetime(2026, 11, 24, 7, 16, tzinfo=UTC)
    assert options.period_label() == "du 20/11/2026 14:30 au 24/11/2026 08:15"


def test_summer_time_is_respected() -> None:
    options = parse("depuis 01/07/2026 10:00")
    assert options.since == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("word", ["hier", "yesterday"])
def test_yesterday(word: str) -> None:
    options = parse(f"depuis {word}")
    assert options.since == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def test_today_and_english_aliases() -> None:
    options = parse("since today without attachments last 20 private")
    assert options.since == datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    assert options.with_attachments is False
    assert options.last == 20
    assert options.private is True


def test_french_flags() -> None:
    options = parse("derniers 50 sans pièces jointes en privé jusqua aujourd'hui")
    assert (options.last, options.with_attachments, options.private) == (50, False, True)
    assert options.until == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert options.period_label() == "50 derniers messages, jusqu'au 25/11/2026"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("depuis", "Il manque la date après « depuis »"),
        ("depuis demain", "Date invalide après « depuis » : « demain »"),
        ("depuis 31/02/2026", "La date « 31/02/2026 » n'existe pas"),
        ("depuis 25/11/2026 25:00", "Heure invalide : « 25:00 »"),
        ("depuis 24/11/2026 jusqu'à 20/11/2026", "La période est vide"),
        ("depuis 01/01/2030", "est dans le futur"),
        ("derniers", "Il manque le nombre après « derniers »"),
        ("derniers zéro", "« zéro » n'est pas un nombre de messages valide"),
        ("derniers 0", "« 0 » n'est pas un nombre de messages valide"),
        ("derniers 9999999", "Au plus 100000 messages"),
        ("tout", "Option inconnue : « tout »"),
        ("depuis hier depuis hier", "est donnée deux fois"),
    ],
)
def test_errors_are_precise_and_french(text: str, expected: str) -> None:
    with pytest.raises(ExportOptionError) as caught:
        parse(text)
    assert expected in caught.value.message


def test_unknown_option_reply_carries_usage() -> None:
    with pytest.raises(ExportOptionError) as caught:
        parse("pdf couleur")
    assert "Usage : !export" in caught.value.message
