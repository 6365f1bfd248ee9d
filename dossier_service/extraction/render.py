"""``python -m dossier_service.extraction.render XLSX ZIP``: the CPU-bound half of an
extraction, in a process of its own so the dossier's event loop never waits on it.

Reads the pickled ``(facts, period, scope, visible, made_at)`` that the dossier wrote on its
standard input (trusted: written by the parent, never by a user), writes both documents to
the given paths and prints the title on its standard output.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from dossier_service.documents_store import write_private
from dossier_service.extraction import workbook
from dossier_service.extraction.figures import extract


def main(argv: list[str]) -> int:
    os.nice(10)  # the people using the dossier meanwhile come first
    xlsx_path, zip_path = Path(argv[0]), Path(argv[1])
    facts, period, scope, visible, made_at = pickle.load(sys.stdin.buffer)
    result = extract(facts, period, scope=scope, visible=visible, made_at=made_at)
    write_private(xlsx_path, workbook.xlsx(result))
    write_private(zip_path, workbook.csv_zip(result))
    sys.stdout.write(result.title)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
