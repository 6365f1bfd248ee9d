"""Documents of a file: multipart upload (size-limited, MIME sniffed), list, download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, http_exceptions, web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.errors import ApiError
from dossier_service.api.operation import (
    Audit,
    BodyReader,
    Call,
    Operations,
    Param,
    member_of_file,
)
from dossier_service.api.serialize import dump, dump_all, file_download
from dossier_service.documents_store import StoredBlob, safe_filename
from dossier_service.models.documents import Document
from dossier_service.policy import Action
from dossier_service.services import documents

operations = Operations()
DOCUMENTS = "/api/v1/patients/{patient_id}/documents"
READ = member_of_file(Action.READ)
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


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]
    filename: str
    content: bytes
    blob: StoredBlob
    roles: list[str]


class MultipartUpload(BodyReader):
    """The upload, checked before anything is written: an unknown category or refused
    content write nothing. Its fingerprint is the content's hash, category and name."""

    async def read(self, call: Call) -> tuple[Any, bytes]:
        fields, filename, content = await _read_upload(call.request)
        roles = [r.strip() for r in fields.get("restricted_to_roles", "").split(",") if r.strip()]
        if fields["category"] not in call.ctx.config.document_categories:
            raise ApiError("M_INVALID_PARAM", "Catégorie de document inconnu.")
        blob = call.request.app[appkeys.STORE].check(content)
        raw = blob.sha256.encode() + fields["category"].encode() + filename.encode()
        return Upload(fields, filename, content, blob, roles), raw

    def openapi(self, app: web.Application) -> dict[str, Any]:
        categories = list(app[appkeys.CONFIG].document_categories)
        return {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "category"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "category": {"enum": categories},
                        "description": {"type": "string"},
                        "restricted_to_roles": {"type": "string"},
                    },
                }
            }
        }


@operations.post(
    DOCUMENTS,
    access=member_of_file(Action.WRITE),
    audit=Audit("create", "documents"),
    body=MultipartUpload(),
    idempotent=True,
)
async def upload(call: Call, session: AsyncSession) -> tuple[int, Any]:
    sent = call.data(Upload)
    await call.request.app[appkeys.STORE].put(sent.content)
    doc = await call.on_file(
        documents.add_document,
        session,
        blob=sent.blob,
        filename=sent.filename,
        category=sent.fields["category"],
        categories=call.ctx.config.document_categories,
        restricted_to_roles=sent.roles,
        description=sent.fields.get("description", ""),
    )
    return 201, dump(doc)


@operations.get(
    DOCUMENTS,
    access=READ,
    audit=Audit("read", "documents"),
    query=(
        Param("category"),
        Param("limit", "int", 100, low=1, high=500),
        Param("offset", "int", 0),
    ),
)
async def list_documents(call: Call, session: AsyncSession) -> tuple[int, Any]:
    assert call.file is not None
    limit, offset = call.query["limit"], call.query["offset"]
    docs = await documents.list_documents(
        session,
        patient_id=call.patient.id,
        principal=call.me,
        membership=call.file.membership,
        category=call.query["category"],
    )
    window = docs[offset : offset + limit]
    return 200, {
        "items": dump_all(window),
        "total": len(docs),
        "next": offset + limit if offset + limit < len(docs) else None,
    }


async def _document(call: Call, session: AsyncSession, suffix: str = "") -> Document:
    assert call.file is not None
    doc = await documents.get_document(
        session,
        patient_id=call.patient.id,
        document_id=call.path("document_id"),
        principal=call.me,
        membership=call.file.membership,
    )
    call.audit_as(f"documents/{doc.id}{suffix}")
    return doc


@operations.get(DOCUMENTS + "/{document_id}", access=READ, audit=Audit("read", "documents"))
async def get_document(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 200, dump(await _document(call, session))


@operations.get(DOCUMENTS + "/{document_id}/content", access=READ, audit=Audit("read", "documents"))
async def download(call: Call, session: AsyncSession) -> web.StreamResponse:
    doc = await _document(call, session, "/content")
    data = await call.request.app[appkeys.STORE].read(doc.sha256)
    return file_download(data, content_type=doc.mime_type, filename=doc.filename)
