"""The mail bridge as a process of its own, for the tests that SIGKILL it (a cancelled task
in the test's process still runs its ``finally`` blocks; a killed process runs nothing).

``python -m tests.bridges.mail.bridge_process <config.json>``: the config is the test's
``MailBridgeConfig`` (paths as text) plus ``secrets_dir``; runs until killed. The production
entry point (``python -m bridges.mail``) needs a whole profile; this builds the same
``MailBridge`` from the test's config instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from bridges.mail.account import (
    CROSS_SIGNING_SECRET,
    PASSWORD_SECRET,
    PICKLE_SECRET,
    bridge_secret,
)
from bridges.mail.app import MailBridge
from bridges.mail.config import MailBridgeConfig
from bridges.mail.vault import CredentialVault

ROOT = Path(__file__).resolve().parents[3]


def config_json(config: MailBridgeConfig, secrets_dir: Path) -> str:
    values = config.model_dump(mode="json")  # paths as text
    values["secrets_dir"] = str(secrets_dir)
    return json.dumps(values)


def spawn(
    config: MailBridgeConfig, secrets_dir: Path, config_file: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """This module as a child process running ``config`` (written to ``config_file``), its
    output in ``log``."""
    config_file.write_text(config_json(config, secrets_dir))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bridges.mail.bridge_process", str(config_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=log,
    )


async def run(values: dict[str, Any]) -> None:
    secrets = SimpleNamespace(directory=Path(values.pop("secrets_dir")))
    config = MailBridgeConfig.model_validate(values)
    bridge = await MailBridge.create(
        config,
        password=bridge_secret(secrets, PASSWORD_SECRET),  # type: ignore[arg-type]
        pickle_key=bridge_secret(secrets, PICKLE_SECRET),  # type: ignore[arg-type]
        cross_signing_key=bridge_secret(secrets, CROSS_SIGNING_SECRET),  # type: ignore[arg-type]
        vault=CredentialVault.from_secrets_dir(secrets.directory),
    )
    await bridge.start()
    print("pont démarré", flush=True)
    await bridge.wait()


if __name__ == "__main__":
    asyncio.run(run(json.loads(Path(sys.argv[1]).read_text())))
