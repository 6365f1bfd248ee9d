import stat
from pathlib import Path

import pytest

from deployment.profile import ProfileError, load_profile, parse_size
from deployment.secrets import Secrets


def test_defaults_then_file_then_environment_override(tmp_path: Path) -> None:
    override = tmp_path / "site.yaml"
    override.write_text("server_name: sante.example\nhomeserver:\n  port: 9000\n", encoding="utf-8")
    env = {"CERCLE__HOMESERVER__PORT": "9100", "CERCLE__BOT__ESCALATION__INTERVAL_MINUTES": "5"}
    profile = load_profile(override_file=override, env=env)
    assert profile.server_name == "sante.example"
    assert profile.section("homeserver")["port"] == 9100  # environment wins over the file
    assert profile.section("bot")["escalation"]["interval_minutes"] == 5
    assert profile.bot_user_id == "@cercle-bot:sante.example"
    assert profile.homeserver_url == "http://127.0.0.1:9100"


def test_missing_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="introuvable"):
        load_profile(override_file=tmp_path / "absent.yaml", env={})


def test_parse_size() -> None:
    assert parse_size("50M") == 50 * 1024 * 1024
    assert parse_size("1K") == 1024
    assert parse_size(12) == 12


def test_secrets_created_once_with_private_modes(tmp_path: Path) -> None:
    first = Secrets.load_or_create(tmp_path)
    directory = tmp_path / "secrets"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert len(files) >= 10
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    second = Secrets.load_or_create(tmp_path)
    assert second == first
    assert (
        len({first.registration_shared_secret, first.bot_pickle_key, first.macaroon_secret_key})
        == 3
    )
    assert first.bot_pickle_key != "DEFAULT_KEY"
    key = first.signing_key_path.read_text().split()
    assert key[0] == "ed25519" and key[1].startswith("a_")


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    s = Secrets.load_or_create(tmp_path)
    # Logging the object by accident must not print any secret.
    text = repr(s)
    for value in (s.registration_shared_secret, s.bot_password, s.bot_pickle_key, s.admin_password):
        assert value not in text


def test_an_unknown_key_is_an_error_naming_it_and_its_file(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("dossier:\n  port: 9000\n  prot: 9001\n", encoding="utf-8")
    with pytest.raises(ProfileError) as refused:
        load_profile(override_file=site, env={})
    assert str(refused.value) == f"clé de configuration inconnue : dossier.prot (fichier {site})"
    with pytest.raises(ProfileError, match=r"bot\.escalation\.intervalle"):
        load_profile(env={}, extra={"bot": {"escalation": {"intervalle": 5}}})
    with pytest.raises(ProfileError) as refused:
        load_profile(env={"CERCLE__DOSIER__PORT": "9000"})
    assert "dosier (variable d'environnement CERCLE__DOSIER__PORT)" in str(refused.value)
    provider = {"homeserver": {"sso": {"providers": {"psc": {"enabled": True, "issuer2": "x"}}}}}
    with pytest.raises(ProfileError, match=r"homeserver\.sso\.providers\.psc\.issuer2"):
        load_profile(env={}, extra=provider)


def test_values_are_typed(tmp_path: Path) -> None:
    profile = load_profile(env={"CERCLE__DOSSIER__PORT": "9100"})
    assert profile.settings.dossier.port == 9100 and profile.section("dossier")["port"] == 9100
    assert profile.settings.annuaire.activation_hours == 72
    with pytest.raises(ProfileError, match=r"invalide : homeserver\.port"):
        load_profile(env={"CERCLE__HOMESERVER__PORT": "huit mille"})
    with pytest.raises(ProfileError, match=r"invalide : homeserver\.database\.engine"):
        load_profile(env={}, extra={"homeserver": {"database": {"engine": "mysql"}}})


def test_a_bad_value_names_its_file_and_why_in_french(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("bot:\n  escalation:\n    max_reminders: -1\n", encoding="utf-8")
    with pytest.raises(ProfileError) as refused:
        load_profile(override_file=site, env={})
    assert str(refused.value) == (
        "valeur de configuration invalide : bot.escalation.max_reminders "
        f"(fichier {site}) : valeur hors limites"
    )
    # a size is bytes or "50M": a list is neither, said once for the key
    with pytest.raises(ProfileError, match=r"homeserver\.max_upload_size \(réglages.*inattendu$"):
        load_profile(env={}, extra={"homeserver": {"max_upload_size": [50]}})
    # a value is never quoted back (a profile holds passwords)
    secret = tmp_path / "secret.yaml"
    secret.write_text("annuaire:\n  smtp:\n    password: [s3cr3t]\n", encoding="utf-8")
    with pytest.raises(ProfileError) as refused:
        load_profile(override_file=secret, env={})
    assert "annuaire.smtp.password" in str(refused.value) and "s3cr3t" not in str(refused.value)
    # a key another source gives (the SMTP host) is not asked of each file on its own
    host = tmp_path / "host.yaml"
    host.write_text("annuaire:\n  smtp:\n    host: smtp.test\n", encoding="utf-8")
    profile = load_profile(override_file=host, env={}, extra={"annuaire": {"smtp": {"port": 587}}})
    assert profile.settings.annuaire.smtp is not None
    assert (profile.settings.annuaire.smtp.host, profile.settings.annuaire.smtp.port) == (
        "smtp.test",
        587,
    )
