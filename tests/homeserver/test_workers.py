"""The region profile's Synapse topology and proxy, rendered without starting anything: what
Synapse's docs/workers.md asks for, and nginx's routing (checked by `nginx -t` when present)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from deployment.profile import Profile, load_profile
from deployment.secrets import Secrets
from homeserver import proxy, workers
from homeserver.render import render
from tests.support import free_region_base

REGION = Path(__file__).resolve().parents[2] / "config" / "region.yaml"


def _profile(tmp_path: Path, **region: object) -> Profile:
    return load_profile(
        override_file=REGION,
        env={},
        extra={"var_dir": str(tmp_path / "var"), "region": {"base_port": 30000, **region}},
    )


def test_the_dossier_address_follows_the_proxy_port() -> None:
    """An operator who moves the proxy's dossier port is given that address (and `cercle up`
    waits for the dossier there): the profile once named 8090 whatever the port, and a
    region on another port waited 60 s for a dossier nobody listened for, then said the
    wrong address."""
    moved = load_profile(override_file=REGION, env={"CERCLE__DOSSIER__PORT": "9190"})
    assert moved.dossier_url == "http://127.0.0.1:9190"
    assert load_profile(override_file=REGION, env={}).dossier_url == "http://127.0.0.1:8090"


def test_topology_follows_synapse_docs() -> None:
    topo = workers.topology(
        {"base_port": 9000, "sync_workers": 3, "event_persisters": 2, "dossier_processes": 2}
    )
    assert [w.name for w in topo.generic] == ["generic1", "generic2", "generic3"]
    shared = topo.shared_config()
    # every stream writer is in the instance map, with the main process
    assert set(shared["instance_map"]) == {"main", "persister1", "persister2"}
    assert shared["stream_writers"]["events"] == ["persister1", "persister2"]
    for single in ("typing", "to_device", "account_data", "presence", "push_rules"):
        assert shared["stream_writers"][single] == "persister1"
    assert shared["enable_media_repo"] is False
    assert shared["media_instance_running_background_jobs"] == "media1"
    assert shared["run_background_tasks_on"] == "background1"
    ports = [topo.main_port, topo.main_replication_port]
    for w in topo.workers:
        ports += [w.port] + ([w.replication_port] if w.replication_port else [])
    assert len(ports) == len(set(ports))  # no two listeners on one port
    with pytest.raises(ValueError):
        workers.topology({"base_port": 9000, "sync_workers": 0, "event_persisters": 1})


def test_rendered_region_config_and_worker_files(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    secrets = Secrets.load_or_create(profile.var_dir)
    rendered = render(profile, secrets)
    main = yaml.safe_load(rendered.config_path.read_text())
    assert main["redis"]["enabled"] is True
    assert main["database"]["name"] == "psycopg2"
    assert main["federation_domain_whitelist"] == []
    listeners = main["listeners"]
    assert {tuple(r["names"]) for lst in listeners for r in lst["resources"]} >= {("replication",)}
    assert all(lst["bind_addresses"] == ["127.0.0.1"] for lst in listeners)
    assert main["worker_replication_secret"]
    assert rendered.topology is not None
    assert set(rendered.worker_configs) == {w.name for w in rendered.topology.workers}
    persister = yaml.safe_load(rendered.worker_configs["persister1"].read_text())
    assert persister["worker_app"] == "synapse.app.generic_worker"
    assert [r["names"] for lst in persister["worker_listeners"] for r in lst["resources"]] == [
        ["client"],
        ["replication"],
    ]
    assert profile.admin_url == "http://127.0.0.1:30000"  # never the proxy


def test_the_proxy_routes_as_synapse_documents_and_hides_the_admin_api(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    topo = workers.topology(profile.section("region"))
    conf = proxy.render(profile, topo)
    text = conf.read_text()
    assert "location ^~ /_synapse/admin" in text and "return 404" in text
    assert "hash $mxid_localpart consistent;" in text  # one user's /sync on one worker
    assert '"~Bearer syt_(?<username>.*?)_.*" $username;' in text
    sync_block = text.split("(r0|v3)/sync")[1].split("}")[0]
    assert "synapse_generic" in sync_block
    assert f"server 127.0.0.1:{topo.media.port};" in text
    for port in proxy.dossier_ports(profile):
        assert f"server 127.0.0.1:{port};" in text
    binary = Path("/usr/sbin/nginx")
    if binary.exists():  # nginx itself accepts it
        done = subprocess.run(
            [
                str(binary),
                "-t",
                "-q",
                "-c",
                str(conf),
                "-p",
                str(conf.parent),
                "-e",
                str(conf.parent / "error.log"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_what_the_proxy_answers_itself_is_json_for_programs_and_french_for_people(
    tmp_path: Path,
) -> None:
    """nginx with no worker and no dossier behind it (a worker killed, a dossier restarting):
    a client gets Matrix's {"errcode","error"}, as from Synapse, never nginx's HTML page; the
    dossier's API the same; a person opening a dossier page a French page. A body over the
    limit is M_TOO_LARGE. The status stays nginx's own (502: nothing answered behind it)."""
    binary = Path("/usr/sbin/nginx")
    if not binary.exists():
        pytest.skip("nginx absent (installé par make test)")
    base = free_region_base()
    profile = load_profile(
        override_file=REGION,
        env={},
        extra={
            "var_dir": str(tmp_path / "var"),
            "region": {"base_port": base, "nginx": str(binary)},
            "homeserver": {"port": base + 60, "max_upload_size": "1M"},
            "dossier": {"port": base + 61, "documents_max_size": "1M"},
        },
    )
    topo = workers.topology(profile.section("region"))
    hs, dossier = f"http://127.0.0.1:{base + 60}", f"http://127.0.0.1:{base + 61}"
    nginx = proxy.ProxyProcess(str(binary), proxy.render(profile, topo), hs)
    nginx.check()
    nginx.start()
    try:
        for url in (f"{hs}/_matrix/client/v3/sync", f"{hs}/_matrix/client/v3/login"):
            status, kind, body = _get(url)
            assert status == 502 and kind.startswith("application/json"), (url, status, kind)
            assert json.loads(body)["errcode"] == "M_UNKNOWN"
            assert "réessayez" in json.loads(body)["error"]
        status, kind, body = _get(f"{hs}/_matrix/media/v3/upload", data=b"x" * (3 << 20))
        assert status == 413 and json.loads(body)["errcode"] == "M_TOO_LARGE", (status, body)
        status, kind, body = _get(f"{dossier}/api/v1/patients")
        assert status == 502 and json.loads(body)["errcode"] == "M_UNKNOWN", (status, body)
        status, kind, body = _get(f"{dossier}/patients")
        assert status == 502 and kind.startswith("text/html")
        assert "Dossier momentanément indisponible" in body
        status, kind, body = _get(f"{dossier}/api/v1/documents", data=b"x" * (5 << 20))
        assert status == 413 and json.loads(body)["errcode"] == "M_TOO_LARGE"
    finally:
        nginx.stop()


def _get(url: str, data: bytes | None = None) -> tuple[int, str, str]:
    """Status, content type and text of one request (POST when data is given)."""
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()
