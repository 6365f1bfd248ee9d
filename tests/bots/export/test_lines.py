import pytest

from bots.export.lines import LineBreaker, Tone
from bots.export.parts import TranscriptPdf
from bots.export.typefaces import FpdfFontMetrics


@pytest.fixture(scope="module")
def breaker() -> LineBreaker:
    return LineBreaker(FpdfFontMetrics(TranscriptPdf("test")), width=60.0, line_factor=1.3)


def shown(lines) -> list[str]:
    return ["".join(run.text for run in line.runs) for line in lines]


def fits(breaker: LineBreaker, lines) -> bool:
    return all(
        run.x + breaker.text_width(run.text, run.style, line.size) <= breaker.width + 0.01
        for line in lines
        for run in line.runs
    )


@pytest.mark.parametrize(
    "runs",
    [
        [("court", "")],  # one line, fast path
        [("mot " * 60, "")],  # one style, several lines
        [("début ", ""), ("gras " * 20, "B"), ("italique " * 20, "I")],  # general loop
        [("z" * 400, "")],  # a word longer than a line is cut
    ],
)
def test_every_path_keeps_words_and_width(breaker: LineBreaker, runs) -> None:
    lines = breaker.wrap(runs, Tone.TEXT, 9.5, 0.0)
    assert fits(breaker, lines)
    words = " ".join(text for text, _ in runs).split()
    assert "".join(" ".join(shown(lines)).split()) == "".join(words)


def test_paths_agree_on_where_lines_break(breaker: LineBreaker) -> None:
    text = "la patiente a bien pris son traitement ce matin, à revoir demain " * 5
    single = breaker.wrap([(text, "")], Tone.TEXT, 9.5, 2.0)
    general = breaker.wrap([(text[:20], ""), (text[20:], "")], Tone.TEXT, 9.5, 2.0)
    assert shown(single) == shown(general)


def test_spaces_are_collapsed_and_trimmed(breaker: LineBreaker) -> None:
    assert shown(breaker.wrap([("  a   b  ", "")], Tone.TEXT, 9.5, 0.0)) == ["a b"]
