"""Search the directory: parsed query -> ranked, paginated professionals.

Ranking: exact name first (linked accounts first among them), then the other linked
accounts, then the rest. Name words drive a range scan of ``search_key`` (covering indexes
on token and on département + token); a query without a name is driven by the
``activity`` indexes on département / profession. Totals are counted up to
:data:`COUNT_CAP` ("plus de 1000").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .database import Connection, is_sqlite
from .display import title_case
from .normalize import joined
from .query import Commune, Gazetteer, ParsedQuery, parse_query
from .request_form import national_ids
from .results import Hit, Practice, SearchResult
from .vocabulary import MODE_LABELS, MODE_WORDS, PROFESSION_WORDS, SPECIALTY_WORDS

__all__ = ["COUNT_CAP", "MAX_PER_PAGE", "Directory", "Hit", "Practice", "SearchResult"]

COUNT_CAP = 1000
MAX_PER_PAGE = 50
MAX_PAGE = 50
FALLBACK_SCAN = 5_000
SKIP_SCAN_NAMES = 1_000
_TOP = "\U0010ffff"
# SQLite's CROSS JOIN keeps the join order (the few links drive); PostgreSQL plans it itself
_LINKED_IDS = (
    "SELECT p.id FROM annuaire_account_link l {join} annuaire_professional p "
    "ON p.national_id = l.national_id WHERE p.active = 1"
)


@dataclass
class _Filters:
    sql: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add_in(self, column: str, values: Iterable[str]) -> None:
        values = list(values)
        if not values:
            return
        if len(values) == 1:
            self.sql.append(f"{column} = ?")
        else:
            self.sql.append(f"{column} IN ({','.join('?' * len(values))})")
        self.args.extend(values)


def code_for(value: str | None, words: Any, codes: Iterable[str] = ()) -> str | None:
    """An explicit filter given as a code ("60", "SM26", "L") or a word ("infirmier")."""
    if not value:
        return None
    value = value.strip()
    if value in codes or value.upper() in codes:
        return value.upper() if value.upper() in codes else value
    found = words.get(joined(value))
    return str(found) if found else value


class Directory:
    """Search over one connection (one per thread; connections are not shared)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._sqlite = is_sqlite(conn)
        self._gazetteer: Gazetteer | None = None
        self._gazetteer_run: int | None = None
        self._linked: set[int] | None = None
        self._linked_version: tuple[int, int] | None = None

    # --- places -------------------------------------------------------------------------
    def gazetteer(self) -> Gazetteer:
        run = self.conn.execute("SELECT max(id) FROM annuaire_import_run").fetchone()[0]
        if self._gazetteer is None or run != self._gazetteer_run:
            cities: dict[str, list[Commune]] = {}
            postcodes: dict[str, list[Commune]] = {}
            for code, postcode, dept, name, key in self.conn.execute(
                "SELECT commune_code, postcode, dept, name, name_key FROM annuaire_commune"
            ):
                commune = Commune(code, dept, title_case(name))
                if commune not in cities.setdefault(key, []):
                    cities[key].append(commune)
                if postcode:
                    postcodes.setdefault(postcode, []).append(commune)
            self._gazetteer = Gazetteer(
                {k: tuple(v) for k, v in cities.items()},
                {k: tuple(v) for k, v in postcodes.items()},
            )
            self._gazetteer_run = run
        return self._gazetteer

    # --- search -------------------------------------------------------------------------
    def search(
        self,
        text: str,
        *,
        profession: str | None = None,
        specialty: str | None = None,
        dept: str | None = None,
        mode: str | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> SearchResult:
        """The search box and the form's filters (in words or codes), one page of hits."""
        query = parse_query(
            text,
            self.gazetteer(),
            profession=code_for(profession, PROFESSION_WORDS),
            specialty=code_for(specialty, SPECIALTY_WORDS),
            dept=dept.strip().upper() if dept else None,
            mode=code_for(mode, MODE_WORDS, MODE_LABELS),
        )
        return self.run(query, page=page, per_page=per_page)

    def run(self, query: ParsedQuery, *, page: int = 1, per_page: int = 20) -> SearchResult:
        page = min(max(1, page), MAX_PAGE)
        per_page = min(max(1, per_page), MAX_PER_PAGE)
        if query.empty:
            return SearchResult(query, [], 0, False, page, per_page)
        linked = self._linked_ids()
        skip = (page - 1) * per_page
        chosen: list[tuple[int, bool]] = []
        total = 0
        more = False
        for pid, exact in self._ranked(query, linked):
            if total >= COUNT_CAP:
                more = True
                break
            if skip <= total < skip + per_page:
                chosen.append((pid, exact))
            total += 1
        return SearchResult(query, self._hits(chosen), total, more, page, per_page)

    def _linked_ids(self) -> set[int]:
        """Ids of linked professionals, re-read only when the database changed."""
        version = self._links_version()
        if self._linked is None or version != self._linked_version:
            self._linked = {
                row[0]
                for row in self.conn.execute(
                    _LINKED_IDS.format(join="CROSS JOIN" if self._sqlite else "JOIN")
                )
            }
            self._linked_version = version
        return self._linked

    def _links_version(self) -> tuple[Any, ...]:
        if self._sqlite:  # changes by other connections, then by this one: no query at all
            assert isinstance(self.conn, sqlite3.Connection)
            return (self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes)
        return tuple(
            self.conn.execute(
                "SELECT count(*), max(linked_at) FROM annuaire_account_link"
            ).fetchone()
        )

    def _key_filters(self, query: ParsedQuery, alias: str) -> _Filters:
        f = _Filters()
        if query.place is not None:
            f.add_in(f"{alias}.dept", query.place.depts)
            f.add_in(f"{alias}.commune_code", query.place.communes)
            if query.place.postcode:
                f.add_in(f"{alias}.postcode", [query.place.postcode])
        f.add_in(f"{alias}.profession_code", query.professions)
        f.add_in(f"{alias}.specialty_code", query.specialties)
        f.add_in(f"{alias}.mode_code", query.modes)
        return f

    def _ranked(self, query: ParsedQuery, linked: set[int]) -> Iterator[tuple[int, bool]]:
        seen: set[int] = set()

        def emit(
            rows: Iterable[tuple[int]], exact: bool, only_linked: bool | None
        ) -> Iterator[tuple[int, bool]]:
            for (pid,) in rows:
                if pid in seen:
                    continue
                if only_linked is not None and (pid in linked) != only_linked:
                    continue
                seen.add(pid)
                yield pid, exact

        # (only linked keys, emitted as linked): the linked tier first when there is one
        tiers = ((True, True), (False, False)) if linked else ((False, False),)
        terms = query.names + query.emails
        if query.identifiers:
            yield from emit(self._by_identifier(query), True, None)
            return
        if len(terms) >= 2:
            # "martin marie" / "marie martin": one range of the pair keys, both orders;
            # "jean marie" also as the compound "jeanmarie"
            first, second, rest = terms[0], terms[1], list(terms[2:])
            spans = []
            for pair in (f"{first} {second}", f"{second} {first}"):
                spans.append(((pair, pair), (pair + "\x01", pair + _TOP)))
            compound = first + second
            spans.append(((compound + " ", compound + "!"), (compound + "!", compound + _TOP)))
            found = False
            for exact in (True, False):
                for linked_only, is_linked in tiers:
                    for exact_span, prefix_span in spans:
                        span = exact_span if exact else prefix_span
                        for hit in emit(
                            self._by_name(query, span, rest, linked_only), exact, is_linked
                        ):
                            found = True
                            yield hit
            if found:
                return
            # "ma ro": both words are prefixes; walk the distinct names beginning with the
            # rarer word and look up "<that name> <other word…>" (an index skip-scan)
            a, b = sorted((first, second), key=self._spread)
            for word in self._names_starting(a, SKIP_SCAN_NAMES):
                span = (f"{word} {b}", f"{word} {b}{_TOP}")
                for linked_only, is_linked in tiers:
                    for hit in emit(
                        self._by_name(query, span, rest, linked_only), False, is_linked
                    ):
                        found = True
                        yield hit
            for word in self._names_starting(b, SKIP_SCAN_NAMES):
                span = (f"{word} {a}", f"{word} {a}{_TOP}")
                for hit in emit(self._by_name(query, span, rest, False), False, None):
                    found = True
                    yield hit
            if found:
                return
        if terms:
            driver = terms[0] if len(terms) == 1 else min(terms, key=self._spread)
            others = [t for t in terms if t != driver]
            # several words none of which is a whole name: each key of the rarest word is
            # checked against the others, over at most FALLBACK_SCAN keys
            cap = FALLBACK_SCAN if others else None
            exact_span = (driver + " ", driver + "!")
            prefix_span = (driver + "!", driver + _TOP)
            for exact, span in ((True, exact_span), (False, prefix_span)):
                if linked:
                    yield from emit(self._by_name(query, span, others, True), exact, True)
                yield from emit(self._by_name(query, span, others, False, cap), exact, False)
            return
        if linked:
            yield from emit(self._by_filters(query, True), False, True)
        yield from emit(self._by_filters(query, False), False, False)

    def _names_starting(self, prefix: str, limit: int) -> Iterator[str]:
        """Distinct first words of the keys beginning with ``prefix`` (one seek each)."""
        low = prefix
        for _ in range(limit):
            row = self.conn.execute(
                "SELECT token FROM annuaire_search_key WHERE token >= ? AND token < ? ORDER BY token "
                "LIMIT 1",
                (low, prefix + _TOP),
            ).fetchone()
            if row is None:
                return
            word = str(row[0]).split(" ", 1)[0]
            yield word
            low = word + "!"

    def _spread(self, term: str) -> int:
        """How many keys start with ``term`` (counted up to a cap): the rarest term drives."""
        return int(
            self.conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM annuaire_search_key "
                "WHERE token >= ? AND token < ? LIMIT 5000) spread",
                (term, term + _TOP),
            ).fetchone()[0]
        )

    def _by_name(
        self,
        query: ParsedQuery,
        span: tuple[str, str],
        others: list[str],
        linked_only: bool,
        cap: int | None = None,
    ) -> Iterable[tuple[int]]:
        """Keys whose token is in ``span`` (``(x, x)`` = equal to x; else lo <= t < hi) and
        that pass the filters; ``others``: words that must begin another name of the same
        professional; ``linked_only``: keys of linked professionals alone; ``cap``: look at no
        more than that many keys of the span."""
        f = self._key_filters(query, "k")
        if span[0] == span[1]:
            keys = ["k.token = ?"]
            args: list[Any] = [span[0]]
        else:
            keys = ["k.token >= ?", "k.token < ?"]
            args = [span[0], span[1]]
        keys += f.sql
        args += f.args
        if linked_only:
            keys.append("k.linked = 1")  # the partial index ix_annuaire_key_linked
        index = " INDEXED BY ix_annuaire_key_linked" if linked_only and self._sqlite else ""
        inner = f"SELECT k.professional_id FROM annuaire_search_key k{index} WHERE " + " AND ".join(
            keys
        )
        # SQLite answers in the order of the index it walks; PostgreSQL is told to (the same
        # covering index, so no sort), else pages could overlap
        inner += "" if self._sqlite else " ORDER BY k.token, k.professional_id, k.seq"
        if not others:
            return self.conn.execute(inner, args)
        checks = []
        for other in others:
            checks.append(
                "EXISTS (SELECT 1 FROM annuaire_search_key o WHERE o.professional_id = c.professional_id "
                "AND o.token >= ? AND o.token < ?)"
            )
            args.extend([other, other + _TOP])
        if cap is not None:
            inner += f" LIMIT {int(cap)}"
        sql = f"SELECT c.professional_id FROM ({inner}) c WHERE " + " AND ".join(checks)
        sql += "" if self._sqlite else " ORDER BY c.professional_id"
        return self.conn.execute(sql, args)

    def _by_filters(self, query: ParsedQuery, linked_only: bool) -> Iterable[tuple[int]]:
        f = self._key_filters(query, "a")
        where = list(f.sql)
        args = list(f.args)
        if linked_only:
            where.append("a.linked = 1")  # the partial index ix_annuaire_activity_linked
        index = " INDEXED BY ix_annuaire_activity_linked" if linked_only and self._sqlite else ""
        sql = (
            f"SELECT a.professional_id FROM annuaire_activity a{index} "
            "JOIN annuaire_professional p ON p.id = a.professional_id AND p.active = 1"
            + (" WHERE " + " AND ".join(where) if where else "")
            + ("" if self._sqlite else " ORDER BY a.professional_id, a.id")
        )
        return self.conn.execute(sql, args)

    def _by_identifier(self, query: ParsedQuery) -> Iterable[tuple[int]]:
        marks = ",".join("?" * len(query.identifiers))
        return self.conn.execute(
            f"SELECT id FROM annuaire_professional WHERE active = 1 AND (national_id IN ({marks}) "
            f"OR substr(national_id, 2) IN ({marks}))",
            [*query.identifiers, *query.identifiers],
        )

    def _hits(self, chosen: list[tuple[int, bool]]) -> list[Hit]:
        if not chosen:
            return []
        ids = [pid for pid, _ in chosen]
        marks = ",".join("?" * len(ids))
        people = {
            row[0]: row
            for row in self.conn.execute(
                "SELECT p.id, p.national_id, p.civility, p.last_name, p.first_name, "
                "p.profession_code, p.profession, l.mxid FROM annuaire_professional p "
                f"LEFT JOIN annuaire_account_link l ON l.national_id = p.national_id WHERE p.id IN ({marks})",
                ids,
            )
        }
        practices: dict[int, list[Practice]] = {}
        for row in self.conn.execute(
            "SELECT professional_id, specialty, mode, structure, address, postcode, city, dept, "
            f"phone, email FROM annuaire_activity WHERE professional_id IN ({marks}) ORDER BY id",
            ids,
        ):
            practices.setdefault(row[0], []).append(Practice(*row[1:]))
        hits = []
        for pid, exact in chosen:
            p = people[pid]
            hits.append(
                Hit(p[1], p[2], p[3], p[4], p[5], p[6], tuple(practices.get(pid, ())), p[7], exact)
            )
        return hits

    def professional(self, identifier: str) -> Hit | None:
        """A professional by "Identification nationale PP", RPPS (11) or ADELI (9) number."""
        candidates = national_ids(identifier)
        row = self.conn.execute(
            f"SELECT id FROM annuaire_professional WHERE national_id IN ({','.join('?' * len(candidates))}) "
            "ORDER BY active DESC LIMIT 1",
            candidates,
        ).fetchone()
        if row is None:
            return None
        return self._hits([(row[0], True)])[0]

    def by_email(self, email: str) -> list[Hit]:
        """Active professionals whose practice e-mail is ``email`` (e-mails are search keys)."""
        ids = [
            row[0]
            for row in self.conn.execute(
                "SELECT DISTINCT professional_id FROM annuaire_search_key WHERE token = ?",
                (email.strip().lower() + " ",),  # e-mail keys end with a space, like names
            )
        ]
        return self._hits([(pid, True) for pid in ids])
