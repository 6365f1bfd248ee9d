from datetime import UTC, datetime, timedelta

import pytest

from bots.export.layout import Line, Spacer, Tone, TranscriptLayout
from bots.export.lines import EMOJI
from bots.export.parts import TranscriptPdf
from bots.export.transcript import Attachment, Entry, EntryKind, Quote
from bots.export.typefaces import FpdfFontMetrics

T0 = datetime(2026, 11, 25, 13, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def metrics() -> FpdfFontMetrics:
    return FpdfFontMetrics(TranscriptPdf("test"))


def entry(body: str = "", **kwargs) -> Entry:
    fields = dict(
        event_id="$1",
        sender="@alice:x",
        sender_name="Alice",
        timestamp=T0,
        kind=EntryKind.MESSAGE,
        body=body,
    )
    fields.update(kwargs)
    return Entry(**fields)


def lines_of(block) -> list[Line]:
    return [item for item in block.items if isinstance(item, Line)]


def texts(block) -> list[str]:
    return ["".join(run.text for run in line.runs) for line in lines_of(block)]


def test_header_shows_day_sender_time_in_paris(metrics) -> None:
    block = TranscriptLayout(metrics).layout(entry("Bonjour"))
    assert texts(block)[:3] == ["Mercredi 25 novembre 2026", "Alice 25/11/2026 14:05", "Bonjour"]


def test_day_separator_only_when_the_day_changes(metrics) -> None:
    layout = TranscriptLayout(metrics)
    layout.layout(entry("a"))
    assert texts(layout.layout(entry("b", timestamp=T0 + timedelta(hours=1))))[0].startswith(
        "Alice"
    )
    assert texts(layout.layout(entry("c", timestamp=T0 + timedelta(days=1))))[0] == (
        "Jeudi 26 novembre 2026"
    )


def test_lines_never_exceed_the_width(metrics) -> None:
    layout = TranscriptLayout(metrics)
    block = layout.layout(entry("infirmière " * 500 + "x" * 5000))
    for line in lines_of(block):
        for run in line.runs:
            end = run.x + layout.text_width(run.text, run.style, line.size)
            assert end <= layout.style.width + 0.01
    assert (
        "".join("".join(r.text for r in line.runs) for line in lines_of(block)).count("x") == 5000
    )


def test_edit_redaction_undecryptable_notice(metrics) -> None:
    layout = TranscriptLayout(metrics)
    assert "(modifié)" in texts(layout.layout(entry("v2", edited=True)))[1]
    assert texts(layout.layout(entry("", kind=EntryKind.REDACTED)))[-1] == "message supprimé"
    undecryptable = layout.layout(entry("", kind=EntryKind.UNDECRYPTABLE))
    assert texts(undecryptable)[-1] == "message non déchiffrable"
    assert lines_of(undecryptable)[-1].tone is Tone.ALERT
    notice = layout.layout(entry("Urgence levée", kind=EntryKind.NOTICE))
    assert all(line.tone is Tone.NOTICE for line in lines_of(notice))
    assert lines_of(notice)[-1].size < layout.style.body_size


def test_reply_quote_and_seen_by(metrics) -> None:
    block = TranscriptLayout(metrics).layout(
        entry(
            "> <@bob:x> question\n\nréponse",
            quote=Quote("Bob", "question"),
            seen_by=("Bob", "Chloé"),
        )
    )
    shown = texts(block)
    assert "En réponse à Bob : question" in shown
    assert "réponse" in shown
    assert shown[-1] == "Vu par Bob, Chloé"
    assert not any(line.startswith(">") for line in shown)


def test_emoji_drawn_by_the_emoji_typeface_placeholder_per_glyph_otherwise(metrics) -> None:
    layout = TranscriptLayout(metrics)
    assert layout.clean("ok 🧑‍⚕️ fin 👍🏽") == "ok 🧑⚕ fin 👍"  # joiners, tones dropped
    assert layout.clean("neuf 🫠 vieux 😀") == f"neuf {EMOJI} vieux 😀"  # 🫠: Unicode 14


def test_arabic_letters_are_joined(metrics) -> None:
    layout = TranscriptLayout(metrics)
    joined = layout.clean("مرحبا")  # isolated letters would be U+0645 …
    assert joined == "\ufee3\ufeae\ufea3\ufe92\ufe8e"  # initial, medial … final forms
    assert layout.clean("œ € Привет Ελληνικά") == "œ € Привет Ελληνικά"


def test_right_to_left_text_is_reordered(metrics) -> None:
    block = TranscriptLayout(metrics).layout(entry("שלום עולם"))
    assert texts(block)[-1] == "םלוע םולש"


def test_flag_event_is_one_italic_line(metrics) -> None:
    block = TranscriptLayout(metrics).layout(entry("Urgence signalée", kind=EntryKind.EVENT))
    shown = texts(block)
    assert shown[-1] == "14:05 — Alice : Urgence signalée"
    assert lines_of(block)[-1].tone is Tone.EVENT


def test_file_lines_and_digest_counts(metrics) -> None:
    layout = TranscriptLayout(metrics)
    attachment = Attachment("cr.pdf", "application/pdf", False, 2048, "ab" * 32)
    block = layout.layout(entry("cr.pdf", attachment=attachment))
    shown = texts(block)
    assert "Pièce jointe : cr.pdf — 2,0 Ko" in shown
    assert f"SHA-256 : {'ab' * 32}" in shown
    assert isinstance(block.items[-1], Spacer)
    assert (layout.digest.messages, layout.digest.attachments) == (1, 1)


def test_digest_depends_on_content(metrics) -> None:
    a, b = TranscriptLayout(metrics), TranscriptLayout(metrics)
    a.layout(entry("dose 5 mg"))
    b.layout(entry("dose 50 mg"))
    assert a.digest.hexdigest() != b.digest.hexdigest()


def test_embedded_files_have_a_total_budget(metrics, tmp_path) -> None:
    from bots.export.layout import LayoutStyle

    layout = TranscriptLayout(metrics, LayoutStyle(embed_budget_bytes=1000))
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    first = layout.layout(entry("a", attachment=Attachment("a.bin", "x/y", False, 800, "aa", path)))
    second = layout.layout(
        entry("b", attachment=Attachment("b.bin", "x/y", False, 800, "bb", path))
    )
    assert first.embedded_file is not None
    assert second.embedded_file is None
    assert "non jointe (taille totale des pièces jointes dépassée)" in texts(second)
