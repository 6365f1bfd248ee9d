"""Files opened in the dossier with the bot's rooms over two accounts (``bot.shards: 2``,
bots/shards.py): each file's room is made by the account its intent names, furnished by it,
and the other account, which reads the same feed, makes nothing. Real Synapse, real dossier,
both accounts running, a professional on nio."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nio import RoomGetStateEventResponse, RoomResolveAliasResponse
from support import eventually as poll_until

from bots.commands.patients import new_pseudonym
from bots.dossier_client import DossierClient
from bots.matrix.room_once import intent_alias
from bots.shards import shard_for
from deployment.secrets import Secrets
from tests.bots.conftest import BotRunner, Pro, make_bot_config
from tests.bots.test_shards_with_bots import _register_shard
from tests.dossier_link.dossier_support import dossier_beside

pytestmark = pytest.mark.integration

eventually = partial(poll_until, timeout=30.0)


async def _state(pro: Pro, room_id: str, event_type: str, key: str = "") -> dict[str, Any]:
    resp = await pro.client.room_get_state_event(room_id, event_type, key)
    return dict(resp.content) if isinstance(resp, RoomGetStateEventResponse) else {}


async def test_a_file_opened_in_the_dossier_gets_its_room_from_the_account_it_names(
    synapse: Any, tmp_path: Path, dossier_template: Path, nio_client_factory: Any
) -> None:
    token = Secrets.load_or_create(tmp_path).dossier_service_token  # the bots' var = tmp_path
    server = await dossier_beside(synapse, tmp_path / "dossier-files", dossier_template, token)
    front_id = synapse.bot_user_id
    shard_id = f"@cercle-bot-2:{synapse.server_name}"
    accounts = (front_id, shard_id)
    await _register_shard(synapse, shard_id, 2)
    common = {"dossier_url": server.url, "accounts": accounts}
    runners = [
        BotRunner(synapse, make_bot_config(synapse, tmp_path / "bot", **common)),
        BotRunner(
            synapse,
            make_bot_config(
                synapse,
                tmp_path / "bot-2",
                user_id=shard_id,
                display_name="Cercle (salons 2)",
                cross_signing_key_path=synapse.var_dir / "bot-2" / "cross_signing.enc",
                **common,
            ).model_copy(update={"shard": 2}),
        ),
    ]
    dossier = DossierClient(server.url, token)
    try:
        for runner in runners:
            await runner.start()
        coord = Pro(await nio_client_factory(None))
        # one file whose room the front makes, one the second account makes
        pids: dict[int, str] = {}
        while len(pids) < 2:
            pid = new_pseudonym()
            pids.setdefault(shard_for(f"file-room|{pid}", 2), pid)
        for shard, pid in sorted(pids.items()):
            await dossier.create_patient(
                room_id=None,
                label=f"Ouvert sur la page {shard}",
                coordinator=coord.user_id,
                patient_id=pid,
                key=f"page-create-{pid}",
            )
        for shard, pid in sorted(pids.items()):
            owner = accounts[shard - 1]
            patient = await eventually(
                lambda pid=pid: dossier.get_patient(pid),
                lambda p: bool(p and p.get("room_id")),
                what="salon lié au dossier",
            )
            room_id = str(patient["room_id"])
            await coord.wait_member(room_id, coord.user_id)  # invited by its account, joined
            # made once, by its account: the intent's alias names this very room
            alias = f"#{intent_alias(f'file-room|{pid}')}:{synapse.server_name}"
            resolved = await coord.client.room_resolve_alias(alias)
            assert isinstance(resolved, RoomResolveAliasResponse) and resolved.room_id == room_id
            members = {m.user_id for m in (await coord.client.joined_members(room_id)).members}
            assert members == {coord.user_id, owner}, members  # one room, one account
            assert (await _state(coord, room_id, "fr.cercle.patient"))["id"] == pid
            notice = await coord.wait_notice(room_id, "🪪 Patient : identité à compléter")
            assert notice.sender == owner
    finally:
        for runner in reversed(runners):
            await runner.stop()
        await dossier.close()
        await server.stop()
