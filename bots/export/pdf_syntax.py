"""PDF object syntax (ISO 32000-1, 7.2-7.3): read one object, write it back renumbered (pure).

Just what `binding.py` needs to move objects from one file to another: values are parsed
into plain Python containers, strings and numbers are kept byte for byte as written (a
string is never decoded to be re-encoded), so that writing a value back changes nothing
but its indirect references — and, on request, the subset tag of font names.

    Name      /Type            -> Name(b"Type")   (as written: #xx escapes kept)
    String    (a \\(1 0 R\\).txt) or <FEFF…>  -> String(the token as written)
    Token     12, -3.5, true, null           -> Token(the token as written)
    Ref       12 0 R           -> Ref(12, 0)
    list      [ … ]            dict  << /Key value … >>  (keys are Names, order kept)

A literal string is read to its balancing parenthesis, escapes included, so that text
such as "1 0 R" inside a file name is never taken for a reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

_WHITE = b"\x00\t\n\x0c\r "
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_TOKEN = re.compile(
    rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)*"  # whitespace and comments between tokens
    rb"(<<|>>|\[|\]|\(|<[0-9A-Fa-f\x00\t\n\x0c\r ]*>|/" + _REGULAR + rb"*|" + _REGULAR + rb"+)"
)
_INTEGER = re.compile(rb"\d+")
_STRING_SPECIALS = re.compile(rb"[()\\]")
_SUBSET_TAG = re.compile(rb"[A-Z]{6}\+")
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


class PdfSyntaxError(ValueError):
    """The bytes are not the PDF object syntax this module reads."""


class Name(bytes):
    """A name, without its slash, as written."""


class String(bytes):
    """A literal `(…)` or hexadecimal `<…>` string, delimiters included, as written."""

    def value(self) -> bytes:
        """The bytes the string stands for (escapes resolved, hex decoded)."""
        if self.startswith(b"<"):
            digits = bytes(c for c in self[1:-1] if c not in _WHITE)
            if len(digits) % 2:
                digits += b"0"
            return bytes.fromhex(digits.decode("ascii"))
        return _unescape(self[1:-1])


class Token(bytes):
    """A number, a boolean or null, as written."""


@dataclass(frozen=True, slots=True)
class Ref:
    number: int
    generation: int = 0


PdfValue: TypeAlias = Name | String | Token | Ref | list["PdfValue"] | dict[Name, "PdfValue"]


@dataclass(frozen=True, slots=True)
class IndirectObject:
    """`N G obj value [stream]`: where the stream's data starts in the bytes read, if any."""

    number: int
    value: PdfValue
    stream_start: int | None  # offset of the first data byte, after `stream` and its EOL
    end: int  # offset just after the value (stream objects) or after `endobj`


def parse_object(data: bytes, pos: int = 0) -> IndirectObject:
    """The indirect object starting at `pos` (a stream's data is located, not read)."""
    number, pos = _integer(data, pos)
    _, pos = _integer(data, pos)
    keyword, pos = _next(data, pos)
    if keyword != b"obj":
        raise PdfSyntaxError(f"'obj' expected at {pos}")
    value, pos = parse_value(data, pos)
    keyword, after = _next(data, pos)
    if keyword == b"endobj":
        return IndirectObject(number, value, None, after)
    if keyword != b"stream":
        raise PdfSyntaxError(f"'endobj' or 'stream' expected at {pos}")
    if data[after : after + 2] == b"\r\n":
        start = after + 2
    elif data[after : after + 1] == b"\n":
        start = after + 1
    else:
        raise PdfSyntaxError(f"end of line expected after 'stream' at {after}")
    return IndirectObject(number, value, start, pos)


