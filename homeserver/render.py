"""Render Synapse's configuration from the deployment profile (jinja2, StrictUndefined).

The same function serves `cercle up` and the test fixtures, so tests run the real
configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import jinja2
import yaml

from deployment.profile import Profile
from deployment.secrets import Secrets, read_or_create
from homeserver import legal, sso, workers

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RenderedHomeserver:
    config_path: Path
    log_config_path: Path
    data_dir: Path
    base_url: str
    # region profile: each worker's own file, by worker name (empty: one process)
    worker_configs: dict[str, Path] = field(default_factory=dict)
    topology: workers.Topology | None = None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "homeserver.db"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_text(profile: Profile, secrets: Secrets, data_dir: Path) -> tuple[str, str]:
    """Return (homeserver.yaml, log.yaml) as text. Pure apart from reading templates and
    the legal publications, and checking that SSO client secrets exist."""
    hs = profile.section("homeserver")
    env = _environment()
    context = {
        "server_name": profile.server_name,
        "public_baseurl": profile.public_baseurl,
        "data_dir": str(data_dir),
        "signing_key_path": str(secrets.signing_key_path),
        "log_config_path": str(data_dir / "log.yaml"),
        "log_file": str(data_dir / "homeserver.log"),
        "hs": hs,
        "rl": hs["rate_limits"],
        "secrets": secrets,
        "oidc_providers": sso.oidc_providers(profile, secrets),
        "modules": [*hs["modules"], *sso.extra_modules(profile, secrets)],
        "sso_client_whitelist": [f"{profile.dossier_url.rstrip('/')}/"],
        "consent": _consent(profile, data_dir),
        "sso_templates_dir": str(TEMPLATES / "synapse"),
        "region": _region(profile, secrets),
    }
    return (
        env.get_template("homeserver.yaml.j2").render(context),
        env.get_template("log.yaml.j2").render(context),
    )


def render_worker_log_config(profile: Profile, data_dir: Path, name: str) -> str:
    """A worker's own log file (one process per file: rotation never races another)."""
    return (
        _environment()
        .get_template("log.yaml.j2")
        .render(hs=profile.section("homeserver"), log_file=str(data_dir / f"{name}.log"))
    )


def _region(profile: Profile, secrets: Secrets) -> dict[str, Any] | None:
    if not profile.is_region:
        return None
    region = profile.section("region")
    topo = workers.topology(region)
    return {
        "main_port": topo.main_port,
        "main_replication_port": topo.main_replication_port,
        "redis": region["redis"],
        "shared": topo.shared_config(),
        "secret": read_or_create(
            secrets.directory, "worker_replication_secret", lambda: token_urlsafe(32)
        ),
    }


def _consent(profile: Profile, data_dir: Path) -> dict[str, str] | None:
    if not legal.enabled(profile):
        return None
    return {
        "template_dir": str(data_dir / "consent"),
        "version": legal.current_version(profile),
    }


def homeserver_dir(profile: Profile) -> Path:
    """<var>/synapse: Synapse's configuration, its SQLite database, media and logs."""
    return profile.var_dir / "synapse"


def render(profile: Profile, secrets: Secrets) -> RenderedHomeserver:
    """Write homeserver.yaml and log.yaml under <var>/synapse (mode 0600: it holds secrets)."""
    data_dir = homeserver_dir(profile)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "media_store").mkdir(exist_ok=True)
    main, log_config = render_text(profile, secrets, data_dir)
    if legal.enabled(profile):
        legal.install(profile, data_dir)
    config_path = data_dir / "homeserver.yaml"
    log_path = data_dir / "log.yaml"
    files = [(config_path, main), (log_path, log_config)]
    topo = workers.topology(profile.section("region")) if profile.is_region else None
    worker_configs: dict[str, Path] = {}
    if topo is not None:
        for spec in topo.workers:
            path = data_dir / "workers" / f"{spec.name}.yaml"
            path.parent.mkdir(exist_ok=True)
            worker_log = data_dir / "workers" / f"{spec.name}.log.yaml"
            files.append((worker_log, render_worker_log_config(profile, data_dir, spec.name)))
            text = yaml.safe_dump(workers.worker_config(spec, str(worker_log)), sort_keys=False)
            files.append((path, _RENDERED_HEADER + text))
            worker_configs[spec.name] = path
    for path, text in files:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
    base_url = topo.main_url if topo is not None else profile.homeserver_url
    return RenderedHomeserver(config_path, log_path, data_dir, base_url, worker_configs, topo)


_RENDERED_HEADER = (
    "# Rendered by Cercle (homeserver/render.py, homeserver/workers.py): do not edit.\n"
)
