"""Documents: metadata rows beside content-addressed blobs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.documents_store import StoredBlob
from dossier_service.models.circle import ROLES
from dossier_service.models.documents import Document
from dossier_service.models.patient import Patient
from dossier_service.policy import Membership, Principal, may_see_document
from dossier_service.services import journal
from dossier_service.services.errors import InvalidInput, NotFound


async def list_documents(
    session: AsyncSession,
    *,
    patient_id: str,
    principal: Principal,
    membership: Membership | None,
    category: str | None = None,
) -> list[Document]:
    """The documents the principal may see (confidential ones only for their roles)."""
    query = select(Document).where(Document.patient_id == patient_id)
    if category:
        query = query.where(Document.category == category)
    rows = await session.exec(query.order_by(col(Document.uploaded_at).desc()))
    return [d for d in rows.all() if may_see_document(principal, membership, d.restricted_to_roles)]


async def get_document(
    session: AsyncSession,
    *,
    patient_id: str,
    document_id: str,
    principal: Principal,
    membership: Membership | None,
) -> Document:
    doc = await session.get(Document, document_id)
    if (
        doc is None
        or doc.patient_id != patient_id
        or not may_see_document(principal, membership, doc.restricted_to_roles)
    ):
        raise NotFound("Document introuvable.")
    return doc


async def add_document(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    blob: StoredBlob,
    filename: str,
    category: str,
    categories: Sequence[str],
    restricted_to_roles: Sequence[str] | None = None,
    description: str = "",
) -> Document:
    if category not in categories:
        raise InvalidInput("Catégorie de document inconnue.", field="category")
    roles = list(restricted_to_roles or [])
    if any(r not in ROLES for r in roles):
        raise InvalidInput("Rôle inconnu dans la confidentialité.", field="restricted_to_roles")
    doc = Document(
        patient_id=patient.id,
        category=category,
        filename=filename,
        sha256=blob.sha256,
        size=blob.size,
        mime_type=blob.mime_type,
        restricted_to_roles=roles or None,
        description=description[:1000],
        uploaded_by=principal.author,
    )
    session.add(doc)
    confidential = " (confidentiel)" if roles else ""
    await journal.note(
        session, principal, patient, f"Document ajouté dans la catégorie {category}{confidential}"
    )
    await session.flush()
    payload = {"document_id": doc.id, "category": category, "confidential": bool(roles)}
    await journal.tell(session, principal, patient, journal.DOCUMENT_ADDED, payload)
    return doc
