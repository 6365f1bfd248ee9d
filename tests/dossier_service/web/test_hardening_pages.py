"""Issue 12, findings 3 and 4 on the pages: a life-line episode far in the future (written
before dates were bounded) does not break the file page, and the forms refuse out-of-range
dates and control characters with a French message naming the field."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from dossier_service.models.lifeline import Episode


@pytest.mark.parametrize(
    ("section", "form", "said"),
    [
        (
            "parcours",
            {"theme": "Suivi / Réunion", "starts_on": "2025-01-05", "ends_on": "9999-12-31"},
            "hors limites",
        ),
        (
            "hospitalisations",
            {"structure": "CHU", "admission_at": "0001-01-01T00:00"},
            "hors limites",
        ),
        ("memos", {"text": "clé\x00paillasson"}, "contrôle"),
    ],
)
async def test_forms_refuse_out_of_range_dates_and_control_characters(
    site, section: str, form: dict[str, str], said: str
) -> None:
    patient = await site.seed_patient()
    status, body, _ = await site.post(
        site.person(site.COORD), f"/patients/{patient.id}/{section}", form
    )
    assert status == 400 and said in body


async def test_an_episode_ending_in_9999_leaves_the_file_page_readable(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    # a row stored before the bounds existed (the form now refuses it, above)
    async with site.db.transaction() as session:
        session.add(
            Episode(
                patient_id=patient.id,
                theme="Suivi / Réunion",
                title="Sans fin",
                starts_on=date(2025, 1, 5),
                ends_on=date(9999, 12, 31),
                created_by=site.COORD,
            )
        )
    for path in (f"/patients/{patient.id}", f"/patients/{patient.id}?widget=1"):
        status, body, _ = await site.get(coord, path)
        assert status == 200, body[:300]
        assert "Sans fin" in body


async def _held_upload(site, who, path: str, first_part: bytes) -> int:
    """POST a chunked multipart body of which only the first part (and the next part's head)
    is sent, the rest held back: a status arrives only if the server answers without
    reading further."""
    sent = first_part + (
        b'--cercle-boundary\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.pdf"\r\n\r\n%PDF-1.4\n' + b"x" * 100_000
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {who.headers['Cookie']}\r\n"
        "Content-Type: multipart/form-data; boundary=cercle-boundary\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    server = site.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + f"{len(sent):x}\r\n".encode() + sent + b"\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--cercle-boundary\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + value
        + b"\r\n"
    )


async def test_an_upload_is_refused_on_its_csrf_part_before_the_rest_is_read(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    path = f"/patients/{patient.id}/documents"
    # a wrong token in the first part: refused at once, the held file is never waited for
    status = await _held_upload(site, coord, path, _part("csrf_token", b"faux"))
    assert status == 403
    # another field first (no token before it): refused at once as well
    assert await _held_upload(site, coord, path, _part("category", b"ordonnance")) == 403


async def test_an_upload_with_too_many_parts_is_refused(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    body = (
        _part("csrf_token", coord.csrf.encode())
        + b"".join(_part("description", b"x") for _ in range(40))
        + b"--cercle-boundary--\r\n"
    )
    resp = await site.client.post(
        f"/patients/{patient.id}/documents",
        data=body,
        allow_redirects=False,
        headers={**coord.headers, "Content-Type": "multipart/form-data; boundary=cercle-boundary"},
    )
    assert resp.status == 413
