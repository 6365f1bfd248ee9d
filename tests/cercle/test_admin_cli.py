"""`cercle admin user …` against the real Synapse of the test session.

The CLI is pointed at that Synapse with `--config` (its profile: var dir, port), so it finds
the operator's admin token under var/secrets exactly as after `cercle up`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from support import free_port, password_login_body

from cercle.cli import main
from cercle.commands_admin import (
    format_timestamp,
    generate_password,
    parse_localpart,
    parse_user_id,
)
from cercle.errors import CliError
from homeserver.admin_api import AdminApi

# --- pure helpers (no Synapse) ----------------------------------------------------------


def test_generated_passwords_are_long_unambiguous_and_different() -> None:
    first, second = generate_password(), generate_password()
    assert first != second
    assert len(first.replace("-", "")) == 20
    assert not set(first) & set("0O1lI")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("marie.dupont", "marie.dupont"),
        ("@marie.dupont:cercle.test", "marie.dupont"),
        ("ide_2", "ide_2"),
    ],
)
def test_parse_localpart(value: str, expected: str) -> None:
    assert parse_localpart(value, "cercle.test") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Marie.Dupont", "en minuscules"),
        ("marie dupont", "identifiant invalide"),
        ("é", "identifiant invalide"),
        ("", "identifiant vide"),
        ("@marie:ailleurs.org", "le serveur doit être cercle.test"),
        ("x" * 300, "trop long"),
    ],
)
def test_parse_localpart_refusals(value: str, message: str) -> None:
    with pytest.raises(CliError) as raised:
        parse_localpart(value, "cercle.test")
    assert message in raised.value.message


def test_parse_user_id() -> None:
    assert parse_user_id("marie", "cercle.test") == "@marie:cercle.test"
    assert parse_user_id("@marie:cercle.test", "cercle.test") == "@marie:cercle.test"
    for bad in ("@marie", "@:x", "a:b", ""):
        with pytest.raises(CliError):
            parse_user_id(bad, "cercle.test")


def test_timestamps_are_shown_in_paris_time() -> None:
    assert format_timestamp(1_751_364_000_000) == "01/07/2025 12:00"  # 10:00 UTC, summer
    assert format_timestamp(1_735_725_600_000) == "01/01/2025 11:00"  # 10:00 UTC, winter
    assert format_timestamp(None) == "—"


# --- against the real Synapse -----------------------------------------------------------


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), "admin", "user", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def login(base_url: str, user_id: str, password: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{base_url}/_matrix/client/v3/login",
        data=json.dumps(password_login_body(user_id, password)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def admin_call(synapse: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    async def call() -> Any:
        async with AdminApi(synapse.base_url, synapse.admin_token) as api:
            return await getattr(api, method)(*args, **kwargs)

    return asyncio.run(call())


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def cli_config(synapse: Any, tmp_path: Path) -> Path:
    """The profile of the test Synapse, as the operator's config file."""
    path = tmp_path / "cercle.yaml"
    path.write_text(yaml.safe_dump(dict(synapse.profile.data)), encoding="utf-8")
    return path


