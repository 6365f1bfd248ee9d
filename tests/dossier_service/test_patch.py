"""One PATCH rule for the file's rows (``services.patch.apply_patch``), without a database."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from dossier_service.schemas import EpisodeUpdate, EventUpdate
from dossier_service.services.patch import apply_patch


def test_sent_fields_change_null_leaves_unsent_untouched() -> None:
    row = SimpleNamespace(title="Suivi", starts_on=date(2025, 1, 5), ends_on=None, description="d")
    update = EpisodeUpdate.model_validate({"title": "Retour", "starts_on": None})
    apply_patch(row, update, clearable={"ends_on"})
    assert row == SimpleNamespace(
        title="Retour", starts_on=date(2025, 1, 5), ends_on=None, description="d"
    )


def test_null_clears_only_a_clearable_field() -> None:
    row = SimpleNamespace(title="Suivi", ends_on=date(2025, 2, 1))
    apply_patch(row, EpisodeUpdate.model_validate({"ends_on": None}), clearable={"ends_on"})
    assert row.ends_on is None
    row.ends_on = date(2025, 2, 1)
    apply_patch(row, EpisodeUpdate.model_validate({"ends_on": None}))
    assert row.ends_on == date(2025, 2, 1)


def test_excluded_fields_are_left_to_the_caller() -> None:
    row = SimpleNamespace(rrule="FREQ=WEEKLY", attendees=["@a:x"], title="Visite")
    update = EventUpdate.model_validate({"rrule": None, "attendees": ["@b:x"], "title": "RDV"})
    apply_patch(row, update, clearable={"rrule"}, exclude={"attendees"})
    assert row == SimpleNamespace(rrule=None, attendees=["@a:x"], title="RDV")
