import pytest

from bots.export.pdf_syntax import (
    Name,
    PdfSyntaxError,
    Ref,
    String,
    Token,
    parse_object,
    parse_value,
    renumbered,
    write_value,
)


def test_references_inside_strings_are_text() -> None:
    data = (
        b"<</F (note \\(1 0 R\\) (2 0 R) \\\\\\) 3 0 R)/UF <FEFF0031 0020 0030> "
        b"/Kids [4 0 R 5 0 R] /Box [0 0 595.28 841.89] /Open true % a comment 6 0 R\n"
        b"/Parent 7 0 R>>"
    )
    value, end = parse_value(data, 0)
    assert end == len(data)
    assert value == {
        Name(b"F"): String(b"(note \\(1 0 R\\) (2 0 R) \\\\\\) 3 0 R)"),
        Name(b"UF"): String(b"<FEFF0031 0020 0030>"),
        Name(b"Kids"): [Ref(4), Ref(5)],
        Name(b"Box"): [Token(b"0"), Token(b"0"), Token(b"595.28"), Token(b"841.89")],
        Name(b"Open"): Token(b"true"),
        Name(b"Parent"): Ref(7),
    }
    assert isinstance(value, dict)
    assert value[Name(b"F")].value() == b"note (1 0 R) (2 0 R) \\) 3 0 R"  # type: ignore[union-attr]
    assert value[Name(b"UF")].value() == b"\xfe\xff" + "1 0".encode("utf-16-be")  # type: ignore[union-attr]


def test_written_back_renumbered_and_nothing_else() -> None:
    data = b"<</A (x 1 0 R) /B [1 0 R <00ff>] /C /MPDFAA+DejaVuSans /D /F1 /E -2.5>>"
    value, _ = parse_value(data, 0)
    written = write_value(value, {1: 41}, subset_tag=b"AAAAAB")
    assert parse_value(written, 0)[0] == {
        Name(b"A"): String(b"(x 1 0 R)"),
        Name(b"B"): [Ref(41), String(b"<00ff>")],
        Name(b"C"): Name(b"AAAAAB+DejaVuSans"),
        Name(b"D"): Name(b"F1"),
        Name(b"E"): Token(b"-2.5"),
    }
    assert renumbered(value, {1: 9})[Name(b"B")][0] == Ref(9)  # type: ignore[call-overload,index]
    with pytest.raises(KeyError):
        write_value(value, {})  # a reference the mapping does not know


def test_stream_object_located_not_read() -> None:
    data = b"12 0 obj\n<</Length 5>>\nstream\r\nab)cd\nendstream\nendobj\n"
    obj = parse_object(data)
    assert obj.number == 12
    assert obj.value == {Name(b"Length"): Token(b"5")}
    assert obj.stream_start is not None
    assert data[obj.stream_start : obj.stream_start + 5] == b"ab)cd"


def test_plain_object_and_escapes() -> None:
    obj = parse_object(b"3 0 obj\n(a\\nb\\101\\\nc\\(\\))\nendobj\n")
    assert obj.stream_start is None
    assert isinstance(obj.value, String)
    assert obj.value.value() == b"a\nbAc()"


@pytest.mark.parametrize(
    "data",
    [b"<</A (unterminated>>", b"<</A 1 0 R", b"<<1 2>>", b"[1 2", b"]", b"1 0 obj\n1\nfoo"],
)
def test_malformed_is_refused(data: bytes) -> None:
    with pytest.raises(PdfSyntaxError):
        if data.startswith(b"1 0 obj"):
            parse_object(data)
        else:
            parse_value(data, 0)
