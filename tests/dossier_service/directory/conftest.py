from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import RPPS_SAMPLE

from dossier_service.directory.importer import import_extract
from dossier_service.directory.search import Directory
from tests.directory_support import connect

SAMPLE = RPPS_SAMPLE
GENERATOR = RPPS_SAMPLE.with_name("make_extract.py")  # the shared extract's generator
# an account request as the form posts it, from a nurse of SAMPLE
REQUEST_FORM = {
    "nom": "D'Almeida",
    "prenom": "Hélène",
    "identifiant": "10000001128",
    "profession": "infirmière",
    "structure": "",
    "email": "h@example.org",
    "telephone": "+33 6 12 34 56 78",
    "consentement": "on",
}


@pytest.fixture
def generate(tmp_path: Path) -> Callable[..., Path]:
    """Run the shared generator: ``generate(rows, seed) -> path``."""

    def run(rows: int, seed: int = 1, name: str | None = None) -> Path:
        out = tmp_path / (name or f"extract_{rows}_{seed}.txt")
        subprocess.run(
            [
                sys.executable,
                str(GENERATOR),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
                "--out",
                str(out),
            ],
            check=True,
        )
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


class SmtpSink:
    """A minimal real SMTP server on 127.0.0.1 (EHLO, MAIL, RCPT, DATA, QUIT) keeping mails."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.port = 0
        self._server: object = None

    async def start(self) -> None:
        import asyncio

        async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sender, rcpts = "", []

            def say(line: str) -> None:
                writer.write((line + "\r\n").encode())

            say("220 sink ESMTP")
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                cmd = raw.decode().strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 sink")
                elif verb == "MAIL":
                    sender = cmd.split(":", 1)[1].strip().strip("<>")
                    say("250 OK")
                elif verb == "RCPT":
                    rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    await writer.drain()
                    data = b""
                    while True:
                        line = await reader.readline()
                        if line in (b".\r\n", b".\n", b""):
                            break
                        data += line
                    self.messages.append((sender, rcpts, data))
                    say("250 OK")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    break
                else:
                    say("250 OK")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(session, "127.0.0.1", 0)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server = self._server
        if server is not None:
            server.close()  # type: ignore[attr-defined]
            await server.wait_closed()  # type: ignore[attr-defined]


@pytest.fixture
async def smtp_sink() -> object:
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()
