"""`cercle backup --verify` and `cercle restore`: read an archive back, check everything.

Reading checks, in order: the container (magic, version), the key (sealed stream key), each
chunk's authentication and the final tag (corruption, truncation), the manifest's format and
the Synapse version (a newer one than installed is refused), then every member's and every
pool blob's SHA-256 against the manifest. A restore writes nothing in place until all of
this has passed: it works in a staging directory, then moves each store where the target
deployment keeps it, with files 0600 and directories 0700.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from backup import layout, pages
from backup.crypto import ArchiveError, DecryptingReader
from backup.snapshot import Say, versions
from backup.stores import Store, declared_stores
from deployment.dependencies import postgres_databases
from deployment.postgres import DatabaseSetupError, ensure_databases
from deployment.profile import Profile


@dataclass(frozen=True)
class ArchiveContents:
    manifest: dict[str, Any]
    files: int
    bytes: int


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_compatible(manifest: dict[str, Any], installed: dict[str, str]) -> None:
    if manifest.get("format") not in layout.READABLE_FORMATS:
        raise ArchiveError(
            f"archive d'une version incompatible de Cercle (format {manifest.get('format')}, "
            f"attendu {' ou '.join(map(str, layout.READABLE_FORMATS))})"
        )
    theirs = str(manifest.get("versions", {}).get("synapse", "0"))
    if _version_tuple(theirs) > _version_tuple(installed["synapse"]):
        raise ArchiveError(
            f"archive faite avec Synapse {theirs}, plus récent que celui installé "
            f"({installed['synapse']}) : mettez Synapse à jour avant de restaurer"
        )


def _hash_into(src: Any, target: Path | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    out = None
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = open(target, "wb")  # noqa: SIM115
        os.fchmod(out.fileno(), 0o600)
    try:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest(), size


def read_archive(
    archive: Path, key: PrivateKey, say: Say, staging: Path | None = None
) -> ArchiveContents:
    """Check (and, with ``staging``, unpack) an archive and the pool blobs it names."""
    if not archive.is_file():
        raise ArchiveError(f"archive introuvable : {archive}")
    checksum = layout.sidecar(archive, ".sha256")
    if checksum.exists() and checksum.read_text().split()[0] != layout.file_sha256(archive):
        raise ArchiveError("archive corrompue (somme de contrôle différente)")
    seen: dict[str, tuple[str, int]] = {}
    maps: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    with open(archive, "rb") as raw:
        reader = DecryptingReader(raw, key)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    if not member.isfile():
                        raise ArchiveError("archive corrompue (membre inattendu)")
                    src = tar.extractfile(member)
                    if member.name == layout.MANIFEST:
                        manifest = json.loads(src.read())
                        continue
                    target = None
                    if staging is not None:
                        target = staging / layout.safe_relpath(member.name)
                    if member.name.endswith(pages.MAP_SUFFIX):  # perhaps a page map: kept
                        maps[member.name] = src.read()
                        src = io.BytesIO(maps[member.name])
                    seen[member.name] = _hash_into(src, target)
        except (tarfile.TarError, ValueError, EOFError) as exc:
            raise ArchiveError("archive corrompue (contenu illisible)") from exc
        reader.drain()
    if manifest is None:
        raise ArchiveError("archive incomplète : manifeste absent")
    check_compatible(manifest, versions())
    files = total = 0
    for store in manifest["stores"]:
        for entry in store["entries"]:
            member = f"stores/{store['name']}/{entry['path']}"
            got: tuple[str, int] | None
            if store["kind"] == "blobs":
                got = _read_blob(archive.parent, entry, key, staging, member)
            elif "pages" in entry:
                page_map = maps.get(f"stores/{store['name']}/{entry['pages']['map']}")
                if page_map is None:
                    raise ArchiveError(f"archive corrompue : carte des pages absente ({member})")
                got = _assemble(archive.parent, entry["pages"], page_map, key, staging, member)
            else:
                got = seen.get(member)
            if got != (entry["sha256"], entry["size"]):
                raise ArchiveError(f"archive corrompue : {member} ne correspond pas au manifeste")
            files += 1
            total += entry["size"]
            if files % 500 == 0:
                say(f"  {files} fichiers vérifiés…")
    return ArchiveContents(manifest, files, total)


def _read_blob(
    directory: Path, entry: dict[str, Any], key: PrivateKey, staging: Path | None, member: str
) -> tuple[str, int]:
    path = layout.blob_path(directory, entry["blob"])
    if not path.is_file():
        raise ArchiveError(f"contenu manquant dans {directory / 'blobs'} pour {member}")
    target = staging / layout.safe_relpath(member) if staging is not None else None
    with open(path, "rb") as raw:
        reader = DecryptingReader(raw, key)
        got = _hash_into(reader, target)
        reader.drain()
    return got


def _assemble(
    directory: Path,
    record: dict[str, Any],
    page_map: bytes,
    key: PrivateKey,
    staging: Path | None,
    member: str,
) -> tuple[str, int]:
    """A database stored by page: rebuilt into the staging directory (restore), or into a
    temporary file that is checked then removed (verify)."""
    try:
        if staging is not None:
            target = staging / layout.safe_relpath(member)
            return pages.assemble(record, page_map, directory, key, target)
        with tempfile.TemporaryDirectory(prefix="cercle-verif-") as tmp:
            return pages.assemble(record, page_map, directory, key, Path(tmp) / "base")
    except OSError as exc:
        where = "le répertoire de restauration" if staging is not None else tempfile.gettempdir()
        raise ArchiveError(
            f"{member} non reconstituée : écriture impossible dans {where} (espace disque ?)"
        ) from exc


def _empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def _postgres_empty(name: str, dsn: str) -> bool:
    out = subprocess.run(
        [
            "psql",
            "-XAtq",
            "-d",
            dsn,
            "-c",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise ArchiveError(f"base PostgreSQL de {name} injoignable : rien n'a été restauré")
    return out.stdout.strip() == "0"


def _check_target(stores: list[Store]) -> None:
    for store in stores:
        if store.kind == "postgres":
            assert store.dsn is not None
            if not _postgres_empty(store.name, store.dsn):
                raise ArchiveError(f"la base cible de {store.name} n'est pas vide")
        elif store.path is not None and not _empty(store.path):
            raise ArchiveError(
                f"restauration refusée : {store.path} contient déjà des données "
                "(restaurez sur une installation vierge)"
            )


def _private_tree(root: Path) -> None:
    if root.is_file():
        os.chmod(root, 0o600)
        return
    os.chmod(root, 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o700)
        for f in filenames:
            os.chmod(Path(dirpath) / f, 0o600)


def _place(store: Store, record: dict[str, Any], staged: Path) -> None:
    if store.kind == "postgres":
        assert store.dsn is not None
        result = subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "-d",
                store.dsn,
                str(staged / "database.dump"),
            ],
            capture_output=True,
            timeout=3600,
            check=False,
        )
        if result.returncode != 0:
            raise ArchiveError(f"pg_restore a échoué pour {store.name}")
        return
    assert store.path is not None
    if store.kind == "sqlite":
        source = staged / record["entries"][0]["path"]
        store.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.move(source, store.path)
        _private_tree(store.path)
        return
    store.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if store.path.exists():
        store.path.rmdir()  # checked empty above
    shutil.move(staged, store.path)
    _private_tree(store.path)


def _unknown_store(name: str) -> str:
    """Why a store of the archive has no place here: a folder of the bot's shard k
    (``bot-k``) needs ``bot.shards`` at k at least; anything else, a newer Cercle."""
    shard = name.removeprefix("bot-")
    if shard != name and shard.isdigit():
        return (
            f"l'archive contient le dossier du compte n° {shard} du bot ({name}) : réglez "
            f"bot.shards à {shard} au moins, comme sur l'installation sauvegardée"
        )
    return f"donnée {name} inconnue de cette version de Cercle"


def restore_archive(profile: Profile, archive: Path, key: PrivateKey, say: Say) -> ArchiveContents:
    stores = {s.name: s for s in declared_stores(profile)}
    # a fresh machine's PostgreSQL has no database yet: made as `cercle up` makes them (the
    # collation Synapse needs), empty, before the target is checked
    try:
        for name in ensure_databases(postgres_databases(profile)):
            say(f"Base PostgreSQL {name} créée (vide) pour la restauration")
    except DatabaseSetupError as exc:
        raise ArchiveError(str(exc)) from exc
    _check_target(list(stores.values()))
    var = profile.var_dir
    staging = var.parent / f".{var.name}.restauration"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    try:
        say("Lecture et vérification de l'archive…")
        contents = read_archive(archive, key, say, staging)
        if contents.manifest.get("server_name") != profile.server_name:
            raise ArchiveError(
                f"archive du serveur {contents.manifest.get('server_name')}, installation "
                f"configurée pour {profile.server_name} : même server_name requis"
            )
        if contents.manifest.get("kind") == "retention":
            raise ArchiveError("archive de conservation d'un dossier : à lire, pas à restaurer")
        present = [record for record in contents.manifest["stores"] if record["present"]]
        # every store checked before any is placed: a refusal leaves the target as it was
        for record in present:
            store = stores.get(record["name"])
            if store is None:
                raise ArchiveError(_unknown_store(record["name"]))
            if store.kind != record["kind"]:
                raise ArchiveError(
                    f"{record['name']} : archive {record['kind']}, installation {store.kind} "
                    "(même moteur de base de données requis)"
                )
        for record in present:
            store = stores[record["name"]]
            say(f"Restauration : {record['name']}…")
            staged = staging / "stores" / record["name"]
            staged.mkdir(parents=True, exist_ok=True, mode=0o700)
            _place(store, record, staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return contents
