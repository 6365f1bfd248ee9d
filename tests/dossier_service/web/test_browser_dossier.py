"""In a real browser (headless Chromium driven by Playwright): a professional logs in with the
Matrix account of a real Synapse (the page's own JS: /login then an OpenID token exchanged with
the dossier), opens a patient's file, adds a care-circle member and a task, and sees them.
Screenshots are kept under ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, free_port

from dossier_service import appkeys
from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.migrate import upgrade
from dossier_service.policy import Principal
from dossier_service.schemas import EpisodeIn
from dossier_service.services import lifeline
from tests.dossier_service.web.conftest import MME_DURAND, file_opened_today

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

pytestmark = BROWSER_MARKS


@pytest.fixture
async def dossier(synapse, tmp_path: Path) -> AsyncIterator[tuple[str, web.Application, int]]:
    """The real dossier app served on a free port, checking tokens with the real Synapse.
    The third value is the port of the (simulated) Element allowed to frame it: same site
    as the dossier (127.0.0.1), another origin."""
    port, element_port = free_port(), free_port()
    config = DossierConfig(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        documents_dir=tmp_path / "documents",
        homeserver_url=synapse.base_url,
        server_name=synapse.server_name,
        session_key="clé-de-session-du-navigateur-" + "z" * 8,
        service_token="jeton-de-service-du-navigateur-" + "w" * 8,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        element_origin=f"http://127.0.0.1:{element_port}",
        forms_dir=Path(__file__).resolve().parents[3] / "config" / "forms",
    )
    await upgrade(config.database_url)
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", app, element_port
    finally:
        await runner.cleanup()


async def test_login_open_file_add_member_and_task(dossier, user_factory, synapse) -> None:
    import aiohttp
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)  # a loaded CI machine is slow

    base, app, _ = dossier
    coordinator = user_factory(displayname="Camille Coordinatrice")
    colleague = user_factory(displayname="Inès Dupont")

    patient = await file_opened_today(
        app, coordinator.user_id, coordinator_name="Camille Coordinatrice", **MME_DURAND
    )
    async with app[appkeys.DATABASE].transaction() as session:
        for theme, title, start, end in (
            ("Sortie d'hospitalisation", "Retour du CHU", 75, 60),
            ("Intervention / Réunion", "Réunion de concertation", 40, 40),
            ("Suivi / Réunion", "Suivi infirmier", 30, None),
        ):
            await lifeline.add_episode(
                session,
                principal=Principal(coordinator.user_id),
                patient=patient,
                data=EpisodeIn.model_validate(
                    {
                        "theme": theme,
                        "title": title,
                        "starts_on": (date.today() - timedelta(days=start)).isoformat(),
                        "ends_on": (date.today() - timedelta(days=end)).isoformat()
                        if end
                        else None,
                    },
                    strict=False,
                ),
                themes=app[appkeys.CONFIG].lifeline_themes,
                form_ids=["ppcs"],
            )
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            await page.goto(f"{base}/patients/{patient.id}")
            await expect(
                page.get_by_role("heading", name="Se connecter avec votre compte Matrix")
            ).to_be_visible()
            await page.screenshot(path=str(ARTIFACTS / "dossier-connexion.png"))
            await page.fill("#identifiant", coordinator.user_id)
            await page.fill("#mot-de-passe", coordinator.password)
            await page.click("#bouton-connexion")
            await page.wait_for_url(f"{base}/patients/{patient.id}", timeout=20_000)
            await expect(page.locator("h1")).to_contain_text("DURAND Marie")
            await expect(page.locator(".entete .qui")).to_contain_text("Camille Coordinatrice")
            await expect(page.locator(".entete .qui .personne")).to_have_attribute(
                "title", coordinator.user_id
            )
            # the page logged its temporary Matrix device out: only the original one is left
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{synapse.base_url}/_matrix/client/v3/devices",
                    headers={"Authorization": f"Bearer {coordinator.access_token}"},
                ) as resp,
            ):
                devices = (await resp.json())["devices"]
            assert [d["device_id"] for d in devices] == [coordinator.device_id]

            # add a care-circle member
            await page.click("#cercle summary:has-text('Ajouter au cercle de soins')")
            await page.fill("#c-nom", "Inès Dupont")
            await page.select_option("#c-type", "professionnel")
            await page.select_option("#c-role", "intervenant")
            await page.fill("#c-mxid", colleague.user_id)
            await page.fill("#c-prof", "Infirmière")
            await page.check("#c-acces")
            await page.click("#form-cercle button[type=submit]")
            await page.wait_for_url(f"**/patients/{patient.id}?ok=cercle#cercle")
            row = page.locator("#table-cercle tr", has_text="Inès Dupont")
            await expect(row).to_contain_text("habilité")
            await expect(row).to_contain_text("intervenant")
            await expect(page.locator("#fil-liaison")).to_contain_text(
                "Ajout de Inès Dupont sur le cercle de soins"
            )

            # add a task, already overdue, for the new member
            await page.click("#taches summary:has-text('Ajouter une tâche')")
            await page.fill("#t-label", "Renouveler l'ordonnance d'anticoagulant")
            await page.select_option("#t-type", "Soins")
            await page.select_option("#t-niveau", "haute")
            await page.fill("#t-echeance", (date.today() - timedelta(days=2)).isoformat())
            await page.check("input[name=subtypes][value='Traitement']")
            await page.check(f"input[name=assignees][value='personne:{colleague.user_id}']")
            await page.click("#form-tache button[type=submit]")
            await page.wait_for_url(f"**/patients/{patient.id}?ok=tache#taches")
            task_row = page.locator("#taches table tr", has_text="Renouveler l'ordonnance")
            await expect(task_row).to_contain_text("en retard")
            await expect(task_row).to_contain_text("Inès Dupont")
            await expect(page.locator(".patient-entete")).to_contain_text("1 tâche(s) en retard")
            await expect(page.locator("svg.ligne-de-vie g.episode")).to_have_count(3)
            await page.screenshot(path=str(ARTIFACTS / "dossier-patient.png"), full_page=True)

            # a thematic form rendered from its YAML declaration, saved as version 1
            await page.goto(f"{base}/patients/{patient.id}/formulaires/ppcs")
            await page.fill("#f-date_elaboration", date.today().isoformat())
            await page.fill("#f-coordonnateur", "Camille Coordinatrice")
            await page.select_option("#f-consentement", "oui")
            await page.fill("#f-synthese", "Vit seule, chute en octobre, retour du CHU.")
            await page.fill("#f-problemes", "Risque de chute ; observance du traitement.")
            await page.fill("#f-objectifs", "Rester à domicile en sécurité.")
            await page.fill("#f-actions", "Kiné 2×/semaine ; pilulier préparé par la pharmacie.")
            await page.check("input[name=domaines][value=soins]")
            await page.click("#form-ppcs button[type=submit]")
            await page.wait_for_url("**/formulaires/ppcs?ok=formulaire")
            await expect(page.locator("#historique")).to_contain_text("Version 1")
            await page.screenshot(path=str(ARTIFACTS / "dossier-formulaire.png"), full_page=True)

            # the dashboard shows it with its alert
            await page.goto(f"{base}/taches")
            await expect(page.locator(".alerte-retard")).to_contain_text("1 tâche(s) en retard")
            await page.screenshot(path=str(ARTIFACTS / "dossier-taches.png"), full_page=True)

            # the agenda: a weekly home visit, seen in the week and month views
            await page.goto(f"{base}/agenda")
            monday = date.today() - timedelta(days=date.today().weekday())
            await page.fill("#n-titre", "Passage infirmier")
            await page.select_option("#n-type", "Visite à domicile")
            await page.fill("#n-debut", f"{monday.isoformat()}T09:00")
            await page.fill("#n-fin", f"{monday.isoformat()}T09:45")
            await page.select_option("#n-rec", "FREQ=WEEKLY")
            await page.select_option("#n-patient", patient.id)
            await page.click("form[action='/agenda/evenements'] button[type=submit]")
            await page.wait_for_url("**/agenda?ok=rdv")
            await expect(page.locator(".semaine .evt").first).to_contain_text(
                "09:00 Passage infirmier"
            )
            await page.screenshot(
                path=str(ARTIFACTS / "dossier-agenda-semaine.png"), full_page=True
            )
            await page.goto(
                f"{base}/agenda?vue=jour&date={(monday + timedelta(days=21)).isoformat()}"
            )
            await expect(page.locator("main table")).to_contain_text("Passage infirmier")  # recurs
            await page.goto(f"{base}/agenda?vue=mois")
            assert await page.locator(".mois .evt").count() >= 1
            await page.screenshot(path=str(ARTIFACTS / "dossier-agenda-mois.png"), full_page=True)

            # on a phone
            phone = await browser.new_page(
                viewport={"width": 390, "height": 844}, device_scale_factor=2
            )
            await phone.context.add_cookies(await page.context.cookies())
            await phone.goto(f"{base}/patients/{patient.id}")
            await expect(phone.locator("h1")).to_contain_text("DURAND Marie")
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390 + 1, "la page déborde horizontalement sur mobile"
            await phone.screenshot(
                path=str(ARTIFACTS / "dossier-patient-mobile.png"), full_page=True
            )
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            await browser.close()


ELEMENT_PAGE = """<!doctype html><html><body><h1>Element (simulé)</h1>
<iframe id="widget" src="{src}" width="900" height="700"></iframe>
<script>
const dossier = {dossier_origin};
const openid = {openid};
const frame = document.getElementById("widget");
const seen = [];
frame.addEventListener("load", () => {{
  // as Element does once the widget has loaded: the capabilities exchange comes first
  frame.contentWindow.postMessage({{api: "toWidget", widgetId: "cercle-dossier",
    requestId: "cap-" + Date.now(), action: "capabilities", data: {{}}}}, dossier);
}});
window.addEventListener("message", (event) => {{
  if (event.origin !== dossier) return;
  const msg = event.data;
  if (msg.api === "toWidget" && msg.action === "capabilities" && msg.response) {{
    seen.push("capabilities:" + JSON.stringify(msg.response.capabilities));
  }}
  if (msg.api === "fromWidget" && msg.action === "get_openid" && !msg.response) {{
    seen.push("get_openid:" + msg.widgetId);
    document.title = seen.join(" ");
    event.source.postMessage(Object.assign({{}}, msg, {{response: Object.assign({{state: "allowed"}}, openid)}}), dossier);
  }}
}});
</script></body></html>"""


async def test_inside_element_the_widget_api_logs_in(dossier, user_factory, synapse) -> None:
    """Element's side of the widget API, played by a page on the configured Element origin:
    it answers ``get_openid`` with a real OpenID token of the user; the dossier framed in it
    logs in and shows the file linked to the room."""
    import json

    import aiohttp
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)  # a loaded CI machine is slow

    base, app, element_port = dossier
    nurse = user_factory(displayname="Inès Dupont")
    patient = await file_opened_today(
        app, nurse.user_id, room_id="!salle-patient:" + synapse.server_name, **MME_DURAND
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{synapse.base_url}/_matrix/client/v3/user/{nurse.user_id}/openid/request_token",
            headers={"Authorization": f"Bearer {nurse.access_token}"},
            json={},
        ) as resp,
    ):
        openid = await resp.json()
    # the URL the bot puts in the room's widget state (bots/dossier_client.widget_url)
    src = f"{base}/patients/{patient.id}?widget=1&widgetId=cercle-dossier"

    async def element(request: web.Request) -> web.Response:
        return web.Response(
            text=ELEMENT_PAGE.format(
                src=src, dossier_origin=json.dumps(base), openid=json.dumps(openid)
            ),
            content_type="text/html",
        )

    host = web.Application()
    host.router.add_get("/", element)
    runner = web.AppRunner(host)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", element_port).start()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1000, "height": 800})
                await page.goto(f"http://127.0.0.1:{element_port}/")
                frame = page.frame_locator("#widget")
                await expect(frame.locator("h1")).to_contain_text("DURAND Marie", timeout=20_000)
                assert await page.title() == "capabilities:[] get_openid:cercle-dossier"
                widget = next(f for f in page.frames if f.url.startswith(base))
                assert widget.url == src
                await page.screenshot(path=str(ARTIFACTS / "dossier-widget.png"))
                # the room's own entry point leads to the same file
                await widget.goto(f"{base}/widget?roomId=!salle-patient:{synapse.server_name}")
                assert widget.url == f"{base}/patients/{patient.id}?widget=1"
                # any other origin (here "localhost" instead of "127.0.0.1") may not frame it
                other = await browser.new_page()
                await other.goto(f"http://localhost:{element_port}/")
                await other.wait_for_timeout(1500)
                framed = [f for f in other.frames if f is not other.main_frame]
                assert framed and not framed[0].url.startswith(base)
                assert "get_openid" not in await other.title()
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
