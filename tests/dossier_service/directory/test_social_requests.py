"""Account requests without RPPS (issue 18): validation, the structure named, who decides,
the approval making a member of the structure in the same transaction as its audit rows."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from dossier_service.directory import social_requests as social
from dossier_service.directory.account_requests import AccountRequests, RequestError
from dossier_service.directory.search import Directory
from dossier_service.directory.structure_rows import search_without_rpps

FINESS = "750000001"
OTHER = "750000002"
ADMIN = "@admin:cercle.test"
REFERENT = "@referente:cercle.test"
STRANGER = "@autre-referent:cercle.test"

FORM = {
    "nom": "Lefèvre",
    "prenom": "Inès",
    "email": "ines.lefevre@example.org",
    "telephone": "06 11 22 33 44",
    "finess": FINESS,
    "role": "assistant_service_social",
    "consentement": "on",
}


def add_structure(conn: Any, finess: str, name: str) -> None:
    conn.execute(
        "INSERT INTO annuaire_structure (finess, legal_finess, name, long_name, address, "
        "postcode, city, commune_code, dept, phone, category_code, category, aggregate, siret, "
        "sort_key, content_hash, seen_run, active, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (finess, "750000000", name, name, "1 RUE DU TEMPLE", "75003", "PARIS", "75103", "75",
         "", "354", "SSIAD", "", "", name.lower(), b"x", 1, 1, "2026-01-01T00:00:00Z"),
    )  # fmt: skip
    for word in {w.lower() for w in name.split() if len(w) > 1}:  # what its search reads
        conn.execute(
            "INSERT INTO annuaire_structure_key (finess, token, dept, category_code) "
            "VALUES (?,?,?,?)",
            (finess, word, "75", "354"),
        )


def add_referent(conn: Any, finess: str, mxid: str) -> None:
    conn.execute(
        "INSERT INTO structure_members (id, finess, matrix_user_id, display_name, role, source, "
        "without_rpps, added_by, added_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            mxid + finess,
            finess,
            mxid,
            "Référente",
            "referent",
            "admin",
            False,
            ADMIN,
            "2026-01-01 00:00:00.000000",
        ),
    )


class FakeHomeserver:
    """Accounts kept in a dict (what the gateway answers); ``fail`` makes creation fail."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.fail = False

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self.users.get(user_id)

    async def create_or_modify_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("homeserver down")
        self.users[user_id] = fields
        return fields

    async def reset_password(
        self, user_id: str, new_password: str, *, logout_devices: bool = True
    ) -> None:
        self.users[user_id]["password"] = new_password


@pytest.fixture
def requests(db: Any) -> AccountRequests:
    add_structure(db, FINESS, "SSIAD DU MARAIS")
    add_structure(db, OTHER, "CCAS DE PARIS")
    add_referent(db, FINESS, REFERENT)
    add_referent(db, OTHER, STRANGER)
    return AccountRequests(db, Directory(db), server_name="cercle.test")


def counts(conn: Any) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("annuaire_account_request", "annuaire_audit", "structure_members")
    )


def test_the_form_asks_a_structure_and_a_role_from_the_list() -> None:
    form, errors = social.validate(FORM)
    assert form is not None, errors
    assert form.role_label == "Assistant·e de service social" and form.finess == FINESS
    cases = {
        "finess": ({"finess": ""}, "choisissez votre structure"),
        "role": ({"role": "chirurgien"}, "choisissez dans la liste"),
        "role_autre": ({"role": "autre", "role_autre": ""}, "précisez"),
    }
    for field, (change, text) in cases.items():
        form, errors = social.validate({**FORM, **change})
        assert form is None and text in errors[field], errors
    for absurd in ("<script>", "x" * 61, "12345", "aaa aaa", "--", "Médiatrice\x00"):
        form, errors = social.validate({**FORM, "role": "autre", "role_autre": absurd})
        assert form is None and "role_autre" in errors, absurd
    form, errors = social.validate({**FORM, "role": "autre", "role_autre": "Médiatrice santé"})
    assert form is not None and form.role_label == "Médiatrice santé", errors
    form, errors = social.validate({**FORM, "finess": "75000000"})
    assert form is None and "9 caractères" in errors["finess"]
    form, errors = social.validate({**FORM, "nom": "<b>", "email": "x"})
    assert form is None and set(errors) == {"nom", "email"}


