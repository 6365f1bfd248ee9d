"""A Synapse for a bench, rendered by the deployment's own code from an override file, so that
a Cercle process started beside it (the bot, the mail bridge: exactly as ``cercle up`` starts
them) reads the same profile. Logins and registrations are not limited (many bench accounts
from 127.0.0.1 within seconds) and the Documents juridiques are off (bench accounts accept
none); everything else is the deployment's configuration."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cercle.bot_instances import bot_accounts
from deployment.processes import stop_child
from deployment.profile import Profile, load_profile
from deployment.secrets import Secrets
from homeserver.accounts import ServiceAccounts, ensure_service_accounts
from homeserver.admin_api import AdminApi, RegisteredUser
from homeserver.process import SynapseProcess
from homeserver.render import RenderedHomeserver, render

from .measures import free_port

ROOT = Path(__file__).resolve().parents[2]
LIFTED_LIMITS = {
    "login_per_second": 100,
    "login_burst": 1000,
    "registration_per_second": 100,
    "registration_burst": 1000,
}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@dataclass
class BenchSite:
    """One bench deployment: its override file, the profile read from it, its secrets."""

    override_file: Path
    profile: Profile
    secrets: Secrets

    @classmethod
    def create(cls, work: Path, extra: dict[str, Any] | None = None) -> BenchSite:
        """The site under ``work`` (``work/bench.yaml``, ``work/var``); an override file
        already there is kept (its ports, so a homeserver populated earlier is reused)."""
        work.mkdir(parents=True, exist_ok=True)
        override_file = work / "bench.yaml"
        if not override_file.exists():
            override = {
                "var_dir": str(work / "var"),
                "homeserver": {
                    "port": free_port(),
                    "rate_limits": LIFTED_LIMITS,
                    "legal": {"enabled": False},
                },
                "dossier": {"port": free_port()},
            }
            override_file.write_text(yaml.safe_dump(_merge(override, extra or {})))
        profile = load_profile(override_file=override_file, env={})
        return cls(override_file, profile, Secrets.load_or_create(profile.var_dir))

    @property
    def homeserver_url(self) -> str:
        return self.profile.homeserver_url

    def render(self) -> RenderedHomeserver:
        return render(self.profile, self.secrets)

    def synapse(self, rendered: RenderedHomeserver | None = None) -> SynapseProcess:
        """The homeserver, not started (``rendered``: a rendering the bench adjusted)."""
        return SynapseProcess(rendered or self.render())

    async def service_accounts(self) -> ServiceAccounts:
        """The admin and the bot's accounts (one per shard), as ``cercle up`` makes them."""
        return await ensure_service_accounts(
            self.homeserver_url,
            self.profile.server_name,
            self.secrets,
            bots=bot_accounts(self.profile, self.secrets),
        )

    async def users(self, admin_token: str, localparts: Iterable[str]) -> dict[str, RegisteredUser]:
        """Accounts registered and logged in (one device each), their message rate limit
        lifted (the bench measures Cercle, not Synapse's anti-flood)."""
        out = {}
        async with AdminApi(self.homeserver_url, admin_token) as api:
            for localpart in localparts:
                password = secrets.token_urlsafe(12)
                user_id = await api.register(
                    self.secrets.registration_shared_secret, localpart, password
                )
                out[localpart] = await api.login(user_id, password)
                await api.override_ratelimit(user_id)
        return out

    def spawn(
        self, *argv: str, log: Path, root: Path = ROOT, append: bool = False
    ) -> subprocess.Popen[bytes]:
        """``python <argv>`` from ``root`` on this site's profile, its stderr into ``log``."""
        env = dict(os.environ, CERCLE_CONFIG=str(self.override_file), PYTHONPATH=str(root))
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "ab" if append else "wb"),
        )


def stop(procs: Iterable[subprocess.Popen[bytes]], *, grace: float = 15) -> None:
    """SIGTERM to each, killed when still there after ``grace`` seconds."""
    for proc in procs:
        stop_child(proc, timeout=grace)
