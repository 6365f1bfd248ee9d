"""Synapse's ``oidc_providers`` from the profile's ``homeserver.sso`` (pure apart from
checking that the client secrets exist).

Two providers are known: ``psc`` (Pro Santé Connect, the national identity of health
professionals) and ``portail`` (the regional portal), each off until ``enabled: true``.
The client secret is a file under ``var/secrets`` (``oidc_<id>_client_secret``, mode 0600)
that Synapse reads itself (``client_secret_path``): it never appears in homeserver.yaml.
Both use the Pro Santé Connect mapping provider (`homeserver.modules.pro_sante_connect`). The logo Element shows beside the provider's name
is an ``mxc://`` URI: ``icon_mxc`` in the profile, else the one uploaded by ``cercle admin
sso icone`` (recorded in ``var/sso_icons.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployment.profile import Profile, ProfileError
from deployment.secrets import Secrets

MAPPING_PROVIDER = "homeserver.modules.pro_sante_connect.PscMappingProvider"
PROVIDER_IDS = ("psc", "portail")


def icons_file(profile: Profile) -> Path:
    """The logos uploaded with ``cercle admin sso icone`` (idp -> mxc URI)."""
    return profile.var_dir / "sso_icons.json"


def uploaded_icons(profile: Profile) -> dict[str, str]:
    path = icons_file(profile)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProfileError(f"fichier des logos illisible : {path}") from exc
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_icon(profile: Profile, idp: str, mxc: str) -> None:
    icons = {**uploaded_icons(profile), idp: mxc}
    path = icons_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(icons, indent=2), encoding="utf-8")
    tmp.replace(path)


def client_secret_file(secrets: Secrets, idp: str) -> Path:
    return secrets.path_of(f"oidc_{idp}_client_secret")


def idp_id(idp: str) -> str:
    """Synapse's ``idp_id`` (the ``oidc-`` prefix is Synapse's)."""
    return f"oidc-{idp}"


def _provider(
    idp: str, conf: Mapping[str, Any], secret_path: Path, directory_db: str, icon: str | None
) -> dict[str, Any]:
    where = f"homeserver.sso.providers.{idp}"
    for key in ("issuer", "client_id", "name"):
        if not conf.get(key):
            raise ProfileError(f"{where}.{key} manquant (le fournisseur est activé)")
    if not secret_path.exists():
        raise ProfileError(
            f"secret du fournisseur {conf['name']} introuvable : déposez-le dans "
            f"{secret_path} (mode 0600) ou désactivez {where}"
        )
    provider: dict[str, Any] = {
        "idp_id": idp,
        "idp_name": str(conf["name"]),
        "discover": True,
        "issuer": str(conf["issuer"]),
        "client_id": str(conf["client_id"]),
        "client_secret_path": str(secret_path),
        "client_auth_method": str(conf.get("client_auth_method") or "client_secret_basic"),
        "scopes": [str(s) for s in conf.get("scopes") or ["openid"]],
        "pkce_method": "always",
        "user_profile_method": str(conf.get("user_profile_method") or "auto"),
        # Only the account this mapping provider returns for the professional (the one the
        # directory links to them) is reused; see PscMappingProvider._localpart.
        "allow_existing_users": True,
        "enable_registration": True,
        "user_mapping_provider": {
            "module": MAPPING_PROVIDER,
            "config": {
                "directory_database": str(directory_db),
                "national_id_claim": str(conf.get("national_id_claim") or "SubjectNameID"),
                "provider_name": str(conf["name"]),
            },
        },
    }
    if conf.get("acr_values"):
        provider["additional_authorization_parameters"] = {"acr_values": str(conf["acr_values"])}
    if conf.get("icon_mxc") or icon:
        provider["idp_icon"] = str(conf.get("icon_mxc") or icon)
    if conf.get("brand"):
        provider["idp_brand"] = str(conf["brand"])
    return provider


def oidc_providers(profile: Profile, secrets: Secrets) -> list[dict[str, Any]]:
    """The enabled providers, in the order of PROVIDER_IDS (Element shows them so)."""
    sso = profile.section("homeserver").get("sso") or {}
    providers = sso.get("providers") or {}
    unknown = sorted(set(providers) - set(PROVIDER_IDS))
    if unknown:
        raise ProfileError(
            f"fournisseur d'identité inconnu : homeserver.sso.providers.{unknown[0]} "
            f"(connus : {', '.join(PROVIDER_IDS)})"
        )
    # the directory is in the dossier's database (issue 14): the module reads it there
    from dossier_service.config import database_url_of

    directory_db = database_url_of(profile)
    icons = uploaded_icons(profile)
    return [
        _provider(
            idp, providers[idp], client_secret_file(secrets, idp), directory_db, icons.get(idp)
        )
        for idp in PROVIDER_IDS
        if isinstance(providers.get(idp), Mapping) and providers[idp].get("enabled")
    ]


PASSWORD_POLICY = "homeserver.modules.pro_sante_connect.PasswordLoginPolicy"


def password_login(profile: Profile) -> bool:
    sso = profile.section("homeserver").get("sso") or {}
    return bool(sso.get("password_login", True))


def extra_modules(profile: Profile, secrets: Secrets) -> list[dict[str, Any]]:
    """The password-login policy when ``password_login`` is false: Synapse's own password
    login stays on (the bot and the operator's account use it), the module refuses it to
    RPPS professionals, who have PSC. Refused without an SSO provider to fall back on."""
    if password_login(profile):
        return []
    if not oidc_providers(profile, secrets):
        raise ProfileError(
            "homeserver.sso.password_login: false demande un fournisseur d'identité activé "
            "(homeserver.sso.providers.psc)"
        )
    from dossier_service.config import database_url_of

    directory_db = database_url_of(profile)
    return [{"module": PASSWORD_POLICY, "config": {"directory_database": directory_db}}]
