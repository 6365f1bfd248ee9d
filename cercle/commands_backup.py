"""`cercle backup` (with --verify, --init-key) and `cercle restore`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup import layout
from backup.crypto import (
    ArchiveError,
    generate_key_pair,
    load_private_key,
    load_public_key,
    write_private,
)
from backup.restore import read_archive, restore_archive
from backup.retention import policy_from_profile
from backup.retention_job import RetentionJob
from backup.rotation import prune
from backup.schedule import record_attempt, settings_from_profile
from backup.snapshot import BackupError, make_backup, public_key_path
from backup.transcripts import BotTranscripts
from bots.dossier_client import DossierClient
from bots.outbox import Refused, Unavailable
from cercle.context import command_line, load_context
from cercle.errors import CliError
from cercle.supervisor import read_run_file
from deployment.profile import Profile, ProfileError, load_profile


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup", help="sauvegarde chiffrée de tout Cercle (en marche ou non)"
    )
    backup.add_argument("--to", type=Path, default=None, help="répertoire des sauvegardes")
    backup.add_argument(
        "--verify", type=Path, metavar="ARCHIVE", help="vérifie une archive sans la restaurer"
    )
    backup.add_argument("--key", type=Path, help="clé privée de sauvegarde (pour --verify)")
    backup.add_argument(
        "--init-key",
        type=Path,
        metavar="FICHIER",
        help="crée la paire de clés ; la clé privée va dans FICHIER, à garder hors du serveur",
    )
    backup.add_argument("--scheduled", action="store_true", help=argparse.SUPPRESS)
    backup.set_defaults(handler=cmd_backup)
    restore = subparsers.add_parser(
        "restore", help="restaure une archive sur une installation vierge"
    )
    restore.add_argument("archive", type=Path)
    restore.add_argument("--key", type=Path, required=True, help="clé privée de sauvegarde")
    restore.set_defaults(handler=cmd_restore)
    retention = subparsers.add_parser(
        "retention", help="dossiers clos depuis la durée légale : archivage puis purge"
    )
    retention.add_argument(
        "--apply", action="store_true", help="archive et purge (sinon : liste seulement)"
    )
    retention.set_defaults(handler=cmd_retention)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _profile(config: Path | None) -> Profile:
    try:
        return load_profile(override_file=config)
    except ProfileError as exc:
        raise CliError(str(exc)) from exc


def _archive_arg(path: Path) -> Path:
    """An archive, or a backup directory (its LATEST archive)."""
    if path.is_dir():
        latest = path / layout.LATEST
        if not latest.exists():
            raise CliError(f"aucune sauvegarde complète dans {path}")
        return path / latest.read_text(encoding="utf-8").strip()
    return path


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def init_key(profile: Profile, private_file: Path, backup_dir: Path) -> None:
    if _inside(private_file, profile.var_dir) or _inside(private_file, backup_dir):
        raise CliError(
            "la clé privée doit être gardée à part : ni dans var/ ni avec les sauvegardes"
        )
    public_file = public_key_path(profile)
    if public_file.exists():
        raise CliError(f"une clé de sauvegarde existe déjà ({public_file})")
    if private_file.exists():
        raise CliError(f"{private_file} existe déjà")
    private_text, public_text = generate_key_pair()
    private_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(private_file, (private_text + "\n").encode())
    public_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(public_file, (public_text + "\n").encode())


def cmd_backup(args: argparse.Namespace) -> int:
    profile = _profile(args.config)
    settings = settings_from_profile(profile)
    directory = args.to or settings.directory
    if directory.exists() and not directory.is_dir():
        raise CliError(
            f"{directory} n'est pas un répertoire : --to attend un répertoire de sauvegardes"
        )
    if args.init_key:
        init_key(profile, args.init_key, directory)
        print(f"Clé privée écrite dans {args.init_key} : gardez-la hors du serveur ;")
        print("sans elle, aucune sauvegarde ne peut être relue ni restaurée.")
        return 0
    if args.verify:
        if args.key is None:
            raise CliError("--verify demande la clé privée : --key FICHIER")
        archive = _archive_arg(args.verify)
        try:
            contents = read_archive(archive, load_private_key(args.key), _say)
        except ArchiveError as exc:
            raise CliError(str(exc)) from exc
        print(
            f"Archive valide : {archive.name}, {contents.files} fichiers, "
            f"{contents.bytes / 1e6:.1f} Mo, faite le {contents.manifest['created_at']}"
        )
        return 0
    load_context(args.config)  # the deployment's secrets exist (created on first use)
    own_directory = directory.resolve() == settings.directory.resolve()
    try:
        result = make_backup(profile, directory, _say)
    except (BackupError, ArchiveError, OSError) as exc:
        message = str(exc) if isinstance(exc, BackupError | ArchiveError) else "erreur d'écriture"
        if own_directory:
            record_attempt(profile, error=message)
        raise CliError(message) from exc
    if own_directory:
        record_attempt(profile, archive=result.archive.name)
        removed = prune(directory, settings.keep_daily, settings.keep_weekly)
        if removed:
            _say(f"Rotation : {len(removed)} archive(s) ancienne(s) supprimée(s)")
    totals = result.manifest["totals"]
    print(
        f"Sauvegarde faite : {result.archive} ({totals['files']} fichiers, "
        f"{totals['bytes'] / 1e6:.1f} Mo dont {totals['new_blob_bytes'] / 1e6:.1f} Mo "
        f"nouveaux, {result.seconds:.1f} s)"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    profile = _profile(args.config)
    if read_run_file(profile):
        raise CliError(
            f"Cercle tourne : arrêtez-le (« {command_line('down')} ») avant de restaurer"
        )
    archive = _archive_arg(args.archive)
    try:
        contents = restore_archive(profile, archive, load_private_key(args.key), _say)
    except ArchiveError as exc:
        raise CliError(str(exc)) from exc
    print(
        f"Restauration faite : {contents.files} fichiers ({contents.bytes / 1e6:.1f} Mo) "
        f"de la sauvegarde du {contents.manifest['created_at']}. Démarrez : « {command_line('up')} »."
    )
    return 0


async def cmd_retention(args: argparse.Namespace) -> int:
    ctx = load_context(args.config)
    profile = ctx.profile
    policy = policy_from_profile(profile)
    key_file = public_key_path(profile)
    if not key_file.exists():
        raise CliError("aucune clé de sauvegarde : « cercle backup --init-key FICHIER »")
    dossier = DossierClient(profile.dossier_url, ctx.secrets.dossier_service_token)
    try:
        async with ctx.admin_api() as admin:
            job = RetentionJob(
                dossier=dossier,
                service_token=ctx.secrets.dossier_service_token,
                admin=admin,
                transcripts=BotTranscripts(profile, ctx.secrets),
                out_dir=settings_from_profile(profile).directory / "retention",
                recipient=load_public_key(key_file.read_text(encoding="utf-8")),
                policy=policy,
                server_name=profile.server_name,
                say=_say,
            )
            outcomes = await job.run(datetime.now(UTC), apply=args.apply)
    except Unavailable as exc:
        raise CliError("le dossier ne répond pas (Cercle est-il démarré ?)") from exc
    except Refused as exc:
        raise CliError(f"le dossier refuse la demande ({exc.errcode})") from exc
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await dossier.close()
    if not outcomes:
        print(f"Aucun dossier clos depuis plus de {policy.years_after_closure} an(s).")
    for outcome in outcomes:
        closed = outcome.closed_at.strftime("%d/%m/%Y")
        if outcome.already_done:
            print(f"Déjà archivé : {outcome.patient_id} → {outcome.archive}")
        elif outcome.archive is None:
            print(f"À archiver puis purger : {outcome.patient_id} (clos le {closed})")
        else:
            room = "salon purgé" if outcome.room_purged else "pas de salon"
            print(f"Archivé : {outcome.patient_id} → {outcome.archive} ; {room}")
    if outcomes and not args.apply:
        print("Relancez avec --apply pour archiver puis purger.")
    return 0
