"""Issue 11: the room and the care circle say the same thing, and nobody acts blind.

Real Synapse, real dossier, the real bot; professionals on nio (which never cross-signs):

* a professional invited from a client (not through the bot) by a room administrator is in
  the circle with access; a guest invited by a plain member is in it "sans accès au
  dossier", shown as such by ``!cercle``, and refused the file; leaving is recorded;
* both get the transcript PDF (no device of theirs can take keys), once;
* a member whose client asks the bot for the room's keys is offered the transcript.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from nio import ToDeviceMessage

from bots.dossier_client import DossierClient
from tests.bots.conftest import Pro
from tests.dossier_link.dossier_support import professional
from tests.dossier_link.test_e2e_sync import Env, env, eventually, notebook_texts  # noqa: F401

pytestmark = pytest.mark.integration


def circle_entry(circle: list[dict[str, Any]], user: str) -> dict[str, Any] | None:
    return next((m for m in circle if m.get("matrix_user_id") == user), None)


async def in_circle(dossier: DossierClient, pid: str, user: str, what: str) -> dict[str, Any]:
    """The entry of ``user`` in the file's care circle, once it is there."""
    circle = await eventually(
        lambda: dossier.circle(pid), lambda c: circle_entry(c, user) is not None, what=what
    )
    entry = circle_entry(circle, user)
    assert entry is not None
    return entry


