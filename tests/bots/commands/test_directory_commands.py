"""`!trouver` against the real directory routes of the dossier service (HTTP), pure parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bots.commands.directory import (
    DossierDirectory,
    Found,
    LastResults,
    format_results_for_bot,
    found_from_api,
    register,
    result_user,
)
from bots.commands.registry import (
    CommandContext,
    CommandRegistry,
    PowerLevels,
    RoomFacts,
    UsageError,
    UserError,
)
from bots.dossier_client import DossierClient
from dossier_service.app import create_app
from dossier_service.directory.accounts import link
from dossier_service.directory.importer import import_extract
from dossier_service.directory.structure_rows import join_structure
from dossier_service.directory.web import setup
from tests.directory_support import connect, dossier_config
from tests.dossier_service.directory.test_social_requests import add_structure

SAMPLE = Path("/work/shared/data/rpps/PS_LibreAcces_Personne_activite_sample.txt")
if not SAMPLE.exists():
    SAMPLE = Path(__file__).resolve().parents[4] / "shared" / "data" / "rpps" / SAMPLE.name


@dataclass
class Room:
    """Where the replies of the bot go: the room's timeline, as text."""

    sent: list[tuple[str, str | None]] = field(default_factory=list)

    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Any = ()
    ) -> str | None:
        self.sent.append((plain, html_body))
        return f"$event{len(self.sent)}"


def ctx(room: Room, *, patient: bool = True, sender: str = "@ide:cercle.test") -> CommandContext:
    return CommandContext(
        room_id="!salon:cercle.test",
        sender=sender,
        event_id="$cmd",
        facts=RoomFacts(
            sender_is_member=True,
            sender_power_level=100,
            is_direct=not patient,
            is_patient_room=patient,
        ),
        replier=room,
    )


def test_format_is_numbered_and_escaped() -> None:
    found = [
        Found("D'ALMEIDA Hélène", "Infirmier", "Foix", "@helene:cercle.test"),
        Found("<b>X</b>", "Médecin (Cardiologie)", "Albi", None),
    ]
    plain, html = format_results_for_bot(found, query="d'almeida", total=2, in_patient_room=True)
    assert plain.splitlines()[0] == "2 résultats pour « d'almeida » :"
    assert "1. D'ALMEIDA Hélène — Infirmier, Foix — compte Cercle @helene:cercle.test" in plain
    assert "2. <b>X</b> — Médecin (Cardiologie), Albi — pas de compte Cercle" in plain
    assert "!inviter n" in plain
    assert "<b>X</b>" not in html and "&lt;b&gt;X&lt;/b&gt;" in html
    none, _ = format_results_for_bot([], query="zzz", total=0)
    assert none == "Aucun professionnel ni aucune structure trouvés pour « zzz »."
    many, _ = format_results_for_bot(found, query="ma", total=1000, more=True)
    assert many.startswith("plus de 1000 résultats pour « ma » (2 premiers)")


def test_result_numbers() -> None:
    memory = LastResults(max_entries=2, ttl_seconds=60)
    two = [Found("A", "Infirmier", "Albi", "@a2:x"), Found("B", "Infirmier", "Albi", None)]
    memory.remember("!r", "@a", two)
    assert result_user(memory, "!r", "@a", "1") == "@a2:x"
    with pytest.raises(UserError, match="pas encore de compte"):
        result_user(memory, "!r", "@a", "2")
    with pytest.raises(UserError, match="n'a que 2"):
        result_user(memory, "!r", "@a", "3")
    with pytest.raises(UsageError):
        result_user(memory, "!r", "@a", "deux")
    with pytest.raises(UserError, match="Faites d'abord une recherche"):
        result_user(memory, "!r", "@other", "1")
    memory.remember("!r", "@a", two, now=0)
    assert memory.get("!r", "@a", now=59) == two
    assert memory.get("!r", "@a", now=61) == []  # expired
    memory.remember("!r2", "@a", [], now=0)
    memory.remember("!r3", "@a", [], now=0)
    assert memory.get("!r", "@a", now=1) == []  # bounded: the oldest is forgotten


