"""Several read statements in one round trip to PostgreSQL: each statement's rows as a JSON
array, all arrays in one row of one statement.

A file's sections are twelve statements; on SQLite (in the process) twelve calls cost little,
on PostgreSQL each is a round trip through the network stack and two context switches, which
on a busy machine means waiting for a CPU twice per statement. Measured with the region
profile (issue 15): a read that misses the file cache cost 16 round trips, a hit 5.

Rows come back as ``json_agg`` of each statement's rows, numbered in the statement's own
order (``row_number() OVER (ORDER BY …)`` then ``json_agg(… ORDER BY n)``: the order holds by
definition, not by the executor's habit), and are given the same JSON forms as
``read_models.rows`` gives them (UTC timestamps ending in ``Z``, ISO dates, JSON columns
decoded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Text, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import connection_of

ORDER = "_row_order"

# (statement's index of a column, its JSON form) as ``read_models._plan`` gives them
Plan = Callable[[Any], list[tuple[int, Callable[[Any], Any]]]]


def _as_array(name: str, statement: Any) -> Any:
    """``statement``'s rows as one JSON array (``'[]'`` for none), in its order."""
    order = list(statement._order_by_clauses)
    numbered = statement.add_columns(
        func.row_number().over(order_by=order or None).label(ORDER)
    ).subquery(name)
    rows = func.json_agg(aggregate_order_by(numbered.table_valued(), numbered.c[ORDER]))
    # as text: decoded here by orjson, not by the driver's JSON codec
    return cast(
        select(func.coalesce(rows, literal_column("'[]'::json"))).scalar_subquery(), Text
    ).label(name)


@lru_cache(maxsize=8)
def one_statement(statements: tuple[tuple[str, Any], ...]) -> Any:
    """One statement whose single row holds, per name, that statement's rows as JSON."""
    return select(*(_as_array(name, statement) for name, statement in statements))


def _forms(statement: Any, plan: Plan, json_decoded: Callable[[Any], Any]) -> dict[str, Any]:
    """Which keys of a row to convert, and how (JSON columns arrive already decoded)."""
    keys = [column.key for column in statement.selected_columns]
    return {keys[i]: convert for i, convert in plan(statement) if convert is not json_decoded}


async def rows_by_name(
    session: AsyncSession,
    statements: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    plan: Plan,
    json_decoded: Callable[[Any], Any],
) -> dict[str, list[dict[str, Any]]]:
    """Every statement's rows (JSON-ready dicts, as ``read_models.rows``), in one round trip.
    ``json_decoded``: the converter ``plan`` gives JSON columns, not applied here."""
    named = tuple(statements.items())
    # Core execution on the session's connection (same transaction, no ORM machinery)
    result = await (await connection_of(session)).execute(one_statement(named), dict(params))
    arrays = result.one()
    out: dict[str, list[dict[str, Any]]] = {}
    for (name, statement), array in zip(named, arrays, strict=True):
        forms = _forms(statement, plan, json_decoded)
        found = orjson.loads(array)
        for row in found:
            del row[ORDER]
            for key, convert in forms.items():
                if row[key] is not None:
                    row[key] = convert(row[key])
        out[name] = found
    return out
