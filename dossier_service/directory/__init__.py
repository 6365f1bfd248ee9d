"""The directory of professionals ("annuaire") and account requests.

Import of the public RPPS extract (:mod:`.importer`), pure query parsing (:mod:`.query`),
ranked search (:mod:`.search`), account requests (:mod:`.account_requests`), and the HTTP
routes mounted into the dossier service by :func:`setup`.
"""

from __future__ import annotations

from typing import Any


def setup(app: Any, settings: Any, **kwargs: Any) -> None:
    """Mount the directory's routes and lifecycle on the dossier's aiohttp app."""
    from .web import setup as _setup

    _setup(app, settings, **kwargs)
