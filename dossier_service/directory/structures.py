"""Structures of the directory (issue 18): the FINESS establishments extract, imported and
searched beside the professionals.

Import: the file is read line by line (never held in memory); each establishment is written
once per run, compared by a hash of its fields (re-importing the same file changes nothing);
its geolocation, further down the file, is set when met; establishments absent from a newer
extract are marked inactive at the end; a malformed line is rejected with its number and
reason (French), never aborting. Commits every ``COMMIT_LINES`` lines like the RPPS import,
so the dossier's writes get their turn on a shared SQLite file.

Search: each word of the query must begin a word of the structure's names (one range scan of
``annuaire_structure_key`` per word on its covering index), filtered by département and by
category (« ssiad », « ehpad », « pharmacie »… or a FINESS category code).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import finess_format as ff
from .database import Connection, transaction
from .import_run import COMMIT_LINES, ImportReport, ImportRun, Progress
from .normalize import fold, joined, name_tokens
from .structure_rows import refresh_member_texts

BATCH = 2_000  # lines written together (one lookup query, a few multi-row writes)
MAX_PER_PAGE = 50
_TOP = "\U0010ffff"

# words people type for a kind of structure → FINESS category codes (libcategetab)
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "ssiad": ("354",),
    "saad": ("460",),
    "spasad": ("209",),
    "ehpad": ("500",),
    "pharmacie": ("620",),
    "officine": ("620",),
    "had": ("127",),
    "hopital": ("101", "355", "106", "365"),
    "ch": ("355",),
    "chu": ("101",),
    "chr": ("101",),
    "clinique": ("365",),
    "msp": ("603",),
    "maisondesante": ("603",),
    "centredesante": ("124",),
    "laboratoire": ("611",),
    "dac": ("190",),
    "ccas": ("462",),
    "savs": ("182",),
    "samsah": ("446",),
}


@dataclass(frozen=True)
class StructureHit:
    finess: str
    name: str
    long_name: str
    category: str
    address: str
    postcode: str
    city: str
    phone: str
    siret: str

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "structure",
            "finess": self.finess,
            "raison_sociale": self.name,
            "raison_sociale_longue": self.long_name,
            "categorie": self.category,
            "adresse": self.address,
            "code_postal": self.postcode,
            "ville": self.city,
            "telephone": self.phone,
            "siret": self.siret,
        }


@dataclass(frozen=True)
class StructureResult:
    hits: list[StructureHit]
    total: int
    page: int
    per_page: int

    def as_json(self) -> dict[str, Any]:
        return {
            "resultats": [h.as_json() for h in self.hits],
            "total": self.total,
            "page": self.page,
            "par_page": self.per_page,
        }


# --- import ----------------------------------------------------------------------------------
def check_format(path: Path) -> ff.Extract:
    try:
        with open(path, "rb") as fh:
            head = fh.readline(1 << 16)
    except OSError as exc:
        raise ff.FormatError(f"Lecture impossible du fichier « {path.name} ».") from exc
    if not head:
        raise ff.FormatError("Le fichier est vide.")
    if b"\0" in head:
        raise ff.FormatError("Format de fichier inconnu : fichier binaire, pas un extrait texte.")
    return ff.read_metadata(ff.decode(head))


def _lines(path: Path) -> Iterator[tuple[int, int, str]]:
    """(line number, bytes read so far, text) of every data line."""
    done = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            done += len(raw)
            if number == 1:
                continue
            yield number, done, ff.decode(raw)


def _row(est: ff.Establishment) -> tuple[Any, ...]:
    insee = est.dept[:2] + est.commune_code if len(est.commune_code) == 3 else est.commune_code
    return (
        est.legal_finess,
        est.name,
        est.long_name,
        est.address,
        est.postcode,
        est.city,
        insee,
        est.dept,
        est.phone,
        est.category_code,
        est.category,
        est.aggregate,
        est.siret,
    )


def _tokens(est: ff.Establishment) -> list[str]:
    out = name_tokens(est.name, est.long_name)
    folded = joined(est.category)
    for word, codes in CATEGORY_WORDS.items():  # "SSIAD" findable even when not in the name
        if est.category_code in codes and word not in out:
            out.append(word)
    if folded and folded not in out:
        out.append(folded)
    return out


def import_finess(
    conn: Connection, path: Path, *, progress: Progress | None = None, now: datetime | None = None
) -> ImportReport:
    """Import one FINESS extract; :class:`ff.FormatError` before writing anything if it is
    not one."""
    path = Path(path)
    check_format(path)
    total = path.stat().st_size
    stamp = (datetime.now(UTC) if now is None else now).isoformat()
    clock = time.monotonic()
    with transaction(conn):
        run = ImportRun(conn, "finess", path.name, stamp, commit_lines=COMMIT_LINES)
        report = run.report
        batch: list[ff.Establishment] = []
        places: list[tuple[float, float, str]] = []
        for number, done, line in _lines(path):
            report.lines += 1
            try:
                parsed = ff.parse_line(line)
            except ff.LineError as exc:
                report.reject(1, [(number, str(exc))])
                parsed = None
            if isinstance(parsed, ff.Establishment):
                batch.append(parsed)
            elif isinstance(parsed, ff.Geolocation):
                places.append((parsed.x, parsed.y, parsed.finess))
            if len(batch) + len(places) >= BATCH or run.turn_due():
                _flush(conn, batch, places, run.id, stamp, report)
                batch, places = [], []
                if progress is not None:
                    progress(done, total)
            if run.turn_due():
                run.give_turn()
        _flush(conn, batch, places, run.id, stamp, report)
        if progress is not None:
            progress(total, total)
        run.deactivate_absent("annuaire_structure", "finess", "annuaire_structure_key", "finess")
        run.finish()
    report.seconds = time.monotonic() - clock
    report.phases["total"] = report.seconds
    return report


def _flush(
    conn: Connection,
    batch: list[ff.Establishment],
    places: list[tuple[float, float, str]],
    run_id: int,
    stamp: str,
    report: ImportReport,
) -> None:
    """Write a batch of establishments (one query to find those already known), then the
    geolocations read with them."""
    unique: dict[str, ff.Establishment] = {}
    for est in batch:  # the same number twice in one batch: the first line wins
        unique.setdefault(est.finess, est)
    found: dict[str, tuple[bytes, int, int]] = {}
    numbers = list(unique)
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for finess, digest, seen_run, active in conn.execute(
            "SELECT finess, content_hash, seen_run, active FROM annuaire_structure "
            f"WHERE finess IN ({marks})",
            chunk,
        ):
            found[finess] = (bytes(digest), seen_run, active)
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    touch: list[tuple[int, str]] = []
    keys: list[tuple[str, str, str, str]] = []
    rekeyed: list[tuple[str]] = []
    for finess, est in unique.items():
        row = _row(est)
        digest = hashlib.blake2b(repr(row).encode(), digest_size=16).digest()
        old = found.get(finess)
        if old is not None and old[1] == run_id:
            continue  # already written earlier in this run
        if old is not None and old[0] == digest and old[2]:
            touch.append((run_id, finess))
            report.unchanged += 1
            continue
        if old is None:
            inserts.append((finess, *row, joined(est.name), digest, run_id, stamp))
            report.added += 1
        else:
            updates.append((*row, joined(est.name), digest, run_id, stamp, finess))
            rekeyed.append((finess,))
            report.updated += 1
        keys.extend((finess, t, est.dept, est.category_code) for t in _tokens(est))
    if touch:
        conn.executemany("UPDATE annuaire_structure SET seen_run=? WHERE finess=?", touch)
    if inserts:
        conn.executemany(
            "INSERT INTO annuaire_structure (finess, legal_finess, name, long_name, address, "
            "postcode, city, commune_code, dept, phone, category_code, category, aggregate, "
            "siret, sort_key, content_hash, seen_run, active, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?)",
            inserts,
        )
    if updates:
        conn.executemany(
            "UPDATE annuaire_structure SET legal_finess=?, name=?, long_name=?, address=?, "
            "postcode=?, city=?, commune_code=?, dept=?, phone=?, category_code=?, category=?, "
            "aggregate=?, siret=?, sort_key=?, content_hash=?, seen_run=?, active=1, "
            "updated_at=? WHERE finess=?",
            updates,
        )
        conn.executemany("DELETE FROM annuaire_structure_key WHERE finess=?", rekeyed)
        refresh_member_texts(conn, [finess for (finess,) in rekeyed])
    if keys:
        conn.executemany(
            "INSERT INTO annuaire_structure_key (finess, token, dept, category_code) VALUES "
            "(?,?,?,?) ON CONFLICT DO NOTHING",
            keys,
        )
    if places:
        conn.executemany("UPDATE annuaire_structure SET x=?, y=? WHERE finess=?", places)


# --- search ----------------------------------------------------------------------------------
def category_codes(value: str | None) -> tuple[str, ...]:
    """A category filter given as a word (« ssiad ») or as FINESS codes (« 354,500 »)."""
    if not value:
        return ()
    key = joined(value)
    if key in CATEGORY_WORDS:
        return CATEGORY_WORDS[key]
    codes = tuple(c.strip() for c in value.split(",") if c.strip().isdigit())
    return codes


def search_structures(
    conn: Connection,
    text: str,
    *,
    dept: str | None = None,
    category: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> StructureResult:
    page, per_page = max(1, min(page, 50)), max(1, min(per_page, MAX_PER_PAGE))
    words = [w for w in (joined(p) for p in fold(text[:200]).split()) if len(w) > 1][:8]
    codes = list(category_codes(category))
    depts = [dept.strip().upper()] if dept else []
    for i, word in enumerate(list(words)):  # a word that names a category filters by it
        if not codes and word in CATEGORY_WORDS and len(words) > 1:
            codes = list(CATEGORY_WORDS[word])
            words.pop(i)
            break
    for i, word in enumerate(list(words)):  # a 2-digit word or 2A/2B is a département
        if not depts and len(word) == 2 and (word.isdigit() or word in ("2a", "2b")):
            depts = [word.upper()]
            words.pop(i)
            break
    if not words and not codes:
        return StructureResult([], 0, page, per_page)
    filters, args = ["s.active = 1"], []
    if depts:
        filters.append(f"s.dept IN ({','.join('?' * len(depts))})")
        args.extend(depts)
    if codes:
        filters.append(f"s.category_code IN ({','.join('?' * len(codes))})")
        args.extend(codes)
    for word in words:
        filters.append(
            "s.finess IN (SELECT k.finess FROM annuaire_structure_key k "
            "WHERE k.token >= ? AND k.token < ?)"
        )
        args.extend([word, word + _TOP])
    where = " AND ".join(filters)
    total = int(
        conn.execute(f"SELECT count(*) FROM annuaire_structure s WHERE {where}", args).fetchone()[0]
    )
    rows = conn.execute(
        "SELECT s.finess, s.name, s.long_name, s.category, s.address, s.postcode, s.city, "
        f"s.phone, s.siret FROM annuaire_structure s WHERE {where} "
        "ORDER BY s.sort_key, s.finess LIMIT ? OFFSET ?",
        [*args, per_page, (page - 1) * per_page],
    ).fetchall()
    return StructureResult([StructureHit(*r) for r in rows], total, page, per_page)


def structure(conn: Connection, finess: str) -> StructureHit | None:
    row = conn.execute(
        "SELECT finess, name, long_name, category, address, postcode, city, phone, siret "
        "FROM annuaire_structure WHERE finess = ? AND active = 1",
        (finess.strip().upper(),),
    ).fetchone()
    return StructureHit(*row) if row else None
