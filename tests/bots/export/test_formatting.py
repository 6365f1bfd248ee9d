from bots.export.formatting import html_paragraphs, plain_paragraphs, strip_reply_fallback


def test_bold_italics_and_line_breaks() -> None:
    paragraphs = html_paragraphs("Tension <b>13/8</b>, <em>à surveiller</em><br>Suite demain")
    assert [p.text for p in paragraphs] == ["Tension 13/8, à surveiller", "Suite demain"]
    styled = {(text.strip(), style) for text, style in paragraphs[0].runs}
    assert styled == {("Tension", ""), ("13/8", "B"), (",", ""), ("à surveiller", "I")}


def test_lists_get_bullets_numbers_and_levels() -> None:
    paragraphs = html_paragraphs(
        "<ul><li>Doliprane</li><li>Eau <ol start='3'><li>matin</li><li>soir</li></ol></li></ul>"
    )
    shown = [(p.bullet, p.level, p.text) for p in paragraphs]
    assert ("• ", 1, "Doliprane") in shown
    assert ("3. ", 2, "matin") in shown
    assert ("4. ", 2, "soir") in shown


def test_reply_fallback_scripts_and_unknown_tags_are_safe() -> None:
    paragraphs = html_paragraphs(
        "<mx-reply><blockquote>ancien</blockquote></mx-reply><script>alert(1)</script>"
        "<span data-x='1'>réponse <a href='https://x'>lien</a></span>"
    )
    assert [p.text for p in paragraphs] == ["réponse lien (https://x)"]  # the address on paper


def test_blockquote_is_marked_as_quote() -> None:
    paragraphs = html_paragraphs("<blockquote>cité</blockquote>après")
    assert paragraphs[0].quote and paragraphs[0].text == "cité"
    assert not paragraphs[1].quote


def test_runs_of_blank_lines_are_bounded() -> None:
    assert len(plain_paragraphs("a" + "\n" * 200 + "b")) == 5
    assert len(html_paragraphs("a" + "<br>" * 200 + "b")) == 5


def test_plain_reply_fallback_removed() -> None:
    body = "> <@alice:x> la question\n> suite\n\nla réponse"
    assert strip_reply_fallback(body) == "la réponse"
    assert [p.text for p in plain_paragraphs(body, is_reply=True)] == ["la réponse"]


def test_control_characters_dropped_tabs_expanded() -> None:
    assert plain_paragraphs("a\tb\x00c\r")[0].text == "a    bc"


def test_inline_images_are_not_fetched_but_named() -> None:
    paragraphs = html_paragraphs(
        'voir <img src="mxc://x/y" alt=":plaie:"> et <img src="mxc://x/z">'
    )
    assert paragraphs[0].text == "voir [image : :plaie:] et [image]"


def test_a_link_keeps_its_address_on_paper_a_mention_its_name() -> None:
    """The pinned identity's « Ouvrir le dossier » was printed without where it leads."""
    [p] = html_paragraphs(
        "🪪 <strong>Patient</strong> : X<br>"[:-4]
        + ' — <a href="http://127.0.0.1:8090/patients/P-1">Ouvrir le dossier</a>'
    )
    assert p.text.endswith("Ouvrir le dossier (http://127.0.0.1:8090/patients/P-1)")
    [p] = html_paragraphs('<a href="https://matrix.to/#/@ines:s">DUPONT Inès</a> invitée')
    assert p.text == "DUPONT Inès invitée"
    [p] = html_paragraphs('voir <a href="https://exemple.fr/a">https://exemple.fr/a</a>')
    assert p.text == "voir https://exemple.fr/a"  # not twice