@pytest.fixture
def dossier_config(synapse: Any, tmp_path: Path) -> Iterator[Path]:
    """``cli_config`` with a real dossier service running (its own database and port), for
    the commands that end dossier sessions."""
    from deployment.profile import load_profile
    from deployment.secrets import Secrets
    from dossier_service.app import create_app
    from dossier_service.config import config_from_profile
    from dossier_service.migrate import upgrade

    data = dict(synapse.profile.data)
    data["dossier"] = {
        **dict(data.get("dossier") or {}),
        "port": free_port(),
        "bind_address": "127.0.0.1",
        "public_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        "documents_dir": str(tmp_path / "documents"),
    }
    path = tmp_path / "cercle-dossier.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    profile = load_profile(override_file=path)
    config = config_from_profile(profile, Secrets.load_or_create(profile.var_dir))
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> web.AppRunner:
        await upgrade(config.database_url)
        runner = web.AppRunner(create_app(config, with_pages=False))
        await runner.setup()
        await web.TCPSite(runner, config.bind_address, config.port).start()
        return runner

    runner = loop.run_until_complete(serve())
    thread = threading.Thread(target=lambda: (ready.set(), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    yield path
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.run_until_complete(runner.cleanup())
    loop.close()


@pytest.mark.integration
def test_create_with_generated_password_admin_and_display_name(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    localpart = unique("marie.dupont")
    code, out, err = run(
        cli_config,
        "create",
        localpart,
        "--generate-password",
        "--admin",
        "--display-name",
        "DUPONT Marie",
        capsys=capsys,
    )
    assert (code, err) == (0, "")
    user_id = f"@{localpart}:{synapse.server_name}"
    assert f"Compte créé (administrateur) : {user_id}" in out
    password = next(line for line in out.splitlines() if line.startswith("Mot de passe : "))
    password = password.removeprefix("Mot de passe : ")

    status, answer = login(synapse.base_url, user_id, password)
    assert status == 200, answer
    user = admin_call(synapse, "get_user", user_id)
    assert user["admin"] is True
    assert user["displayname"] == "DUPONT Marie"
    assert user.get("approved", True) is True


@pytest.mark.integration
def test_create_with_given_password_does_not_print_it(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    localpart = unique("ide")
    password = "Chou-fleur-42-violette"
    code, out, _ = run(cli_config, "create", localpart, "--password", password, capsys=capsys)
    assert code == 0
    assert password not in out
    assert "(professionnel)" in out
    user_id = f"@{localpart}:{synapse.server_name}"
    assert login(synapse.base_url, user_id, password)[0] == 200
    assert admin_call(synapse, "get_user", user_id)["admin"] is False


@pytest.mark.integration
def test_create_twice_says_the_user_exists(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    localpart = unique("doublon")
    assert run(cli_config, "create", localpart, "--generate-password", capsys=capsys)[0] == 0
    code, out, err = run(cli_config, "create", localpart, "--generate-password", capsys=capsys)
    assert code == 1
    assert out == ""
    assert err == f"erreur : l'utilisateur @{localpart}:{synapse.server_name} existe déjà\n"


@pytest.mark.integration
def test_create_refuses_a_bad_localpart_and_a_missing_password(
    cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(cli_config, "create", "Marie Dupont", "--generate-password", capsys=capsys)
    assert code == 1
    assert err.startswith("erreur : identifiant invalide « Marie Dupont » (en minuscules)")
    assert err.count("\n") == 1
    code, _, err = run(cli_config, "create", unique("sans-mdp"), capsys=capsys)  # stdin: no tty
    assert code == 1
    assert err == "erreur : indiquez --password MOT_DE_PASSE ou --generate-password\n"


@pytest.mark.integration
def test_list_shows_active_and_pending_accounts(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    active = unique("liste")
    run(
        cli_config,
        "create",
        active,
        "--generate-password",
        "--display-name",
        "MARTIN Luc",
        capsys=capsys,
    )
    pending = f"@{unique('attente')}:{synapse.server_name}"
    admin_call(synapse, "create_or_modify_user", pending, password="x-Secret-1234", approved=False)

    code, out, _ = run(cli_config, "list", "--json", capsys=capsys)
    assert code == 0
    users = {u["user_id"]: u for u in json.loads(out)}
    active_id = f"@{active}:{synapse.server_name}"
    assert users[active_id]["display_name"] == "MARTIN Luc"
    assert users[active_id]["approved"] is True
    assert users[pending]["approved"] is False
    assert f"@cercle-admin:{synapse.server_name}" in users
    assert users[active_id]["created_at"].endswith("+00:00")

    code, out, _ = run(cli_config, "list", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("IDENTIFIANT")
    assert any(active_id in line and "MARTIN Luc" in line and "actif" in line for line in lines)
    assert any(pending in line and "en attente de validation" in line for line in lines)


@pytest.mark.integration
def test_deactivate_with_erase(
    synapse: Any, dossier_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_config = dossier_config
    localpart = unique("depart")
    user_id = f"@{localpart}:{synapse.server_name}"
    run(
        cli_config,
        "create",
        localpart,
        "--password",
        "Pass-word-123",
        "--display-name",
        "X Y",
        capsys=capsys,
    )

    code, out, err = run(cli_config, "deactivate", user_id, "--erase", capsys=capsys)
    assert (code, err) == (0, "")
    assert out == f"Compte désactivé et effacé : {user_id}\n"
    # issue 12: the dossier's sessions ended with the account
    dossier_db = yaml.safe_load(cli_config.read_text())["dossier"]["database_url"]
    rows = asyncio.run(_revocations(dossier_db))
    assert rows == [(user_id, None)]
    user = admin_call(synapse, "get_user", user_id)
    assert user["deactivated"] is True
    assert user["erased"] is True
    assert not user.get("displayname")
    assert login(synapse.base_url, user_id, "Pass-word-123")[0] in (401, 403)

    code, out, _ = run(cli_config, "list", "--json", capsys=capsys)
    assert user_id not in {u["user_id"] for u in json.loads(out)}
    code, out, _ = run(cli_config, "list", "--json", "--all", capsys=capsys)
    assert {u["user_id"]: u for u in json.loads(out)}[user_id]["deactivated"] is True


async def _revocations(url: str) -> list[tuple[str, str | None]]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT user_id, nonce_sha256 FROM session_revocations")
            )
            return [(str(r[0]), r[1]) for r in found.all()]
    finally:
        await engine.dispose()


@pytest.mark.integration
def test_deactivate_unknown_user_and_service_account(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ghost = f"@{unique('fantome')}:{synapse.server_name}"
    assert run(cli_config, "deactivate", ghost, capsys=capsys)[1:] == (
        "",
        f"erreur : utilisateur inconnu : {ghost}\n",
    )
    code, _, err = run(cli_config, "deactivate", synapse.bot_user_id, capsys=capsys)
    assert code == 1
    assert "compte de service" in err
    assert admin_call(synapse, "get_user", synapse.bot_user_id)["deactivated"] is False


@pytest.mark.integration
def test_reset_password_generates_prints_and_logs_out(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    localpart = unique("oubli")
    user_id = f"@{localpart}:{synapse.server_name}"
    run(cli_config, "create", localpart, "--password", "Ancien-mdp-123", capsys=capsys)
    status, session = login(synapse.base_url, user_id, "Ancien-mdp-123")
    assert status == 200

    code, out, err = run(cli_config, "reset-password", localpart, capsys=capsys)
    assert (code, err) == (0, "")
    new_password = out.splitlines()[-1].removeprefix("Nouveau mot de passe : ")
    assert login(synapse.base_url, user_id, "Ancien-mdp-123")[0] == 403
    assert login(synapse.base_url, user_id, new_password)[0] == 200
    # The old session was logged out.
    request = urllib.request.Request(
        f"{synapse.base_url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {session['access_token']}"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 401

    code, out, _ = run(
        cli_config, "reset-password", user_id, "--password", "Choisi-456-abc", capsys=capsys
    )
    assert code == 0
    assert "Choisi-456-abc" not in out
    assert login(synapse.base_url, user_id, "Choisi-456-abc")[0] == 200


@pytest.mark.integration
def test_approve_lets_a_waiting_account_log_in(
    synapse: Any, cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An account created through another path than `cercle admin user create` waits (MSC3866)."""
    user_id = f"@{unique('nouvelle')}:{synapse.server_name}"
    admin_call(
        synapse, "create_or_modify_user", user_id, password="Attente-789-xyz", approved=False
    )
    status, answer = login(synapse.base_url, user_id, "Attente-789-xyz")
    # Synapse 1.163 still answers with MSC3866's unstable name of M_USER_AWAITING_APPROVAL.
    assert (status, answer["errcode"]) == (403, "ORG.MATRIX.MSC3866_USER_AWAITING_APPROVAL")

    code, out, err = run(cli_config, "approve", user_id, capsys=capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"Compte validé : {user_id}")
    assert login(synapse.base_url, user_id, "Attente-789-xyz")[0] == 200

    code, out, _ = run(cli_config, "approve", user_id, capsys=capsys)
    assert (code, out) == (0, f"Compte déjà validé : {user_id}\n")


@pytest.mark.integration
def test_homeserver_down_is_one_french_line_without_traceback(synapse: Any, tmp_path: Path) -> None:
    """A real process, pointed at a closed port: what the operator sees."""
    data = dict(synapse.profile.data)
    data["homeserver"] = {**data["homeserver"], "port": free_port()}
    config = tmp_path / "down.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    for args in (["list"], ["create", unique("x"), "--generate-password"]):
        done = subprocess.run(
            [sys.executable, "-m", "cercle", "--config", str(config), "admin", "user", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith(
            "erreur : le serveur Matrix ne répond pas à http://127.0.0.1:"
        )
        assert done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_a_homeserver_error_points_to_its_logs(synapse: Any, tmp_path: Path) -> None:
    """Synapse answering 500 (e.g. PostgreSQL « too many clients already »): the operator is
    told where the cause is, not only « erreur du serveur Matrix »."""
    port = free_port()
    loop = asyncio.new_event_loop()

    async def failing(_request: web.Request) -> web.Response:
        return web.json_response(
            {"errcode": "M_UNKNOWN", "error": "Internal server error"}, status=500
        )

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", failing)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = loop.run_until_complete(serve())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        data = dict(synapse.profile.data)
        data["homeserver"] = {**data["homeserver"], "port": port}
        config = tmp_path / "failing.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "cercle", "--config", str(config), "admin", "user", "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    first, second = done.stderr.splitlines()
    assert first == "erreur : erreur du serveur Matrix"
    assert second == (
        f"  (HTTP 500) la cause est dans les journaux du serveur Matrix : "
        f"{synapse.profile.var_dir / 'synapse'}/*.log"
    )
