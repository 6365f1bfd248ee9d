"""Render Synapse's configuration from the deployment profile (jinja2, StrictUndefined).

The same function serves `cercle up` and the test fixtures, so tests run the real
configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from deployment.profile import Profile
from deployment.secrets import Secrets
from homeserver import legal, sso

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RenderedHomeserver:
    config_path: Path
    log_config_path: Path
    data_dir: Path
    base_url: str

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
        "hs": hs,
        "rl": hs["rate_limits"],
        "secrets": secrets,
        "oidc_providers": sso.oidc_providers(profile, secrets),
        "modules": [*hs["modules"], *sso.extra_modules(profile, secrets)],
        "sso_client_whitelist": [f"{profile.dossier_url.rstrip('/')}/"],
        "consent": _consent(profile, data_dir),
        "sso_templates_dir": str(TEMPLATES / "synapse"),
    }
    return (
        env.get_template("homeserver.yaml.j2").render(context),
        env.get_template("log.yaml.j2").render(context),
    )


def _consent(profile: Profile, data_dir: Path) -> dict[str, str] | None:
    if not legal.enabled(profile):
        return None
    return {
        "template_dir": str(data_dir / "consent"),
        "version": legal.current_version(profile),
    }


def render(profile: Profile, secrets: Secrets) -> RenderedHomeserver:
    """Write homeserver.yaml and log.yaml under <var>/synapse (mode 0600: it holds secrets)."""
    data_dir = profile.var_dir / "synapse"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "media_store").mkdir(exist_ok=True)
    main, log_config = render_text(profile, secrets, data_dir)
    if legal.enabled(profile):
        legal.install(profile, data_dir)
    config_path = data_dir / "homeserver.yaml"
    log_path = data_dir / "log.yaml"
    for path, text in ((config_path, main), (log_path, log_config)):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
    return RenderedHomeserver(config_path, log_path, data_dir, profile.homeserver_url)