async def test_trouver_through_the_dossier_api(aiohttp_client: Any, tmp_path: Path) -> None:
    conn = connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
    import_extract(conn, SAMPLE)
    link(conn, "@helene:cercle.test", "810000001128", source="test", actor="test")
    # a member without RPPS of a structure (issue 18), as an approved request leaves her
    add_structure(conn, "750000001", "SSIAD DU MARAIS")
    join_structure(
        conn,
        "750000001",
        "@ines:cercle.test",
        "LEFÈVRE Inès — Éducateur·rice spécialisé·e",
        actor="test",
        at=datetime.now(UTC),
    )
    conn.close()
    config = dossier_config(tmp_path / "dossier.db")

    def mount(app: web.Application) -> None:
        setup(app, config)

    server = await aiohttp_client(create_app(config, with_pages=False, extensions=[mount]))
    dossier = DossierClient(str(server.make_url("")), config.service_token)
    registry = CommandRegistry("!", PowerLevels(flag=0, admin=50))
    memory = register(registry, search=DossierDirectory(dossier))
    room = Room()
    try:
        assert await registry.execute("!trouver d'almeida", ctx(room))
        plain = room.sent[-1][0]
        assert plain.startswith("6 résultats pour « d'almeida »")
        # the linked professional comes first, with her account
        assert plain.splitlines()[1] == (
            "1. D'ALMEIDA Hélène — Infirmier, Foix — compte Cercle @helene:cercle.test"
        )
        assert (
            result_user(memory, "!salon:cercle.test", "@ide:cercle.test", "1")
            == "@helene:cercle.test"
        )
        assert await registry.execute("!find kiné béziers", ctx(room, patient=False))
        assert "Masseur-Kinésithérapeute, Béziers" in room.sent[-1][0]
        assert "!inviter" not in room.sent[-1][0]  # not a patient room
        assert await registry.execute("!trouver lefèvre educateur", ctx(room))
        plain = room.sent[-1][0]
        assert plain.splitlines()[1] == (
            "1. LEFÈVRE Inès — Éducateur·rice spécialisé·e (sans RPPS, SSIAD DU MARAIS), Paris "
            "— compte Cercle @ines:cercle.test"
        ), plain
        assert result_user(memory, "!salon:cercle.test", "@ide:cercle.test", "1") == (
            "@ines:cercle.test"
        )
        assert await registry.execute("!trouver", ctx(room))
        assert "Il manque la requête" in room.sent[-1][0]
    finally:
        await dossier.close()


def test_found_from_api_names() -> None:
    found = found_from_api(
        [
            {
                "nom": "GARCIA-LOPEZ",
                "prenom": "JEAN-PIERRE",
                "profession": "Médecin",
                "specialite": "Gériatrie",
                "exercices": [{"ville": "Tarbes"}],
                "compte_matrix": None,
            }
        ]
    )
    assert found == [Found("GARCIA-LOPEZ Jean-Pierre", "Médecin (Gériatrie)", "Tarbes", None)]


@pytest.mark.integration
async def test_trouver_in_an_encrypted_room(
    tmp_path: Path, synapse: Any, bot: Any, pro_factory: Any
) -> None:
    """The running bot (E2EE) answers `!trouver` in an encrypted room, from the directory of
    the dossier service it is configured with (served here on that very address)."""
    from urllib.parse import urlsplit

    from deployment.secrets import Secrets
    from tests.bots.conftest import dm_with_bot

    bot_config = bot.app.services.config
    assert any(c.name == "trouver" for c in bot.app.registry.commands)  # wired by the bot app
    conn = connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
    import_extract(conn, SAMPLE)
    conn.close()
    config = dossier_config(
        tmp_path / "dossier.db",
        homeserver_url=synapse.base_url,
        server_name=synapse.server_name,
        service_token=Secrets.load_or_create(bot_config.data_dir.parent).dossier_service_token,
    )

    def mount(app: web.Application) -> None:
        setup(app, config)

    address = urlsplit(bot_config.dossier_url)
    runner = web.AppRunner(create_app(config, with_pages=False, extensions=[mount]))
    await runner.setup()
    site = web.TCPSite(runner, address.hostname, address.port, reuse_address=True)
    await site.start()
    try:
        alice = await pro_factory()
        room_id = await dm_with_bot(alice, synapse.bot_user_id)
        assert alice.client.rooms[room_id].encrypted
        await alice.say(room_id, "!trouver kiné béziers")
        notice = await alice.wait_notice(room_id, "pour « kiné béziers »")
        body = notice.source["content"]["body"]
        assert (
            "1. LAURENT Mathilde — Masseur-Kinésithérapeute, Béziers — pas de compte Cercle" in body
        )
        assert type(notice).__name__ != "MegolmEvent"  # decrypted by the professional
    finally:
        await runner.cleanup()


def test_structures_follow_the_professionals_with_their_finess_number() -> None:
    ssiad = {
        "raison_sociale": "SSIAD ADMR",
        "categorie": "Service de Soins Infirmiers A Domicile",
        "ville": "TOULOUSE",
        "finess": "310000016",
    }
    plain, body = format_results_for_bot(
        [], query="ssiad", total=0, structures=[ssiad], structures_total=3
    )
    assert plain.splitlines() == [
        "3 structures pour « ssiad » (1 premières) :",
        "• SSIAD ADMR — Service de Soins Infirmiers A Domicile, Toulouse — FINESS 310000016",
    ]
    assert "<ul><li>SSIAD ADMR" in body
    found = [Found("DUPONT Marie", "Infirmier", "Toulouse", None)]
    both, _ = format_results_for_bot(
        found, query="admr", total=1, structures=[ssiad], structures_total=1
    )
    assert both.index("DUPONT Marie") < both.index("1 structure pour « admr »")
