"""``python -m dossier_service`` runs from the deployment profile: migrations applied at
start, SQLite under var/dossier by default, /health answering, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_service_starts_from_the_profile_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    env.update({"CERCLE__VAR_DIR": str(tmp_path / "var"), "CERCLE__DOSSIER__PORT": str(port)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "dossier_service", "--log-level", "WARNING"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "le service ne répond pas"
                time.sleep(0.3)
        db = tmp_path / "var" / "dossier" / "dossier.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        assert {"patients", "audit_log", "outbox_events"} <= tables
        assert (tmp_path / "var" / "secrets" / "dossier_service_token").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
