"""Documents of a file: upload (multipart, size-limited, type sniffed by the store) and download."""

from __future__ import annotations

from aiohttp import BodyPartReader, http_exceptions, web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys, auth
from dossier_service.api.context import open_file
from dossier_service.api.serialize import file_download
from dossier_service.documents_store import DocumentRejected, safe_filename
from dossier_service.models.circle import ROLES
from dossier_service.policy import Action
from dossier_service.services import documents as documents_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.pagectx import check_csrf, page_context
from dossier_service.web.pages_patients import render_file
from dossier_service.web.rendering import OWN_CSP_HEADER

routes = web.RouteTableDef()
FIELD_MAX = 4096
# csrf, file, category, description and one box per role that may see a confidential one
MAX_PARTS = 4 + len(ROLES) + 1


async def _read_field(part: BodyPartReader) -> str:
    data = await part.read()
    if len(data) > FIELD_MAX:
        raise DocumentRejected("M_TOO_LARGE", "Champ trop long.", 413)
    return data.decode("utf-8", "replace").strip()


@routes.post("/patients/{pid}/documents")
async def upload(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    pid = request.match_info["pid"]
    store = request.app[appkeys.STORE]
    limit = store.max_size
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        return await render_file(
            request, ctx, pid, error="Document trop volumineux.", status=413, open_form="document"
        )
    fields: dict[str, list[str]] = {}
    content: bytes | None = None
    filename = ""
    try:
        reader = await request.multipart()
        # the CSRF token comes first in the form: checked before any other part is read
        first = await reader.next()
        token = None
        if isinstance(first, BodyPartReader) and first.name == auth.CSRF_FIELD:
            token = await _read_field(first)
        check_csrf(ctx, token)
        parts = 1
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS or not isinstance(part, BodyPartReader):
                raise DocumentRejected("M_TOO_LARGE", "Envoi invalide (trop de champs).", 413)
            if part.name == "file":
                if content is not None:
                    raise DocumentRejected("M_INVALID_PARAM", "Un seul fichier par envoi.")
                filename = part.filename or ""
                chunks, size = [], 0
                while chunk := await part.read_chunk(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise DocumentRejected("M_TOO_LARGE", "Document trop volumineux.", 413)
                    chunks.append(chunk)
                content = b"".join(chunks)
            elif part.name:
                fields.setdefault(part.name, []).append(await _read_field(part))
        if content is None or not filename:
            raise DocumentRejected("M_MISSING_PARAM", "Choisissez un fichier à déposer.")
        name = safe_filename(filename)
        roles = [r for r in fields.get("restricted_to_roles", []) if r]
        if any(r not in ROLES for r in roles):
            raise DocumentRejected("M_INVALID_PARAM", "Rôle inconnu dans la confidentialité.")
        category = (fields.get("category") or [""])[0]
        if category not in ctx.config.document_categories:
            raise DocumentRejected("M_INVALID_PARAM", "Catégorie de document inconnue.")
        async with ctx.db.transaction() as session:
            # access first: an outsider learns nothing, not even whether the file was valid
            access = await open_file(session, ctx, pid, Action.WRITE, "page:document")
            blob = store.check(content)
            document = await documents_service.add_document(
                session,
                principal=ctx.principal,
                patient=access.patient,
                blob=blob,
                filename=name,
                category=category,
                categories=ctx.config.document_categories,
                restricted_to_roles=roles or None,
                description=(fields.get("description") or [""])[0][:1000],
            )
            await ctx.audit(session, action="create", resource="page:document", patient_id=pid)
            await store.put(content)  # inside the transaction: a failed write stores no row
            del document
    except DocumentRejected as exc:
        return await render_file(
            request, ctx, pid, error=exc.message, status=exc.status, open_form="document"
        )
    except (http_exceptions.HttpProcessingError, ValueError):
        return await render_file(
            request,
            ctx,
            pid,
            error="Envoi illisible : recommencez.",
            status=400,
            open_form="document",
        )
    except ServiceError as exc:
        return await render_file(
            request, ctx, pid, error=exc.message, status=exc.status, open_form="document"
        )
    raise web.HTTPSeeOther(f"/patients/{pid}?ok=document#documents")


@routes.get("/patients/{pid}/documents/{did}")
async def download(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    pid = request.match_info["pid"]
    session: AsyncSession
    async with ctx.db.transaction() as session:
        access = await open_file(session, ctx, pid, Action.READ, "page:document")
        document = await documents_service.get_document(
            session,
            patient_id=access.patient.id,
            document_id=request.match_info["did"][:36],
            principal=ctx.principal,
            membership=access.membership,
        )
        await ctx.audit(
            session, action="read", resource=f"page:document:{document.id}", patient_id=pid
        )
    data = await request.app[appkeys.STORE].read(document.sha256)
    ancestors = ctx.config.element_origin.strip() or "'none'"
    return file_download(
        data,
        content_type=document.mime_type,
        filename=document.filename,
        inline=document.mime_type in ("application/pdf", "image/png", "image/jpeg"),
        headers={
            OWN_CSP_HEADER: "1",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; "
            f"style-src 'unsafe-inline'; sandbox; frame-ancestors {ancestors}",
        },
    )
