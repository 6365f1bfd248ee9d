"""Account requests of professionals without RPPS (issue 18): social workers, educators,
coordinators, home-help staff. They name their structure (a FINESS establishment of the
directory) and their role from a closed list; an admin or a referent of that structure
decides. Approval is the RPPS requests' one (:meth:`AccountRequests.approve`): the same
account creation and activation link, and the person joins the structure in the same
transaction (:func:`structure_rows.join_structure`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from . import audit
from .account_requests import (
    ACTIVATED,
    APPROVED,
    PENDING,
    AccountRequest,
    AccountRequests,
    Approval,
    HomeserverAdmin,
    RequestError,
)
from .database import transaction
from .request_form import LABELS as RPPS_LABELS
from .request_form import validate as validate_rpps
from .structure_rows import is_referent

WITHOUT_RPPS = "sans_rpps"  # the request's ``match``: nothing to compare with the RPPS
OTHER = "autre"
ROLES = {
    "assistant_service_social": "Assistant·e de service social",
    "educateur_specialise": "Éducateur·rice spécialisé·e",
    "coordinateur_parcours": "Coordinateur·rice de parcours",
    "aide_domicile": "Aide à domicile",
    "auxiliaire_vie": "Auxiliaire de vie",
    "cesf": "Conseiller·e en économie sociale et familiale",
    OTHER: "Autre (précisez)",
}
MAX_OTHER_ROLE = 60
_FINESS = re.compile(r"^[0-9][0-9AB][0-9]{7}$")
# a role typed by hand: words of letters, with spaces, hyphens, apostrophes and "·"
_ROLE_TEXT = re.compile(r"^[^\W\d_]{2,}(?:[ '’\-·][^\W\d_]+)*$")
LABELS = {
    **{k: RPPS_LABELS[k] for k in ("nom", "prenom", "email", "telephone", "consentement")},
    "finess": "Structure (n° FINESS)",
    "role": "Fonction",
    "role_autre": "Fonction (autre)",
}


@dataclass(frozen=True)
class SocialForm:
    last_name: str
    first_name: str
    email: str
    phone: str
    finess: str
    role: str  # a key of ROLES
    role_label: str  # what is shown: the list's label, or the text typed for « autre »


def validate(form: Mapping[str, str]) -> tuple[SocialForm | None, dict[str, str]]:
    """(the request, {}) when valid, else (None, {field: French message}). Names, e-mail,
    phone and consent follow the RPPS form's rules exactly (one implementation)."""
    shared = {k: str(form.get(k, "") or "") for k in ("nom", "prenom", "email", "telephone")}
    shared.update(
        identifiant="10000000008",  # stands in for the RPPS number, which is not asked here
        profession="Sans RPPS",
        structure="",
        consentement=str(form.get("consentement", "") or ""),
    )
    base, errors = validate_rpps(shared)
    finess = "".join(str(form.get("finess", "") or "").split()).upper()
    if not finess:
        errors["finess"] = "Structure : choisissez votre structure (n° FINESS)."
    elif not _FINESS.match(finess):
        errors["finess"] = "Structure : un n° FINESS a 9 caractères (chiffres, A ou B)."
    role = str(form.get("role", "") or "")
    label = ROLES.get(role, "")
    if not role:
        errors["role"] = "Fonction : champ obligatoire."
    elif role not in ROLES:
        errors["role"] = "Fonction : choisissez dans la liste."
    elif role == OTHER:
        label = " ".join(str(form.get("role_autre", "") or "").split())
        if not label:
            errors["role_autre"] = "Fonction (autre) : précisez votre fonction."
        elif len(label) > MAX_OTHER_ROLE:
            errors["role_autre"] = f"Fonction (autre) : {MAX_OTHER_ROLE} caractères au maximum."
        elif not _ROLE_TEXT.match(label) or len(set(label.lower()) - set(" '’-·")) < 3:
            errors["role_autre"] = (
                "Fonction (autre) : des mots en lettres (espaces, tirets, apostrophes)."
            )
    if base is None or errors:
        return None, errors
    return SocialForm(
        last_name=base.last_name,
        first_name=base.first_name,
        email=base.email,
        phone=base.phone,
        finess=finess,
        role=role,
        role_label=label,
    ), {}


