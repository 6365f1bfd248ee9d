"""Pure cores, without I/O or mocks: INS identity rules, the access policy, document
sniffing and names, signed sessions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from dossier_service import auth
from dossier_service.documents_store import (
    DocumentRejected,
    DocumentStore,
    safe_filename,
    sniff_mime,
)
from dossier_service.identity import (
    IdentityError,
    check_ins_matches,
    check_ins_number,
    check_insee_code,
    check_past_date,
    check_status_requirements,
    check_transition,
    nir_key,
)
from dossier_service.policy import Action, Decision, Membership, Principal, decide, may_see_document

TODAY = date(2026, 1, 15)


def nir(body13: str) -> str:
    return f"{body13}{nir_key(body13):02d}"


@pytest.mark.parametrize("code", ["31555", "2A004", "2b033", "97411", "99134"])
def test_valid_insee_codes(code: str) -> None:
    assert check_insee_code(code) == code.upper()


@pytest.mark.parametrize("code", ["3155", "315555", "2C004", "AB123", "31 55", ""])
def test_invalid_insee_codes(code: str) -> None:
    with pytest.raises(IdentityError) as err:
        check_insee_code(code)
    assert err.value.field == "birth_insee_code"


def test_nir_key_and_corsica() -> None:
    assert nir_key("2450331555123") == 97 - 2450331555123 % 97
    assert nir_key("1620519004123") == nir_key("162052A004123")
    assert check_ins_number(nir("162052A004123")) == nir("162052A004123")
    assert check_ins_number(" ".join([nir("2450331555123")[:1], nir("2450331555123")[1:]]))


@pytest.mark.parametrize(
    "value", ["245033155512300", "1234", "945033155512345", "2451331555123" + "00"]
)
def test_invalid_ins_numbers(value: str) -> None:
    with pytest.raises(IdentityError):
        check_ins_number(value)


def test_ins_must_match_traits() -> None:
    number = nir("2450331555123")
    check_ins_matches(number, sex="F", birth_date=date(1945, 3, 12))
    with pytest.raises(IdentityError):
        check_ins_matches(number, sex="M", birth_date=None)
    with pytest.raises(IdentityError):
        check_ins_matches(number, sex="F", birth_date=date(1946, 3, 12))


def test_dates_in_the_past() -> None:
    assert check_past_date(date(2000, 1, 1), "birth_date", TODAY, "date de naissance")
    with pytest.raises(IdentityError):
        check_past_date(date(2026, 1, 16), "birth_date", TODAY, "date de naissance")
    with pytest.raises(IdentityError):
        check_past_date(date(1850, 1, 1), "birth_date", TODAY, "date de naissance")


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("PROV", "RECUP", True),
        ("PROV", "VALI", True),
        ("PROV", "QUAL", False),
        ("RECUP", "QUAL", True),
        ("VALI", "QUAL", True),
        ("VALI", "RECUP", False),
        ("QUAL", "PROV", True),
        ("RECUP", "VALI", False),
        ("PROV", "PROV", True),
        ("PROV", "XXX", False),
    ],
)
def test_status_transitions(old: str, new: str, ok: bool) -> None:
    if ok:
        check_transition(old, new)
    else:
        with pytest.raises(IdentityError):
            check_transition(old, new)


TRAITS = {
    "birth_name": "MARTIN",
    "birth_first_names": ["Jeanne"],
    "birth_date": date(1945, 3, 12),
    "sex": "F",
    "birth_insee_code": "31555",
}
NO_TRAITS = {
    "birth_name": "",
    "birth_first_names": [],
    "birth_date": None,
    "sex": None,
    "birth_insee_code": None,
}
DOCUMENT = date(2025, 1, 1)


@pytest.mark.parametrize(
    ("status", "ins_number", "document", "traits", "refusal"),
    [
        ("PROV", None, (None, None), NO_TRAITS, None),
        ("RECUP", None, (None, None), TRAITS, "matricule"),
        ("VALI", None, (None, None), TRAITS, "pièce"),
        ("VALI", None, ("carte vitale", DOCUMENT), TRAITS, "ne permet pas"),
        ("QUAL", "x", ("passeport", DOCUMENT), TRAITS, None),
    ],
)
def test_status_requirements(
    status: str,
    ins_number: str | None,
    document: tuple[str | None, date | None],
    traits: dict[str, Any],
    refusal: str | None,
) -> None:
    def check() -> None:
        check_status_requirements(
            status,
            ins_number=ins_number,
            identity_document_type=document[0],
            identity_document_date=document[1],
            **traits,
        )

    if refusal is None:
        check()
    else:
        with pytest.raises(IdentityError, match=refusal):
            check()


USER = Principal(user_id="@a:s")
ADMIN = Principal(user_id="@root:s", is_admin=True)
BOT = Principal(user_id="service:bot", kind="service")
MEMBER = Membership(role="intervenant", has_access=True)
COORD = Membership(role="coordinateur", has_access=True)
NOACCESS = Membership(role="structure", has_access=False)


def test_policy_matrix() -> None:
    assert decide(USER, None, Action.READ) is Decision.NOT_FOUND
    assert decide(USER, NOACCESS, Action.READ) is Decision.FORBIDDEN
    assert decide(USER, MEMBER, Action.WRITE) is Decision.ALLOW
    assert decide(USER, MEMBER, Action.MANAGE_CIRCLE) is Decision.FORBIDDEN
    assert decide(USER, COORD, Action.MANAGE_CIRCLE) is Decision.ALLOW
    assert decide(ADMIN, None, Action.MANAGE_CIRCLE) is Decision.ALLOW
    assert decide(BOT, None, Action.WRITE) is Decision.ALLOW
    assert ADMIN.audit_kind == "admin" and BOT.audit_kind == "service" and USER.audit_kind == "user"


def test_confidential_documents() -> None:
    assert may_see_document(USER, MEMBER, None)
    assert not may_see_document(USER, MEMBER, ["medecin_traitant"])
    assert may_see_document(USER, Membership("medecin_traitant", True), ["medecin_traitant"])
    assert not may_see_document(USER, Membership("medecin_traitant", False), ["medecin_traitant"])
    assert may_see_document(ADMIN, None, ["medecin_traitant"])


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"%PDF-1.4 ...", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0..JFIF", "image/jpeg"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"Compte rendu de passage : RAS.\n", "text/plain"),
        (b"<!DOCTYPE html><html></html>", None),
        (b"<svg onload=alert(1)>", None),
        (b"MZ\x90\x00\x03\x00\x00\x00", None),
        (b"\x00\x01\x02\x03", None),
        (b"PK\x03\x04not really a zip", None),
    ],
)
def test_sniffing(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


def test_office_documents_are_recognised() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    assert (
        sniff_mime(buf.getvalue())
        == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )


@pytest.mark.parametrize(
    "name", ["../x.pdf", "a/b.pdf", "a\\b.pdf", "..", ".", "", "x\x00.pdf", "x%2Fy.pdf", "a" * 300]
)
def test_bad_file_names(name: str) -> None:
    with pytest.raises(DocumentRejected):
        safe_filename(name)


def test_good_file_names() -> None:
    assert safe_filename("Compte rendu été 2025.pdf") == "Compte rendu été 2025.pdf"


async def test_store_is_content_addressed_and_checks_integrity(
    tmp_path: pytest.TempPathFactory,
) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    store = DocumentStore(root, max_size=1000)
    blob = await store.put(b"%PDF-1.4 a")
    assert (await store.read(blob.sha256)) == b"%PDF-1.4 a"
    with pytest.raises(DocumentRejected):
        store.path_for("../../etc/passwd")
    with pytest.raises(DocumentRejected) as err:
        await store.put(b"%PDF" + b"x" * 1000)
    assert err.value.status == 413
    store.path_for(blob.sha256).write_bytes(b"%PDF-1.4 tampered")
    with pytest.raises(OSError):
        await store.read(blob.sha256)


def test_sessions_and_csrf() -> None:
    token = auth.issue_session("k", "@a:s", lifetime=60, now=1000)
    session = auth.read_session("k", token, now=1010)
    assert session is not None and session.user_id == "@a:s"
    assert auth.read_session("k", token, now=2000) is None
    assert auth.read_session("other", token, now=1010) is None
    assert auth.read_session("k", token + "x", now=1010) is None
    assert auth.read_session("k", "garbage", now=1010) is None
    csrf = auth.csrf_token("k", session)
    assert auth.csrf_matches("k", session, csrf)
    assert not auth.csrf_matches("k", session, None)
    other = auth.read_session("k", auth.issue_session("k", "@a:s", lifetime=60, now=1000), now=1010)
    assert other is not None and not auth.csrf_matches("k", other, csrf)
