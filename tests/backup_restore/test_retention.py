"""Which files retention archives and purges: closed ones past the legal period, never an
active or dormant one however quiet its room. Pure rules, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from backup.retention import RetentionPolicy, closed_file, is_due, purge_after
from deployment.profile import load_profile
from deployment.secrets import Secrets
from homeserver.render import render_text

NOW = datetime(2050, 6, 1, tzinfo=UTC)
LEGAL = RetentionPolicy(years_after_closure=20)


def export(status: str, history: list[tuple[str, str]]) -> dict:
    return {
        "patient": {"id": "P-1", "file_status": status, "room_id": "!r:cercle.localhost"},
        "status_history": [{"status": s, "changed_at": at} for s, at in history],
    }


def test_a_file_still_active_or_dormant_is_never_due_however_old() -> None:
    for status in ("actif", "en veille"):
        file = closed_file(
            export(status, [("clos", "2001-01-01T00:00:00Z"), (status, "2001-02-01T00:00:00Z")])
        )
        assert file is None
        assert not is_due(file, NOW, LEGAL)


def test_a_closed_file_is_due_exactly_after_the_legal_period() -> None:
    file = closed_file(
        export("clos", [("actif", "2020-01-01T00:00:00"), ("clos", "2030-06-01T08:00:00+00:00")])
    )
    assert file is not None and file.room_id == "!r:cercle.localhost"
    assert purge_after(file.closed_at, LEGAL) == datetime(2050, 6, 1, 8, tzinfo=UTC)
    assert not is_due(file, NOW, LEGAL)
    assert is_due(file, NOW + timedelta(hours=8), LEGAL)
    # closed, reopened, closed again: the period runs from the last closure
    again = closed_file(
        export(
            "clos",
            [
                ("clos", "2001-01-01T00:00:00Z"),
                ("actif", "2002-01-01T00:00:00Z"),
                ("clos", "2040-01-01T00:00:00Z"),
            ],
        )
    )
    assert again is not None and not is_due(again, NOW, LEGAL)


def test_closed_on_29_february() -> None:
    one_year = RetentionPolicy(years_after_closure=1)
    assert purge_after(datetime(2028, 2, 29, tzinfo=UTC), one_year) == datetime(
        2029, 2, 28, tzinfo=UTC
    )


def test_synapse_never_purges_messages_by_age(tmp_path: Path) -> None:
    """Synapse's message retention (purge after N days without regard to the file) is off:
    only `cercle retention` purges, file by file."""
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path)})
    main, _ = render_text(profile, Secrets.load_or_create(tmp_path), tmp_path)
    config = yaml.safe_load(main)
    assert not (config.get("retention") or {}).get("enabled", False)