def parse_value(data: bytes, pos: int) -> tuple[PdfValue, int]:
    """The value starting at `pos` (whitespace first is skipped) and the offset after it."""
    token, pos = _next(data, pos)
    if token == b"<<":
        result: dict[Name, PdfValue] = {}
        while True:
            key, after = _next(data, pos)
            if key == b">>":
                return result, after
            if not key.startswith(b"/"):
                raise PdfSyntaxError(f"a name expected as a dictionary key at {pos}")
            result[Name(key[1:])], pos = parse_value(data, after)
    if token == b"[":
        items: list[PdfValue] = []
        while True:
            item, after = _next(data, pos)
            if item == b"]":
                return items, after
            value, pos = parse_value(data, pos)
            items.append(value)
    if token == b"(":
        end = _literal_end(data, pos)
        return String(data[pos - 1 : end]), end
    if token.startswith(b"/"):
        return Name(token[1:]), pos
    if token.startswith(b"<"):
        return String(token), pos
    if token in (b">>", b"]"):
        raise PdfSyntaxError(f"unexpected {token!r} at {pos}")
    if _INTEGER.fullmatch(token):  # maybe `N G R`
        match = _TOKEN.match(data, pos)
        if match and _INTEGER.fullmatch(match.group(1)):
            keyword = _TOKEN.match(data, match.end())
            if keyword and keyword.group(1) == b"R":
                return Ref(int(token), int(match.group(1))), keyword.end()
    return Token(token), pos


def write_value(
    value: PdfValue, refs: Mapping[int, int] | None = None, subset_tag: bytes | None = None
) -> bytes:
    """The value in PDF syntax; references renumbered through `refs` (KeyError when one is
    missing), font subset tags (`ABCDEF+`) replaced by `subset_tag` when given."""
    out: list[bytes] = []
    _write(value, out, refs, subset_tag)
    return b"".join(out)


def renumbered(value: PdfValue, refs: Mapping[int, int]) -> PdfValue:
    """A copy of the value with its references renumbered (KeyError when one is missing)."""
    if isinstance(value, Ref):
        return Ref(refs[value.number])
    if isinstance(value, dict):
        return {key: renumbered(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [renumbered(item, refs) for item in value]
    return value


def _write(
    value: PdfValue, out: list[bytes], refs: Mapping[int, int] | None, tag: bytes | None
) -> None:
    if isinstance(value, Name):
        if tag is not None and _SUBSET_TAG.match(value):
            out.append(b"/" + tag + value[6:])
        else:
            out.append(b"/" + value)
    elif isinstance(value, (String, Token)):
        out.append(value)
    elif isinstance(value, Ref):
        number = value.number if refs is None else refs[value.number]
        out.append(b"%d %d R" % (number, value.generation if refs is None else 0))
    elif isinstance(value, dict):
        out.append(b"<<")
        for key, item in value.items():
            out.append(b"/" + key + b" ")
            _write(item, out, refs, tag)
            out.append(b"\n")
        out.append(b">>")
    elif isinstance(value, list):
        out.append(b"[")
        for index, item in enumerate(value):
            if index:
                out.append(b" ")
            _write(item, out, refs, tag)
        out.append(b"]")
    else:
        raise TypeError(f"not a PDF value: {type(value).__name__}")


def _next(data: bytes, pos: int) -> tuple[bytes, int]:
    match = _TOKEN.match(data, pos)
    if match is None:
        raise PdfSyntaxError(f"a token expected at {pos}")
    return match.group(1), match.end()


def _integer(data: bytes, pos: int) -> tuple[int, int]:
    token, end = _next(data, pos)
    if not _INTEGER.fullmatch(token):
        raise PdfSyntaxError(f"an integer expected at {pos}")
    return int(token), end


def _literal_end(data: bytes, pos: int) -> int:
    """Offset just after the `)` closing the literal string whose `(` ends at `pos`."""
    depth = 1
    scan = pos
    while True:
        match = _STRING_SPECIALS.search(data, scan)
        if match is None:
            raise PdfSyntaxError(f"unterminated string from {pos - 1}")
        char = match.group()
        scan = match.end()
        if char == b"\\":
            scan += 1  # the escaped character, whatever it is
        elif char == b"(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return scan


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(raw):
        char = raw[index : index + 1]
        index += 1
        if char != b"\\":
            out += char
            continue
        escaped = raw[index : index + 1]
        index += 1
        if escaped in _ESCAPES:
            out += _ESCAPES[escaped]
        elif escaped.isdigit() and escaped < b"8":
            digits = escaped
            while len(digits) < 3 and raw[index : index + 1].isdigit() and raw[index] < 0x38:
                digits += raw[index : index + 1]
                index += 1
            out.append(int(digits, 8) & 0xFF)
        elif escaped == b"\r":  # a line continuation: \ then EOL
            if raw[index : index + 1] == b"\n":
                index += 1
        elif escaped != b"\n":
            out += escaped  # \( \) \\ and any other character stand for themselves
    return bytes(out)
