"""Reading side of the import (no database): lines -> professionals -> rows to write.

Runs in the importing process for small files, or in a helper process for large ones (the
writer then only writes): both sides exchange :data:`Batch` messages made of plain tuples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .normalize import pair_tokens, sort_key
from .rpps_format import Activity, FormatError, Layout, LineError, PersonLine

BATCH = 2000
MAX_REJECTS_KEPT = 1000

# (national_id, digest, person row, activity rows, key rows)
#   person row:   (id_type, civility, last, first, profession_code, profession, sort_key)
#   activity row: (profession_code, specialty_code, specialty, mode_code, mode, structure,
#                  address, postcode, commune_code, city, dept, phone, email)
#   key row:      (token, dept, commune_code, postcode, profession_code, specialty_code, mode)
Prepared = tuple[str, bytes, tuple[str, ...], list[tuple[str, ...]], list[tuple[str, ...]]]
# (lines read, bytes read, rejected count, kept rejects [(number, reason)], professionals)
Batch = tuple[int, int, int, list[tuple[int, str]], list[Prepared]]


def check_format(path: Path) -> Layout:
    """Read the header only: raise :class:`FormatError` (French) if it is not an extract."""
    try:
        with open(path, "rb") as fh:
            head = fh.readline(1 << 16)
    except OSError as exc:
        raise FormatError(f"Lecture impossible du fichier « {path.name} ».") from exc
    if not head:
        raise FormatError("Le fichier est vide.")
    if b"\0" in head:
        raise FormatError("Format de fichier inconnu : fichier binaire, pas un extrait texte.")
    try:
        header = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(
            "Format de fichier inconnu : l'en-tête n'est pas en UTF-8 "
            "(extrait PS_LibreAcces_Personne_activite attendu)."
        ) from exc
    return Layout(header)


def digest(raw: list[str]) -> bytes:
    if len(raw) == 1:
        return hashlib.blake2b(raw[0].encode(), digest_size=16).digest()
    h = hashlib.blake2b(digest_size=16)
    for line in sorted(raw):
        h.update(line.encode())
    return h.digest()


def prepare(first: PersonLine, activities: list[Activity], raw: list[str]) -> Prepared:
    code = first.profession_code
    acts = activities if len(activities) == 1 else list(dict.fromkeys(activities))
    activity_rows: list[tuple[str, ...]] = [(code, *a) for a in acts]
    names = pair_tokens(first.last_name, first.first_name)
    keys: list[tuple[str, ...]] = []
    if len(acts) == 1:
        a = acts[0]
        tokens = (*names, a.email + " ") if a.email else names
        place = (a.dept, a.commune_code, a.postcode, code, a.specialty_code, a.mode_code)
        keys = [(t, *place) for t in tokens]
    else:
        tokens = (*names, *sorted({a.email + " " for a in acts if a.email}))
        places = dict.fromkeys(
            (a.dept, a.commune_code, a.postcode, code, a.specialty_code, a.mode_code) for a in acts
        )
        keys = [(t, *place) for place in places for t in tokens]
    person: tuple[str, ...] = (
        first.id_type,
        first.civility,
        first.last_name,
        first.first_name,
        code,
        first.profession,
        sort_key(first.last_name, first.first_name),
    )
    return first.national_id, digest(raw), person, activity_rows, keys


def _lines(path: Path) -> Iterator[tuple[int, int, str | None]]:
    """(line number, bytes read so far, decoded line or None when not UTF-8)."""
    with open(path, "rb", buffering=1 << 20) as fh:
        done = len(fh.readline())
        number = 1
        for raw in fh:
            number += 1
            done += len(raw)
            if not raw.strip():
                continue
            try:
                yield number, done, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, done, None


def read_batches(path: Path, layout: Layout, batch_size: int = BATCH) -> Iterator[Batch]:
    """Group lines by professional (``Identification nationale PP``) and prepare their rows.

    A professional whose lines are not adjacent may come in two batches: the writer merges."""
    pending: dict[str, tuple[PersonLine, list[Activity], list[str]]] = {}
    rejects: list[tuple[int, str]] = []
    rejected = 0
    lines = 0
    done = 0
    kept = 0
    for number, done, line in _lines(path):
        lines += 1
        try:
            if line is None:
                raise LineError("encodage invalide (UTF-8 attendu)")
            person = layout.parse(line)
        except LineError as exc:
            rejected += 1
            if kept < MAX_REJECTS_KEPT:
                rejects.append((number, str(exc)))
                kept += 1
            continue
        group = pending.get(person.national_id)
        if group is None:
            if len(pending) >= batch_size:
                yield lines, done, rejected, rejects, [prepare(*g) for g in pending.values()]
                pending, rejects, rejected, lines = {}, [], 0, 0
            pending[person.national_id] = (person, [person.activity], [line])
        else:
            group[1].append(person.activity)
            group[2].append(line)
    yield lines, done, rejected, rejects, [prepare(*g) for g in pending.values()]


def produce(path: str, send: Callable[[Any], None]) -> None:
    """Helper-process entry point: every batch, then ``None``; ``("error", text)`` on failure."""
    try:
        layout = check_format(Path(path))
        for batch in read_batches(Path(path), layout):
            send(batch)
        send(None)
    except BaseException as exc:  # reported to the writer, which aborts the import
        send(("error", f"{type(exc).__name__}"))
