"""Start a Cercle program: a part of Cercle that cannot load stops it, said in French.

Every component is a plain import: nothing is quietly turned off when one of its modules is
missing (the bot's cross-signing, the directory, the dossier's pages, a family of ``cercle``
commands). The entry points — ``python -m bots``, ``python -m dossier_service``, ``cercle`` —
load their program through `start`, so that an incomplete installation stops start-up with
one clear line for the operator instead of a traceback, and a status of its own.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

MISSING_PART = 3  # exit status: a part of Cercle does not load (1 and 2 are taken)


def start(program: str, entry: str) -> NoReturn:
    """Import ``entry`` (``"package.module:function"``) and exit with what it returns."""
    module_name, _, function_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        print(missing_part(program, error), file=sys.stderr)
        raise SystemExit(MISSING_PART) from None
    raise SystemExit(getattr(module, function_name)())


def missing_part(program: str, error: ImportError) -> str:
    """The operator's message: which module does not load (a name, never a value)."""
    return (
        f"{program} : démarrage impossible, une partie de Cercle ne se charge pas "
        f"(module « {error.name or 'inconnu'} »). L'installation est incomplète : "
        "réinstallez Cercle (pip install -e .) puis relancez."
    )
