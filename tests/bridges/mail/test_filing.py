"""``!classer``: a mail and its attachments filed in a patient's file through the real
dossier service's HTTP API, by name or by the INS the mail carries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bots.dossier_client import DossierClient
from tests.bridges.mail import mails
from tests.bridges.mail.test_inbound import (
    connect,
    mail_events,
    pro_factory,
    wait_count,
    wait_notice,
)
from tests.dossier_link.dossier_support import SERVICE_TOKEN

pytestmark = pytest.mark.integration
__all__ = ["pro_factory"]


async def test_classer_files_mail_and_attachments_by_name_and_by_ins(
    bridge_factory: Any,
    pro_factory: Any,
    mailbox_factory: Any,
    mail_servers: Any,
    bridge_account: str,
    dossier_server: Any,
) -> None:
    marie, marie_pw = mailbox_factory()
    runner = bridge_factory(dossier_url=dossier_server.url)
    runner.dossier_token = SERVICE_TOKEN  # type: ignore[attr-defined]
    await runner.start()
    pro = await pro_factory()
    other = await pro_factory()
    room_id = await connect(pro, bridge_account, marie, marie_pw)

    dossier = DossierClient(dossier_server.url, SERVICE_TOKEN)
    try:
        patient = await dossier.create_patient(
            room_id=None, label="Suivi Mme Dupré", coordinator=pro.user_id, key="p1"
        )
        pid = str(patient["id"])
        await dossier.request(
            "PATCH",
            f"/patients/{pid}/identity",
            json_body={"ins_number": mails.INS},
            actor=pro.user_id,
            key="p1-ins",
        )
        # a file she is not in the circle of, with a similar label: never proposed
        await dossier.create_patient(
            room_id=None, label="Suivi Mme Dupré-Autre", coordinator=other.user_id, key="p2"
        )

        await asyncio.to_thread(mail_servers.deliver, mails.alternative(), marie)
        await asyncio.to_thread(mail_servers.deliver, mails.mssante_xdm(), marie)
        first, second = await wait_count(pro, room_id, mail_events, 2)
        # the mail carrying an INS proposes her matching file (not the other one)
        assert (
            f"🗂 INS du patient {mails.INS} : dossier « Suivi Mme Dupré »"
            in second.source["content"]["body"]
        )
        assert "🗂" not in first.source["content"]["body"]

        def reply(event_id: str, text: str) -> dict[str, Any]:
            return {
                "msgtype": "m.text",
                "body": text,
                "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
            }

        await pro.say(room_id, "", reply(first.event_id, "!classer Dupré compte rendu"))
        done = await wait_notice(pro, room_id, "Courrier classé dans le dossier")
        assert "« Suivi Mme Dupré »" in done.source["content"]["body"]
        assert "catégorie « compte rendu »" in done.source["content"]["body"]

        start = pro.mark(room_id)
        await pro.say(room_id, "", reply(second.event_id, "!classer"))  # the INS decides
        done = await wait_notice(pro, room_id, "Courrier classé", start=start)
        body = done.source["content"]["body"]
        assert "« Suivi Mme Dupré »" in body and "catégorie « courrier »" in body
        assert "Non classés (format refusé par le dossier) : IHE_XDM.zip, CR-BIO.xml" in body

        docs = await dossier.documents(pid)
        names = sorted(str(d.get("filename") or d.get("name")) for d in docs)
        assert "Compte rendu été.pdf" in names
        assert sum(1 for n in names if n.startswith("courrier-20261201")) == 2
        cats = {str(d.get("category")) for d in docs}
        assert cats == {"compte rendu", "courrier"}
        notes = [e["text"] for e in await dossier.notebook(pid)]
        assert any(
            n.startswith(
                "Courrier de Dr Hélène Lefèvre <h.lefevre@chu.mss.test> classé dans "
                "la catégorie « compte rendu »"
            )
            for n in notes
        )

        # the dossier's event feed, which the coordination bot turns into notices in the
        # patient's room, carries the filing (not marked as coming from that room)
        feed = [e for e in await dossier.events(0, limit=500) if e.get("patient_id") == pid]
        kinds = [e.get("type") for e in feed]
        assert kinds.count("document.added") == 3 and kinds.count("notebook.entry") == 2

        # no patient named, no INS: told what to type; not a reply to a mail: told too
        start = pro.mark(room_id)
        await pro.say(room_id, "!classer Dupré")
        await wait_notice(pro, room_id, "Répondez au courrier à classer", start=start)
    finally:
        await dossier.close()
