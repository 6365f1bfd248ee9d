"""Start a Cercle program: a part of Cercle that cannot load stops it, said in French.

Every component is a plain import: nothing is quietly turned off when one of its modules is
missing (the bot's cross-signing, the directory, the dossier's pages, a family of ``cercle``
commands). The entry points — ``python -m bots``, ``python -m dossier_service``, ``cercle`` —
load their program through `start`, so that an incomplete installation stops start-up with
one clear line for the operator instead of a traceback, and a status of its own.

No import is guarded: the program's modules are imported plainly, and an import that fails
reaches the interpreter's top level, where the hook `start` installs (``sys.excepthook``)
says which module does not load and ends the process with `MISSING_PART`. Any other
uncaught error is reported as the logs report one (``deployment/incidents.py``): its frames
and its type, never its text, which can hold a patient's data; status 1, as Python's.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import partial
from types import TracebackType
from typing import NoReturn

from deployment.incidents import traceback_without_text

MISSING_PART = 3  # exit status: a part of Cercle does not load (1 and 2 are taken)


def start(program: str, entry: str) -> NoReturn:
    """Import ``entry`` (``"package.module:function"``) and exit with what it returns."""
    sys.excepthook = partial(_report_uncaught, program)
    module_name, _, function_name = entry.partition(":")
    module = importlib.import_module(module_name)
    raise SystemExit(getattr(module, function_name)())


def _report_uncaught(
    program: str,
    kind: type[BaseException],
    error: BaseException,
    trace: TracebackType | None,
) -> None:
    """The top-level hook: an import that failed is the operator's French line and status 3;
    anything else its frames and type without its text (status 1, Python's own)."""
    if isinstance(error, ImportError):
        print(missing_part(program, error), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # an uncaught error always ends Python with status 1: this one has its own status
        os._exit(MISSING_PART)
    print(traceback_without_text(error, trace), file=sys.stderr)


def missing_part(program: str, error: ImportError) -> str:
    """The operator's message: which module does not load (a name, never a value)."""
    return (
        f"{program} : démarrage impossible, une partie de Cercle ne se charge pas "
        f"(module « {error.name or 'inconnu'} »). L'installation est incomplète : "
        "réinstallez Cercle (pip install -e .) puis relancez."
    )
