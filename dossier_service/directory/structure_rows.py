"""The directory's plain-SQL view of ``structure_members`` (declared in
:mod:`dossier_service.models.circle`): who is a structure's referent, the approval of a
request without RPPS making its author a member, and the search of members without RPPS.

Standard library only, as the rest of the directory's door (it also runs inside Synapse).
Places in care circles are not this module's business: the dossier's service
(:func:`dossier_service.services.structures.bring_into_circles`) gives them after the approval.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import audit
from .database import Connection, is_sqlite
from .normalize import fold

_WORD = re.compile(r"[a-z0-9]+")  # folded words; "%" and "_" never reach a LIKE


def _stamp(conn: Connection, at: datetime) -> Any:
    """A timestamp as the dossier's ``UTCDateTime`` column stores it on each engine."""
    at = at.astimezone(UTC)
    return at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if is_sqlite(conn) else at


def is_member(conn: Connection, finess: str, user_id: str, *, referent: bool = False) -> bool:
    """An active member of the structure (``referent``: one of its referents)."""
    row = conn.execute(
        "SELECT role FROM structure_members WHERE finess = ? AND matrix_user_id = ? "
        "AND ended_at IS NULL",
        (finess, user_id),
    ).fetchone()
    return row is not None and (not referent or row[0] == "referent")


def is_referent(conn: Connection, finess: str, user_id: str) -> bool:
    return is_member(conn, finess, user_id, referent=True)


def join_structure(
    conn: Connection, finess: str, mxid: str, display_name: str, *, actor: str, at: datetime
) -> None:
    """The approved person becomes a member (source « demande », without RPPS), audited; the
    caller owns the transaction (the approval's)."""
    if is_member(conn, finess, mxid):
        return
    place = conn.execute(
        "SELECT name, city FROM annuaire_structure WHERE finess = ?", (finess,)
    ).fetchone()
    conn.execute(
        "INSERT INTO structure_members (id, finess, matrix_user_id, display_name, role, source, "
        "without_rpps, added_by, added_at, search_text) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            str(uuid.uuid4()),
            finess,
            mxid,
            display_name[:300],
            "membre",
            "demande",
            True,
            actor,
            _stamp(conn, at),
            member_text(display_name, *(place or ("", ""))),
        ),
    )
    audit.record(
        conn,
        actor=actor,
        action="structure.membre_ajoute",
        target=f"structure:{finess}",
        detail={"compte": mxid, "source": "demande", "sans_rpps": True},
        at=at,
    )


@dataclass(frozen=True)
class WithoutRpps:
    """A member without RPPS, as the search shows her (« sans RPPS », with her structure)."""

    mxid: str
    display_name: str
    finess: str
    structure: str
    city: str

    def as_json(self) -> dict[str, Any]:
        return {
            "compte_matrix": self.mxid,
            "nom_affiche": self.display_name,
            "sans_rpps": True,
            "structure": {"finess": self.finess, "nom": self.structure, "ville": self.city},
        }


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def search_text(*parts: str) -> str:
    """What the search reads: every word, folded, each after a space (a prefix of a word is
    ``LIKE '% word%'``)."""
    return "".join(f" {w}" for w in _words(" ".join(parts)))


def member_text(display_name: str, structure: str | None, city: str | None) -> str:
    """The search text of a member without RPPS: her name and role, her structure's name and
    city (kept here for the search, so refreshed when FINESS renames the structure)."""
    return search_text(display_name, structure or "", city or "")


def refresh_member_texts(conn: Connection, numbers: Sequence[str]) -> None:
    """After an import changed these structures (name, city): their members without RPPS are
    found by what the structure is called now, not by its old name."""
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        rows = conn.execute(
            "SELECT m.id, m.display_name, s.name, s.city FROM structure_members m "
            "JOIN annuaire_structure s ON s.finess = m.finess WHERE m.without_rpps = ? "
            f"AND m.finess IN ({','.join('?' * len(chunk))})",
            (True, *chunk),
        ).fetchall()
        if rows:
            conn.executemany(
                "UPDATE structure_members SET search_text = ? WHERE id = ?",
                [
                    (member_text(name, structure, city), row_id)
                    for row_id, name, structure, city in rows
                ],
            )


def search_without_rpps(conn: Connection, text: str, *, limit: int = 20) -> list[WithoutRpps]:
    """Members without RPPS whose name, role, structure or city holds every word of ``text``
    (each word a prefix of one of theirs, accents and case ignored)."""
    words = [w for w in _words(text) if len(w) > 1][:8]
    if not words:
        return []
    rows = conn.execute(
        "SELECT m.matrix_user_id, m.display_name, m.finess, s.name, s.city "
        "FROM structure_members m JOIN annuaire_structure s ON s.finess = m.finess "
        "WHERE m.without_rpps = ? AND m.ended_at IS NULL "
        + "".join(" AND m.search_text LIKE ?" for _ in words)
        + " ORDER BY m.display_name LIMIT ?",
        (True, *(f"% {w}%" for w in words), limit * 2),
    ).fetchall()
    found: list[WithoutRpps] = []
    for mxid, name, finess, structure, city in rows:
        if mxid not in {f.mxid for f in found} and len(found) < limit:
            found.append(WithoutRpps(mxid, name, finess, structure, city))
    return found
