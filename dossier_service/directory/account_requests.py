"""Account requests ("demandes de création de compte"): queue, directory match, decision,
one-time activation link. Every step writes an audit row in the same transaction.

Statuses: ``en_attente`` -> ``approuvee`` (account created, activation link issued) ->
``activee`` (password set), or ``refusee`` (with the reason). Matches: ``trouve`` (the
identifier is in the directory with the same name), ``incoherent`` (found, but the name or
profession differs), ``introuvable``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from deployment.conventions import PARIS
from dossier_service.refusal import Refusal

from . import audit
from .database import Connection, transaction
from .display import display_name
from .normalize import fold, joined
from .request_form import RequestForm, same_name
from .search import Directory, Hit
from .store import save_link
from .structure_rows import join_structure
from .vocabulary import PROFESSION_WORDS, SPECIALTY_WORDS

PENDING, APPROVED, REFUSED, ACTIVATED = "en_attente", "approuvee", "refusee", "activee"
FOUND, INCONSISTENT, NOT_FOUND = "trouve", "incoherent", "introuvable"
MIN_PASSWORD = 10
RPPS_PROVIDER = "rpps"


class RequestError(Refusal):
    """A refused operation on an account request."""


class HomeserverAdmin(Protocol):
    """What approval and activation need from :class:`homeserver.admin_api.AdminApi`."""

    async def get_user(self, user_id: str) -> dict[str, Any] | None: ...
    async def create_or_modify_user(self, user_id: str, **fields: Any) -> dict[str, Any]: ...
    async def reset_password(
        self, user_id: str, new_password: str, *, logout_devices: bool = True
    ) -> None: ...


@dataclass(frozen=True)
class AccountRequest(RequestForm):
    """A request as stored: the form as it was sent, then its place in the queue (each field
    is the column of the same name)."""

    id: int
    created_at: str
    status: str
    match: str
    match_detail: str
    national_id: str | None
    decided_at: str | None
    decided_by: str | None
    refusal_reason: str | None
    mxid: str | None
    finess: str | None = None  # without RPPS: the structure, its referents decide too
    social_role: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cree_le": self.created_at,
            "statut": self.status,
            "nom": self.last_name,
            "prenom": self.first_name,
            "identifiant": self.identifier,
            "profession": self.profession,
            "structure": self.structure,
            "email": self.email,
            "telephone": self.phone,
            "correspondance": self.match,
            "detail_correspondance": self.match_detail,
            "id_national": self.national_id,
            "decide_le": self.decided_at,
            "decide_par": self.decided_by,
            "motif_refus": self.refusal_reason,
            "compte_matrix": self.mxid,
            "finess": self.finess,
            "role_social": self.social_role,
        }


@dataclass(frozen=True)
class Approval:
    request_id: int
    mxid: str
    display_name: str
    activation_token: str = field(repr=False)
    expires_at: datetime

    def activation_url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/annuaire/activation/{self.activation_token}"


_COLUMNS = ", ".join(f.name for f in fields(AccountRequest))  # in the dataclass's order


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def match_request(directory: Directory, form: RequestForm) -> tuple[str, str, Hit | None]:
    """Compare a request with the directory: (match, detail in French, professional)."""
    hit = directory.professional(form.identifier)
    if hit is None:
        return NOT_FOUND, "Identifiant absent de l'annuaire importé.", None
    problems = []
    if not same_name(hit.last_name, form.last_name):
        problems.append(f"nom dans l'annuaire : {hit.last_name}")
    if not same_name(hit.first_name, form.first_name):
        problems.append(f"prénom dans l'annuaire : {hit.first_name}")
    typed = joined(form.profession)
    code = PROFESSION_WORDS.get(typed) or ("10" if typed in SPECIALTY_WORDS else None)
    if (
        code is None
        and joined(hit.profession) != typed
        and not fold(hit.profession).startswith(fold(form.profession))
    ) or (code is not None and code != hit.profession_code):
        problems.append(f"profession dans l'annuaire : {hit.profession}")
    if problems:
        return INCONSISTENT, "Incohérence : " + " ; ".join(problems) + ".", hit
    return FOUND, f"Trouvé dans l'annuaire : {hit.display_name}.", hit


def localpart_for(first_name: str, last_name: str) -> str:
    base = f"{joined(first_name)}.{joined(last_name)}"
    base = re.sub(r"[^a-z0-9._\-]", "", base).strip(".") or "pro"
    return base[:60]


class AccountRequests:
    def __init__(
        self,
        conn: Connection,
        directory: Directory,
        *,
        server_name: str,
        activation_hours: int = 72,
    ) -> None:
        self.conn = conn
        self.directory = directory
        self.server_name = server_name
        self.activation_hours = activation_hours

    # --- queue --------------------------------------------------------------------------
    def submit(self, form: RequestForm, *, now: datetime | None = None) -> AccountRequest:
        now = now or datetime.now(UTC)
        match, detail, hit = match_request(self.directory, form)
        with transaction(self.conn):
            rid = int(
                self.conn.execute(
                    "INSERT INTO annuaire_account_request (created_at, status, last_name, first_name, "
                    "identifier, profession, structure, email, phone, consent_at, match, "
                    "match_detail, national_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                    (
                        now.isoformat(),
                        PENDING,
                        form.last_name,
                        form.first_name,
                        form.identifier,
                        form.profession,
                        form.structure,
                        form.email,
                        form.phone,
                        now.isoformat(),
                        match,
                        detail,
                        hit.national_id if hit else None,
                    ),
                ).fetchone()[0]
            )
            audit.record(
                self.conn,
                actor="public",
                action="demande.creee",
                target=f"demande:{rid}",
                detail={"correspondance": match},
                at=now,
            )
        return self.written(rid)

    def get(self, request_id: int) -> AccountRequest | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM annuaire_account_request WHERE id = ?", (request_id,)
        ).fetchone()
        return AccountRequest(*row) if row else None

    def written(self, request_id: int) -> AccountRequest:
        """A request this store has just written (there, or the store is broken)."""
        found = self.get(request_id)
        assert found is not None
        return found

    def list(self, status: str | None = None, limit: int = 200) -> list[AccountRequest]:
        if status:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM annuaire_account_request WHERE status = ? ORDER BY id LIMIT ?",
                (status, limit),
            )
        else:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM annuaire_account_request ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [AccountRequest(*r) for r in rows]

    def _pending(self, request_id: int) -> AccountRequest:
        req = self.get(request_id)
        if req is None:
            raise RequestError("M_NOT_FOUND", f"Demande {request_id} introuvable.", 404)
        if req.status != PENDING:
            raise RequestError(
                "M_FORBIDDEN", f"Demande {request_id} déjà traitée ({req.status}).", 409
            )
        return req

    # --- decisions ----------------------------------------------------------------------
    def refuse(
        self, request_id: int, *, reason: str, actor: str, now: datetime | None = None
    ) -> AccountRequest:
        reason = " ".join(reason.split())
        if not reason:
            raise RequestError("M_MISSING_PARAM", "Le motif du refus est obligatoire.")
        if len(reason) > 500:
            raise RequestError("M_INVALID_PARAM", "Motif trop long (500 caractères au maximum).")
        self._pending(request_id)
        now = now or datetime.now(UTC)
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE annuaire_account_request SET status=?, decided_at=?, decided_by=?, "
                "refusal_reason=? WHERE id=? AND status=?",
                (REFUSED, now.isoformat(), actor, reason, request_id, PENDING),
            )
            audit.record(
                self.conn,
                actor=actor,
                action="demande.refusee",
                target=f"demande:{request_id}",
                detail={"motif": reason},
                at=now,
            )
        return self.written(request_id)

    async def approve(
        self, request_id: int, *, actor: str, api: HomeserverAdmin, now: datetime | None = None
    ) -> Approval:
        """Create the Matrix account (approved, directory display name, RPPS id linked)
        and issue a one-time activation link."""
        req = self._pending(request_id)
        now = now or datetime.now(UTC)
        hit = self.directory.professional(req.national_id) if req.national_id else None
        if hit is not None and hit.mxid:
            raise RequestError(
                "M_USER_IN_USE", f"Ce professionnel a déjà un compte : {hit.mxid}.", 409
            )
        name = (
            hit.display_name if hit else display_name(req.last_name, req.first_name, req.profession)
        )
        mxid = await self._free_user_id(req, api)
        fields: dict[str, Any] = {
            "displayname": name,
            "approved": True,
            "threepids": [{"medium": "email", "address": req.email}],
        }
        if hit is not None:
            fields["external_ids"] = [
                {"auth_provider": RPPS_PROVIDER, "external_id": hit.national_id}
            ]
        try:
            await api.create_or_modify_user(mxid, **fields)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:  # Synapse: external id already in use
                raise RequestError(
                    "M_USER_IN_USE",
                    "Ce numéro RPPS/ADELI est déjà attaché à un autre compte "
                    "Matrix : liez les comptes avec « cercle annuaire lier ».",
                    409,
                ) from None
            raise
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=self.activation_hours)
        with transaction(self.conn):
            changed = self.conn.execute(
                "UPDATE annuaire_account_request SET status=?, decided_at=?, decided_by=?, mxid=? "
                "WHERE id=? AND status=?",
                (APPROVED, now.isoformat(), actor, mxid, request_id, PENDING),
            ).rowcount
            if changed != 1:
                raise RequestError("M_FORBIDDEN", f"Demande {request_id} déjà traitée.", 409)
            if hit is not None:
                save_link(self.conn, mxid, hit.national_id, source="demande", at=now.isoformat())
            if req.finess:  # without RPPS: a member of the structure the request names
                join_structure(self.conn, req.finess, mxid, name, actor=actor, at=now)
            self.conn.execute(
                "INSERT INTO annuaire_activation (token_hash, request_id, mxid, created_at, expires_at) "
                "VALUES (?,?,?,?,?)",
                (token_hash(token), request_id, mxid, now.isoformat(), expires.isoformat()),
            )
            audit.record(
                self.conn,
                actor=actor,
                action="demande.approuvee",
                target=f"demande:{request_id}",
                detail={"compte": mxid, "lien_rpps": bool(hit)},
                at=now,
            )
        return Approval(request_id, mxid, name, token, expires)

    async def _free_user_id(self, req: AccountRequest, api: HomeserverAdmin) -> str:
        base = localpart_for(req.first_name, req.last_name)
        for n in range(1, 100):
            mxid = f"@{base}{'' if n == 1 else n}:{self.server_name}"
            if await api.get_user(mxid) is None:
                return mxid
        raise RequestError("M_USER_IN_USE", "Aucun identifiant Matrix libre pour ce nom.", 409)

    def email_activation(
        self, approval: Approval, *, smtp: Any, public_url: str, actor: str
    ) -> str:
        """Send the activation link by e-mail (blocking: run it in a thread); audited."""

        from .mail import activation_message, send

        req = self.get(approval.request_id)
        if req is None:
            raise RequestError("M_NOT_FOUND", "Demande introuvable.", 404)
        expires = approval.expires_at.astimezone(PARIS)
        send(
            smtp,
            activation_message(
                sender=smtp.sender,
                to=req.email,
                display_name=approval.display_name,
                mxid=approval.mxid,
                url=approval.activation_url(public_url),
                expires=expires.strftime("%d/%m/%Y %H:%M"),
            ),
        )
        with transaction(self.conn):
            audit.record(
                self.conn,
                actor=actor,
                action="demande.lien_envoye",
                target=f"demande:{approval.request_id}",
            )
        return req.email

    # --- activation ---------------------------------------------------------------------
    def activation(self, token: str, *, now: datetime | None = None) -> tuple[int, str]:
        """(request id, mxid) of a valid, unused, unexpired link, else RequestError."""
        now = now or datetime.now(UTC)
        row = self.conn.execute(
            "SELECT request_id, mxid, expires_at, used_at FROM annuaire_activation WHERE token_hash = ?",
            (token_hash(token),),
        ).fetchone()
        if row is None or row[3] is not None:
            raise RequestError("M_NOT_FOUND", "Lien d'activation invalide ou déjà utilisé.", 404)
        if datetime.fromisoformat(row[2]) <= now:
            raise RequestError(
                "M_FORBIDDEN",
                "Lien d'activation expiré : contactez l'administrateur pour en obtenir un nouveau.",
                410,
            )
        return int(row[0]), str(row[1])

    async def activate(
        self, token: str, password: str, *, api: HomeserverAdmin, now: datetime | None = None
    ) -> str:
        now = now or datetime.now(UTC)
        request_id, mxid = self.activation(token, now=now)
        if len(password) < MIN_PASSWORD:
            raise RequestError(
                "M_WEAK_PASSWORD", f"Mot de passe trop court ({MIN_PASSWORD} caractères minimum)."
            )
        if len(password) > 512:
            raise RequestError("M_INVALID_PARAM", "Mot de passe trop long.")
        with transaction(self.conn):
            used = self.conn.execute(
                "UPDATE annuaire_activation SET used_at=? WHERE token_hash=? AND used_at IS NULL",
                (now.isoformat(), token_hash(token)),
            ).rowcount
            if used != 1:
                raise RequestError("M_NOT_FOUND", "Lien d'activation déjà utilisé.", 404)
            await api.reset_password(mxid, password, logout_devices=True)
            self.conn.execute(
                "UPDATE annuaire_account_request SET status=? WHERE id=?", (ACTIVATED, request_id)
            )
            audit.record(
                self.conn,
                actor=mxid,
                action="compte.active",
                target=f"demande:{request_id}",
                at=now,
            )
        return mxid
