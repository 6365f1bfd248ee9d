"""``!courrier à <nom>`` through the real bridge and the real directory: the RPPS extract
imported into the dossier's directory, searched over its HTTP API with the service token.
One person with an MSSanté address: the mail goes there (and arrives); a name shared by two
people: the candidates are listed, nothing is sent; a person without an address: told so."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dossier_service.app import create_app
from dossier_service.directory.database import connect as connect_directory
from dossier_service.directory.importer import import_extract
from dossier_service.directory.web import setup as mount_directory
from tests.bridges.mail.test_inbound import connect, pro_factory, wait_notice
from tests.bridges.mail.test_outbound import wait_mails
from tests.dossier_link.dossier_support import SERVICE_TOKEN, dossier_config

pytestmark = pytest.mark.integration
__all__ = ["pro_factory"]

SAMPLE = Path("/work/shared/data/rpps/PS_LibreAcces_Personne_activite_sample.txt")
_HERE = Path(__file__).resolve()
for _up in _HERE.parents:  # the checkout lives beside ../shared
    if (_up / "shared" / "data" / "rpps").is_dir():
        SAMPLE = _up / "shared" / "data" / "rpps" / SAMPLE.name
        break

AGATHE = "agathe.leroux@medecin.mssante.fr"
NOM, PRENOM, EMAIL = 7, 8, 43  # columns of the RPPS extract (see its header line)


def extract(path: Path) -> Path:
    """Four people of the public sample, renamed: one MSSanté address, two namesakes with
    addresses, one without any address."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [r.split("|") for r in lines[1:] if r.count("|") > EMAIL]
    people = [
        ("LEROUXTEST", "AGATHE", AGATHE),
        ("VASSEURTEST", "JULIEN", "julien.vasseur@medecin.mssante.fr"),
        ("VASSEURTEST", "CLAIRE", "claire.vasseur@infirmier.mssante.fr"),
        ("PONSARDTEST", "LUC", ""),
    ]
    out = []
    for row, (nom, prenom, mail) in zip(rows, people, strict=False):
        row = list(row)
        row[NOM], row[PRENOM], row[EMAIL] = nom, prenom, mail
        out.append("|".join(row))
    path.write_text("\n".join([header, *out]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
async def dossier_with_directory(
    tmp_path: Path, dossier_template: Path, synapse: Any
) -> AsyncIterator[str]:
    config = dossier_config(tmp_path / "dossier", dossier_template, server_name=synapse.server_name)
    db = connect_directory(config.database_url)  # the directory is in the dossier's database
    import_extract(db, extract(tmp_path / "extrait.txt"))
    db.close()

    def mount(app: web.Application) -> None:
        mount_directory(app, config)

    runner = web.AppRunner(create_app(config, with_pages=False, extensions=[mount]))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    try:
        yield config.public_url
    finally:
        await runner.cleanup()


async def test_courrier_to_a_name_takes_the_directory_mssante_address(
    bridge_factory: Any,
    pro_factory: Any,
    mailbox_factory: Any,
    mail_servers: Any,
    bridge_account: str,
    dossier_with_directory: str,
) -> None:
    marie, marie_pw = mailbox_factory()
    mail_servers.add_mailbox(AGATHE, secrets.token_urlsafe(12))  # her operator's mailbox
    runner = bridge_factory(dossier_url=dossier_with_directory)
    runner.dossier_token = SERVICE_TOKEN  # type: ignore[attr-defined]
    await runner.start()
    pro = await pro_factory()
    room_id = await connect(pro, bridge_account, marie, marie_pw)

    await pro.say(room_id, "!courrier à Agathe Leroux objet Avis annuaire\nBonjour,\nMerci.")
    done = await wait_notice(pro, room_id, "Courrier envoyé")
    assert f"Courrier envoyé à {AGATHE} — objet : Avis annuaire" in done.source["content"]["body"]
    (received,) = await wait_mails(mail_servers, AGATHE, 1)
    assert received["To"] == AGATHE and received["Subject"] == "Avis annuaire"

    start = pro.mark(room_id)
    await pro.say(room_id, "!courrier à Vasseurtest objet Homonymes\nTexte.")
    both = await wait_notice(pro, room_id, "Plusieurs adresses possibles", start=start)
    body = both.source["content"]["body"]
    assert "julien.vasseur@medecin.mssante.fr" in body
    assert "claire.vasseur@infirmier.mssante.fr" in body

    start = pro.mark(room_id)
    await pro.say(room_id, "!courrier à Luc Ponsardtest objet Sans adresse\nTexte.")
    none = await wait_notice(pro, room_id, "Aucune adresse de messagerie trouvée", start=start)
    assert "« Luc Ponsardtest »" in none.source["content"]["body"]

    # nothing but the first mail left her mailbox
    assert len(await wait_mails(mail_servers, marie, 2, folder="Sent", timeout=2)) == 1
