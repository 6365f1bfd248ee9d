"""A part of Cercle that cannot load stops start-up, said in French (no degraded mode).

Each program is started as the operator's tools start it (``python -m …``, the ``cercle``
command), in a fresh interpreter where one of its modules cannot be imported. Before,
the bot started with an unsigned device (a warning), the dossier served without its
directory or pages and ``cercle`` without a family of commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployment.startup import MISSING_PART, missing_part

ROOT = Path(__file__).resolve().parents[2]

# runs `program` as `python -m program` would, with `blocked` unimportable (as when a
# module is missing from the installation)
LAUNCH = """
import runpy, sys
program, blocked, *args = sys.argv[1:]
sys.modules[blocked] = None
sys.argv = [program, *args]
if program == "cercle-command":  # the console script's entry point
    from cercle.__main__ import main
    main()
else:
    runpy.run_module(program, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("program", "blocked", "args"),
    [
        ("bots", "bots.matrix.cross_signing", []),
        ("bots", "bots.matrix.history", []),
        ("dossier_service", "dossier_service.directory.web", ["--root", "{tmp}"]),
        ("dossier_service", "dossier_service.web", ["--root", "{tmp}"]),
        ("cercle", "cercle.commands_annuaire", ["--help"]),
        ("cercle-command", "cercle.commands_run", ["--help"]),
    ],
)
def test_a_missing_part_stops_start_up_in_french(
    program: str, blocked: str, args: list[str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        # were it to start anyway, nothing of the worktree's own deployment is touched
        "CERCLE__VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, program, blocked, *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == MISSING_PART, done.stderr[-2000:]
    assert f"module « {blocked} »" in done.stderr
    assert "démarrage impossible" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # not even the help of what did load
    assert not (tmp_path / "var").exists()  # stopped before any secret or state is written


def test_the_message_names_the_module_only() -> None:
    error = ImportError("cannot import name 'x' from 'bots.matrix.trust' (/secret/path)")
    error.name = "bots.matrix.trust"
    message = missing_part("cercle-bot", error)
    assert message.startswith("cercle-bot : démarrage impossible")
    assert "bots.matrix.trust" in message and "/secret/path" not in message


def test_any_other_error_is_reported_without_its_text(tmp_path: Path) -> None:
    # a part that does not load is the only French line: a bug stays a bug (frames, type,
    # status 1), but its text stays out of the log as in every log line
    program = tmp_path / "broken.py"
    program.write_text(  # the text is made at run time, like a patient's name would be
        "def main():\n    text = 'un ' + 'défaut'\n    raise ValueError(text)\n",
        encoding="utf-8",
    )
    launch = "from deployment.startup import start\nstart('cercle-test', 'broken:main')\n"
    done = subprocess.run(
        [sys.executable, "-c", launch],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert (
        "Traceback" in done.stderr
        and "ValueError (texte de l'exception non journalisé)" in done.stderr
    )
    assert "un défaut" not in done.stderr  # an exception's text can hold a patient's data
    assert "démarrage impossible" not in done.stderr
