"""Pure: `cercle status` tells a process waiting for its restart from one that stopped."""

from __future__ import annotations

from typing import Any

from cercle.commands_run import mark_restarting


def services() -> dict[str, Any]:
    return {
        "bot2": {"state": "stopped", "pid": None, "restarts": 1},
        "dossier": {"state": "stopped", "pid": None, "restarts": 0},
        "bot": {"state": "running", "pid": 12, "restarts": 0},
    }


def test_a_process_in_its_back_off_is_restarting_with_the_seconds_left() -> None:
    shown = services()
    state = {"restart_at": {"bot2": 1_004.4, "bot": 1_010.0}}
    mark_restarting(state, shown, now=1_000.0, supervisor_alive=True)
    assert shown["bot2"] == {"state": "restarting", "pid": None, "restarts": 1, "restart_in": 4}
    assert shown["dossier"]["state"] == "stopped"  # nothing planned for it
    assert shown["bot"]["state"] == "running"  # already back: the plan is stale


def test_without_a_supervisor_nothing_will_restart_it() -> None:
    shown = services()
    mark_restarting({"restart_at": {"bot2": 1_004.0}}, shown, now=1_000.0, supervisor_alive=False)
    assert shown["bot2"]["state"] == "stopped"


def test_an_overdue_restart_shows_zero_seconds_and_an_old_run_file_nothing() -> None:
    shown = services()
    mark_restarting({"restart_at": {"bot2": 990.0}}, shown, now=1_000.0, supervisor_alive=True)
    assert shown["bot2"]["restart_in"] == 0
    shown = services()
    mark_restarting({}, shown, now=1_000.0, supervisor_alive=True)  # before this field
    assert shown["bot2"]["state"] == "stopped"
