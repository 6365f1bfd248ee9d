"""History for a newcomer added to the care circle, key-bundle path (MSC4268): Element's
crypto stack (matrix-js-sdk 43, Rust crypto, strict signed-devices mode) on both sides, the
real bot and the real dossier. The coordinator adds a colleague with ``!cercle ajouter``;
the bot shares its room keys before inviting; the colleague reads the earlier messages and
the notebook records the choice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from support import eventually as poll_until

from bots.dossier_client import DossierClient
from deployment.secrets import Secrets
from tests.bots.conftest import BotRunner, make_bot_config
from tests.dossier_link.dossier_support import dossier_beside
from tests.interop.conftest import js_client_factory  # noqa: F401 - the fixture

pytestmark = [pytest.mark.interop, pytest.mark.integration]


@pytest.fixture
async def linked_bot(
    synapse: Any, tmp_path: Path, dossier_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[BotRunner, DossierClient]]:
    token = Secrets.load_or_create(tmp_path).dossier_service_token
    server = await dossier_beside(synapse, tmp_path / "dossier-files", dossier_template, token)
    runner = BotRunner(synapse, make_bot_config(synapse, tmp_path / "bot", dossier_url=server.url))
    await runner.start()
    dossier = DossierClient(server.url, token)
    try:
        yield runner, dossier
    finally:
        await runner.stop()
        await dossier.close()
        await server.stop()


eventually = partial(poll_until, timeout=30.0)


async def test_colleague_added_to_the_circle_gets_the_room_keys(
    linked_bot: tuple[BotRunner, DossierClient],
    js_client_factory: Callable[..., Any],  # noqa: F811
) -> None:
    runner, dossier = linked_bot
    assert runner.app is not None
    bot_user = runner.app.client.user_id
    nurse = await js_client_factory()
    doctor = await js_client_factory()

    room_id = await nurse.new_patient_room(bot_user, "Historique cercle")
    found = await eventually(lambda: dossier.patient_by_room(room_id), bool)
    assert found, "dossier non créé"
    pid = str(found["id"])

    await nurse.call("send", roomId=room_id, body="pansement refait, marqueur-cercle-hist")
    await nurse.call(
        "send", roomId=room_id, body=f"!cercle ajouter {doctor.user_id} medecin_traitant"
    )
    # the coordinator is told which way the history went (issue 11)
    told = await nurse.message(room_id, bot_user, "ajouté(e) au cercle de soins", 45000)
    assert "Historique : clés de l'historique partagées (MSC4268) avec 1 appareil" in str(
        told["content"]["body"]
    ), told
    invite = await doctor.call("waitInvite", roomId=room_id, timeoutMs=45000)
    assert invite["inviter"] == bot_user
    await doctor.key_bundle(room_id, bot_user)  # sent before the invite, by to-device
    await doctor.call("join", roomId=room_id)
    await doctor.decrypted(room_id, nurse.user_id, "marqueur-cercle-hist")

    file = await eventually(
        lambda: dossier.get_file(pid),
        lambda f: any(
            str(e["text"]).startswith("Invitation de") for e in (f or {}).get("notebook", [])
        ),
    )
    invitation = [
        str(e["text"]) for e in file["notebook"] if str(e["text"]).startswith("Invitation de")
    ]
    assert len(invitation) == 1 and "clés de l'historique partagées (MSC4268)" in invitation[0]
    # the room and the circle agree: the colleague is in the circle with the chosen role
    circle = await dossier.circle(pid)
    assert [
        (m["role"], m["has_access"]) for m in circle if m["matrix_user_id"] == doctor.user_id
    ] == [("medecin_traitant", True)]
