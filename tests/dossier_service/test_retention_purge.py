"""End of a closed file's retention period: its documents leave the dossier (rows, and
contents no other document names), with an audit row; an open file is never purged, and
only the service (or an admin) may ask."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp

from tests.dossier_service.conftest import COORD, Api


async def upload(api: Api, pid: str, data: bytes) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("category", "ordonnance")
    form.add_field("file", data, filename="o.pdf")
    return await api.ok("POST", f"/api/v1/patients/{pid}/documents", 201, as_user=COORD, data=form)


async def test_purge_of_a_closed_file_removes_its_documents_only(api: Api, tmp_path) -> None:
    closed, other = await api.new_patient(), await api.new_patient()
    shared = b"%PDF-1.4\n shared\n%%EOF\n"
    own = b"%PDF-1.4\n own\n%%EOF\n"
    await upload(api, closed, shared)
    await upload(api, closed, own)
    kept = await upload(api, other, shared)
    path = f"/api/v1/patients/{closed}/retention/purge"

    status, body = await api.call("POST", path, service=True)
    assert status == 409 and body["errcode"] == "CERCLE_CONFLICT"  # still active
    await api.created(f"/api/v1/patients/{closed}/status", {"status": "clos"}, service=True)
    status, body = await api.call("POST", path, as_user=COORD)
    assert status == 403, body  # the coordinator cannot purge

    assert await api.ok("POST", path, service=True) == {"documents_purged": 2}
    listed = await api.ok("GET", f"/api/v1/patients/{closed}/documents", service=True)
    assert listed["items"] == []
    store = tmp_path / "documents"
    own_sha = hashlib.sha256(own).hexdigest()
    assert not (store / own_sha[:2] / own_sha).exists()
    # the other file's document, same content, is intact
    content = await api.ok(
        "GET", f"/api/v1/patients/{other}/documents/{kept['id']}/content", service=True
    )
    assert content == shared
    audit = await api.ok("GET", f"/api/v1/patients/{closed}", service=True)
    assert "retiré(s) du dossier" in str(audit)
