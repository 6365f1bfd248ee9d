"""Documents of a file: multipart upload (size-limited, MIME sniffed), list, download."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, http_exceptions, web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import context, open_file, query_int
from dossier_service.api.errors import ApiError
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump, dump_all
from dossier_service.documents_store import safe_filename
from dossier_service.policy import Action
from dossier_service.services import documents

routes = web.RouteTableDef()
_FIELD_LIMIT = 2000
_MAX_PARTS = 12  # file, category, description, restricted_to_roles (one per role)


async def _read_upload(request: web.Request) -> tuple[dict[str, str], str, bytes]:
    """The form fields, the file's name and its bytes; oversized bodies stop being read,
    malformed ones (bad part headers, boundaries) are a 400."""
    try:
        return await _read_parts(request)
    except (http_exceptions.HttpProcessingError, ValueError):
        raise ApiError("M_INVALID_PARAM", "Envoi multipart illisible.") from None


async def _read_parts(request: web.Request) -> tuple[dict[str, str], str, bytes]:
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError("M_INVALID_PARAM", "Envoi attendu en multipart/form-data.")
    max_size = request.app[appkeys.STORE].max_size
    if request.content_length is not None and request.content_length > max_size + 64 * 1024:
        raise ApiError("M_TOO_LARGE", "Document trop volumineux.")
    fields: dict[str, str] = {}
    filename: str | None = None
    content: bytes | None = None
    reader = await request.multipart()
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > _MAX_PARTS:
            raise ApiError("M_TOO_LARGE", "Envoi invalide (trop de champs).")
        if not isinstance(part, BodyPartReader):
            raise ApiError("M_INVALID_PARAM", "Envoi multipart imbriqué non accepté.")
        if part.name == "file":
            if content is not None:
                raise ApiError("M_INVALID_PARAM", "Un seul fichier par envoi.")
            filename = part.filename or ""
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > max_size:
                    raise ApiError("M_TOO_LARGE", "Document trop volumineux.")
                chunks.append(chunk)
            content = b"".join(chunks)
        elif part.name in ("category", "description", "restricted_to_roles"):
            value = await part.read(decode=True)
            if len(value) > _FIELD_LIMIT:
                raise ApiError("M_TOO_LARGE")
            text = value.decode("utf-8", "replace").strip()
            fields[part.name] = f"{fields[part.name]},{text}" if part.name in fields else text
        else:
            raise ApiError("M_INVALID_PARAM", "Champ d'envoi inconnu.")
    if content is None or filename is None:
        raise ApiError("M_MISSING_PARAM", "Fichier manquant.")
    if "category" not in fields:
        raise ApiError("M_MISSING_PARAM", "Catégorie manquante.")
    return fields, safe_filename(filename), content


@routes.post("/api/v1/patients/{patient_id}/documents")
async def upload(request: web.Request) -> web.Response:
    ctx = context(request)
    store = request.app[appkeys.STORE]
    fields, filename, content = await _read_upload(request)
    roles = [r.strip() for r in fields.get("restricted_to_roles", "").split(",") if r.strip()]
    # checked before anything is written: unknown category or refused content write nothing
    if fields["category"] not in ctx.config.document_categories:
        raise ApiError("M_INVALID_PARAM", "Catégorie de document inconnu.")
    blob = store.check(content)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "documents"
        )
        await ctx.audit(
            session, action="create", resource="documents", patient_id=access.patient.id
        )
        await store.put(content)
        doc = await documents.add_document(
            session,
            principal=ctx.principal,
            patient=access.patient,
            blob=blob,
            filename=filename,
            category=fields["category"],
            categories=ctx.config.document_categories,
            restricted_to_roles=roles,
            description=fields.get("description", ""),
        )
        return 201, dump(doc)

    key = idempotency_key(request)
    raw = blob.sha256.encode() + fields["category"].encode() + filename.encode()
    return await run(ctx, work, key=key, raw=raw)


@routes.get("/api/v1/patients/{patient_id}/documents")
async def list_documents(request: web.Request) -> web.Response:
    ctx = context(request)
    category = request.query.get("category") or None
    limit = query_int(request, "limit", 100, low=1, high=500)
    offset = query_int(request, "offset", 0)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "documents"
        )
        await ctx.audit(session, action="read", resource="documents", patient_id=access.patient.id)
        docs = await documents.list_documents(
            session,
            patient_id=access.patient.id,
            principal=ctx.principal,
            membership=access.membership,
            category=category,
        )
        window = docs[offset : offset + limit]
        return 200, {
            "items": dump_all(window),
            "total": len(docs),
            "next": offset + limit if offset + limit < len(docs) else None,
        }

    return await run(ctx, work)


@routes.get("/api/v1/patients/{patient_id}/documents/{document_id}")
async def get_document(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "documents"
        )
        doc = await documents.get_document(
            session,
            patient_id=access.patient.id,
            document_id=request.match_info["document_id"],
            principal=ctx.principal,
            membership=access.membership,
        )
        await ctx.audit(
            session, action="read", resource=f"documents/{doc.id}", patient_id=access.patient.id
        )
        return 200, dump(doc)

    return await run(ctx, work)


@routes.get("/api/v1/patients/{patient_id}/documents/{document_id}/content")
async def download(request: web.Request) -> web.Response:
    ctx = context(request)
    async with ctx.db.transaction() as session:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "documents"
        )
        doc = await documents.get_document(
            session,
            patient_id=access.patient.id,
            document_id=request.match_info["document_id"],
            principal=ctx.principal,
            membership=access.membership,
        )
        await ctx.audit(
            session,
            action="read",
            resource=f"documents/{doc.id}/content",
            patient_id=access.patient.id,
        )
        data = await request.app[appkeys.STORE].read(doc.sha256)
    return web.Response(
        body=data,
        content_type=doc.mime_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
