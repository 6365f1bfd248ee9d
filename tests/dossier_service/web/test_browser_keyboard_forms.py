"""Every form a professional, a coordinator or an admin uses, driven with the keyboard
alone in headless Chromium (RGAA 12 / WCAG 2.1.1, 2.4.3, 2.4.7): each field and the submit
button reached with Tab in the order of the form, filled by typing, submitted with
Enter or Space, the write seen on the page that follows, and the focus visible (an
outline or a box-shadow) on everything the keyboard lands on. One browser and one
served dossier for the whole module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support import RPPS_SAMPLE

from dossier_service import auth
from dossier_service.directory.importer import import_extract
from tests.conftest import serve_account_gateway
from tests.directory_support import connect
from tests.dossier_service.web.conftest import ADMIN
from tests.dossier_service.web.test_browser_dossier import CHROMIUM, CHROMIUM_ARGS
from tests.dossier_service.web.test_browser_widths_a11y import COORD, NURSE, serve_site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium absent (installé par make test)"
    ),
    pytest.mark.asyncio(loop_scope="module"),
]

# what the focused element shows: a visible outline or a box-shadow
FOCUS_SHOWN = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  return outline || (s.boxShadow && s.boxShadow !== 'none');
}"""
FOCUSED = (
    "(() => { const e = document.activeElement;"
    " return e.id || e.name || e.textContent.trim().slice(0, 40) || e.tagName; })()"
)


def import_sample(tmp: Path) -> None:
    """The shared RPPS sample in the served directory (when present: the search test)."""
    if RPPS_SAMPLE.exists():
        conn = connect(tmp / "dossier.db")  # the directory is in the dossier's database
        try:
            import_extract(conn, RPPS_SAMPLE)
        finally:
            conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory) -> AsyncIterator[tuple[str, Any, str]]:
    tmp = tmp_path_factory.mktemp("clavier")
    async with serve_site(tmp) as site:
        import_sample(tmp)
        yield site


@pytest_asyncio.fixture(loop_scope="module")
async def served_with_accounts(synapse, tmp_path: Path) -> AsyncIterator[tuple[str, Any, str]]:
    """The same, its directory creating accounts on the real Synapse (through the gateway)."""
    async with (
        serve_account_gateway(synapse, tmp_path / "gateway.sock") as gateway,
        serve_site(tmp_path, synapse=synapse, gateway=gateway) as site,
    ):
        import_sample(tmp_path)
        yield site


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@asynccontextmanager
async def opened(
    browser: Any, served: tuple[str, Any, str], who: str | None, url: str
) -> AsyncIterator[Any]:
    """A page in a context of its own (closed after), signed in as ``who``, at ``url``."""
    base, config, _ = served
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        context.set_default_timeout(15_000)  # a loaded CI machine is slow
        if who:
            token = auth.issue_session(config.session_key, who, lifetime=3600)
            await context.add_cookies([{"name": auth.SESSION_COOKIE, "value": token, "url": base}])
        page = await context.new_page()
        await page.goto(url)
        yield page
    finally:
        await context.close()


async def tab_to(page: Any, selector: str, limit: int = 3) -> None:
    """Press Tab until ``selector`` has the focus, passing at most ``limit`` elements: the
    field comes next (or nearly) in the tab order; the focus is visible on every stop. A
    date field's day, month, year and calendar button are stops of one element."""
    met: list[str] = [await page.evaluate(FOCUSED)]
    changes = 0
    for _ in range(limit * 5):
        await page.keyboard.press("Tab")
        met.append(await page.evaluate(FOCUSED))
        changes += met[-1] != met[-2]
        assert await page.evaluate(FOCUS_SHOWN), f"focus invisible sur {met[-1]!r}"
        if await page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
        if changes >= limit:
            break
    raise AssertionError(f"{selector} pas atteint en {limit} Tab : {met[1:]}")


async def keyboard_fill(page: Any, steps: list[tuple[str, str | None]], limit: int = 3) -> None:
    """Tab to each field in turn and type its value (a select takes the first letters of
    its option; ``" "`` ticks a checkbox; ``None`` only reaches the field)."""
    for selector, value in steps:
        await tab_to(page, selector, limit)
        if value == " ":
            await page.keyboard.press("Space")
        elif value is not None:
            for n, part in enumerate(value.split("→")):  # → : the time part of a date-time
                if n:
                    await page.keyboard.press("ArrowRight")
                await page.keyboard.type(part)


