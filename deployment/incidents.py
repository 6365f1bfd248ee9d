"""Unexpected failures, the same way in every component: a reference and a log without text.

The house rule (STYLE, convention 3): anything that is neither a person's error nor a usage
error is logged with a reference and answered « Erreur interne (réf. X) »; no exception text
and no patient data in replies, HTTP bodies or logs. Two halves of that rule live here so that
no component writes them again:

* ``new_reference()``: the reference a person quotes to the operator (8 hexadecimal capitals),
  the same form in the bot, the mail bridge, the dossier and its directory.
* ``configure_logging``: one logging set-up for every Cercle process, whose formatter keeps a
  traceback's frames (``traceback_without_text``, also what ``deployment/startup.py`` prints
  for an error nothing caught) (file, line, function, the source line) but never the exception's text.
  That text is where data leaks: a database error carries the row's values (``IntegrityError
  … [parameters: ('DUPONT', …)]``), a ``KeyError`` the key, a parser the line it choked on.
  The operator still sees which exception, where, and its chain of causes; the reference ties
  the log line to what the person was told.
"""

from __future__ import annotations

import logging
import logging.config
import secrets
import traceback
from collections.abc import Iterator, Mapping
from types import TracebackType

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
TEXT_LEFT_OUT = "(texte de l'exception non journalisé)"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def new_reference() -> str:
    """A reference for one incident, quoted by the person and found in the log."""
    return secrets.token_hex(4).upper()


def _name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _without_text(error: BaseException, tb: TracebackType | None, seen: set[int]) -> Iterator[str]:
    """The lines of ``traceback.format_exception`` with every exception's text left out."""
    seen.add(id(error))
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        yield from _without_text(cause, cause.__traceback__, seen)
        yield "\nCette exception a directement causé la suivante :\n\n"
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        yield from _without_text(context, context.__traceback__, seen)
        yield "\nPendant le traitement de cette exception, une autre est survenue :\n\n"
    if tb is not None:
        yield "Traceback (most recent call last):\n"
        yield from traceback.format_list(traceback.extract_tb(tb))
    yield f"{_name(type(error))} {TEXT_LEFT_OUT}\n"
    if isinstance(error, BaseExceptionGroup):
        for member in error.exceptions:
            yield f"  dans le groupe : {_name(type(member))}\n"


class WithoutExceptionText(logging.Formatter):
    """A formatter whose tracebacks keep the frames and the exception's type, not its text."""

    def formatException(self, ei: ExcInfo) -> str:
        _, error, tb = ei
        return "" if error is None else traceback_without_text(error, tb)


def traceback_without_text(error: BaseException, tb: TracebackType | None) -> str:
    """What ``traceback.format_exception`` prints, with every exception's text left out."""
    return "".join(_without_text(error, tb, set())).rstrip("\n")


def configure_logging(*, root: str, levels: Mapping[str, str] | None = None) -> None:
    """Logging of one Cercle process: to stderr (the supervisor keeps it in the process's log
    file), the root logger at ``root``, the named loggers at their ``levels``."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"()": WithoutExceptionText, "fmt": FORMAT}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"level": root, "handlers": ["stderr"]},
            "loggers": {name: {"level": level} for name, level in (levels or {}).items()},
        }
    )
