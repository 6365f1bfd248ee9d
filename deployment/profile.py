"""Load the deployment profile: config/default.yaml, then overrides, then environment.

Order (later wins): ``config/default.yaml``, ``config/local.yaml`` if present, the file
named by ``CERCLE_CONFIG`` (or passed explicitly), then ``CERCLE__SECTION__KEY=value``
environment variables whose values are read as YAML scalars. Every key is declared by the
typed settings of :mod:`deployment.settings`: an unknown key, or a value of the wrong kind,
stops the loading with a French error naming the key and the file (or variable) that holds
it (:mod:`deployment.typed_config`, the loader every component shares).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployment.conventions import bot_shard_localpart
from deployment.settings import CercleSettings
from deployment.typed_config import ProfileError, check_source, validated

__all__ = ["PROJECT_ROOT", "Profile", "ProfileError", "load_profile", "parse_size"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "CERCLE__"


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any], source: str) -> None:
    """Merge ``override`` (read from ``source``: a file, the environment) into ``base``."""
    check_source(CercleSettings, override, source)
    _merge(base, override)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(base.get(key), dict) and isinstance(value, Mapping):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"fichier de configuration illisible : {path}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"le fichier de configuration {path} doit contenir un objet YAML")
    return data


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Variable name -> the nested mapping it sets (one each, so an error names it)."""
    out: dict[str, dict[str, Any]] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        value: Any = yaml.safe_load(raw) if raw != "" else ""
        for key in reversed(keys):
            value = {key: value}
        out[name] = value
    return out


def parse_size(value: str | int) -> int:
    """'50M' -> 52428800; plain integers are bytes."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


@dataclass(frozen=True)
class Profile:
    """The merged configuration of one deployment and where its data lives: ``data`` as
    written (sections read by the components), ``settings`` the same, typed."""

    root: Path
    data: Mapping[str, Any] = field(repr=False)
    settings: CercleSettings = field(default_factory=CercleSettings, repr=False, compare=False)

    @property
    def server_name(self) -> str:
        return str(self.data["server_name"])

    @property
    def var_dir(self) -> Path:
        p = Path(self.data["var_dir"])
        return p if p.is_absolute() else self.root / p

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name)
        if not isinstance(value, Mapping):
            raise ProfileError(f"section de configuration manquante : {name}")
        return value

    # --- derived locations and URLs shared by the components -----------------
    @property
    def homeserver_url(self) -> str:
        hs = self.section("homeserver")
        return f"http://{hs['bind_address']}:{hs['port']}"

    @property
    def is_region(self) -> bool:
        """Synapse workers, PostgreSQL, Redis and a reverse proxy (config/region.yaml)."""
        region = self.data.get("region")
        return isinstance(region, Mapping) and region.get("enabled") is True

    @property
    def admin_url(self) -> str:
        """Where Cercle's own tools reach Synapse's admin API: the main process on loopback.
        In the region profile the proxy (``homeserver_url``) never forwards /_synapse/admin."""
        if self.is_region:
            return f"http://127.0.0.1:{int(self.section('region')['base_port'])}"
        return self.homeserver_url

    @property
    def public_baseurl(self) -> str:
        hs = self.section("homeserver")
        url = hs.get("public_baseurl") or f"{self.homeserver_url}/"
        return str(url) if str(url).endswith("/") else f"{url}/"

    @property
    def bot_user_id(self) -> str:
        return f"@{self.section('bot')['localpart']}:{self.server_name}"

    @property
    def bot_user_ids(self) -> tuple[str, ...]:
        """Every account of the bot, the front (``bot_user_id``) first (bots/shards.py)."""
        bot = self.section("bot")
        return tuple(
            f"@{bot_shard_localpart(bot['localpart'], k)}:{self.server_name}"
            for k in range(1, int(bot.get("shards", 1)) + 1)
        )

    @property
    def dossier_url(self) -> str:
        d = self.section("dossier")
        return str(d.get("public_url") or f"http://{d['bind_address']}:{d['port']}")


def load_profile(
    root: Path | None = None,
    override_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Profile:
    """Merge the default profile with its overrides. ``extra`` is applied last (tests)."""
    root = (root or PROJECT_ROOT).resolve()
    env = os.environ if env is None else env
    default = root / "config" / "default.yaml"
    data = _read_yaml(default)
    check_source(CercleSettings, data, f"fichier {default}")
    local = root / "config" / "local.yaml"
    if local.exists():
        _deep_merge(data, _read_yaml(local), f"fichier {local}")
    named = override_file or (Path(env["CERCLE_CONFIG"]) if env.get("CERCLE_CONFIG") else None)
    if named is not None:
        if not named.exists():
            raise ProfileError(f"fichier de configuration introuvable : {named}")
        _deep_merge(data, _read_yaml(named), f"fichier {named}")
    for name, value in _env_overrides(env).items():
        _deep_merge(data, value, f"variable d'environnement {name}")
    if extra:
        _deep_merge(data, extra, "réglages passés au programme")
    settings = validated(CercleSettings, data, "profil fusionné")
    return Profile(root=root, data=data, settings=settings)
