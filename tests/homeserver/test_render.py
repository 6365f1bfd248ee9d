"""Every setting the deployment promises is in the rendered homeserver.yaml."""

from pathlib import Path

import jinja2
import pytest
import yaml

from deployment.profile import load_profile
from deployment.secrets import Secrets
from homeserver import render as render_module
from homeserver.render import render


def rendered(tmp_path: Path, **extra: object) -> dict:
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path), **extra})
    out = render(profile, Secrets.load_or_create(profile.var_dir))
    assert oct(out.config_path.stat().st_mode)[-3:] == "600"
    return yaml.safe_load(out.config_path.read_text())


def test_locked_down_health_deployment(tmp_path: Path) -> None:
    cfg = rendered(tmp_path)
    assert cfg["enable_registration"] is False
    assert cfg["experimental_features"]["msc3866"] == {
        "enabled": True,
        "require_approval_for_new_accounts": True,
    }
    assert cfg["experimental_features"]["msc4222_enabled"] is True  # Element's state_after
    assert cfg["encryption_enabled_by_default_for_room_type"] == "all"
    assert cfg["federation_domain_whitelist"] == []
    assert cfg["url_preview_enabled"] is False
    assert cfg["enable_authenticated_media"] is True
    assert cfg["max_upload_size"] == "50M"
    assert cfg["presence"]["enabled"] is True
    assert cfg["user_directory"]["search_all_users"] is True
    assert cfg["room_list_publication_rules"] == [{"action": "deny"}]
    assert cfg["allow_public_rooms_over_federation"] is False
    assert cfg["report_stats"] is False
    assert cfg["trusted_key_servers"] == []
    # One listener, on loopback, serving the client + admin API, OpenID userinfo and the
    # Documents juridiques (consent) pages only.
    assert len(cfg["listeners"]) == 1
    listener = cfg["listeners"][0]
    assert listener["bind_addresses"] == ["127.0.0.1"]
    assert listener["resources"][0]["names"] == ["client", "openid", "consent"]
    assert "federation" not in listener["resources"][0]["names"]
    assert cfg["modules"] == [
        {"module": "homeserver.modules.patient_rooms.PatientRoomsModule", "config": {}}
    ]
    assert cfg["database"]["name"] == "sqlite3"


def test_secrets_come_from_var(tmp_path: Path) -> None:
    cfg = rendered(tmp_path)
    secrets = Secrets.load_or_create(tmp_path)
    assert cfg["registration_shared_secret"] == secrets.registration_shared_secret
    assert cfg["macaroon_secret_key"] == secrets.macaroon_secret_key
    assert cfg["form_secret"] == secrets.form_secret
    assert cfg["signing_key_path"] == str(secrets.signing_key_path)


def test_rate_limits_for_professionals_keep_brute_force_protection(tmp_path: Path) -> None:
    cfg = rendered(tmp_path)
    # Twenty photos in a row, ten invitations: within the bursts.
    assert cfg["rc_message"]["burst_count"] >= 20
    assert cfg["rc_media_create"]["burst_count"] >= 20
    assert cfg["rc_invites"]["per_room"]["burst_count"] >= 10
    assert cfg["rc_invites"]["per_user"]["burst_count"] >= 10
    # Login and registration stay throttled (Synapse's defaults).
    for key in ("address", "account", "failed_attempts"):
        assert cfg["rc_login"][key]["per_second"] <= 0.2
        assert cfg["rc_login"][key]["burst_count"] <= 5
    assert cfg["rc_registration"]["burst_count"] <= 5


def test_public_listener_for_a_reverse_proxy(tmp_path: Path) -> None:
    cfg = rendered(
        tmp_path,
        homeserver={
            "public_listener": {"enabled": True, "port": 8448},
            "public_baseurl": "https://matrix.sante.example",
        },
    )
    public = cfg["listeners"][1]
    assert public["port"] == 8448 and public["x_forwarded"] is True
    assert public["resources"][0]["names"] == ["client", "consent"]  # under /_matrix
    assert cfg["public_baseurl"] == "https://matrix.sante.example/"


def test_postgres_profile(tmp_path: Path) -> None:
    cfg = rendered(tmp_path, homeserver={"database": {"engine": "postgres", "name": "cercle_hs"}})
    assert cfg["database"]["name"] == "psycopg2"
    assert cfg["database"]["args"]["dbname"] == "cercle_hs"
    assert cfg["database"]["args"]["host"] == "127.0.0.1"


