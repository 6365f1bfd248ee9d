"""Pure texts of the file → conversation notices, the identity header and the widget."""

from __future__ import annotations

from datetime import date

from bots.dossier_link.notices import (
    LAYOUT_STATE,
    WIDGET_ID,
    age_on,
    identity_header,
    render_event,
    widget_content,
    widget_layout,
)

URL = "http://dossier.test/patients/P-ABC"


def test_task_assigned_mentions_the_people_and_links_the_file() -> None:
    notice = render_event(
        {
            "seq": 3,
            "type": "task.assigned",
            "actor": "@coord:x",
            "payload": {
                "label": "Renouveler l'ordonnance",
                "due_date": "2026-12-01",
                "assignees": [
                    {"kind": "personne", "ref": "@gp:x"},
                    {"kind": "structure", "ref": "SSIAD Nord"},
                ],
            },
        },
        URL,
        {"@gp:x": "Dr Martin"},
    )
    assert notice is not None
    assert notice.mentions == ("@gp:x",)
    assert (
        "« Renouveler l'ordonnance » pour Dr Martin, SSIAD Nord (échéance 01/12/2026)"
        in notice.plain
    )
    assert URL in notice.plain and URL in notice.html
    assert 'href="https://matrix.to/#/@gp:x"' in notice.html


def test_overdue_task_asks_for_direct_messages_to_assignees() -> None:
    notice = render_event(
        {
            "type": "task.overdue",
            "payload": {
                "label": "Bilan",
                "due_date": "2026-11-01",
                "assignees": [{"kind": "personne", "ref": "@a:x"}],
            },
        },
        URL,
    )
    assert notice is not None and notice.direct_to == ("@a:x",)
    assert "en retard" in notice.plain and "01/11/2026" in notice.plain


def test_discharge_and_death_and_form_and_circle_texts() -> None:
    discharge = render_event(
        {
            "type": "hospitalisation.discharge",
            "payload": {"structure": "CHU Nord", "discharge_at": "2026-11-20T09:30:00+00:00"},
        },
        URL,
    )
    assert discharge is not None
    assert "Sortie d'hospitalisation le 20/11/2026 à 10:30 — CHU Nord" in discharge.plain
    death = render_event({"type": "death.cancelled", "actor": "@c:x", "payload": {}}, URL)
    assert death is not None and death.plain.startswith("↩ Annulation de la déclaration du décès")
    form = render_event(
        {"type": "form.changed", "payload": {"title": "Médical", "version": 2}}, URL
    )
    assert form is not None and "Formulaire « Médical » modifié (version 2)" in form.plain
    added = render_event(
        {
            "type": "circle.added",
            "payload": {
                "display_name": "Mme Aidante",
                "role": "aidant_principal",
                "has_access": False,
                "matrix_user_id": None,
            },
        },
        URL,
    )
    assert added is not None and "sans compte" in added.plain and added.mentions == ()


def test_a_structure_in_the_circle_is_announced_as_such() -> None:
    """Issue 18: a structure has no account; the room says whether its members come in."""
    base = {
        "display_name": "SSIAD <Marais>",
        "role": "structure",
        "kind": "structure",
        "matrix_user_id": None,
        "directory_id": "750000001",
    }
    shown = render_event({"type": "circle.added", "payload": {**base, "has_access": False}}, URL)
    assert shown is not None and "personne n'est invité" in shown.plain
    assert "FINESS 750000001" in shown.plain and "&lt;Marais&gt;" in shown.html
    with_access = render_event(
        {"type": "circle.changed", "payload": {**base, "has_access": True}}, URL
    )
    assert with_access is not None and "ses membres sont invités" in with_access.plain
    assert with_access.mentions == ()


def test_unknown_event_says_nothing_and_html_is_escaped() -> None:
    assert render_event({"type": "patient.created", "payload": {}}, URL) is None
    notice = render_event(
        {"type": "document.added", "actor": "@x:y", "payload": {"category": "<b>ordonnance</b>"}},
        URL,
    )
    assert notice is not None and "<b>" not in notice.html and "&lt;b&gt;" in notice.html


def test_identity_header_name_birth_age_status() -> None:
    plain, rich = identity_header(
        {
            "birth_name": "Dupont",
            "used_name": "Martin",
            "first_birth_first_name": "Jeanne",
            "birth_date": "1940-12-01",
            "identity_status": "QUAL",
            "ins_number": "240127512345678",
        },
        URL,
        date(2026, 11, 25),
    )
    assert "MARTIN Jeanne (né(e) DUPONT)" in plain
    assert "né(e) le 01/12/1940 (85 ans)" in plain
    assert "identité qualifiée (QUAL)" in plain and "INS 240127512345678" in plain
    assert URL in plain and "Ouvrir le dossier" in rich
    prov, _ = identity_header({"identity_status": "PROV", "ins_number": "x"}, URL, date(2026, 1, 1))
    assert "INS" not in prov.replace("identité", "") and "à compléter" in prov


def test_age_boundaries() -> None:
    assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


def test_widget_points_at_the_file_and_sits_in_the_side_panel() -> None:
    content = widget_content(URL, "@bot:x")
    assert content["url"] == URL and content["id"] == WIDGET_ID and content["type"] == "m.custom"
    layout = widget_layout({"widgets": {"other": {"container": "top"}}})
    assert layout["widgets"] == {"other": {"container": "top"}, WIDGET_ID: {"container": "right"}}
    assert LAYOUT_STATE == "io.element.widgets.layout"


def test_other_file_events() -> None:
    closed = render_event(
        {"type": "task.closed", "actor": "@a:x", "payload": {"label": "Bilan", "state": "annulé"}},
        URL,
    )
    assert closed is not None and closed.plain.startswith("✅ Tâche annulée : « Bilan » par @a:x")
    admission = render_event(
        {
            "type": "hospitalisation.admission",
            "payload": {"structure": "CHU", "admission_at": "2026-01-31T23:30:00+00:00"},
        },
        URL,
    )
    assert admission is not None and "admission le 01/02/2026 à 00:30 — CHU" in admission.plain
    note = render_event(
        {"type": "notebook.entry", "actor": "@a:x", "payload": {"kind": "transmission"}}, URL
    )
    assert note is not None and note.plain.startswith(
        "🗒 Nouvelle transmission dans le cahier de liaison"
    )
    ended = render_event(
        {"type": "circle.ended", "payload": {"matrix_user_id": "@b:x", "display_name": "B"}}, URL
    )
    assert (
        ended is not None
        and ended.mentions == ("@b:x",)
        and "Fin de participation de B" in ended.plain
    )
    assert (
        render_event(
            {"type": "patient.identity_changed", "payload": {"fields": ["birth_name"]}}, URL
        )
        is None
    )


def test_circle_notices_name_roles_as_the_dossier_does() -> None:
    event = {
        "type": "circle.changed",
        "payload": {
            "display_name": "B",
            "matrix_user_id": "@b:x",
            "role": "medecin_traitant",
            "has_access": True,
        },
    }
    labelled = render_event(event, URL, roles={"medecin_traitant": "médecin traitant"})
    assert labelled is not None and "est désormais médecin traitant, habilité" in labelled.plain
    unknown = render_event(event, URL, roles={})  # a role the dossier does not name: its code
    assert unknown is not None and "est désormais medecin_traitant" in unknown.plain
