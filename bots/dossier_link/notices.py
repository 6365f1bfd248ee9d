"""Pure: what the bot says in a patient room when the file changes.

One dossier outbox event (``{seq, type, patient_id, room_id, actor, payload, at}``) becomes
at most one short French notice, HTML with a plain-text body, mentioning the people
concerned and linking to the file. The notice travels encrypted in the room; nothing here
goes into room state.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from deployment.conventions import PARIS


@dataclass(frozen=True)
class Notice:
    plain: str
    html: str
    mentions: tuple[str, ...] = ()
    # people who also get a direct message (overdue tasks)
    direct_to: tuple[str, ...] = field(default_factory=tuple)


def fr_date(value: str | date | datetime | None) -> str:
    """``31/01/2026``; ISO strings accepted; datetimes shown in Europe/Paris."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
    return value.strftime("%d/%m/%Y")


def _pill(user_id: str, name: str | None = None) -> str:
    return (
        f'<a href="https://matrix.to/#/{html.escape(user_id)}">{html.escape(name or user_id)}</a>'
    )


def _people(user_ids: Sequence[str], names: Mapping[str, str]) -> tuple[str, str]:
    plain = ", ".join(names.get(u, u) for u in user_ids)
    rich = ", ".join(_pill(u, names.get(u)) for u in user_ids)
    return plain, rich


def _link(url: str) -> tuple[str, str]:
    return f" — Dossier : {url}", f' — <a href="{html.escape(url)}">ouvrir le dossier</a>'


