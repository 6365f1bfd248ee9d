"""The mail parser and renderer on real-world shapes (pure, no server)."""

from __future__ import annotations

import pytest

from bots.commands.registry import UsageError, UserError
from bridges.mail.compose_text import (
    directory_choice,
    parse_compose,
    reply_text,
    split_category,
)
from bridges.mail.message import UnparseableMail, message_id_of, parse_mail, sanitise_html
from bridges.mail.outbound import compose, message_id_for, reply_subject
from bridges.mail.render import MAX_TEXT, mail_message
from tests.bridges.mail import mails


def test_alternative_prefers_plain_and_sanitises_html() -> None:
    mail = parse_mail(mails.alternative())
    assert mail.text.startswith("Bonjour,\nCompte rendu de sortie")
    assert mail.html is not None
    assert "<b>Compte rendu</b>" in mail.html
    for bad in ("script", "style", "<img", "javascript:", "tracker.example"):
        assert bad not in mail.html
    assert [a.filename for a in mail.attachments] == ["Compte rendu été.pdf"]
    assert mail.attachments[0].data == mails.PDF
    assert mail.sender == "Dr Hélène Lefèvre <h.lefevre@chu.mss.test>"


def test_iso_8859_1_and_windows_1252_bodies_decoded() -> None:
    assert "hémoglobine à 12,5" in parse_mail(mails.latin1()).text
    mail = parse_mail(mails.windows1252())
    assert mail.subject == "Fièvre"
    assert "L’infirmière a noté « 38,5 °C » — à revoir… €" in mail.text


def test_rfc2231_non_ascii_filename() -> None:
    mail = parse_mail(mails.rfc2231_name())
    assert [a.filename for a in mail.attachments] == ["Lettre de liaison – Mme Dupré.pdf"]
    assert mail.attachments[0].data == mails.PDF


def test_malformed_mime_is_unparseable_not_dropped() -> None:
    with pytest.raises(UnparseableMail):
        parse_mail(mails.malformed())
    assert message_id_of(mails.malformed()) == "<broken-1@lab.mss.test>"


def test_xdm_zip_listed_and_ins_found_in_cda_and_metadata() -> None:
    mail = parse_mail(mails.mssante_xdm())
    xdm = next(a for a in mail.attachments if a.filename == "IHE_XDM.zip")
    assert xdm.is_xdm
    assert any(e.startswith("IHE_XDM/SUBSET01/DOC0002.PDF") for e in xdm.listing)
    assert mail.ins == (mails.INS,)
    content, cut = mail_message(mail, {"message_id": mail.message_id})
    assert not cut
    assert "IHE_XDM/SUBSET01/METADATA.XML" in content["body"]
    assert "<li>IHE_XDM.zip<ul>" in content["formatted_body"]


def test_long_mail_is_cut_and_flagged() -> None:
    mail = parse_mail(mails.simple("Long", "x" * (MAX_TEXT + 10)))
    content, cut = mail_message(mail, {})
    assert cut and "courrier.eml" in content["body"]
    assert len(content["body"].encode()) < 40_000


def test_html_sanitiser_keeps_links_drops_handlers() -> None:
    out = sanitise_html('<a href="https://ok.test" onclick="x()">ok</a><iframe src="x"></iframe>')
    assert out.startswith('<a href="https://ok.test"') and "onclick" not in out
    assert "iframe" not in out


def test_compose_command_parsing() -> None:
    draft = parse_compose(
        "à jean@mss.test, anne@mss.test objet Suivi de Mme X\nBonjour,\nÀ demain",
        "!courrier à jean@mss.test, anne@mss.test objet Suivi de Mme X\nBonjour,\nÀ demain",
    )
    assert draft.to == ("jean@mss.test", "anne@mss.test")
    assert draft.subject == "Suivi de Mme X"
    assert draft.text == "Bonjour,\nÀ demain"
    with pytest.raises(UsageError, match="texte du courrier manque"):
        parse_compose("à jean@mss.test objet X", "!courrier à jean@mss.test objet X")
    with pytest.raises(UsageError, match="Adresse invalide"):
        parse_compose("à jean@x objet X", "!courrier à jean@x objet X\ntexte")
    by_name = parse_compose("à Jean Martin objet X", "!courrier à Jean Martin objet X\ntexte")
    assert by_name.to == () and by_name.to_words == "Jean Martin"


def test_directory_completion_prefers_the_mssante_address() -> None:
    def hit(name: str, *emails: str) -> dict[str, object]:
        return {"nom_affiche": name, "exercices": [{"email": e} for e in emails]}

    one = [hit("MARTIN Jean", "cabinet@gmail.test", "jean.martin@medecin.mssante.fr")]
    assert directory_choice("Martin", one) == "jean.martin@medecin.mssante.fr"
    assert directory_choice("Martin", [hit("MARTIN Jean", "cab@x.test"), hit("X")]) == "cab@x.test"
    with pytest.raises(UserError, match="Aucune adresse de messagerie"):
        directory_choice("Martin", [hit("MARTIN Jean")])
    with pytest.raises(UserError, match="Plusieurs adresses possibles"):
        directory_choice(
            "Martin", [hit("MARTIN Jean", "a@a.mssante.fr"), hit("MARTIN Jeanne", "b@b.mssante.fr")]
        )


def test_reply_text_drops_fallback_and_category_split() -> None:
    content = {"body": "> <@courrier:s> ✉️ Courrier de x\n> Objet : y\n\nMerci, reçu."}
    assert reply_text(content) == "Merci, reçu."
    cats = ["compte rendu", "courrier", "bilan"]
    assert split_category("Dupont compte rendu", cats, "courrier") == ("Dupont", "compte rendu")
    assert split_category("Dupont", cats, "courrier") == ("Dupont", "courrier")


def test_reply_headers_and_stable_message_id() -> None:
    from datetime import UTC, datetime

    msg = compose(
        sender="marie@mss.test",
        to=["h@chu.mss.test"],
        subject=reply_subject("CR"),
        text="Merci",
        message_id=message_id_for("$ev", "marie@mss.test"),
        date=datetime(2026, 12, 1, tzinfo=UTC),
        in_reply_to="<b@x>",
        references=("<a@x>",),
    )
    assert msg["Subject"] == "Re: CR"
    raw = msg.as_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # SMTP wants CRLF
    assert msg["In-Reply-To"] == "<b@x>"
    assert msg["References"] == "<a@x> <b@x>"
    assert message_id_for("$ev", "marie@mss.test") == msg["Message-ID"]
    assert reply_subject("Re: CR") == "Re: CR"
