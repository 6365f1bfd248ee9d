"""`cercle up`, `cercle down`, `cercle status`: run the deployment and say how it is."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from backup.schedule import status as backup_status
from bridges.mail.status import mailbox_lines, mailbox_report
from cercle.bot_instances import BOT_SERVICE, bot_configs, instance_name, is_ready
from cercle.context import CliContext, command_line, load_context
from cercle.errors import CliError
from cercle.supervisor import (
    SERVICES,
    PortBusy,
    Supervisor,
    check_ports,
    child_marks,
    pid_alive,
    read_run_file,
    run_file,
)
from deployment.conventions import PARIS
from deployment.dependencies import postgres_databases, region_dependencies
from deployment.postgres_upkeep import autovacuum_on, autovacuum_warning
from deployment.processes import PRIVATE_UMASK, recorded_children, remove_pid_file
from homeserver.accounts import admin_user_id
from homeserver.process import HomeserverStartError, is_healthy
from homeserver.proxy import ProxyError, answers, dossier_ports


def register(subparsers: Any) -> None:
    up = subparsers.add_parser("up", help="démarre Synapse et les services Cercle")
    for command in (up,):
        command.add_argument(
            "--profile",
            dest="sub_profile",
            default=None,
            help="profil config/<nom>.yaml (ex. region)",
        )
    up.add_argument("--detach", "-d", action="store_true", help="rend la main une fois prêt")
    up.set_defaults(handler=cmd_up)
    down = subparsers.add_parser("down", help="arrête proprement tout Cercle")
    down.add_argument("--profile", dest="sub_profile", default=None, help="profil (ex. region)")
    down.set_defaults(handler=cmd_down)
    status = subparsers.add_parser("status", help="état des services")
    status.add_argument("--json", action="store_true", help="un objet JSON")
    status.add_argument("--profile", dest="sub_profile", default=None, help="profil (ex. region)")
    status.set_defaults(handler=cmd_status)


def _say(text: str) -> None:
    print(text, flush=True)


def connection_help(ctx: CliContext, *, detached: bool = False) -> str:
    """What a newcomer does next; ``detached``: the terminal is free again, Ctrl-C stops
    nothing there, only ``cercle down`` does."""
    p = ctx.profile
    lines = [
        "",
        "Cercle est prêt.",
        f"  Serveur Matrix (homeserver) : {p.public_baseurl}",
        f"  Nom du serveur              : {p.server_name}",
        f"  Bot de coordination         : {p.bot_user_id}",
    ]
    if any(s.present() and s.name == "dossier" for s in SERVICES):
        lines.append(f"  Dossier de coordination     : {p.dossier_url}")
    lines += [
        "",
        "Et maintenant :",
        "  1. Créer le compte du premier professionnel (dans un autre terminal) :",
        "     "
        + command_line(
            "admin", "user", "create", "prenom.nom", "--generate-password", "--display-name"
        )
        + ' "NOM Prénom"',
        "  2. L'ouvrir dans Element (web, bureau ou mobile) : « Se connecter », modifier le "
        f"serveur d'accueil = {p.public_baseurl}",
        "     À la première connexion, accepter les documents juridiques (le lien est donné "
        "par le serveur avant le premier message).",
        f"  3. Écrire au bot {p.bot_user_id} : !aide",
        f"Arrêter : « {command_line('down')} »."
        if detached
        else f"Arrêter : Ctrl-C ici, ou « {command_line('down')} ».",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    os.umask(PRIVATE_UMASK)  # before anything is written under var/
    ctx = load_context(args.config)
    running = read_run_file(ctx.profile)
    if running:
        raise CliError(
            f"Cercle tourne déjà (processus {running['pid']}) : « {command_line('down')} » "
            "pour l'arrêter"
        )
    leftovers = recorded_children(run_file(ctx.profile).parent, child_marks(ctx.profile))
    if leftovers:
        raise CliError(
            "des processus d'un Cercle interrompu tournent encore ("
            + ", ".join(f"{name} : {pid}" for name, pid in leftovers.items())
            + f") : « {command_line('down')} » les arrête"
        )
    try:
        check_ports(
            ctx.profile, with_dossier=any(s.present() and s.name == "dossier" for s in SERVICES)
        )
    except PortBusy as exc:
        raise CliError(str(exc)) from None
    if args.detach:
        return _up_detached(ctx)
    supervisor = Supervisor(ctx.profile, ctx.secrets)
    try:
        supervisor.start(_say)
    except PortBusy as exc:
        supervisor.stop()
        raise CliError(str(exc)) from None
    except (HomeserverStartError, ProxyError) as exc:
        supervisor.stop()
        raise CliError(str(exc)) from exc
    except BaseException:
        supervisor.stop()
        raise
    _say(connection_help(ctx))
    try:
        supervisor.watch()
    finally:
        _say("Arrêt de Cercle…")
        supervisor.stop()
        _say("Cercle est arrêté.")
    return 0


def _up_detached(ctx: CliContext) -> int:
    log_dir = ctx.profile.var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "cercle.log"
    with open(log_path, "ab") as out:
        begun = out.tell()  # what this start writes, for its reason if it fails
        proc = subprocess.Popen(
            [sys.executable, "-m", "cercle", "up"],  # the profile: CERCLE_CONFIG
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )
    # the region profile starts seven Synapse processes, nginx and two dossiers: longer
    patience = 300 if ctx.profile.is_region else 120
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            reason = told_reason(log_path, begun)
            said = f" : {reason}" if reason else ""
            raise CliError(f"le démarrage a échoué{said} ; voir {log_path}")
        state = read_run_file(ctx.profile)
        if state and state.get("ready"):
            _say(connection_help(ctx, detached=True))
            return 0
        time.sleep(0.2)
    raise CliError(f"Cercle n'est pas prêt après {patience} s ; voir {log_dir / 'cercle.log'}")


def told_reason(log_path: Path, begun: int) -> str | None:
    """The last « erreur : … » a detached start wrote to its log (the French reason it was
    refused: a port, Redis, PostgreSQL, nginx), or None when it died without telling."""
    with open(log_path, "rb") as log_file:
        log_file.seek(begun)
        lines = log_file.read().decode("utf-8", "replace").splitlines()
    told = [line.removeprefix("erreur : ") for line in lines if line.startswith("erreur : ")]
    return told[-1] if told else None


def cmd_down(args: argparse.Namespace) -> int:
    ctx = load_context(args.config)
    state = read_run_file(ctx.profile)
    if not state:
        return _stop_leftovers(ctx)
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        raise CliError(f"Cercle (processus {pid}) ne s'est pas arrêté en 60 s")
    _say("Cercle est arrêté.")
    return 0


def _stop_leftovers(ctx: CliContext) -> int:
    """No supervisor: stop what its pid files still name (a supervisor killed before it
    wrote its run file, on a system without PR_SET_PDEATHSIG)."""
    run_dir = run_file(ctx.profile).parent
    leftovers = recorded_children(run_dir, child_marks(ctx.profile))
    if not leftovers:
        _say("Cercle n'était pas démarré.")
        return 0
    for pid in leftovers.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(pid_alive(p) for p in leftovers.values()):
        time.sleep(0.2)
    for pid in leftovers.values():
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in leftovers:
        remove_pid_file(run_dir, name)
    _say(
        "Processus d'un Cercle interrompu arrêtés : "
        + ", ".join(f"{name} ({pid})" for name, pid in leftovers.items())
    )
    return 0


def status_report(ctx: CliContext) -> dict[str, Any]:
    p = ctx.profile
    state = read_run_file(p) or {}
    pids: dict[str, Any] = state.get("services", {})
    hs_up = is_healthy(p.homeserver_url)
    services: dict[str, Any] = {
        "homeserver": {
            "state": "running" if hs_up else "stopped",
            "pid": state.get("homeserver_pid"),
            "url": p.homeserver_url,
        }
    }
    restarts: dict[str, int] = state.get("restarts", {})
    services["homeserver"]["restarts"] = restarts.get("synapse", 0)
    for name, proc in state.get("homeserver_processes", {}).items():
        if name == "synapse":
            continue
        up = proc.get("pid") is not None and pid_alive(int(proc["pid"]))
        healthy = up and (answers(proc["url"]) if name == "proxy" else is_healthy(proc["url"]))
        services[name] = {
            "state": "running" if healthy else ("starting" if up else "stopped"),
            "pid": proc.get("pid") if up else None,
            "url": proc["url"],
            "restarts": restarts.get(name, 0),
        }
    dossier_up = False
    for spec in SERVICES:
        if spec.name == "dossier" and p.is_region:
            dossier_up = _dossier_processes(p, pids, restarts, services)
            continue
        if spec.name == BOT_SERVICE and spec.present():
            _bot_processes(p, pids, restarts, services)
            continue
        pid = pids.get(spec.name)
        alive = pid is not None and pid_alive(int(pid))
        entry: dict[str, Any] = {
            "pid": pid if alive else None,
            "restarts": restarts.get(spec.name, 0),
        }
        if not spec.present():
            entry["state"] = "absent"
        elif not spec.enabled(p):
            entry["state"] = "disabled"
        elif spec.name == "dossier":
            dossier_up = alive and is_healthy(p.dossier_url)
            entry["state"] = "running" if dossier_up else ("starting" if alive else "stopped")
            entry["url"] = p.dossier_url
        else:
            entry["state"] = "running" if alive else "stopped"
        services[spec.name] = entry
    supervisor = state.get("pid")
    mark_restarting(
        state,
        services,
        now=time.time(),
        supervisor_alive=supervisor is not None and pid_alive(int(supervisor)),
    )
    # region: the servers Cercle relies on and cannot restart, shown beside its processes
    dependencies: dict[str, Any] = {}
    for dep in region_dependencies(p) if p.is_region else []:
        up = dep.answers()
        dependencies[f"{dep.name} {dep.address}"] = {
            "state": "running" if up else "unreachable",
            "role": dep.role,
            "problem": None if up else dep.unreachable(),
            "warning": None,
        }
    for db in postgres_databases(p) if p.is_region else []:
        server = dependencies.get(f"PostgreSQL {db.host}:{db.port}")
        if server is not None and server["state"] == "running" and autovacuum_on(db) is False:
            server["warning"] = autovacuum_warning(db)
    if services.get("courrier", {}).get("state") not in (None, "absent", "disabled"):
        services["courrier"]["mailboxes"] = mailbox_report(p.var_dir / "mail" / "bridge.sqlite3")
    return {
        "running": bool(state),
        "homeserver_url": p.public_baseurl.rstrip("/"),
        "server_name": p.server_name,
        "bot_user_id": p.bot_user_id,
        "admin_user_id": admin_user_id(p.server_name),
        "dossier_url": p.dossier_url if dossier_up else None,
        "var_dir": str(p.var_dir),
        "run_file": str(run_file(p)),
        "services": services,
        "dependencies": dependencies,
        "backup": backup_status(p),
    }


def mark_restarting(
    state: dict[str, Any], services: dict[str, Any], *, now: float, supervisor_alive: bool
) -> None:
    """Pure: a stopped process that the supervisor (alive) restarts after its back-off is
    "restarting", with the seconds left — not "stopped", which would call for a hand."""
    if not supervisor_alive:
        return
    for name, at in (state.get("restart_at") or {}).items():
        entry = services.get(name)
        if entry is not None and entry["state"] == "stopped":
            entry["state"] = "restarting"
            entry["restart_in"] = max(0, round(float(at) - now))


def _dossier_processes(
    p: Any, pids: dict[str, Any], restarts: dict[str, int], services: dict[str, Any]
) -> bool:
    """Region: each dossier process behind the proxy, checked on its own port."""
    for i, port in enumerate(dossier_ports(p)):
        name = f"dossier{i + 1}"
        pid = pids.get(name)
        alive = pid is not None and pid_alive(int(pid))
        up = alive and is_healthy(f"http://127.0.0.1:{port}")
        services[name] = {
            "state": "running" if up else ("starting" if alive else "stopped"),
            "pid": pid if alive else None,
            "url": f"http://127.0.0.1:{port}",
            "restarts": restarts.get(name, 0),
        }
    return is_healthy(p.dossier_url)


def _bot_processes(
    p: Any, pids: dict[str, Any], restarts: dict[str, int], services: dict[str, Any]
) -> None:
    """Each process of the bot (``bot``, then ``bot2`` … with ``bot.shards``): running once
    its first sync is handled (its ready file, bots/main.py), starting until then."""
    for config in bot_configs(p):
        name = instance_name(config.shard)
        pid = pids.get(name)
        alive = pid is not None and pid_alive(int(pid))
        ready = alive and pid is not None and is_ready(config, int(pid))
        services[name] = {
            "pid": pid if alive else None,
            "restarts": restarts.get(name, 0),
            "state": "running" if ready else ("starting" if alive else "stopped"),
            "user_id": config.user_id,
        }


def backup_line(state: dict[str, Any]) -> str:
    shown = {k: paris(state[k]) for k in ("last_success", "last_failure", "next_due")}
    line = f"  sauvegarde  dernière réussie : {shown['last_success'] or 'aucune'}"
    if state["last_failure"] and (state["last_success"] or "") < state["last_failure"]:
        line += f" ; ÉCHEC le {shown['last_failure']} : {state['last_error']}"
    if state["scheduled"]:
        line += f" ; prochaine : {shown['next_due']}"
    else:
        line += " ; pas de sauvegarde planifiée (backup.schedule.enabled)"
    return line


def paris(iso: str | None) -> str | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def cmd_status(args: argparse.Namespace) -> int:
    report = status_report(load_context(args.config))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    _say(f"Serveur Matrix : {report['homeserver_url']} ({report['server_name']})")
    labels = {
        "running": "en marche",
        "stopped": "arrêté",
        "absent": "absent",
        "starting": "démarrage",
        "disabled": "désactivé",
    }
    for name, entry in report["services"].items():
        again = entry.get("restarts") or 0
        shown = f" (redémarré {again} fois)" if again else ""
        label = labels.get(entry["state"], entry["state"])
        if entry["state"] == "restarting":
            label = f"arrêté, redémarrage dans {entry['restart_in']} s"
        _say(f"  {name:<11} {label}{shown}")
        for line in mailbox_lines(entry.get("mailboxes", [])):
            _say(line)
    for name, entry in report["dependencies"].items():
        shown = "répond" if entry["state"] == "running" else f"NE RÉPOND PAS — {entry['problem']}"
        _say(f"  {name} : {shown}")
        if entry["warning"]:
            _say(f"    attention : {entry['warning']}")
    _say(backup_line(report["backup"]))
    if report["services"]["homeserver"]["state"] != "running":
        return 3
    # the processes answer, but without Redis they no longer hear each other
    return 4 if any(e["state"] != "running" for e in report["dependencies"].values()) else 0
