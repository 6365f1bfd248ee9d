"""Account requests without Synapse: matching, refusal rules, activation links."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from dossier_service.directory.account_requests import (
    AccountRequests,
    RequestError,
    localpart_for,
    token_hash,
)
from dossier_service.directory.request_form import validate
from dossier_service.directory.search import Directory

from .conftest import REQUEST_FORM


def make(sample_directory: Directory) -> AccountRequests:
    return AccountRequests(
        sample_directory.conn, sample_directory, server_name="cercle.test", activation_hours=72
    )


def test_match_accepts_accents_apostrophes_and_profession_words(
    sample_directory: Directory,
) -> None:
    requests = make(sample_directory)
    form, errors = validate(REQUEST_FORM)
    assert form is not None, errors
    req = requests.submit(form)
    assert (req.match, req.national_id) == ("trouve", "810000001128")
    other, _ = validate(dict(REQUEST_FORM, profession="Kinésithérapeute"))
    assert other is not None
    wrong = requests.submit(other)
    assert wrong.match == "incoherent" and "Infirmier" in wrong.match_detail


def test_refusal_needs_a_reason_and_happens_once(sample_directory: Directory) -> None:
    requests = make(sample_directory)
    form, _ = validate(REQUEST_FORM)
    assert form is not None
    rid = requests.submit(form).id
    with pytest.raises(RequestError, match="motif"):
        requests.refuse(rid, reason="   ", actor="@admin:x")
    requests.refuse(rid, reason="Doublon", actor="@admin:x")
    with pytest.raises(RequestError) as err:
        requests.refuse(rid, reason="encore", actor="@admin:x")
    assert err.value.status == 409
    with pytest.raises(RequestError) as err:
        requests.refuse(999, reason="x", actor="@admin:x")
    assert err.value.status == 404


def test_activation_links_are_hashed_single_use_and_expire(sample_directory: Directory) -> None:
    conn: sqlite3.Connection = sample_directory.conn
    requests = make(sample_directory)
    form, _ = validate(REQUEST_FORM)
    assert form is not None
    rid = requests.submit(form).id
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = "jeton-secret-de-test-0123456789abcdef"
    conn.execute(
        "INSERT INTO annuaire_activation VALUES (?,?,?,?,?,NULL)",
        (
            token_hash(token),
            rid,
            "@helene:cercle.test",
            now.isoformat(),
            (now + timedelta(hours=72)).isoformat(),
        ),
    )
    assert requests.activation(token, now=now + timedelta(hours=71)) == (rid, "@helene:cercle.test")
    with pytest.raises(RequestError) as err:
        requests.activation(token, now=now + timedelta(hours=73))
    assert err.value.status == 410
    with pytest.raises(RequestError) as err:
        requests.activation(token + "x", now=now)
    assert err.value.status == 404
    dump = "\n".join(str(r) for r in conn.iterdump())
    assert token not in dump  # only its hash is stored


def test_localparts() -> None:
    assert localpart_for("Hélène", "D'ALMEIDA") == "helene.dalmeida"
    assert localpart_for("Jean-Pierre", "LE GOFF") == "jeanpierre.legoff"


def test_activation_mail_is_french_and_carries_the_link() -> None:
    from dossier_service.directory.mail import activation_message, smtp_from_section

    msg = activation_message(
        sender="cercle@x",
        to="a@b.fr",
        display_name="BOYER Raphael — Infirmier, Narbonne",
        mxid="@raphael.boyer:x",
        url="https://dossier/annuaire/activation/abc",
        expires="28/11/2026 18:00",
    )
    body = msg.get_content()
    assert msg["Subject"] == "Cercle : activez votre compte" and msg["To"] == "a@b.fr"
    assert "https://dossier/annuaire/activation/abc" in body and "une seule fois" in body
    assert smtp_from_section(None) is None and smtp_from_section({"host": ""}) is None
    smtp = smtp_from_section(
        {"host": "mail", "port": 587, "starttls": True, "sender": "c@x", "password": "secret"}
    )
    assert smtp is not None and smtp.port == 587 and "secret" not in repr(smtp)