async def wait_dm_with(pro: Pro, room_id: str, contains: str, timeout: float = 40.0) -> Any:
    """An event of the bot in a room other than ``room_id`` (the direct chat) with ``contains``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pro.sync_once()
        for rid, events in pro.events.items():
            if rid == room_id:
                continue
            for ev in events:
                if contains in str(ev.source.get("content", {}).get("body", "")):
                    return ev
    raise AssertionError(f"« {contains} » non reçu en conversation directe")


async def test_joins_from_any_client_follow_into_the_circle(env: Env) -> None:  # noqa: F811
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Cercle et salon")
    await nurse.say(room_id, "pansement du matin, marqueur-cercle")

    # invited from the nurse's own client (she is the room's administrator)
    colleague, guest = await env.make_pro(), await env.make_pro()
    await nurse.client.room_invite(room_id, colleague.user_id)
    await colleague.wait_member(room_id, colleague.user_id)
    member = await in_circle(env.dossier, pid, colleague.user_id, "collègue dans le cercle")
    assert member["has_access"] is True
    # no device of theirs can take keys: the transcript, in the bot's direct chat
    pdf = await wait_dm_with(colleague, room_id, "Historique de la conversation")
    assert pdf.source["content"]["msgtype"] == "m.file"

    # a plain member invites a guest: in the conversation, not in the file
    await colleague.client.room_invite(room_id, guest.user_id)
    await guest.wait_member(room_id, guest.user_id)
    entry = await in_circle(env.dossier, pid, guest.user_id, "invité dans le cercle")
    assert entry["has_access"] is False and entry["role"] == "intervenant"
    start = nurse.mark(room_id)
    await nurse.say(room_id, "!cercle")
    listing = await nurse.wait_notice(room_id, "Cercle de soins :", start=start)
    body = listing.source["content"]["body"]
    assert "sans accès au dossier" in body and "sans être dans le cercle" not in body
    start = guest.mark(room_id)
    await guest.say(room_id, "!taches")
    await guest.wait_notice(room_id, "Vous ne faites pas partie du cercle de soins", start=start)
    joined = await guest.client.joined_members(room_id)
    assert guest.user_id in {m.user_id for m in joined.members}  # refused the file, still in

    # a task only goes to people of the circle
    outsider = await env.make_pro()
    start = nurse.mark(room_id)
    await nurse.say(room_id, f"!tache rappeler la famille pour {outsider.user_id}")
    await nurse.wait_notice(room_id, "ne fait pas partie du cercle de soins", start=start)
    await nurse.say(room_id, f"!tache rappeler la famille pour {colleague.user_id}")
    # someone named: the room's notice is the one reply (issue 13)
    await nurse.wait_notice(room_id, "Nouvelle tâche « rappeler la famille »", start=start)

    # the guest leaves: recorded on the file, the room told she stays in the circle
    start = nurse.mark(room_id)
    await guest.client.room_leave(room_id)
    left = await nurse.wait_notice(room_id, "a quitté la conversation", start=start)
    assert "reste dans le cercle de soins (sans accès au dossier)" in left.source["content"]["body"]
    await eventually(
        lambda: env.file(pid),
        lambda f: any("a quitté la conversation" in t for t in notebook_texts(f)),
        what="départ noté",
    )


async def test_a_member_asking_the_bot_for_keys_is_offered_the_transcript(env: Env) -> None:  # noqa: F811
    nurse = await env.make_pro()  # a member from the start: no arrival, no fallback clock
    room_id, _ = await env.patient_room(nurse, "Clés demandées")

    # a client that asks the room's senders for a missing key (m.room_key_request, as
    # Element's former crypto did), addressed to the bot's devices
    bot = env.runner.app
    assert bot is not None
    request = {
        "action": "request",
        "requesting_device_id": nurse.client.device_id,
        "request_id": uuid.uuid4().hex,
        "body": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": room_id,
            "sender_key": "x" * 43,
            "session_id": "absente",
        },
    }
    sent = await nurse.client.to_device(
        ToDeviceMessage("m.room_key_request", bot.client.user_id, "*", request)
    )
    assert not hasattr(sent, "status_code"), sent
    offer = await wait_dm_with(nurse, room_id, "Écrivez !historique dans la conversation")
    assert "n'a pas pu déchiffrer" in offer.source["content"]["body"]

    start = nurse.mark(room_id)
    await nurse.say(room_id, "!historique")
    await wait_dm_with(nurse, room_id, "Historique de la conversation")
    await nurse.say(room_id, "!historique")
    await nurse.wait_notice(room_id, "déjà été envoyé", start=start)


async def test_a_member_removed_in_a_client_is_marked_and_the_room_told_how_to_end_access(
    env: Env,  # noqa: F811
) -> None:
    """Removed from the room in a client (a kick, not ``!cercle retirer``): the file marks her
    left and names who removed her, her access stays, and the room is told so and how to end
    it; invited again and back, she is no longer "left"."""
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Retrait depuis un client")
    colleague = await env.make_pro()
    await nurse.client.room_invite(room_id, colleague.user_id)
    await colleague.wait_member(room_id, colleague.user_id)
    await in_circle(env.dossier, pid, colleague.user_id, "collègue dans le cercle")

    start = nurse.mark(room_id)
    await nurse.client.room_kick(room_id, colleague.user_id, reason="erreur de salon")
    notice = await nurse.wait_notice(room_id, "a été retiré(e) de la conversation", start=start)
    body = notice.source["content"]["body"]
    assert "reste habilité(e) sur le dossier du patient" in body
    assert f"!cercle retirer {colleague.user_id}" in body
    entry = await eventually(
        lambda: env.dossier.circle(pid),
        lambda c: bool((circle_entry(c, colleague.user_id) or {}).get("left_room_at")),
        what="retrait noté sur le cercle",
    )
    assert circle_entry(entry, colleague.user_id)["has_access"] is True  # type: ignore[index]
    await eventually(
        lambda: env.file(pid),
        lambda f: any(
            "retiré(e) de la conversation du patient par" in t for t in notebook_texts(f)
        ),
        what="retrait noté au cahier",
    )
    start = nurse.mark(room_id)
    await nurse.say(room_id, "!cercle")
    listing = await nurse.wait_notice(room_id, "Cercle de soins :", start=start)
    assert "(hors de la conversation)" in listing.source["content"]["body"]

    # invited again from the client, she joins: no longer "left"
    await nurse.client.room_invite(room_id, colleague.user_id)
    for _ in range(60):  # her client joins on the invitation (its sync); the nurse sees it
        await colleague.sync_once()
        await nurse.sync_once()
        room = nurse.client.rooms[room_id]
        if colleague.user_id in room.users and colleague.user_id not in room.invited_users:
            break
    else:
        raise AssertionError("la collègue n'a pas rejoint le salon")
    await eventually(
        lambda: env.dossier.circle(pid),
        lambda c: (circle_entry(c, colleague.user_id) or {}).get("left_room_at") is None,
        what="retour noté sur le cercle",
    )
    await eventually(
        lambda: env.file(pid),
        lambda f: any("a rejoint la conversation du patient" in t for t in notebook_texts(f)),
        what="retour noté au cahier",
    )
    notices = nurse.notices(room_id)
    assert sum("a été retiré(e) de la conversation" in n for n in notices) == 1

    # added on the file, invited by the bot, she declines: the room is told her access stays
    late = await env.make_pro()
    start = nurse.mark(room_id)
    member = professional(late.user_id, "Dr Tardive", "Médecin")
    await env.dossier.add_circle_member(pid, member, actor=nurse.user_id, key=f"decl-{pid}")
    for _ in range(60):  # the bot's invitation, seen from the nurse's client
        await nurse.sync_once()
        if late.user_id in nurse.client.rooms[room_id].invited_users:
            break
    else:
        raise AssertionError("invitation du bot non vue")
    await late.client.room_leave(room_id)  # declining an invitation: leaving before joining
    notice = await nurse.wait_notice(room_id, "a décliné l'invitation", start=start)
    assert (
        "Dr Tardive reste habilité(e) sur le dossier du patient" in notice.source["content"]["body"]
    )
    await eventually(
        lambda: env.file(pid),
        lambda f: any("Dr Tardive a décliné l'invitation" in t for t in notebook_texts(f)),
        what="refus noté au cahier",
    )


async def test_a_removal_during_a_long_absence_of_the_bot_still_reaches_the_file(
    env: Env,  # noqa: F811
) -> None:
    """The bot away, more happens in the room than one sync returns: the removal is in the
    gap fetched back (nio's callbacks never see it), and the file and the room hear of it
    all the same; a member removed and back within the gap is not marked; a colleague
    invited and joined within it enters the circle."""
    env.runner.config = env.runner.config.model_copy(update={"sync_timeline_limit": 2})
    await env.runner.stop()
    await env.runner.start()
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Retrait pendant une absence")
    colleague, other, newcomer = await env.make_pro(), await env.make_pro(), await env.make_pro()
    for pro in (colleague, other):
        await nurse.client.room_invite(room_id, pro.user_id)
        await pro.wait_member(room_id, pro.user_id)
        await in_circle(env.dossier, pid, pro.user_id, "membre dans le cercle")
    await env.dossier_work_done()

    await env.runner.stop()
    start = nurse.mark(room_id)
    await nurse.client.room_kick(room_id, colleague.user_id)
    await nurse.client.room_kick(room_id, other.user_id)
    await nurse.client.room_invite(room_id, other.user_id)
    await other.client.join(room_id)
    await nurse.client.room_invite(room_id, newcomer.user_id)  # invited by an administrator
    await newcomer.client.join(room_id)
    for n in range(4):  # the removals fall out of the first sync's timeline
        await nurse.say(room_id, f"suite de la tournée {n}")
    await env.runner.start()

    notice = await nurse.wait_notice(room_id, "a été retiré(e) de la conversation", start=start)
    assert colleague.user_id in notice.source["content"]["body"]
    circle = await eventually(
        lambda: env.dossier.circle(pid),
        lambda c: bool((circle_entry(c, colleague.user_id) or {}).get("left_room_at")),
        what="retrait de la lacune noté sur le cercle",
    )
    await env.dossier_work_done()
    circle = await env.dossier.circle(pid)
    assert (circle_entry(circle, other.user_id) or {}).get("left_room_at") is None  # back in
    # invited by the room's administrator and joined in the gap: in the circle, with access
    entry = await in_circle(env.dossier, pid, newcomer.user_id, "arrivée de la lacune")
    assert entry["has_access"] is True
    removed = [n for n in nurse.notices(room_id) if "a été retiré(e) de la conversation" in n]
    assert len(removed) == 1, removed


async def test_a_colleague_added_on_the_file_before_her_first_login_is_invited_at_it(
    env: Env,  # noqa: F811
    user_factory: Any,
    nio_client_factory: Any,
) -> None:
    """Her account does not exist yet (made at the first login): the room is told she will be
    invited then, a restart of the bot forgets nothing, and at her first login she is invited
    with the room told. A command naming an account that does not exist writes nothing."""
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Avant sa première connexion")
    server = nurse.user_id.split(":", 1)[1]
    localpart = f"premiere-{uuid.uuid4().hex[:6]}"
    user_id = f"@{localpart}:{server}"
    start = nurse.mark(room_id)
    member = professional(user_id, "Dr Première", "Médecin")
    await env.dossier.add_circle_member(pid, member, actor=nurse.user_id, key=f"first-{pid}")
    await nurse.wait_notice(room_id, "invitation à sa première connexion", start=start)

    await env.runner.stop()  # what is awaited is on disk
    await env.runner.start()
    newcomer = Pro(await nio_client_factory(user_factory(localpart)))  # her first login
    found = await nurse.wait_notice(room_id, "a maintenant un compte Cercle", start=start)
    assert "Dr Première" in found.source["content"]["body"]
    await newcomer.wait_member(room_id, newcomer.user_id)  # she joins on the invitation
    await eventually(
        lambda: env.file(pid),
        lambda f: any(
            "Invitation de Dr Première dans la conversation du patient" in t
            for t in notebook_texts(f)
        ),
        what="invitation notée au cahier",
    )
    assert sum("a maintenant un compte Cercle" in n for n in nurse.notices(room_id)) == 1

    ghost = f"@fantome-{uuid.uuid4().hex[:6]}:{server}"
    start = nurse.mark(room_id)
    await nurse.say(room_id, f"!cercle ajouter {ghost}")
    refused = await nurse.wait_notice(room_id, "compte introuvable", start=start)
    assert "page du dossier" in refused.source["content"]["body"]
    assert circle_entry(await env.dossier.circle(pid), ghost) is None  # nothing written
