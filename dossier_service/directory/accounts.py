"""Links between Matrix accounts and professionals of the directory.

A Matrix account is linked to a professional by the RPPS id stored on the account (Synapse
``external_ids`` with ``auth_provider`` "rpps") or by a confirmed e-mail (the account's
e-mail threepid equals a practice e-mail of exactly one professional). Linked accounts get
the display name "NOM Prénom — Profession, Ville", which is also what Element's own user
search (Synapse's user directory) matches when someone types a profession or a city.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from . import audit
from .account_requests import RPPS_PROVIDER
from .database import Connection, transaction
from .search import Directory, Hit
from .store import save_link


class UserAdmin(Protocol):
    async def all_users(self, **filters: Any) -> list[dict[str, Any]]: ...
    async def get_user(self, user_id: str) -> dict[str, Any] | None: ...
    async def set_displayname(self, user_id: str, displayname: str) -> None: ...


@dataclass
class LinkReport:
    linked: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    unmatched: int = 0


def link(conn: Connection, mxid: str, national_id: str, *, source: str, actor: str) -> None:
    now = datetime.now(UTC)
    with transaction(conn):
        conn.execute(
            "DELETE FROM annuaire_account_link WHERE national_id = ? AND mxid <> ?",
            (national_id, mxid),
        )
        save_link(conn, mxid, national_id, source=source, at=now.isoformat())
        audit.record(
            conn,
            actor=actor,
            action="compte.lie",
            target=mxid,
            detail={"id_national": national_id, "source": source},
            at=now,
        )


def _match(directory: Directory, user: dict[str, Any]) -> tuple[Hit | None, str]:
    for ext in user.get("external_ids") or []:
        if ext.get("auth_provider") == RPPS_PROVIDER:
            hit = directory.professional(str(ext.get("external_id", "")))
            if hit is not None:
                return hit, "rpps"
    for pid in user.get("threepids") or []:
        if pid.get("medium") == "email" and pid.get("address"):
            hits = directory.by_email(str(pid["address"]))
            if len(hits) == 1:
                return hits[0], "email"
    return None, ""


async def link_accounts(
    conn: Connection, directory: Directory, api: UserAdmin, *, actor: str
) -> LinkReport:
    """Link every Synapse account that carries an RPPS id or a directory e-mail, and set
    the display names of linked accounts."""
    report = LinkReport()
    known = dict(conn.execute("SELECT mxid, national_id FROM annuaire_account_link").fetchall())
    for summary in await api.all_users():
        mxid = str(summary.get("name", ""))
        user = await api.get_user(mxid) if mxid else None
        if not user:
            continue
        hit, source = _match(directory, user)
        if hit is None and mxid in known:
            hit, source = directory.professional(known[mxid]), "existant"
        if hit is None:
            report.unmatched += 1
            continue
        if known.get(mxid) != hit.national_id:
            link(conn, mxid, hit.national_id, source=source, actor=actor)
            report.linked.append((mxid, hit.national_id))
        if user.get("displayname") != hit.display_name:
            await api.set_displayname(mxid, hit.display_name)
            report.renamed.append(mxid)
    return report
