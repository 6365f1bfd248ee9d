"""!export in a patient room linked to a file: the PDF header names the patient and gives the
professions the care circle records (issue 4 header, read from the dossier through the bot's
one dossier client). Real Synapse, real bot in-process, real dossier service, E2EE."""

from __future__ import annotations

from typing import Any

import pytest
from support import download_attachment

from tests.dossier_link.dossier_support import professional, set_identity
from tests.dossier_link.test_e2e_sync import Env, env, pdf_text  # noqa: F401

pytestmark = pytest.mark.integration


async def test_export_header_shows_patient_and_professions(env: Env) -> None:  # noqa: F811
    nurse, gp = await env.make_pro(), await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi export")
    await set_identity(
        env.dossier, pid, "Dupont", "Jeanne", "F", "1940-05-17", actor=nurse.user_id, key="hdr-id"
    )
    gp_member = professional(
        gp.user_id, "Dr Généraliste", "Médecin généraliste", "medecin_traitant"
    )
    await env.dossier.add_circle_member(pid, gp_member, actor=nurse.user_id, key="hdr-gp")
    await gp.wait_member(room_id, gp.user_id)
    await nurse.wait_member(room_id, gp.user_id)
    await gp.say(room_id, "Je passe demain pour le renouvellement.")
    await nurse.say(room_id, "Merci, pansement refait ce matin.")

    start = nurse.mark(room_id)
    await nurse.say(room_id, "!export")

    def is_pdf(ev: Any) -> bool:
        content = ev.source.get("content", {})
        return ev.sender == env.bot_id and content.get("msgtype") == "m.file"

    event = await nurse.wait_for(room_id, is_pdf, timeout=60, start=start)
    text = pdf_text(await download_attachment(nurse.client, event.source["content"]))
    header = text.split("Exporté par", 1)[0]
    assert "Patient : Jeanne DUPONT" in header
    assert "(Médecin généraliste)" in " ".join(header.split())
    assert "Je passe demain pour le renouvellement." in text
