"""`cercle retention`: find the closed files past their retention period, archive each
(file export, documents, PDF transcript) in an encrypted archive, then purge its room with
Synapse's room deletion API and its documents through the dossier's purge endpoint. Nothing
is purged unless its archive was written completely."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from nacl.public import PublicKey

from backup import layout
from backup.retention import ClosedFile, RetentionPolicy, closed_file, is_due
from backup.snapshot import ArchiveWriter, BackupError, Say, versions
from bots.dossier_client import DossierClient
from homeserver.admin_api import AdminApi

# (room_id, title, target path): writes the conversation's transcript as a PDF
TranscriptMaker = Callable[[str, str, Path], Awaitable[None]]


@dataclass(frozen=True)
class RetentionOutcome:
    patient_id: str
    closed_at: datetime
    archive: Path | None  # None: only listed (no --apply)
    room_purged: bool
    already_done: bool = False


@dataclass(kw_only=True)
class RetentionJob:
    dossier: DossierClient
    service_token: str = field(repr=False)
    admin: AdminApi
    transcripts: TranscriptMaker
    out_dir: Path
    recipient: PublicKey
    policy: RetentionPolicy
    server_name: str
    say: Say

    async def closed_files(self) -> list[tuple[ClosedFile, dict[str, Any]]]:
        found = []
        offset = 0
        for _ in range(10_000):  # bounded: 2 million files
            body = await self.dossier.request(
                "GET", "/patients", params={"limit": 200, "offset": offset}
            )
            for item in body["items"]:
                if item.get("file_status") != "clos":
                    continue
                export = await self.dossier.get_file(str(item["id"]))
                closed = closed_file(export) if export else None
                if closed is not None and export is not None:
                    found.append((closed, export))
            if body.get("next") is None:
                break
            offset = int(body["next"])
        return found

    async def run(self, now: datetime, *, apply: bool) -> list[RetentionOutcome]:
        outcomes = []
        for closed, export in await self.closed_files():
            if not is_due(closed, now, self.policy):
                continue
            done = await self._already_done(closed)
            if done is not None:
                outcomes.append(
                    RetentionOutcome(closed.patient_id, closed.closed_at, done, False, True)
                )
                continue
            if not apply:
                outcomes.append(RetentionOutcome(closed.patient_id, closed.closed_at, None, False))
                continue
            self.say(f"Archivage du dossier {closed.patient_id}…")
            archive = await self.archive(closed, export)
            purged = False
            if closed.room_id and await self.admin.room_details(closed.room_id) is not None:
                await self.purge_room(closed.room_id)
                purged = True
            await self.dossier.request(
                "POST", f"/patients/{quote(closed.patient_id, safe='')}/retention/purge"
            )
            outcomes.append(RetentionOutcome(closed.patient_id, closed.closed_at, archive, purged))
        return outcomes

    async def _already_done(self, closed: ClosedFile) -> Path | None:
        """The archive of a file whose room is already purged (a previous run)."""
        archives = sorted(self.out_dir.glob(f"dossier-{closed.patient_id}-*.cbk"))
        if not archives:
            return None
        if closed.room_id and await self.admin.room_details(closed.room_id) is not None:
            return None  # archived, but the purge did not happen: archive and purge again
        return archives[-1]

    async def archive(self, closed: ClosedFile, export: dict[str, Any]) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = datetime.now(UTC)
        name = f"dossier-{closed.patient_id}-{now:%Y%m%dT%H%M%SZ}.cbk"
        final = self.out_dir / name
        partial = self.out_dir / f".{name}.partial"
        with tempfile.TemporaryDirectory(prefix="cercle-retention-") as tmp:
            work = Path(tmp)
            files: list[tuple[str, Path]] = []
            (work / "dossier.json").write_text(json.dumps(export, ensure_ascii=False))
            files.append(("dossier.json", work / "dossier.json"))
            notebook = await self._whole_notebook(closed.patient_id)
            (work / "cahier.json").write_text(json.dumps(notebook, ensure_ascii=False))
            files.append(("cahier.json", work / "cahier.json"))
            for doc in await self.dossier.documents(closed.patient_id):
                path = work / f"doc-{doc['id']}"
                await self._download(closed.patient_id, str(doc["id"]), path)
                files.append((f"documents/{doc['sha256']}-{doc['filename']}", path))
            if closed.room_id:
                pdf = work / "conversation.pdf"
                label = str(export.get("patient", {}).get("label") or closed.patient_id)
                await self.transcripts(closed.room_id, label, pdf)
                files.append(("conversation.pdf", pdf))
            await asyncio.to_thread(self._write, partial, files, closed, now, work)
        partial.replace(final)
        return final

    def _write(
        self,
        partial: Path,
        files: list[tuple[str, Path]],
        closed: ClosedFile,
        now: datetime,
        work: Path,
    ) -> None:
        try:
            with open(partial, "wb") as out:
                os.fchmod(out.fileno(), 0o600)
                writer = ArchiveWriter(out, self.recipient)
                entries = []
                for member, path in files:
                    entry = writer.add_file(f"stores/retention/{member}", path)
                    entries.append({"path": member, **entry})
                manifest = {
                    "format": layout.FORMAT,
                    "kind": "retention",
                    "created_at": now.isoformat(),
                    "server_name": self.server_name,
                    "versions": versions(),
                    "patient_id": closed.patient_id,
                    "room_id": closed.room_id,
                    "closed_at": closed.closed_at.isoformat(),
                    "stores": [
                        {"name": "retention", "kind": "files", "present": True, "entries": entries}
                    ],
                }
                writer.add_bytes(layout.MANIFEST, json.dumps(manifest).encode(), work)
                writer.close()
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    async def _whole_notebook(self, patient_id: str) -> list[dict[str, Any]]:
        """Every liaison entry (the file's export shows only the latest ones)."""
        entries: list[dict[str, Any]] = []
        before = None
        for _ in range(100_000):  # bounded: 20 million entries
            body = await self.dossier.request(
                "GET",
                f"/patients/{quote(patient_id, safe='')}/notebook",
                params={"limit": 200, "before": before},
            )
            entries.extend(body["items"])
            before = body.get("next_before")
            if before is None:
                break
        return entries

    async def _download(self, patient_id: str, document_id: str, target: Path) -> None:
        url = (
            f"{self.dossier.base_url}/api/v1/patients/{patient_id}/documents/{document_id}/content"
        )
        headers = {"Authorization": f"Bearer {self.service_token}"}
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
            if resp.status != 200:
                raise BackupError(f"document {document_id} illisible (HTTP {resp.status})")
            with open(target, "wb") as out:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    out.write(chunk)

    async def purge_room(self, room_id: str, timeout: float = 300.0) -> None:
        delete_id = await self.admin.delete_room(room_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            status = (await self.admin.delete_status(delete_id)).get("status")
            if status == "complete":
                return
            if status == "failed":
                raise BackupError(f"Synapse n'a pas pu purger le salon {room_id}")
            await asyncio.sleep(0.5)
        raise BackupError(f"purge du salon {room_id} non terminée après {timeout:.0f} s")