def test_strict_undefined_refuses_a_missing_setting(tmp_path: Path) -> None:
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path)})
    data = dict(profile.data)
    hs = dict(data["homeserver"])
    del hs["max_upload_size"]
    data["homeserver"] = hs
    broken = type(profile)(root=profile.root, data=data)
    with pytest.raises(jinja2.UndefinedError):
        render_module.render_text(broken, Secrets.load_or_create(tmp_path), tmp_path)


def test_sso_providers_from_the_profile_with_secrets_from_var(tmp_path: Path) -> None:
    from deployment.profile import ProfileError

    extra = {
        "homeserver": {
            "sso": {
                "password_login": False,
                "providers": {"psc": {"enabled": True, "client_id": "cercle-region"}},
            }
        }
    }
    with pytest.raises(ProfileError, match="oidc_psc_client_secret"):
        rendered(tmp_path, **extra)
    with pytest.raises(ProfileError, match="demande un fournisseur"):
        rendered(tmp_path, homeserver={"sso": {"password_login": False}})
    secret = tmp_path / "secrets" / "oidc_psc_client_secret"
    secret.write_text("s3cret")
    cfg = rendered(tmp_path, **extra)
    assert "s3cret" not in yaml.safe_dump(cfg)  # Synapse reads the file itself
    # passwords stay on in Synapse; the policy module refuses them to RPPS professionals
    assert "password_config" not in cfg
    assert cfg["modules"][-1] == {
        "module": "homeserver.modules.pro_sante_connect.PasswordLoginPolicy",
        # the directory is in the dossier's database (issue 14)
        "config": {
            "directory_database": f"sqlite+aiosqlite:///{tmp_path / 'dossier' / 'dossier.db'}"
        },
    }
    [psc] = cfg["oidc_providers"]
    assert psc["idp_id"] == "psc" and psc["idp_name"] == "Pro Santé Connect"
    assert psc["client_secret_path"] == str(secret)
    assert psc["issuer"] == "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"
    assert psc["pkce_method"] == "always"
    assert psc["additional_authorization_parameters"] == {"acr_values": "eidas1"}
    assert psc["user_profile_method"] == "userinfo_endpoint"
    mapping = psc["user_mapping_provider"]
    assert mapping["module"] == "homeserver.modules.pro_sante_connect.PscMappingProvider"
    assert mapping["config"]["directory_database"] == (
        f"sqlite+aiosqlite:///{tmp_path / 'dossier' / 'dossier.db'}"
    )
    # the dossier's login page is the one client Synapse hands a login token to directly
    assert cfg["sso"]["client_whitelist"] == ["http://127.0.0.1:8090/"]


def test_documents_juridiques_current_version_and_templates(tmp_path: Path) -> None:
    from homeserver import legal

    cfg = rendered(tmp_path)
    consent = cfg["user_consent"]
    assert consent["version"] == "1.0"
    assert "%(consent_uri)s" in consent["block_events_error"]
    assert "%(consent_uri)s" in consent["server_notice_content"]["body"]
    # Synapse reads <template_dir>/en/<version>.html whatever the language
    pages = Path(consent["template_dir"]) / "en"
    assert {"1.0.html", "1.1.html", "success.html"} <= {p.name for p in pages.iterdir()}
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path)})
    legal.publish(profile, "1.1", actor="@cercle-admin:cercle.localhost")
    assert rendered(tmp_path)["user_consent"]["version"] == "1.1"
    assert [p.version for p in legal.publications(profile)] == ["1.1"]
    with pytest.raises(Exception, match="version inconnue"):
        legal.publish(profile, "9.9", actor="x")
    with pytest.raises(Exception, match="déjà la version en vigueur"):
        legal.publish(profile, "1.1", actor="x")


def test_the_bots_non_lazy_sync_finds_every_room_in_the_partial_state_cache(
    tmp_path: Path,
) -> None:
    """A /sync that keeps every member (the bot's) asks ``is_partial_state_room`` for each of
    the account's rooms. Synapse sizes that cache 10,000 × its factor (0.5 by default): the
    bot in 20,000 rooms missed most entries at every /sync (170–270 ms of Synapse each, 4 ms
    for an account in 51 rooms). It must hold the capacity plan's 200,000 rooms."""
    factors = rendered(tmp_path)["caches"]["per_cache_factors"]
    assert 10_000 * factors["is_partial_state_room"] >= 200_000
