"""People on the pages as a nurse reads them: « NOM Prénom — profession », the Matrix id
only on hover or in small; an empty birthplace is a dash; the only coordinator stays."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlmodel import select

from dossier_service.models.circle import CircleMember
from dossier_service.web.people import People, Person, people_from


def visible(html: str) -> str:
    """The page's text without ``title`` attributes and ``<small class="identifiant">``."""
    html = re.sub(r'<small class="identifiant">[^<]*</small>', "", html)
    html = re.sub(r"<input[^>]*>|<option[^>]*>[^<]*</option>", "", html)
    html = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", html)


def test_latest_name_wins_and_an_id_is_never_a_name() -> None:
    rows = [
        ("@ide:s", "@ide:s", "", ""),  # added by the bot before a name was known
        ("@ide:s", "DUPONT Inès", "infirmière", ""),
        ("@ide:s", "@ide:s", "", ""),  # another file, the id again: the name stays
        ("@mt:s", "MARTIN Paul", "médecin", "médecine générale"),
    ]
    assert people_from(rows) == {
        "@ide:s": Person("DUPONT Inès", "infirmière"),
        "@mt:s": Person("MARTIN Paul", "médecin — médecine générale"),
    }
    assert people_from([("@x:s", "@x:s", "", "")]) == {}


def test_what_a_person_shows_is_made_once_and_never_outlives_her_name() -> None:
    """html() keeps what it made of a person read (a file page names the same few a hundred
    times); a person not read yet is not kept as her id, and forgetting forgets it too."""
    people = People()
    with people.noting_missing() as missing:
        assert "@ide:x" in str(people.html("@ide:x"))
    assert missing == {"@ide:x"}
    people.known["@ide:x"] = Person("DUPONT Marie", "infirmière")  # as load() reads her
    shown = people.html("@ide:x")
    assert "DUPONT Marie — infirmière" in str(shown) and people.html("@ide:x") is shown
    assert "infirmière" not in str(people.html("@ide:x", profession=False))
    people.forget()
    people.known["@ide:x"] = Person("MARTIN Marie")
    assert "MARTIN Marie" in str(people.html("@ide:x"))


async def test_names_not_ids_on_the_file_the_dashboard_and_the_agenda(site) -> None:
    patient = await site.seed_patient()
    async with site.db.transaction() as session:
        nurse_row = (
            await session.exec(
                select(CircleMember).where(CircleMember.matrix_user_id == site.NURSE)
            )
        ).one()
        nurse_row.profession = "infirmière"
        session.add(nurse_row)
    coord, nurse = site.person(site.COORD), site.person(site.NURSE)
    due = (date.today() + timedelta(days=3)).isoformat()
    for path, data in (
        (
            f"/patients/{patient.id}/taches",
            {
                "label": "Pansement",
                "type": "Soins",
                "level": "normale",
                "due_date": due,
                "assignees": f"personne:{site.NURSE}",
            },
        ),
        (f"/patients/{patient.id}/liaison", {"kind": "transmission", "text": "Plaie propre."}),
    ):
        status, body, _ = await site.post(nurse if "liaison" in path else coord, path, data)
        assert status == 303, body[-300:]
    for who, path in ((coord, f"/patients/{patient.id}"), (coord, "/taches"), (nurse, "/taches")):
        status, body, _ = await site.get(who, path)
        assert status == 200
        text = visible(body)
        assert "@ide:cercle.test" not in text and "@coord:cercle.test" not in text, (path, text)
        assert "Inès Dupont — infirmière" in text, path
        assert f'title="{site.NURSE}"' in body  # the id on hover
    body = (await site.get(coord, f"/patients/{patient.id}"))[1]
    assert "Connecté·e : Camille Coord" in visible(body)


async def test_empty_birthplace_is_a_dash(site) -> None:
    patient = await site.seed_patient()
    body = (await site.get(site.person(site.COORD), f"/patients/{patient.id}"))[1]
    place = re.search(r"<dt>Lieu de naissance</dt><dd>(.*?)</dd>", body)
    assert place is not None and place.group(1) == "—"


