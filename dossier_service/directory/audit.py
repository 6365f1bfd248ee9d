"""Audit rows of the directory (who did what to which request / account, when)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .database import Connection


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Write one audit row; the caller owns the transaction (change + audit commit together)."""
    conn.execute(
        "INSERT INTO annuaire_audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (
            (at or datetime.now(UTC)).isoformat(),
            actor,
            action,
            target,
            json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        ),
    )


def entries(
    conn: Connection, *, target: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    sql = "SELECT id, at, actor, action, target, detail FROM annuaire_audit"
    args: list[Any] = []
    if target is not None:
        sql += " WHERE target = ?"
        args.append(target)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return [
        {
            "id": r[0],
            "at": r[1],
            "actor": r[2],
            "action": r[3],
            "target": r[4],
            "detail": json.loads(r[5]),
        }
        for r in conn.execute(sql, args)
    ]
