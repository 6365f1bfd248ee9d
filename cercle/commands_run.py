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
from typing import Any

from backup.schedule import status as backup_status
from bridges.mail.status import mailbox_lines, mailbox_report
from cercle.context import CliContext, load_context
from cercle.errors import CliError
from cercle.supervisor import (
    CHILD_MARKS,
    SERVICES,
    PortBusy,
    Supervisor,
    check_ports,
    pid_alive,
    read_run_file,
    run_file,
)
from deployment.conventions import PARIS
from deployment.processes import PRIVATE_UMASK, recorded_children, remove_pid_file
from homeserver.accounts import admin_user_id
from homeserver.process import HomeserverStartError, is_healthy


def register(subparsers: Any) -> None:
    up = subparsers.add_parser("up", help="démarre Synapse et les services Cercle")
    up.add_argument("--detach", "-d", action="store_true", help="rend la main une fois prêt")
    up.set_defaults(handler=cmd_up)
    down = subparsers.add_parser("down", help="arrête proprement tout Cercle")
    down.set_defaults(handler=cmd_down)
    status = subparsers.add_parser("status", help="état des services")
    status.add_argument("--json", action="store_true", help="un objet JSON")
    status.set_defaults(handler=cmd_status)


def _say(text: str) -> None:
    print(text, flush=True)


def connection_help(ctx: CliContext) -> str:
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
        "     .venv/bin/cercle admin user create prenom.nom --generate-password "
        '--display-name "NOM Prénom"',
        "  2. L'ouvrir dans Element (web, bureau ou mobile) : « Se connecter », modifier le "
        f"serveur d'accueil = {p.public_baseurl}",
        "     À la première connexion, accepter les documents juridiques (le lien est donné "
        "par le serveur avant le premier message).",
        f"  3. Écrire au bot {p.bot_user_id} : !aide",
        "Arrêter : Ctrl-C ici, ou « .venv/bin/cercle down ».",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    os.umask(PRIVATE_UMASK)  # before anything is written under var/
    ctx = load_context(args.config)
    running = read_run_file(ctx.profile)
    if running:
        raise CliError(
            f"Cercle tourne déjà (processus {running['pid']}) : « cercle down » pour l'arrêter"
        )
    leftovers = recorded_children(run_file(ctx.profile).parent, CHILD_MARKS)
    if leftovers:
        raise CliError(
            "des processus d'un Cercle interrompu tournent encore ("
            + ", ".join(f"{name} : {pid}" for name, pid in leftovers.items())
            + ") : « cercle down » les arrête"
        )
    try:
        check_ports(ctx.profile, with_dossier=any(s.present() and s.name == "dossier"
                                                  for s in SERVICES))  # fmt: skip
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
    except HomeserverStartError as exc:
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
    with open(log_dir / "cercle.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cercle", "up"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"le démarrage a échoué ; voir {log_dir / 'cercle.log'}")
        state = read_run_file(ctx.profile)
        if state and state.get("ready"):
            _say(connection_help(ctx))
            return 0
        time.sleep(0.2)
    raise CliError(f"Cercle n'est pas prêt après 120 s ; voir {log_dir / 'cercle.log'}")


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
    leftovers = recorded_children(run_dir, CHILD_MARKS)
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
    dossier_up = False
    for spec in SERVICES:
        pid = pids.get(spec.name)
        alive = pid is not None and pid_alive(int(pid))
        entry: dict[str, Any] = {"pid": pid if alive else None}
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
        "backup": backup_status(p),
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
        _say(f"  {name:<11} {labels.get(entry['state'], entry['state'])}")
        for line in mailbox_lines(entry.get("mailboxes", [])):
            _say(line)
    _say(backup_line(report["backup"]))
    return 0 if report["services"]["homeserver"]["state"] == "running" else 3