async def test_the_only_coordinator_cannot_remove_herself(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    [me] = [m for m in await site.members(patient.id) if m.matrix_user_id == site.COORD]
    status, body, _ = await site.post(coord, f"/patients/{patient.id}/cercle/{me.id}/fin", {})
    assert status in (400, 409), status
    assert "au moins un coordinateur" in body
    [still] = [m for m in await site.members(patient.id) if m.matrix_user_id == site.COORD]
    assert still.ended_at is None


def test_flags_in_force_read_in_the_bots_own_wording() -> None:
    from dataclasses import dataclass
    from datetime import UTC, datetime

    from bots.dossier_link.service import FlagJournal
    from bots.flags.model import FlagKind
    from dossier_service.web.active_flags import active_flags

    @dataclass
    class E:
        kind: str
        text: str
        created_at: datetime

    def at(minute: int) -> datetime:
        return datetime(2026, 11, 25, 13, minute, tzinfo=UTC)

    ms = int(at(0).timestamp() * 1000)
    urgent, request = FlagKind("urgent"), FlagKind("demande")
    entries = [
        E("signalement", FlagJournal._raised_text(urgent, "@ide:s", ms, "Plaie : ordonnance ?", None), at(1)),
        E("signalement", FlagJournal._raised_text(request, "@mt:s", ms, None, "@ide:s"), at(2)),
        E("note", "Signalement « demande » levé par @x le 25/11/2026", at(3)),  # a note: ignored
        E("signalement", FlagJournal._cleared_text(request, "@ide:s", ms), at(4)),
    ]  # fmt: skip
    [flag] = active_flags(entries)
    assert (flag.label, flag.by, flag.motif) == (urgent.label, "@ide:s", "Plaie : ordonnance ?")
    entries.append(E("signalement", FlagJournal._cleared_text(urgent, "@mt:s", ms), at(5)))
    assert active_flags(entries) == []


async def test_the_urgency_in_force_shows_on_the_files_header(site) -> None:
    patient = await site.seed_patient()
    nurse = site.person(site.NURSE)
    text = "Signalement « urgence » par @ide:cercle.test le 25/11/2026 à 14:05 : Plaie surinfectée"
    status, _, _ = await site.post(
        nurse, f"/patients/{patient.id}/liaison", {"kind": "signalement", "text": text}
    )
    assert status == 303
    body = (await site.get(nurse, f"/patients/{patient.id}"))[1]
    header = body.split('<div class="carte patient-entete">')[1].split("</div>")[0]
    assert "Urgence en cours" in header and "Plaie surinfectée" in header
    assert "Inès Dupont" in header  # who raised it, by name


async def test_a_page_reads_the_names_it_shows_not_every_circle(site) -> None:
    """Names are read for the people a page shows (one query, then kept), never the whole
    platform's care circles: that read stalled every request at 10,000 files."""
    from dossier_service.web.people import PEOPLE

    patient = await site.seed_patient()
    async with site.db.transaction() as session:
        session.add(
            CircleMember(
                patient_id=patient.id,
                kind="professionnel",
                display_name="LOIN Zoé",
                matrix_user_id="@loin:cercle.test",
                role="intervenant",
                added_by=site.COORD,
                has_access=False,
            )
        )
    people = site.client.server.app[PEOPLE]
    people.forget()
    status, html, _ = await site.get(site.person(site.COORD), "/taches")
    assert status == 200
    assert set(people.known) == {site.COORD}  # the header's name: nobody else is shown there
    assert "@loin:cercle.test" not in people.known
    status, html, _ = await site.get(site.person(site.COORD), f"/patients/{patient.id}")
    assert status == 200 and "LOIN Zoé" in visible(html)
    assert "@loin:cercle.test" in people.known
