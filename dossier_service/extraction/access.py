"""Who may ask for an activity extraction of a scope (issue 18, « Authorisation »).

One function, ``may_extract``, used by the API and the page: an admin may extract the whole
platform or any structure; a structure's current referent (``structure_members``) only his
structure. No patient identity is
ever decided here: the report names a patient only to a requester in that patient's care
circle (``reports._circle_files``).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.extraction.reports import PLATFORM
from dossier_service.policy import Principal
from dossier_service.services.structures import membership


async def may_extract(session: AsyncSession, principal: Principal, scope: str) -> bool:
    """Whether ``principal`` may extract ``scope``: ``"plateforme"`` or a FINESS number."""
    if principal.kind != "user":  # a person asks; the service's token alone never does
        return False
    if principal.is_admin:
        return True
    if scope == PLATFORM:
        return False
    # a structure's referent extracts his own structure only
    mine = await membership(session, scope, principal.user_id)
    return mine is not None and mine.role == "referent"
