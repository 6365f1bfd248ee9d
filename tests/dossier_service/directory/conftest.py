from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dossier_service.directory.importer import import_extract
from dossier_service.directory.search import Directory
from dossier_service.directory.store import connect

RPPS_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "rpps"
if not RPPS_DIR.exists():  # the checkout lives beside ../shared
    RPPS_DIR = Path("/work/shared/data/rpps")
SAMPLE = RPPS_DIR / "PS_LibreAcces_Personne_activite_sample.txt"
GENERATOR = RPPS_DIR / "make_extract.py"


@pytest.fixture
def generate(tmp_path: Path) -> Callable[..., Path]:
    """Run the shared generator: ``generate(rows, seed) -> path``."""

    def run(rows: int, seed: int = 1, name: str | None = None) -> Path:
        out = tmp_path / (name or f"extract_{rows}_{seed}.txt")
        subprocess.run([sys.executable, str(GENERATOR), "--rows", str(rows), "--seed",
                        str(seed), "--out", str(out)], check=True)
        return out

    return run


@pytest.fixture
def db(tmp_path: Path) -> Iterator[object]:
    conn = connect(tmp_path / "annuaire.db")
    yield conn
    conn.close()


@pytest.fixture
def sample_directory(db: object) -> Directory:
    import_extract(db, SAMPLE)  # type: ignore[arg-type]
    return Directory(db)  # type: ignore[arg-type]
