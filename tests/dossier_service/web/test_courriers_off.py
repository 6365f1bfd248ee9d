"""A deployment without the mail bridge: ``/courriers`` says that secure mail is off (a
bookmark, a colleague's link, the bot's hint for ``!courrier`` lead there), never a bare
« page introuvable », and the navigation does not offer it."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from dossier_service.app import create_app
from dossier_service.web import courriers
from tests.dossier_service.web.conftest import COORD, Site, make_config


async def test_courriers_without_the_bridge_says_mail_is_off(
    database_url: str, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    config = make_config(tmp_path, database_url=database_url)
    site = Site(await aiohttp_client(create_app(config, extensions=[courriers.setup_off])), config)
    coord = site.person(COORD)
    for who in (coord, None):  # signed out too: it holds nothing of anyone
        status, text, _ = await site.get(who, "/courriers")
        assert status == 404 and "n'est pas activé sur ce déploiement" in html.unescape(text)
    status, text, _ = await site.post(coord, "/courriers/boite", {"adresse": "a@b.mssante.fr"})
    assert status == 404 and "n'est pas activé" in html.unescape(text)
    status, text, _ = await site.get(coord, "/taches")
    assert status == 200 and 'href="/courriers"' not in text
    status, text, _ = await site.get(coord, "/courriersXYZ")
    assert status == 404 and "n'est pas activé" not in html.unescape(text)
