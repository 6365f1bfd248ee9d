"""Linking existing Matrix accounts to the directory (RPPS id on the account, e-mail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dossier_service.directory.accounts import link_accounts
from dossier_service.directory.importer import import_extract
from dossier_service.directory.search import Directory
from tests.directory_support import connect

from .conftest import SAMPLE


@pytest.mark.integration
async def test_accounts_linked_by_rpps_id_and_email(
    synapse: Any, user_factory: Any, tmp_path: Path
) -> None:
    from homeserver.admin_api import AdminApi

    conn = connect(tmp_path / "annuaire.db")
    import_extract(conn, SAMPLE)
    directory = Directory(conn)
    by_id = user_factory()
    by_mail = user_factory()
    stranger = user_factory(displayname="Quelqu'un")
    async with AdminApi(synapse.base_url, synapse.admin_token) as api:
        await api.create_or_modify_user(
            by_id.user_id, external_ids=[{"auth_provider": "rpps", "external_id": "810000000015"}]
        )
        await api.create_or_modify_user(
            by_mail.user_id,
            threepids=[{"medium": "email", "address": "sophie.sabourin@pharmacien.mssante.fr"}],
        )
        report = await link_accounts(conn, directory, api, actor="test")
        again = await link_accounts(conn, directory, api, actor="test")
        named_id = (await api.get_user(by_id.user_id) or {}).get("displayname")
        named_mail = (await api.get_user(by_mail.user_id) or {}).get("displayname")
        untouched = (await api.get_user(stranger.user_id) or {}).get("displayname")
    assert (by_id.user_id, "810000000015") in report.linked
    assert (by_mail.user_id, "810000000029") in report.linked
    assert named_id == "ROBIN Mathilde — Infirmier, Narbonne"
    assert named_mail == "SABOURIN Sophie — Orthophoniste, Castres"
    assert untouched == "Quelqu'un"
    assert again.linked == [] and again.renamed == []  # idempotent
    # linked accounts come first in searches and carry their Matrix id
    hit = directory.search("sabourin").hits[0]
    assert hit.national_id == "810000000029" and hit.mxid == by_mail.user_id
    actions = {r[0] for r in conn.execute("SELECT action FROM annuaire_audit")}
    assert actions == {"compte.lie"}