def submit(
    requests: AccountRequests, form: SocialForm, *, now: datetime | None = None
) -> AccountRequest:
    """Queue the request (audited); the structure must be in the directory, the e-mail
    neither waiting for a decision nor already behind an account."""
    now = now or datetime.now(UTC)
    conn = requests.conn
    with transaction(conn):
        structure = conn.execute(
            "SELECT name FROM annuaire_structure WHERE finess = ? AND active = 1", (form.finess,)
        ).fetchone()
        if structure is None:
            raise RequestError(
                "M_NOT_FOUND",
                f"Structure {form.finess} absente de l'annuaire FINESS : vérifiez le numéro "
                "ou cherchez-la par son nom.",
                404,
            )
        earlier = conn.execute(
            "SELECT status FROM annuaire_account_request WHERE lower(email) = ? "
            "AND status IN (?, ?, ?) ORDER BY id DESC",
            (form.email.lower(), PENDING, APPROVED, ACTIVATED),
        ).fetchone()
        if earlier is not None and earlier[0] == PENDING:
            raise RequestError(
                "M_USER_IN_USE",
                "Une demande est déjà en attente pour cette adresse e-mail.",
                409,
            )
        if earlier is not None:
            raise RequestError(
                "M_USER_IN_USE",
                "Un compte existe déjà pour cette adresse e-mail : connectez-vous, ou "
                "demandez à votre référent de vous ajouter à la structure.",
                409,
            )
        rid = int(
            conn.execute(
                "INSERT INTO annuaire_account_request (created_at, status, last_name, first_name, "
                "identifier, profession, structure, email, phone, consent_at, match, "
                "match_detail, finess, social_role) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "RETURNING id",
                (
                    now.isoformat(),
                    PENDING,
                    form.last_name,
                    form.first_name,
                    "",
                    form.role_label,
                    str(structure[0]),
                    form.email,
                    form.phone,
                    now.isoformat(),
                    WITHOUT_RPPS,
                    f"Sans RPPS — {structure[0]} (FINESS {form.finess}).",
                    form.finess,
                    form.role,
                ),
            ).fetchone()[0]
        )
        audit.record(
            conn,
            actor="public",
            action="demande.creee",
            target=f"demande:{rid}",
            detail={"correspondance": WITHOUT_RPPS, "finess": form.finess, "role": form.role},
            at=now,
        )
    return requests.written(rid)


def may_decide(requests: AccountRequests, req: AccountRequest, user_id: str, admin: bool) -> bool:
    """Admins decide every request; a referent, only those naming her structure."""
    if admin:
        return True
    return bool(req.finess) and is_referent(requests.conn, str(req.finess), user_id)


def _checked(
    requests: AccountRequests, request_id: int, user_id: str, admin: bool
) -> AccountRequest:
    req = requests.get(request_id)
    if req is None or not may_decide(requests, req, user_id, admin):
        with transaction(requests.conn):  # the refusal leaves its row
            audit.record(
                requests.conn,
                actor=user_id,
                action="demande.decision_refusee",
                target=f"demande:{request_id}",
            )
        # a referent learns nothing of other structures' requests
        raise RequestError(
            "M_FORBIDDEN",
            "Seuls un administrateur et les référents de la structure décident de cette demande.",
            403,
        )
    return req


def refuse(
    requests: AccountRequests, request_id: int, *, reason: str, actor: str, admin: bool
) -> AccountRequest:
    _checked(requests, request_id, actor, admin)
    return requests.refuse(request_id, reason=reason, actor=actor)


async def approve(
    requests: AccountRequests,
    request_id: int,
    *,
    actor: str,
    admin: bool,
    api: HomeserverAdmin,
) -> Approval:
    _checked(requests, request_id, actor, admin)
    return await requests.approve(request_id, actor=actor, api=api)


def pending_for(requests: AccountRequests, finess: str, limit: int = 200) -> list[AccountRequest]:
    """The requests waiting for a decision that name this structure."""
    rows = requests.conn.execute(
        "SELECT id FROM annuaire_account_request WHERE finess = ? AND status = ? "
        "ORDER BY id LIMIT ?",
        (finess, PENDING, limit),
    ).fetchall()
    found = [requests.get(int(r[0])) for r in rows]
    return [r for r in found if r is not None]