def test_unknown_structure_duplicates_and_existing_accounts_write_nothing(
    requests: AccountRequests,
) -> None:
    conn = requests.conn
    form, _ = social.validate({**FORM, "finess": "750000099"})
    assert form is not None
    before = counts(conn)
    with pytest.raises(RequestError, match="absente de l'annuaire FINESS") as err:
        social.submit(requests, form)
    assert err.value.status == 404 and counts(conn) == before
    good, _ = social.validate(FORM)
    assert good is not None
    req = social.submit(requests, good)
    assert (req.match, req.finess, req.social_role, req.identifier) == (
        "sans_rpps",
        FINESS,
        "assistant_service_social",
        "",
    )
    assert req.structure == "SSIAD DU MARAIS" and req.profession == "Assistant·e de service social"
    before = counts(conn)
    upper, _ = social.validate({**FORM, "email": "INES.Lefevre@example.org"})
    assert upper is not None
    with pytest.raises(RequestError, match="déjà en attente"):
        social.submit(requests, upper)
    assert counts(conn) == before


async def test_a_referent_decides_only_for_her_structure(requests: AccountRequests) -> None:
    form, _ = social.validate(FORM)
    assert form is not None
    rid = social.submit(requests, form).id
    hs = FakeHomeserver()
    before = counts(requests.conn)
    for who in (STRANGER, "@quelquun:cercle.test"):
        with pytest.raises(RequestError) as err:
            await social.approve(requests, rid, actor=who, admin=False, api=hs)
        assert err.value.status == 403
        with pytest.raises(RequestError):
            social.refuse(requests, rid, reason="non", actor=who, admin=False)
    requests_, audits, members = counts(requests.conn)
    assert (requests_, audits, members) == (before[0], before[1] + 4, before[2])
    assert hs.users == {}
    refusals = requests.conn.execute(
        "SELECT actor FROM annuaire_audit WHERE action = 'demande.decision_refusee'"
    ).fetchall()
    assert sorted({r[0] for r in refusals}) == [
        "@autre-referent:cercle.test",
        "@quelquun:cercle.test",
    ]
    assert requests.get(rid).status == "en_attente"  # type: ignore[union-attr]
    assert [r.id for r in social.pending_for(requests, FINESS)] == [rid]
    assert social.pending_for(requests, OTHER) == []
    approval = await social.approve(requests, rid, actor=REFERENT, admin=False, api=hs)
    assert approval.mxid == "@ines.lefevre:cercle.test"
    created = hs.users[approval.mxid]
    assert created["displayname"] == "LEFÈVRE Inès — Assistant·e de service social"
    assert "external_ids" not in created  # no RPPS to link
    conn: sqlite3.Connection = requests.conn
    assert conn.execute(
        "SELECT finess, role, source, without_rpps, added_by FROM structure_members "
        "WHERE matrix_user_id = ?",
        (approval.mxid,),
    ).fetchall() == [(FINESS, "membre", "demande", 1, REFERENT)]
    actions = [r[0] for r in conn.execute("SELECT action FROM annuaire_audit ORDER BY id")]
    assert actions == [
        "demande.creee",
        *["demande.decision_refusee"] * 4,
        "structure.membre_ajoute",
        "demande.approuvee",
    ]
    # searchable, marked without RPPS, with the structure
    (hit,) = search_without_rpps(conn, "lefevre assistant")
    assert hit.as_json()["sans_rpps"] is True and hit.structure == "SSIAD DU MARAIS"
    assert search_without_rpps(conn, "marais ines")[0].mxid == approval.mxid
    assert search_without_rpps(conn, "lefevre educateur") == []
    # the same e-mail cannot ask again: an account exists
    again, _ = social.validate(FORM)
    assert again is not None
    with pytest.raises(RequestError, match="Un compte existe déjà"):
        social.submit(requests, again)
    # decided once
    with pytest.raises(RequestError) as err:
        await social.approve(requests, rid, actor=ADMIN, admin=True, api=hs)
    assert err.value.status == 409


async def test_a_failed_account_creation_leaves_the_request_waiting(
    requests: AccountRequests,
) -> None:
    form, _ = social.validate({**FORM, "role": "autre", "role_autre": "Médiatrice santé"})
    assert form is not None
    rid = social.submit(requests, form).id
    hs = FakeHomeserver()
    hs.fail = True
    before = counts(requests.conn)
    with pytest.raises(RuntimeError):
        await social.approve(requests, rid, actor=ADMIN, admin=True, api=hs)
    assert counts(requests.conn) == before
    req = requests.get(rid)
    assert req is not None and req.status == "en_attente"
    refused = social.refuse(
        requests, rid, reason="Inconnue de la structure", actor=REFERENT, admin=False
    )
    assert refused.status == "refusee" and refused.decided_by == REFERENT
