"""Room ↔ file, end to end: a real Synapse, the real bot (in-process here), the real dossier
service on a free port with a fresh SQLite, professionals as E2EE nio clients.

SPICO use case 3 (urgent flag, prescription filed with !doc, flag cleared), use case 2 (a
hospital professional added to the circle is invited with the history, the discharge shows
in the room), and the faults: dossier stopped while commands come in, the same room event
handled twice. (The SIGKILL of the bot process is in test_e2e_kill.py.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from nio import MegolmEvent, RoomGetStateEventResponse, UploadResponse
from nio.crypto.attachments import encrypt_attachment
from pypdf import PdfReader
from support import download_attachment
from support import eventually as poll_until

from bots.dossier_client import DossierClient
from deployment.secrets import Secrets
from tests.bots.conftest import BotRunner, Pro, dm_with_bot, make_bot_config, room_id_in
from tests.dossier_link.dossier_support import (
    dossier_beside,
    last_file_event,
    professional,
    set_identity,
)

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------ helpers
eventually = partial(poll_until, timeout=20.0)


def make_pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text=text)
    return bytes(pdf.output())


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


async def send_file(pro: Pro, room_id: str, data: bytes, filename: str) -> str:
    ciphertext, keys = encrypt_attachment(data)
    resp, _ = await pro.client.upload(
        lambda *_: ciphertext, content_type="application/octet-stream", filesize=len(ciphertext)
    )
    assert isinstance(resp, UploadResponse), resp
    content = {
        "msgtype": "m.file",
        "body": filename,
        "filename": filename,
        "info": {"mimetype": "application/pdf", "size": len(data)},
        "file": {
            "url": resp.content_uri,
            "key": keys["key"],
            "iv": keys["iv"],
            "hashes": keys["hashes"],
            "v": keys["v"],
            "mimetype": "application/pdf",
        },
    }
    return await pro.say(room_id, filename, content)


async def reply_command(pro: Pro, room_id: str, to_event: str, command: str) -> str:
    return await pro.say(
        room_id,
        command,
        {
            "msgtype": "m.text",
            "body": command,
            "m.relates_to": {"m.in_reply_to": {"event_id": to_event}},
        },
    )


async def state(pro: Pro, room_id: str, event_type: str, key: str = "") -> dict[str, Any]:
    resp = await pro.client.room_get_state_event(room_id, event_type, key)
    return dict(resp.content) if isinstance(resp, RoomGetStateEventResponse) else {}


def notebook_texts(file: dict[str, Any]) -> list[str]:
    return [str(e["text"]) for e in file.get("notebook", [])]


# ------------------------------------------------------------------------------ fixtures
@dataclasses.dataclass
class Env:
    synapse: Any
    server: Any
    runner: BotRunner
    dossier: DossierClient
    make_pro: Callable[..., Awaitable[Pro]]

    @property
    def bot_id(self) -> str:
        return str(self.synapse.bot_user_id)

    async def file(self, pid: str) -> dict[str, Any]:
        return await self.dossier.get_file(pid) or {}

    async def dossier_work_done(self) -> None:
        """Wait until the bot has nothing left to do from the dossier: every file event read
        (its feed position at the dossier's last event) and its outbox empty."""
        app = self.runner.app
        assert app is not None and app.dossier_sync is not None
        sync = app.dossier_sync

        async def backlog() -> tuple[int, int, int]:
            last = await last_file_event(self.dossier)
            return last, sync.store.cursor(), sync.outbox.pending_count()

        await eventually(
            backlog,
            lambda b: b[1] >= b[0] and b[2] == 0,
            what="fil du dossier et boîte d'envoi du bot traités",
        )

    async def patient_room(self, owner: Pro, label: str) -> tuple[str, str]:
        """``!patient nouveau`` in a DM with the bot: the room, and its file (same id)."""
        dm = await dm_with_bot(owner, self.bot_id)
        await owner.say(dm, f"!patient nouveau {label}")
        notice = await owner.wait_notice(dm, f"Salon patient « {label} » créé")
        room_id = room_id_in(notice.source["content"]["body"])
        await owner.wait_member(room_id, owner.user_id)
        found = await eventually(
            lambda: self.dossier.patient_by_room(room_id), bool, what="dossier créé pour le salon"
        )
        pid = str(found["id"])
        assert f"({pid})" in notice.source["content"]["body"]  # one id: the room's is the file's
        await eventually(
            lambda: state(owner, room_id, "fr.cercle.patient"),
            lambda c: c.get("id") == pid,
            what="identifiant du dossier dans le salon",
        )
        return room_id, pid


@pytest.fixture
async def env(
    synapse: Any,
    tmp_path: Path,
    dossier_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    nio_client_factory: Callable[..., Any],
) -> AsyncIterator[Env]:
    token = Secrets.load_or_create(tmp_path).dossier_service_token  # the bot's var = tmp_path
    server = await dossier_beside(synapse, tmp_path / "dossier-files", dossier_template, token)
    runner = BotRunner(
        synapse,
        make_bot_config(
            synapse,
            tmp_path / "bot",
            dossier_url=server.url,
            history_fallback_seconds=3.0,
            account_check_seconds=1.0,
        ),
    )
    await runner.start()
    dossier = DossierClient(server.url, token)

    async def make_pro(name: str | None = None) -> Pro:
        return Pro(await nio_client_factory(None))

    try:
        yield Env(synapse, server, runner, dossier, make_pro)
    finally:
        await runner.stop()
        await dossier.close()
        await server.stop()


# ------------------------------------------------------------------------------ use case 3
async def test_spico_use_case_3_urgent_prescription_filed_and_cleared(env: Env) -> None:
    nurse, gp = await env.make_pro(), await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi Mme D.")

    # the room carries the file: widget in the side panel, identity pinned (encrypted)
    widget = await eventually(
        lambda: state(nurse, room_id, "im.vector.modular.widgets", "cercle-dossier"),
        lambda c: bool(c.get("url")),
        what="widget du dossier",
    )
    assert widget["url"].startswith(f"{env.server.url}/patients/{pid}?")
    layout = await eventually(
        lambda: state(nurse, room_id, "io.element.widgets.layout"),
        lambda c: "cercle-dossier" in c.get("widgets", {}),
        what="disposition",
    )
    assert layout["widgets"]["cercle-dossier"]["container"] == "right"
    header = await nurse.wait_notice(room_id, "🪪 Patient")
    pinned = await eventually(
        lambda: state(nurse, room_id, "m.room.pinned_events"),
        lambda c: header.event_id in c.get("pinned", []),
        what="message épinglé",
    )
    assert pinned["pinned"][0] == header.event_id

    # the coordinator brings the GP into the circle from the room: invited by the bot
    await nurse.say(room_id, f"!cercle ajouter {gp.user_id} medecin_traitant")
    await nurse.wait_notice(room_id, "ajouté(e) au cercle de soins")
    await gp.wait_member(room_id, gp.user_id)
    await nurse.wait_member(room_id, gp.user_id)

    motif = "Plaie surinfectée : le Dr peut-il faire une ordonnance d'antibiotiques ?"
    start = gp.mark(room_id)
    await nurse.say(room_id, f"!urgent {motif}")
    urgent = await gp.wait_notice(room_id, "URGENCE", start=start)
    assert gp.user_id in urgent.source["content"]["m.mentions"]["user_ids"]  # the team was told
    assert motif in urgent.source["content"]["body"]

    prescription = make_pdf("Ordonnance : amoxicilline 1 g x 3 / jour pendant 7 jours")
    file_event = await send_file(gp, room_id, prescription, "ordonnance-mme-d.pdf")
    start = gp.mark(room_id)
    await reply_command(gp, room_id, file_event, "!doc recette")
    refused = await gp.wait_notice(room_id, "Catégorie inconnue", start=start)
    assert "ordonnance" in refused.source["content"]["body"]  # the valid ones are listed
    await reply_command(gp, room_id, file_event, "!doc ordonnance")
    await gp.wait_notice(
        room_id, "classé dans les documents du dossier (catégorie ordonnance)", start=start
    )
    await nurse.wait_notice(room_id, "Document ajouté au dossier dans la catégorie « ordonnance »")

    await gp.say(room_id, "!fait urgent")
    await nurse.wait_notice(room_id, "levé par")
    file = await eventually(
        lambda: env.file(pid),
        lambda f: any("levé par" in t for t in notebook_texts(f)),
        what="levée du signalement dans le cahier",
    )
    docs = file["documents"]
    assert [(d["category"], d["sha256"]) for d in docs] == [
        ("ordonnance", hashlib.sha256(prescription).hexdigest())
    ]
    assert docs[0]["uploaded_by"] == gp.user_id
    texts = notebook_texts(file)
    raised = [e for e in file["notebook"] if e["text"].startswith("Signalement « urgence » par")]
    assert (
        len(raised) == 1
        and raised[0]["author"] == nurse.user_id
        and raised[0]["kind"] == "signalement"
    )
    assert motif in raised[0]["text"]
    assert sum("Signalement « urgence » levé par " + gp.user_id in t for t in texts) == 1
    assert any(t.startswith("Document ajouté dans la catégorie ordonnance") for t in texts)
    assert any(t.startswith("Invitation de") and "transcription PDF" in t for t in texts)
    assert await state(nurse, room_id, "fr.cercle.flags") in ({}, {"flags": {}})
    assert not [b for b in nurse.notices(room_id) if "de nouveau joignable" in b]  # never down here

    # the GP leaves the conversation: marked "left" in the circle, kept in it
    await gp.client.room_leave(room_id)
    circle = await eventually(
        lambda: env.dossier.circle(pid),
        lambda ms: any(m["matrix_user_id"] == gp.user_id and m.get("left_room_at") for m in ms),
        what="départ noté",
    )
    assert any(m["matrix_user_id"] == gp.user_id and m["ended_at"] is None for m in circle)


# ------------------------------------------------------------------------------ use case 2
async def test_use_case_2_hospital_professional_gets_history_and_discharge_shows(env: Env) -> None:
    gp, hospital = await env.make_pro(), await env.make_pro()
    room_id, pid = await env.patient_room(gp, "Suivi M. H.")
    marker = "Antécédents : insuffisance cardiaque, marqueur-historique-7Q"
    await gp.say(room_id, marker)

    # the coordinator adds the hospital professional on the file (the page does this call)
    hospital_member = professional(hospital.user_id, "Dr Hôpital", "Médecin hospitalier")
    await env.dossier.add_circle_member(pid, hospital_member, actor=gp.user_id, key="uc2-add")
    await env.dossier.add_circle_member(
        pid,
        {"kind": "aidant", "display_name": "Mme H. (épouse)", "role": "aidant_principal"},
        actor=gp.user_id,
        key="uc2-aidant",
    )
    await hospital.wait_member(room_id, hospital.user_id)
    added = await gp.wait_notice(room_id, "Dr Hôpital rejoint le cercle de soins")
    # the page's user learns in the room which way the history went (issue 11)
    body = added.source["content"]["body"]
    assert "Historique : aucun appareil ne peut encore recevoir les clés" in body
    await gp.wait_notice(room_id, "sans compte : enregistré, non invité")

    # the earlier messages: no cross-signed device here, so a PDF transcript in a direct chat
    def is_pdf(ev: Any) -> bool:
        return ev.source.get("content", {}).get("msgtype") == "m.file"

    transcript = None
    deadline = time.monotonic() + 40
    while transcript is None and time.monotonic() < deadline:
        await hospital.sync_once()
        for rid, events in hospital.events.items():
            if rid != room_id:
                transcript = next((e for e in events if is_pdf(e)), None) or transcript
    assert transcript is not None, "transcription de l'historique non reçue"
    text = pdf_text(await download_attachment(hospital.client, transcript.source["content"]))
    assert "marqueur-historique-7Q" in text

    # the hospital professional posts the discharge prescription; the discharge is recorded
    await send_file(hospital, room_id, make_pdf("Ordonnance de sortie"), "ordonnance-sortie.pdf")
    now = datetime.now(UTC)
    await env.dossier.request(
        "POST",
        f"/patients/{pid}/hospitalisations",
        json_body={
            "structure": "CHU Nord",
            "service": "Cardiologie",
            "admission_at": (now - timedelta(days=5)).isoformat(),
            "discharge_at": (now - timedelta(minutes=5)).isoformat(),
        },
        actor=hospital.user_id,
        key="uc2-stay",
    )
    await gp.wait_notice(room_id, "Sortie d'hospitalisation le")
    await gp.wait_notice(room_id, "Hospitalisation : admission le")

    # the identity filled in on the file: the pinned message is edited, never put in state
    header = await gp.wait_notice(room_id, "🪪 Patient")
    await set_identity(
        env.dossier, pid, "Hugo", "Victor", "M", "1948-03-02", actor=gp.user_id, key="uc2-identity"
    )
    edit = await gp.wait_notice(room_id, "* 🪪 Patient : HUGO Victor — né(e) le 02/03/1948")
    relation = edit.source["content"]["m.relates_to"]
    assert relation == {"rel_type": "m.replace", "event_id": header.event_id}
    assert "identité provisoire (PROV)" in edit.source["content"]["m.new_content"]["body"]
    pinned = await state(gp, room_id, "m.room.pinned_events")
    assert pinned["pinned"] == [header.event_id]
    assert "Hugo" not in str(await state(gp, room_id, "fr.cercle.patient"))
    # a birthday later: the daily pass edits the pinned message with the new age
    app = env.runner.app
    assert app is not None
    links = app.dossier_sync.links
    links.today = lambda: date(2027, 3, 2)
    assert await links.refresh_ages() == 1
    assert await links.refresh_ages() == 0  # nothing changed since
    await gp.wait_notice(room_id, "né(e) le 02/03/1948 (79 ans)")

    # a death declared by mistake, then cancelled: both told in the room, identity kept current
    await env.dossier.request(
        "POST",
        f"/patients/{pid}/death",
        json_body={"death_date": now.date().isoformat()},
        actor=gp.user_id,
        key="uc2-death",
    )
    await gp.wait_notice(room_id, "🕊 Décès du patient déclaré dans le dossier")
    await gp.wait_notice(room_id, "décédé(e) le")  # the pinned identity, edited
    await env.dossier.request(
        "POST",
        f"/patients/{pid}/death/cancel",
        json_body={"reason": "Erreur de dossier"},
        actor=gp.user_id,
        key="uc2-undeath",
    )
    await gp.wait_notice(room_id, "↩ Annulation de la déclaration du décès")

    file = await env.file(pid)
    invitation = [t for t in notebook_texts(file) if t.startswith("Invitation de Dr Hôpital")]
    assert len(invitation) == 1 and "transcription PDF" in invitation[0]

    # the coordinator ends the hospital professional's participation: removed from the room
    member = next(
        m for m in await env.dossier.circle(pid) if m["matrix_user_id"] == hospital.user_id
    )
    await env.dossier.end_circle_member(pid, member["id"], actor=gp.user_id, key="uc2-end")
    leave = await eventually(
        lambda: state(gp, room_id, "m.room.member", hospital.user_id),
        lambda c: c.get("membership") == "leave",
        what="exclusion",
    )
    assert leave["reason"] == "Fin de participation au cercle de soins du patient"


# ------------------------------------------------------------------------------ faults
async def test_dossier_down_while_commands_come_in_nothing_lost(env: Env) -> None:
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi panne")
    await env.server.stop()
    start = nurse.mark(room_id)
    await nurse.say(room_id, "!note panne-note-1")
    await nurse.say(room_id, "!transmission panne-transmission-2")
    await nurse.say(room_id, f"!tache panne-tache-3 pour {nurse.user_id} échéance demain")
    for what in ("la note", "la transmission", "la tâche"):
        await nurse.wait_notice(
            room_id, f"momentanément indisponible : {what}", start=start, timeout=30
        )
    await env.server.start()
    await nurse.wait_notice(room_id, "Nouvelle tâche « panne-tache-3 »", timeout=40)
    file = await eventually(
        lambda: env.file(pid),
        lambda f: sum(t.startswith("panne-") for t in notebook_texts(f)) >= 2,
        timeout=30,
        what="écritures différées",
    )
    texts = notebook_texts(file)
    assert texts.count("panne-note-1") == 1 and texts.count("panne-transmission-2") == 1
    assert [t["label"] for t in file["tasks"]] == ["panne-tache-3"]
    assert file["tasks"][0]["assignees"] == [{"kind": "personne", "ref": nurse.user_id}]
    await nurse.wait_notice(room_id, "Dossier de nouveau joignable", start=start)
    # !taches and !tache fait work on what was queued
    start = nurse.mark(room_id)
    await nurse.say(room_id, "!taches")
    listing = await nurse.wait_notice(room_id, "Tâches ouvertes", start=start)
    assert "1. panne-tache-3" in listing.source["content"]["body"]
    await nurse.say(room_id, "!tache fait 1")
    await nurse.wait_notice(room_id, "Tâche « panne-tache-3 » close", start=start)
    assert await env.dossier.open_tasks(pid) == []


async def test_same_room_event_handled_twice_writes_one_entry(env: Env) -> None:
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi doublon")
    start = nurse.mark(room_id)
    event_id = await nurse.say(room_id, "!note doublon-unique")
    await nurse.wait_notice(room_id, "Note enregistrée", start=start)
    app = env.runner.app
    assert app is not None
    resp = await app.client.room_get_event(room_id, event_id)
    event = resp.event
    if isinstance(event, MegolmEvent):
        event = app.client.decrypt_event(event)
    assert event.source["content"]["body"] == "!note doublon-unique"
    room = app.client.rooms[room_id]
    for _ in range(2):  # the same event handed to the bot again (e.g. a replayed sync)
        await app.sync_loop.handlers.handle(event, room)
    file = await env.file(pid)
    assert notebook_texts(file).count("doublon-unique") == 1
    # handle() sent its replies before returning; past the bot's answer to a later command,
    # the room shows every one of them
    shown = await nurse.bot_notices_so_far(room_id, env.bot_id)
    replies = [b for b in shown if b.startswith("🗒 Note enregistrée")]
    assert len(replies) == 1  # same transaction id: the homeserver kept one reply

    # an export is traced in the liaison notebook (who, when, what)
    await nurse.say(room_id, "!export derniers 5")
    file = await eventually(
        lambda: env.file(pid),
        lambda f: any(
            t.startswith("Export PDF de la conversation demandé par") for t in notebook_texts(f)
        ),
        what="export noté",
    )
    entry = next(e for e in file["notebook"] if e["text"].startswith("Export PDF"))
    assert entry["author"] == nurse.user_id and "derniers 5" in entry["text"]

    # so is an invitation made with !inviter (who invited whom, which way the history went)
    colleague = await env.make_pro()
    await nurse.say(room_id, f"!inviter {colleague.user_id}")
    file = await eventually(
        lambda: env.file(pid),
        lambda f: any(
            t.startswith(f"Invitation de {colleague.user_id}") for t in notebook_texts(f)
        ),
        what="invitation notée",
    )
    invited = [
        e for e in file["notebook"] if e["text"].startswith(f"Invitation de {colleague.user_id}")
    ]
    assert len(invited) == 1 and invited[0]["author"] == nurse.user_id
    assert f"par {nurse.user_id} ; " in invited[0]["text"]
    assert "transcription PDF" in invited[0]["text"]  # a nio device: never cross-signed

    # issue 11: invited into the conversation = in the care circle (intervenant, habilité)
    circle = await env.dossier.circle(pid)
    assert [
        (m["role"], m["has_access"]) for m in circle if m["matrix_user_id"] == colleague.user_id
    ] == [("intervenant", True)]
    await colleague.wait_member(room_id, colleague.user_id)
    start = colleague.mark(room_id)
    await colleague.say(room_id, "!note note du nouveau venu")
    await colleague.wait_notice(room_id, "Note enregistrée", start=start)
    assert "note du nouveau venu" in notebook_texts(await env.file(pid))


# ------------------------------------------------------------------------------ file first
async def test_file_opened_in_dossier_gets_its_room_then_overdue_and_link(env: Env) -> None:
    coord = await env.make_pro()
    created = await env.dossier.create_patient(
        room_id=None,
        label="Dossier ouvert sur la page",
        coordinator=coord.user_id,
        key="page-create",
    )
    pid = str(created["id"])
    # the bot opens the room (pseudonymous id, no identity in state) and links it
    patient = await eventually(
        lambda: env.dossier.get_patient(pid),
        lambda p: bool(p and p.get("room_id")),
        what="salon lié au dossier",
    )
    room_id = str(patient["room_id"])
    await coord.wait_member(room_id, coord.user_id)  # invited by the bot, joined
    assert (await state(coord, room_id, "fr.cercle.patient"))["id"] == pid
    await coord.wait_notice(room_id, "🪪 Patient : identité à compléter dans le dossier")

    # !cercle lists the circle; an overdue task is announced once, its assignee gets one DM
    start = coord.mark(room_id)
    await coord.say(room_id, "!cercle")
    listing = await coord.wait_notice(room_id, "Cercle de soins :", start=start)
    assert "coordinateur / gestionnaire de cas — habilité" in listing.source["content"]["body"]
    # a coordinator adds then removes a professional from the room: invited, then kicked
    colleague = await env.make_pro()
    await coord.say(room_id, f"!cercle ajouter {colleague.user_id} intervenant")
    await colleague.wait_member(room_id, colleague.user_id)
    await coord.say(room_id, f"!cercle retirer {colleague.user_id}")
    kicked = await eventually(
        lambda: state(coord, room_id, "m.room.member", colleague.user_id),
        lambda c: c.get("membership") == "leave",
        what="retrait",
    )
    assert kicked["reason"] == "Fin de participation au cercle de soins du patient"
    assert [m["matrix_user_id"] for m in await env.dossier.circle(pid)] == [coord.user_id]

    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    await env.dossier.create_task(
        pid,
        label="Bilan sanguin",
        type="Soins",
        assignees=[coord.user_id],
        due_date=yesterday,
        actor=coord.user_id,
        key="late-task",
    )
    app = env.runner.app
    assert app is not None
    announcements = app.dossier_sync.announcements
    await announcements.announce_overdue()  # announces it, unless the bot's own job just did
    assert await announcements.announce_overdue() == 0  # announced: never again
    late = await coord.wait_notice(room_id, "⏰ Tâche en retard : « Bilan sanguin »")
    assert coord.user_id in late.source["content"]["m.mentions"]["user_ids"]
    dms = []
    deadline = time.monotonic() + 20
    while not dms and time.monotonic() < deadline:
        await coord.sync_once()
        dms = [
            (rid, b)
            for rid in coord.events
            if rid != room_id
            for b in coord.notices(rid)
            if b.startswith("⏰ Tâche en retard")
        ]
    assert len(dms) == 1
    assert sum(b.startswith("⏰ Tâche en retard") for b in coord.notices(room_id)) == 1

    # !patient lier: an existing room of the coordinator, the bot made admin there
    other = await coord.client.room_create(
        name="Ancien groupe",
        invite=[env.bot_id, colleague.user_id],
        initial_state=[
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        ],
        power_level_override={"users": {env.bot_id: 100}},  # v12: the creator outranks all
    )
    other_id = str(other.room_id)
    await coord.wait_member(other_id, env.bot_id)
    await colleague.wait_member(other_id, colleague.user_id)  # a group, not a direct chat
    await coord.wait_member(other_id, colleague.user_id)
    start = coord.mark(other_id)
    await coord.say(other_id, "!patient lier P-INCONNU")
    await coord.wait_notice(other_id, "Dossier introuvable", start=start)
    await coord.say(other_id, f"!patient lier {pid}")
    await coord.wait_notice(other_id, f"Salon lié au dossier {pid}", start=start)
    assert (await env.dossier.get_patient(pid) or {})["room_id"] == other_id
    assert (await state(coord, other_id, "fr.cercle.patient"))["id"] == pid
    widget = await state(coord, other_id, "im.vector.modular.widgets", "cercle-dossier")
    assert f"/patients/{pid}?" in widget["url"]


async def test_a_note_held_while_the_dossier_is_down_is_checked_when_it_arrives(
    env: Env,
) -> None:
    """Issue 12, finding 7: someone in the room without access to the file (a room-only
    guest, issue 11) writes !note while the dossier is down; the write waits, and the dossier,
    checking her access when it arrives, refuses it: never written unchecked."""
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi retenue")
    colleague = await env.make_pro()
    await nurse.say(room_id, f"!cercle ajouter {colleague.user_id} intervenant sans-accès")
    await colleague.wait_member(room_id, colleague.user_id)
    await env.server.stop()
    start = colleague.mark(room_id)
    await colleague.say(room_id, "!note retenue-intrusion")
    await nurse.say(room_id, "!note retenue-legitime")
    await colleague.wait_notice(room_id, "momentanément indisponible : la note", start=start)
    await env.server.start()
    file = await eventually(
        lambda: env.file(pid),
        lambda f: "retenue-legitime" in notebook_texts(f),
        timeout=40,
        what="note différée légitime",
    )
    assert "retenue-intrusion" not in notebook_texts(file)


async def test_task_for_someone_is_one_message_the_notice_replying_to_the_command(env: Env) -> None:
    """« !tache … pour @x » used to post « Tâche créée » and then « Nouvelle tâche »: one
    action, one message — the room's notice, as the reply to the command."""
    nurse = await env.make_pro()
    room_id, _pid = await env.patient_room(nurse, "Suivi tâche unique")
    start = nurse.mark(room_id)
    command = await nurse.say(room_id, f"!tache refaire le pansement pour {nurse.user_id}")
    notice = await nurse.wait_notice(
        room_id, "Nouvelle tâche « refaire le pansement »", start=start
    )
    assert notice.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == command
    await nurse.say(room_id, "!tache appeler le laboratoire")  # nobody named: its own reply
    await nurse.wait_notice(room_id, "Tâche créée : « appeler le laboratoire »", start=start)
    await nurse.say(room_id, "!taches")
    await nurse.wait_notice(room_id, "Tâches ouvertes", start=start)  # the bot is past both
    bot_notices = [
        e.source["content"].get("body", "")
        for e in nurse.events[room_id][start:]
        if e.sender == env.bot_id
    ]
    assert sum("refaire le pansement" in b for b in bot_notices if "Tâches ouvertes" not in b) == 1
