"""Who may ask for an activity extraction of a scope (issue 18, « Authorisation »).

One function, ``may_extract``, used by the API and the page: an admin may extract the whole
platform or any structure; a structure's referent only his structure (the rule below, to be
connected to the structure members/referents table when it lands). No patient identity is
ever decided here: the report names a patient only to a requester in that patient's care
circle (``reports._circle_labels``).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.extraction.reports import PLATFORM
from dossier_service.policy import Principal


async def may_extract(session: AsyncSession, principal: Principal, scope: str) -> bool:
    """Whether ``principal`` may extract ``scope``: ``"plateforme"`` or a FINESS number."""
    if principal.kind != "user":  # a person asks; the service's token alone never does
        return False
    if principal.is_admin:
        return True
    if scope == PLATFORM:
        return False
    # ---- REFERENT RULE (plugs in here) -------------------------------------------------
    # A structure's referent may extract his own structure only:
    #     return await is_referent(session, principal.user_id, finess=scope)
    # with the structure members/referents table (h18c's branch). Until it is merged,
    # nobody but an admin extracts.
    return False
