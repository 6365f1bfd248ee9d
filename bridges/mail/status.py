"""What ``cercle status`` says of each bridged mailbox: state, last mail, error (read-only
look at the bridge's SQLite file; no password, no mail content in it)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bots.dossier_link.notices import fr_date

STATE_LABELS = {
    "nouvelle": "en attente",
    "connexion": "connexion…",
    "connectée": "connectée",
    "connexion refusée": "connexion refusée",
    "erreur": "erreur",
    "déconnectée": "déconnectée par sa titulaire",
}


def mailbox_report(database: Path) -> list[dict[str, Any]]:
    if not database.exists():
        return []
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT owner, address, state, error, last_mail_at, "
            "(SELECT count(*) FROM mails m WHERE m.owner = b.owner) "
            "FROM mailboxes b ORDER BY owner"
        ).fetchall()
    except sqlite3.OperationalError:  # created, not yet migrated by the bridge
        return []
    finally:
        conn.close()
    return [
        {
            "owner": owner,
            "address": address,
            "state": state,
            "error": error,
            "last_mail_at": (
                datetime.fromtimestamp(last / 1000, UTC).isoformat() if last else None
            ),
            "mails": count,
        }
        for owner, address, state, error, last, count in rows
    ]


def mailbox_lines(report: list[dict[str, Any]]) -> list[str]:
    """Pure: the text lines of ``cercle status`` (dates in Europe/Paris)."""
    lines = []
    for box in report:
        last = (
            f", dernier courrier le {fr_date(datetime.fromisoformat(box['last_mail_at']))}"
            if box["last_mail_at"]
            else ", aucun courrier relayé"
        )
        error = f" — {box['error']}" if box["error"] else ""
        state = STATE_LABELS.get(box["state"], box["state"])
        lines.append(f"    {box['address']} ({box['owner']}) : {state}{last}{error}")
    return lines
