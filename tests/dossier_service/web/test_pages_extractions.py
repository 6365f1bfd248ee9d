"""The extraction pages: asked for through the form (CSRF), produced by the app's worker,
shown as SVG charts with the same numbers in tables, downloaded; refused to non-admins in
French; somebody else's extraction does not exist for them."""

from __future__ import annotations

import asyncio
import io
import re
from html import unescape

from openpyxl import load_workbook
from sqlalchemy import text

from dossier_service.models.activity import ActivityEvent
from tests.dossier_service.extraction.conftest import at


async def test_an_admin_asks_reads_the_charts_and_downloads(site) -> None:
    patient = await site.seed_patient()
    async with site.db.transaction() as session:  # a file followed since February
        await session.execute(
            text("UPDATE patients SET created_at = :t WHERE id = :p"),
            {"t": at(-28), "p": patient.id},
        )
        for n, (day, count) in enumerate((("2026-03-02", 12), ("2026-04-02", 8))):
            session.add(
                ActivityEvent(
                    patient_id=patient.id,
                    kind="messages",
                    ref=f"!r|{day}",
                    at=at(n * 31),
                    day=day,
                    count=count,
                )
            )
    admin = site.person(site.ADMIN)
    status, html, _ = await site.get(admin, "/extractions")
    assert status == 200 and "Aucune extraction demandée." in html
    form = {"scope": "plateforme", "start": "2026-03-01", "end": "2026-05-31"}
    status, _, _ = await site.post(admin, "/extractions", form, csrf=False)
    assert status == 403  # no CSRF token, no extraction
    status, _, resp = await site.post(admin, "/extractions", form)
    assert status == 303
    page = site.location(resp)
    assert re.fullmatch(r"/extractions/[0-9a-f-]{36}", page)
    for _ in range(300):
        status, html, _ = await site.get(admin, page)
        if "prête" in html:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and "État : <strong>prête</strong>" in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') >= 1
    # the chart says its numbers in words, and a table gives them again
    assert '<desc id="graphique-0-d">mars 2026 : 12, avril 2026 : 8, mai 2026 : 0</desc>' in html
    assert (
        '<tbody><tr><th scope="row">2026-03</th><td>12</td></tr>'
        '<tr><th scope="row">2026-04</th><td>8</td></tr>'
    ) in html
    assert '<th scope="row">Messages échangés</th><td>20</td>' in html
    status, listing, _ = await site.get(admin, "/extractions")
    assert f'href="{page}/xlsx"' in listing and "prête" in listing
    resp = await site.client.get(f"{page}/xlsx", headers=admin.headers)
    assert resp.status == 200 and resp.content_type.endswith("spreadsheetml.sheet")
    assert load_workbook(io.BytesIO(await resp.read())).sheetnames[0] == "Synthèse"

    other = site.person(site.COORD)
    for path in (page, f"{page}/xlsx", f"{page}/csv"):
        status, _, _ = await site.get(other, path)
        assert status == 404


async def test_a_non_admin_and_a_wrong_period_are_refused_in_french(site) -> None:
    coord = site.person(site.COORD)
    status, html, _ = await site.post(
        coord, "/extractions", {"scope": "plateforme", "start": "2026-03-01", "end": "2026-05-31"}
    )
    assert status == 403
    assert "Vous ne pouvez extraire que l'activité de votre structure" in unescape(html)
    admin = site.person(site.ADMIN)
    status, html, _ = await site.post(
        admin, "/extractions", {"scope": "plateforme", "start": "2026-05-01", "end": "2026-03-01"}
    )
    assert status == 400 and "La fin de la période précède son début" in html
    status, html, _ = await site.post(
        admin, "/extractions", {"scope": "plateforme", "start": "0001-01-01", "end": "2026-03-01"}
    )
    assert status == 400 and 'role="alert"' in html
    status, html, _ = await site.post(
        admin, "/extractions", {"scope": "123456789", "start": "2026-01-01", "end": "2026-03-01"}
    )
    assert status == 404 and "Structure inconnue" in html
