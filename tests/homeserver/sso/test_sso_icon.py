"""The provider's logo: uploaded with `cercle admin sso icone`, advertised by Synapse beside
the provider's name (what Element shows on its login screen)."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pytest
import yaml
from PIL import Image

from cercle.cli import main
from homeserver.render import render

from .conftest import SsoStack

pytestmark = pytest.mark.integration


def test_logo_uploaded_then_advertised_with_the_name(
    sso: SsoStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cercle.yaml"
    config.write_text(yaml.safe_dump(dict(sso.synapse.profile.data)), encoding="utf-8")
    not_an_image = tmp_path / "logo.png"
    not_an_image.write_text("<svg/>")
    assert main(["--config", str(config), "admin", "sso", "icone", "psc", str(not_an_image)]) == 1
    assert "PNG ou JPEG" in capsys.readouterr().err

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 84, 164)).save(buffer, format="PNG")
    logo = tmp_path / "psc.png"
    logo.write_bytes(buffer.getvalue())
    assert main(["--config", str(config), "admin", "sso", "icone", "psc", str(logo)]) == 0
    mxc = capsys.readouterr().out.split("Logo de psc : ")[1].split()[0]
    assert mxc.startswith(f"mxc://{sso.synapse.server_name}/")

    render(sso.synapse.profile, sso.synapse.secrets)  # what `cercle up` does at start
    sso.synapse.restart()
    with urllib.request.urlopen(
        f"{sso.synapse.base_url}/_matrix/client/v3/login", timeout=10
    ) as resp:
        flows = json.loads(resp.read())["flows"]
    idps = next(f for f in flows if f["type"] == "m.login.sso")["identity_providers"]
    assert {"id": "oidc-psc", "name": "Pro Santé Connect", "icon": mxc} in idps