async def submit(page: Any, key: str = "Enter") -> None:
    """Press ``key`` on the focused submit button and wait for the page that follows."""
    async with page.expect_navigation():
        await page.keyboard.press(key)


async def open_section(page: Any, summary: str) -> None:
    """Tab from the top of the page to a ``<details>`` summary and open it with Enter."""
    await tab_to(page, summary, limit=250)
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.parentElement.open")


def keys_of(day: date, time: str = "") -> str:
    """The keys typing ``day`` (and ``time``, "HHMM" before noon) into a date or date-time
    field of headless Chromium: its fields stay mm/dd/yyyy and hh:mm AM/PM whatever the
    locale or --lang (seen: "04031950" gives 1950-04-03 with fr-FR); → moves to the time."""
    return day.strftime("%m%d%Y") + (f"→{time}A" if time else "")


async def test_skip_link_is_the_first_stop_and_moves_focus_to_main(browser, served) -> None:
    base, _, pid = served
    for who, path in (
        (None, "/connexion"),
        (COORD, f"/patients/{pid}"),
        (COORD, "/taches"),
        (COORD, "/agenda"),
        (None, "/annuaire/demande"),
        (COORD, "/annuaire"),
        (ADMIN, "/annuaire/admin/demandes"),
    ):
        async with opened(browser, served, who, base + path) as page:
            await page.keyboard.press("Tab")
            assert await page.evaluate(FOCUSED) == "Aller au contenu", path
            assert await page.evaluate(FOCUS_SHOWN), path
            box = await page.evaluate("document.activeElement.getBoundingClientRect().width")
            assert box > 20, f"{path} : le lien d'évitement reste invisible au focus"
            await page.keyboard.press("Enter")
            assert await page.evaluate("document.activeElement.id") == "contenu", path
            await page.keyboard.press("Tab")  # the next stop is inside main
            assert await page.evaluate(
                "document.getElementById('contenu').contains(document.activeElement)"
            ), path


@pytest.mark.integration  # the login checks the password on the real Synapse
async def test_login(browser, served_with_accounts, user_factory) -> None:
    """The login form, by keyboard, against the real Synapse: identifier, password, button."""
    served = served_with_accounts
    base, _, _ = served
    nurse = user_factory()
    async with opened(browser, served, None, f"{base}/connexion") as page:
        await tab_to(page, "#identifiant", limit=20)
        await page.keyboard.type(nurse.user_id)
        await keyboard_fill(page, [("#mot-de-passe", nurse.password)])
        await tab_to(page, "#bouton-connexion", limit=2)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/patients")
        assert nurse.user_id in await page.locator(".entete .qui").inner_text()


async def test_open_a_patient_file(browser, served) -> None:
    base, _, _ = served
    async with opened(browser, served, COORD, f"{base}/patients") as page:
        await open_section(page, "details.ajout > summary")
        await keyboard_fill(
            page,
            [
                ("#np-label", "M. K. — Clavier"),
                ("#np-nom", "KEYBOARD"),
                ("#np-prenoms", "Jean"),
                ("#np-sexe", "M"),
                ("#np-naiss", keys_of(date(1950, 3, 4))),
            ],
        )
        await tab_to(page, "button[type=submit]", limit=2)
        await submit(page)
        assert "KEYBOARD Jean" in await page.locator("h1").inner_text()
        assert "04/03/1950" in await page.locator("main").inner_text()


