"""The dossier's config is built from the deployment profile and the secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployment.profile import ProfileError, load_profile
from deployment.secrets import Secrets
from dossier_service.config import config_from_profile


def _config(tmp_path: Path, **dossier: object) -> object:
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path), "dossier": dossier})
    return config_from_profile(profile, Secrets.load_or_create(profile.var_dir))


def test_defaults_from_the_profile(tmp_path: Path) -> None:
    config = _config(tmp_path)
    secrets = Secrets.load_or_create(tmp_path)
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'dossier' / 'dossier.db'}"
    assert config.homeserver_url == "http://127.0.0.1:8008"
    assert config.service_token == secrets.dossier_service_token
    assert config.session_key == secrets.dossier_session_key
    assert config.documents_max_size == 25 * 1024 * 1024
    assert config.public_url == "http://127.0.0.1:8090" and not config.secure_cookies
    assert "ordonnance" in config.document_categories


def test_postgres_url_switch_and_overrides(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        database_url="postgresql://cercle@db.internal/dossier",
        homeserver_url="http://hs:8008/",
        admins=["@admin:cercle.localhost"],
        public_url="https://dossier.example",
        document_categories=["a", "b"],
    )
    assert config.database_url == "postgresql+asyncpg://cercle@db.internal/dossier"
    assert config.homeserver_url == "http://hs:8008"
    assert config.admins == frozenset({"@admin:cercle.localhost"})
    assert config.secure_cookies
    assert config.document_categories == ("a", "b")


@pytest.mark.parametrize(
    "bad", [{"document_categories": "bilan"}, {"admins": "@a:b"}, {"task_types": ["x"]}]
)
def test_bad_values_name_the_key(tmp_path: Path, bad: dict[str, object]) -> None:
    # the typed profile (deployment.settings) refuses them as it loads
    with pytest.raises(ProfileError, match=r"invalide : dossier\.\w+.* \(réglages passés"):
        _config(tmp_path, **bad)


def test_public_homeserver_url_for_browsers_internal_one_for_checks(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.public_homeserver_url == "http://127.0.0.1:8008"  # public_baseurl's default
    profile = load_profile(
        env={},
        extra={
            "var_dir": str(tmp_path),
            "homeserver": {"public_baseurl": "https://matrix.cercle.example/"},
            "dossier": {"public_url": "https://dossier.cercle.example"},
        },
    )
    behind_proxy = config_from_profile(profile, Secrets.load_or_create(profile.var_dir))
    assert behind_proxy.homeserver_url == "http://127.0.0.1:8008"  # OpenID checks stay inside
    assert behind_proxy.browser_homeserver_url == "https://matrix.cercle.example"
    assert behind_proxy.secure_cookies
    chosen = _config(tmp_path, public_homeserver_url="https://hs.example/")
    assert chosen.browser_homeserver_url == "https://hs.example"