def _person_assignees(payload: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    people: list[str] = []
    structures: list[str] = []
    for a in payload.get("assignees") or []:
        if not isinstance(a, Mapping) or not isinstance(a.get("ref"), str):
            continue
        (people if a.get("kind") == "personne" else structures).append(a["ref"])
    return people, structures


def render_event(
    event: Mapping[str, Any],
    file_url: str,
    names: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> Notice | None:
    """The notice for one outbox event, or None when the conversation needs none. ``roles``:
    the care circle's role labels, code → label, as the dossier names them
    (``bots.dossier_link.roles``)."""
    names = names or {}
    roles = roles or {}
    kind = str(event.get("type") or "")
    payload: Mapping[str, Any] = event.get("payload") or {}
    actor = str(event.get("actor") or "")
    link_plain, link_html = _link(file_url)
    by_plain = f" par {names.get(actor, actor)}" if actor.startswith("@") else ""
    by_html = f" par {_pill(actor, names.get(actor))}" if actor.startswith("@") else ""

    def notice(plain: str, rich: str, mentions: Sequence[str] = ()) -> Notice:
        return Notice(plain + link_plain, rich + link_html, tuple(dict.fromkeys(mentions)))

    if kind == "task.assigned":
        label = str(payload.get("label") or "")
        people, structures = _person_assignees(payload)
        due = fr_date(payload.get("due_date"))
        who_plain, who_html = _people(people, names)
        targets_plain = ", ".join(filter(None, [who_plain, ", ".join(structures)]))
        targets_html = ", ".join(filter(None, [who_html, html.escape(", ".join(structures))]))
        due_txt = f" (échéance {due})" if due else ""
        return notice(
            f"📋 Nouvelle tâche « {label} » pour {targets_plain}{due_txt}",
            f"📋 Nouvelle tâche « {html.escape(label)} » pour {targets_html}{html.escape(due_txt)}",
            people,
        )
    if kind == "task.overdue":
        label = str(payload.get("label") or "")
        people, structures = _person_assignees(payload)
        due = fr_date(payload.get("due_date"))
        who_plain, who_html = _people(people, names)
        targets_plain = ", ".join(filter(None, [who_plain, ", ".join(structures)])) or "personne"
        targets_html = (
            ", ".join(filter(None, [who_html, html.escape(", ".join(structures))])) or "personne"
        )
        base = notice(
            f"⏰ Tâche en retard : « {label} » (échéance {due}) — pour {targets_plain}",
            f"⏰ <strong>Tâche en retard</strong> : « {html.escape(label)} » (échéance "
            f"{html.escape(due)}) — pour {targets_html}",
            people,
        )
        return Notice(base.plain, base.html, base.mentions, tuple(people))
    if kind == "task.closed":
        label = str(payload.get("label") or "")
        state = str(payload.get("state") or "fait")
        word = "annulée" if state == "annulé" else "terminée"
        return notice(
            f"✅ Tâche {word} : « {label} »{by_plain}",
            f"✅ Tâche {word} : « {html.escape(label)} »{by_html}",
        )
    if kind == "document.added":
        category = str(payload.get("category") or "")
        confidential = " (confidentiel)" if payload.get("confidential") else ""
        return notice(
            f"📄 Document ajouté au dossier dans la catégorie « {category} »{confidential}{by_plain}",
            f"📄 Document ajouté au dossier dans la catégorie « {html.escape(category)} »"
            f"{confidential}{by_html}",
        )
    if kind in ("hospitalisation.admission", "hospitalisation.discharge"):
        structure = str(payload.get("structure") or "")
        if kind.endswith("admission"):
            when = fr_date(payload.get("admission_at"))
            text = f"🏥 Hospitalisation : admission le {when} — {structure}"
        else:
            when = fr_date(payload.get("discharge_at"))
            text = f"🏠 Sortie d'hospitalisation le {when} — {structure}"
        return notice(text, html.escape(text))
    if kind in ("circle.added", "circle.changed", "circle.ended"):
        user = payload.get("matrix_user_id")
        name = str(payload.get("display_name") or user or "")
        role = roles.get(str(payload.get("role") or ""), str(payload.get("role") or ""))
        who_plain = name
        who_html = _pill(user, name) if isinstance(user, str) else html.escape(name)
        mentions = [user] if isinstance(user, str) else []
        if payload.get("kind") == "structure" and kind != "circle.ended":  # issue 18
            finess = f" (FINESS {payload['directory_id']})" if payload.get("directory_id") else ""
            access = (
                "avec accès au dossier : ses membres sont invités"
                if payload.get("has_access")
                else "sans accès au dossier : enregistrée, personne n'est invité"
            )
            verb = "rejoint le cercle de soins" if kind == "circle.added" else "est désormais"
            text = f"🏢 La structure {name}{finess} {verb} ({access})"
            return notice(text, html.escape(text))
        if kind == "circle.added":
            access = "habilité" if payload.get("has_access") else "sans accès au dossier"
            extra = ""
            if not isinstance(user, str):
                extra = " (sans compte : enregistré, non invité)"
            return notice(
                f"👥 {who_plain} rejoint le cercle de soins ({role}, {access}){extra}",
                f"👥 {who_html} rejoint le cercle de soins ({html.escape(role)}, {access})"
                f"{html.escape(extra)}",
                mentions,
            )
        if kind == "circle.changed":
            access = "habilité" if payload.get("has_access") else "sans accès au dossier"
            return notice(
                f"👥 Cercle de soins : {who_plain} est désormais {role}, {access}",
                f"👥 Cercle de soins : {who_html} est désormais {html.escape(role)}, {access}",
                mentions,
            )
        return notice(
            f"👥 Fin de participation de {who_plain} au cercle de soins",
            f"👥 Fin de participation de {who_html} au cercle de soins",
            mentions,
        )
    if kind == "death.declared":
        return notice(
            f"🕊 Décès du patient déclaré dans le dossier{by_plain}",
            f"🕊 Décès du patient déclaré dans le dossier{by_html}",
        )
    if kind == "death.cancelled":
        return notice(
            f"↩ Annulation de la déclaration du décès{by_plain}",
            f"↩ Annulation de la déclaration du décès{by_html}",
        )
    if kind == "form.changed":
        title = str(payload.get("title") or payload.get("form_id") or "")
        version = payload.get("version")
        v = f" (version {version})" if isinstance(version, int) else ""
        return notice(
            f"📝 Formulaire « {title} » modifié{v}{by_plain}",
            f"📝 Formulaire « {html.escape(title)} » modifié{v}{by_html}",
        )
    if kind == "notebook.entry":
        entry_kind = str(payload.get("kind") or "note")
        word = {"transmission": "Nouvelle transmission", "signalement": "Nouveau signalement"}.get(
            entry_kind, "Nouvelle note"
        )
        return notice(
            f"🗒 {word} dans le cahier de liaison{by_plain}",
            f"🗒 {word} dans le cahier de liaison{by_html}",
        )
    return None


# --- the identity header (pinned encrypted message) --------------------------------------

STATUS_LABELS = {
    "PROV": "identité provisoire",
    "RECUP": "identité récupérée",
    "VALI": "identité validée",
    "QUAL": "identité qualifiée",
}


def age_on(birth: date, today: date) -> int:
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def identity_header(patient: Mapping[str, Any], file_url: str, today: date) -> tuple[str, str]:
    """Plain and HTML text of the pinned identity message: name, birth date, age, INS status."""
    used = str(patient.get("used_name") or "")
    birth_name = str(patient.get("birth_name") or "")
    first = str(patient.get("used_first_name") or patient.get("first_birth_first_name") or "")
    name = " ".join(filter(None, [(used or birth_name).upper(), first]))
    if used and birth_name and used.upper() != birth_name.upper():
        name += f" (né(e) {birth_name.upper()})"
    if not name.strip():
        name = "identité à compléter dans le dossier"
    birth_txt = ""
    raw_birth = patient.get("birth_date")
    if isinstance(raw_birth, str) and raw_birth:
        try:
            birth = date.fromisoformat(raw_birth)
            birth_txt = f"né(e) le {birth.strftime('%d/%m/%Y')} ({age_on(birth, today)} ans)"
        except ValueError:
            birth_txt = ""
    status = str(patient.get("identity_status") or "PROV")
    status_txt = f"{STATUS_LABELS.get(status, status)} ({status})"
    ins = patient.get("ins_number") if status == "QUAL" else None
    parts = [name, birth_txt, status_txt]
    if ins:
        parts.append(f"INS {ins}")
    if patient.get("death_date"):
        parts.append(f"décédé(e) le {fr_date(patient.get('death_date'))}")
    line = " — ".join(p for p in parts if p)
    plain = f"🪪 Patient : {line}\nDossier : {file_url}"
    rich = (
        f"🪪 <strong>Patient</strong> : {html.escape(line)}<br>"
        f'<a href="{html.escape(file_url)}">Ouvrir le dossier</a>'
    )
    return plain, rich


# --- the file as a room widget --------------------------------------------------------------

WIDGET_STATE = "im.vector.modular.widgets"
LAYOUT_STATE = "io.element.widgets.layout"
WIDGET_ID = "cercle-dossier"


def widget_content(url: str, bot_user_id: str) -> dict[str, Any]:
    """``im.vector.modular.widgets`` content: a custom widget showing the file's page."""
    return {
        "id": WIDGET_ID,
        "type": "m.custom",
        "url": url,
        "name": "Dossier patient",
        "creatorUserId": bot_user_id,
        "data": {"title": "Dossier de coordination"},
        "waitForIframeLoad": True,
    }


def widget_layout(existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """``io.element.widgets.layout`` content with the file in the right-hand panel."""
    widgets = dict((existing or {}).get("widgets") or {})
    widgets[WIDGET_ID] = {"container": "right"}
    return {"widgets": widgets}