async def test_identity_edit(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/patients/{pid}") as page:
        await open_section(page, "details:has(#form-identite) > summary")
        steps: list[tuple[str, str | None]] = [
            (f"#i-{f}", None)
            for f in ("label", "nom", "usage", "prenoms", "prenom-usage", "sexe", "naiss", "insee")
        ]
        steps += [
            ("#i-commune", "Albi"),
            ("#i-pays", None),
            ("#i-statut", None),
            ("#i-ins", None),
            ("#i-piece", None),
            ("#i-piece-date", None),
            ("#i-cp", None),
            ("#i-adresse", "3 rue des Lilas"),
            ("#i-tel", None),
            ("#i-mail", None),
            ("#form-identite button[type=submit]", None),
        ]
        await keyboard_fill(page, steps)
        await submit(page, "Space")
        text = await page.locator("main").inner_text()
        assert "Albi" in text and "3 rue des Lilas" in text


async def test_care_circle_add_change_role_and_remove(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/patients/{pid}") as page:
        await open_section(page, "details:has(#form-cercle) > summary")
        await keyboard_fill(
            page,
            [
                ("#c-nom", "MARTIN Luc"),
                ("#c-type", None),
                ("#c-role", None),
                ("#c-mxid", "@luc.martin:cercle.test"),
                ("#c-prof", "Kinésithérapeute"),
                ("#c-spec", None),
                ("#c-rpps", None),
                ("#c-acces", " "),
                ("#c-desc", None),
                ("#form-cercle button[type=submit]", None),
            ],
        )
        await submit(page)
        row = page.locator("#table-cercle tr", has_text="MARTIN Luc")
        assert "habilité" in await row.inner_text()

        # his role, in his row: the select named after him, then « Changer »
        await tab_to(page, "select[aria-label='Rôle de MARTIN Luc']", limit=250)
        await page.keyboard.press("ArrowDown")
        chosen = await page.evaluate("document.activeElement.selectedOptions[0].textContent")
        await tab_to(page, "button", limit=1)
        assert await page.evaluate(FOCUSED) == "Changer"
        await submit(page)
        row = page.locator("#table-cercle tr", has_text="MARTIN Luc")
        assert chosen in await row.inner_text()

        # then out of the circle: « Ôter l'accès » and « Retirer » follow in his row
        await tab_to(page, "select[aria-label='Rôle de MARTIN Luc']", limit=250)
        await tab_to(page, "button[title='Retirer du cercle de soins']", limit=3)
        await submit(page, "Space")
        assert await page.locator("#table-cercle tr", has_text="MARTIN Luc").count() == 0


async def test_liaison_note(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/patients/{pid}") as page:
        await tab_to(page, "#l-texte", limit=250)
        await page.keyboard.type("Pansement refait, plaie propre.")
        await keyboard_fill(
            page, [("select[name=kind]", "T"), ("#liaison button[type=submit]", None)]
        )
        await submit(page)
        entry = page.locator("#fil-liaison li", has_text="Pansement refait, plaie propre.")
        assert "ransmission" in await entry.first.inner_text()


async def test_task_create_and_change_state(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/patients/{pid}") as page:
        await open_section(page, "details:has(#form-tache) > summary")
        await keyboard_fill(
            page,
            [
                ("#t-label", "Commander le lit médicalisé"),
                ("#t-type", None),
                ("#t-niveau", None),
                ("#t-echeance", keys_of(date.today() + timedelta(days=3))),
            ],
        )
        # the first subtype, then the nurse among the recipients (after the other subtypes)
        await keyboard_fill(page, [("input[name=subtypes]", " ")])
        await keyboard_fill(page, [(f"input[name=assignees][value='personne:{NURSE}']", " ")], 40)
        await keyboard_fill(page, [("#t-form", None)], 6)
        await keyboard_fill(
            page, [("#t-com", "Voir avec la famille"), ("#form-tache button[type=submit]", None)]
        )
        await submit(page)
        row = page.locator("#taches table tr", has_text="Commander le lit médicalisé")
        assert "DUPONT Inès" in await row.inner_text()

        # its state, from the dashboard: the select then « OK »
        await page.goto(f"{base}/taches")
        state = page.locator("tr", has_text="Commander le lit médicalisé").locator("select")
        label = await state.get_attribute("aria-label")
        assert label and "Commander le lit médicalisé" in label  # said which task it changes
        await tab_to(page, f"select[aria-label={label!r}]", limit=250)
        await page.keyboard.press("ArrowDown")
        chosen = await page.evaluate("document.activeElement.value")
        await tab_to(page, "button[type=submit]", limit=1)
        await submit(page)
        row = page.locator("tr", has_text="Commander le lit médicalisé")
        assert await row.locator("select").input_value() == chosen


async def test_agenda_event(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/agenda") as page:
        day = date.today() + timedelta(days=1)
        name = await page.locator(f"#n-patient option[value='{pid}']").inner_text()
        await tab_to(page, "#n-titre", limit=250)
        await page.keyboard.type("Visite du kiné")
        await keyboard_fill(
            page,
            [
                ("#n-type", None),
                ("#n-debut", keys_of(day, "1000")),
                ("#n-fin", keys_of(day, "1030")),
                ("#n-patient", name.split()[0]),
                ("#n-rec", None),
                ("#n-jusqua", None),
                ("#n-lieu", "Domicile"),
                ("#n-part", None),
                ("form[action='/agenda/evenements'] button[type=submit]", None),
            ],
        )
        assert await page.input_value("#n-debut") == f"{day.isoformat()}T10:00"
        assert await page.input_value("#n-patient") == pid  # chosen by its first letters
        await submit(page)
        assert "ok=rdv" in page.url
        await page.goto(f"{base}/agenda?vue=liste")
        row = page.locator("main tr", has_text="Visite du kiné")
        assert "10:00" in await row.inner_text()


async def test_document_upload(browser, served, tmp_path: Path) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    base, _, pid = served
    scan = tmp_path / "ordonnance.pdf"
    scan.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    async with opened(browser, served, COORD, f"{base}/patients/{pid}") as page:
        await open_section(page, "details:has(#d-fichier) > summary")
        await tab_to(page, "#d-fichier", limit=2)
        # the file input opens its chooser from the keyboard; a loaded headless Chromium has
        # been seen to drop the press (no chooser in 15 s, once in ~10 full runs): pressed
        # again, at most three times in all
        for attempt in range(3):
            try:
                async with page.expect_file_chooser(timeout=5_000) as chooser:
                    await page.keyboard.press("Space")
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
        await (await chooser.value).set_files(str(scan))
        await keyboard_fill(page, [("#d-cat", None), ("#d-desc", "Ordonnance du Dr X")])
        await keyboard_fill(
            page, [("form[enctype='multipart/form-data'] button[type=submit]", None)], 12
        )  # the role checkboxes on the way
        await submit(page)
        assert "ordonnance.pdf" in await page.locator("#documents").inner_text()


async def test_thematic_form(browser, served) -> None:
    base, _, pid = served
    async with opened(browser, served, COORD, f"{base}/patients/{pid}/formulaires/ppcs") as page:
        await tab_to(page, "#f-date_elaboration", limit=250)
        await page.keyboard.type(keys_of(date.today()))
        await keyboard_fill(page, [("#f-coordonnateur", "COORD Camille")])
        await tab_to(page, "#f-consentement", limit=6)
        await page.keyboard.type("oui")
        for field, text in (
            ("#f-synthese", "Vit seule."),
            ("#f-problemes", "Chutes."),
            ("#f-objectifs", "Rester à domicile."),
            ("#f-actions", "Kiné."),
        ):
            await tab_to(page, field, limit=12)
            await page.keyboard.type(text)
        await tab_to(page, "#form-ppcs button[type=submit]", limit=40)
        await submit(page)
        assert "ok=formulaire" in page.url
        assert "Version 1" in await page.locator("#historique").inner_text()


@pytest.mark.skipif(not RPPS_SAMPLE.exists(), reason="extrait RPPS d'exemple absent")
async def test_directory_search(browser, served) -> None:
    base, _, _ = served
    async with opened(browser, served, COORD, f"{base}/annuaire") as page:
        await tab_to(page, "#q", limit=20)
        await page.keyboard.type("boyer")
        await keyboard_fill(
            page,
            [
                ("#profession", "infirmier"),
                ("#specialite", None),
                ("#departement", None),
                ("#mode", None),
                ("main button[type=submit]", None),
            ],
        )
        await submit(page)
        assert "BOYER" in await page.locator("main").inner_text()


@pytest.mark.integration  # the approval creates the account on the real Synapse
async def test_account_request_then_admin_approves_and_refuses(
    browser, served_with_accounts
) -> None:
    served = served_with_accounts
    base, _, _ = served
    for last, first, rpps, job in (
        ("MAUGER", "Maël", "10000000043", "Sage-Femme"),
        ("ROBERT", "Nicolas", "10000000050", "Orthophoniste"),
    ):
        async with opened(browser, served, None, f"{base}/annuaire/demande") as page:
            await tab_to(page, "#nom", limit=20)
            await page.keyboard.type(last)
            await keyboard_fill(
                page,
                [
                    ("#prenom", first),
                    ("#identifiant", rpps),
                    ("#profession", job),
                    ("#structure", None),
                    ("#email", f"{last.lower()}@exemple.fr"),
                    ("#telephone", "0611223344"),
                    ("input[name=consentement]", " "),
                    ("main button[type=submit]", None),
                ],
            )
            await submit(page)
            assert "erreur" not in (await page.locator("main").inner_text()).lower()

    async with opened(
        browser, served, ADMIN, f"{base}/annuaire/admin/demandes?statut=en_attente"
    ) as page:
        approved = page.locator("tr", has_text="MAUGER Maël")
        action = await approved.locator("form[action$='/approuver']").get_attribute("action")
        await tab_to(page, f"form[action={action!r}] button", limit=250)
        await submit(page)
        text = await page.locator("main").inner_text()
        assert (
            "approuvée : compte @" in text and "mauger" in text and "/annuaire/activation/" in text
        )

        await page.goto(f"{base}/annuaire/admin/demandes?statut=en_attente")
        refused = page.locator("tr", has_text="ROBERT Nicolas")
        action = await refused.locator("form[action$='/refuser']").get_attribute("action")
        await tab_to(page, f"form[action={action!r}] input[name=motif]", limit=250)
        await page.keyboard.type("Inconnue de l'annuaire à cette adresse")
        await tab_to(page, f"form[action={action!r}] button", limit=1)
        await submit(page)
        await page.goto(f"{base}/annuaire/admin/demandes?statut=refusee")
        assert "Inconnue de l'annuaire" in await page.locator("tr", has_text="ROBERT").inner_text()


# the controls a keyboard must reach: shown, enabled, not taken out of the tab order
UNREACHED = """() => [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]')]
  .filter(e => e.getClientRects().length && !e.disabled && e.tabIndex >= 0 && !e.dataset.vu)
  .map(e => e.id || e.name || e.getAttribute('aria-label') || e.textContent.trim().slice(0, 40))"""

# one Tab stop: (what has the focus, its focus shown), marked as met; None out of the page
STOP = f"""(() => {{
  const e = document.activeElement;
  if (e === document.body) return [null, false];
  e.dataset.vu = '1';
  return [{FOCUSED}, ({FOCUS_SHOWN})()];
}})()"""


async def test_every_control_of_every_page_is_reached_with_focus_shown(browser, served) -> None:
    """All the forms opened (their ``<details>``), Tab from the top until the focus leaves the
    page: every control met once at least (no trap, nothing out of reach), each with its
    focus shown."""
    base, _, pid = served
    pages = {
        None: ["/connexion", "/annuaire/demande"],
        COORD: [
            "/patients",
            f"/patients/{pid}",
            f"/patients/{pid}/formulaires/ppcs",
            "/taches",
            "/agenda",
            "/annuaire?q=dupont",
        ],
        ADMIN: ["/journal", "/annuaire/admin/demandes"],
    }
    problems: list[str] = []
    for who, paths in pages.items():
        for path in paths:
            async with opened(browser, served, who, base + path) as page:
                await page.evaluate(
                    "document.querySelectorAll('details').forEach(d => d.open = true)"
                )
                for _ in range(1500):
                    await page.keyboard.press("Tab")
                    where, shown = await page.evaluate(STOP)
                    if where is None:
                        break  # out of the page: the tab order went through it
                    if not shown:
                        problems.append(f"{path} : focus invisible sur {where!r}")
                else:
                    problems.append(f"{path} : le focus ne quitte jamais la page (piège)")
                for missed in await page.evaluate(UNREACHED):
                    problems.append(f"{path} : {missed!r} jamais atteint au clavier")
    assert not problems, "\n".join(problems)
