"""Who may do what on a patient's file (pure, no I/O).

A principal outside the care circle (or whose membership ended) gets NOT_FOUND: the file's
existence never leaks. A member without access ("non habilité") gets FORBIDDEN. Coordinators
manage the circle. Admins and the bot's service token may do everything (and are audited).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from dossier_service.models.circle import COORDINATOR_ROLES


class Action(Enum):
    READ = "read"
    WRITE = "write"
    MANAGE_CIRCLE = "manage_circle"


class Decision(Enum):
    ALLOW = "allow"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Someone (or the bot) making a request. ``kind`` is "user" or "service"."""

    user_id: str
    kind: str = "user"
    is_admin: bool = False
    on_behalf_of: str | None = None

    @property
    def privileged(self) -> bool:
        return self.is_admin or self.kind == "service"

    @property
    def author(self) -> str:
        """Whose name goes on what this request writes."""
        return self.on_behalf_of or self.user_id

    @property
    def audit_kind(self) -> str:
        if self.kind == "service":
            return "service"
        return "admin" if self.is_admin else "user"


@dataclass(frozen=True)
class Membership:
    role: str
    has_access: bool


def decide(principal: Principal, membership: Membership | None, action: Action) -> Decision:
    if principal.privileged:
        return Decision.ALLOW
    if membership is None:
        return Decision.NOT_FOUND
    if not membership.has_access:
        return Decision.FORBIDDEN
    if action is Action.MANAGE_CIRCLE and membership.role not in COORDINATOR_ROLES:
        return Decision.FORBIDDEN
    return Decision.ALLOW


def may_see_document(
    principal: Principal, membership: Membership | None, restricted_to: Collection[str] | None
) -> bool:
    """A confidential document is visible only to the roles it names (and admins / the bot)."""
    if principal.privileged:
        return True
    if membership is None or not membership.has_access:
        return False
    return not restricted_to or membership.role in restricted_to


def may_read_audit(principal: Principal) -> bool:
    return principal.is_admin


def may_read_events(principal: Principal) -> bool:
    return principal.kind == "service" or principal.is_admin


def may_create_patient(principal: Principal) -> bool:
    """Any authenticated professional may open a file (and becomes its coordinator)."""
    return bool(principal.user_id)
