"""The "Documents juridiques": versioned terms of use and privacy policy that every user
accepts (Synapse's ``user_consent``).

Each version is one page, ``config/legal/<version>.html`` (conditions d'utilisation and
politique de confidentialité, with Synapse's consent form); every version stays in the
repository, so what someone accepted can always be shown again. ``success.html`` is the page
after acceptance. The current version is the last one published with ``cercle admin legal
publish`` (recorded in ``var/legal/publications.json`` with who and when), else
``homeserver.legal.version`` of the profile. Synapse reads its templates from
``<template_dir>/en/`` (a fixed name in Synapse 1.163, whatever the language): `install`
copies the documents there at each rendering.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployment.profile import Profile, ProfileError

SYNAPSE_LANGUAGE_DIR = "en"  # synapse.rest.consent.consent_resource.TEMPLATE_LANGUAGE
SUCCESS_PAGE = "success.html"
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,31}")


@dataclass(frozen=True)
class Publication:
    version: str
    published_at: str  # ISO 8601, UTC
    published_by: str


def documents_dir(profile: Profile) -> Path:
    return profile.root / "config" / "legal"


def publications_file(profile: Profile) -> Path:
    return profile.var_dir / "legal" / "publications.json"


def versions(profile: Profile) -> list[str]:
    """Every version kept under config/legal/ (file name without ``.html``)."""
    return sorted(
        p.stem
        for p in documents_dir(profile).glob("*.html")
        if p.name != SUCCESS_PAGE and _VERSION.fullmatch(p.stem)
    )


def publications(profile: Profile) -> list[Publication]:
    path = publications_file(profile)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Publication(**row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"registre des publications illisible : {path}") from exc


def current_version(profile: Profile) -> str:
    published = publications(profile)
    if published:
        return published[-1].version
    return str(legal_section(profile)["version"])


def legal_section(profile: Profile) -> Any:
    return profile.section("homeserver")["legal"]


def enabled(profile: Profile) -> bool:
    return bool(legal_section(profile).get("enabled", True))


def publish(
    profile: Profile, version: str, *, actor: str, now: datetime | None = None
) -> Publication:
    """Make ``version`` current (it must exist under config/legal/). Synapse applies it at
    its next start (`cercle up`): everyone who accepted an older version is asked again."""
    if version not in versions(profile):
        known = ", ".join(versions(profile)) or "aucune"
        raise ProfileError(
            f"version inconnue « {version} » : ajoutez config/legal/{version}.html "
            f"(versions présentes : {known})"
        )
    if version == current_version(profile):
        raise ProfileError(f"la version {version} est déjà la version en vigueur")
    entry = Publication(version, (now or datetime.now(UTC)).isoformat(), actor)
    rows = [p.__dict__ for p in publications(profile)] + [entry.__dict__]
    path = publications_file(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return entry


def install(profile: Profile, data_dir: Path) -> Path:
    """Copy the documents where Synapse reads them; return Synapse's ``template_dir``."""
    version = current_version(profile)
    if version not in versions(profile):
        raise ProfileError(f"document juridique manquant : config/legal/{version}.html")
    template_dir = data_dir / "consent"
    target = template_dir / SYNAPSE_LANGUAGE_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for page in documents_dir(profile).glob("*.html"):
        shutil.copyfile(page, target / page.name)
    return template_dir
