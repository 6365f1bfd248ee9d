#!/usr/bin/env python3
"""Benchmark of the directory: import of a generated RPPS extract, then search latency.

    .venv/bin/python bench/annuaire.py [--rows 2000000] [--queries 1000] [--workdir DIR]

Prints: import time and peak RSS (measured in a child process doing only the import);
search p50 / p99 / max over a fixed mix of realistic queries (names, name + city,
profession + postcode, two-letter prefixes) server-side (``Directory.search``) and over
HTTP (``GET /api/v1/annuaire`` on the real aiohttp routes, in a separate server process),
beside the same queries on a raw SQLite FTS5 index of the same rows (one row per activity,
unicode61 without diacritics, every word a prefix query, ``ORDER BY rank LIMIT 20``) in the
same run. Goals: import <= 120 s and <= 500 MB; p50 <= 5 ms, p99 <= 30 ms, max <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.dossier import bench_config  # noqa: E402
from bench.common.measures import free_port, pct  # noqa: E402

GENERATOR = Path("/work/shared/data/rpps/make_extract.py")
if not GENERATOR.exists():
    GENERATOR = ROOT.parent / "shared" / "data" / "rpps" / "make_extract.py"

SURNAMES = [
    "martin",
    "bernard",
    "Dubois",
    "durand",
    "LEFÈVRE",
    "lefevre",
    "d'almeida",
    "garcia-lopez",
    "n'diaye",
    "le goff",
    "moreau",
    "Ménard",
    "sabatier",
    "estève",
    "fontaine",
    "roux",
    "garcia",
    "blanc",
    "cazalas",
    "chevalier",
    "bringaud",
    "mauger",
]
FIRSTNAMES = ["marie", "jean-pierre", "hélène", "nicolas", "chloé", "benoît", "lucy", "maël"]
CITIES = [
    "toulouse",
    "Béziers",
    "beziers",
    "montpellier",
    "nîmes",
    "nimes",
    "albi",
    "sète",
    "perpignan",
    "narbonne",
    "rodez",
    "mende",
    "foix",
    "carcassonne",
    "Montauban",
]
PROFESSIONS = [
    "infirmier",
    "infirmière",
    "IDE",
    "kiné",
    "masseur-kinésithérapeute",
    "médecin",
    "cardio",
    "généraliste",
    "pharmacien",
    "sage-femme",
    "orthophoniste",
    "psychologue",
    "dentiste",
    "podologue",
]
POSTCODES = [
    "31000",
    "31400",
    "34000",
    "34500",
    "30000",
    "66000",
    "11100",
    "81000",
    "12000",
    "82000",
    "65000",
    "46000",
    "09000",
    "48000",
    "32000",
]
# outside the mix: shapes that defeat a naive plan (reported apart, same run)
HARD = [
    "jean marie",
    "marie jean",
    "ma ro",
    "ro ma",
    "ma cardio mende",
    "ma kiné 48000",
    "m 09100",
    "sa foix libéral",
    "albi",
    "infirmier",
    "cardio",
    "audio",
    "zz yy",
    "thom jean-p",
    "dup mar 31",
    "lopez pierre",
    "a",
    "e 31",
    "infirmier libéral 31",
    "psychologue 48",
]
PREFIXES = ["ma", "du", "le", "be", "ro", "mo", "ga", "da", "fo", "la", "ch", "bo", "me", "sa"]


def query_mix(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 20
        if kind < 6:  # names, sometimes with a first name
            q = rnd.choice(SURNAMES)
            if kind < 2:
                q = f"{q} {rnd.choice(FIRSTNAMES)}"
        elif kind < 11:
            q = f"{rnd.choice(SURNAMES)} {rnd.choice(CITIES)}"
        elif kind < 16:
            q = f"{rnd.choice(PROFESSIONS)} {rnd.choice(POSTCODES)}"
        else:
            q = rnd.choice(PREFIXES)
        out.append(q)
    return out


def query_kind(i: int) -> str:
    """Which part of ``query_mix`` the ``i``-th query belongs to."""
    k = i % 20
    if k < 6:
        return "names"
    if k < 11:
        return "name + city"
    if k < 16:
        return "profession + postcode"
    return "2-letter prefix"


def summary(label: str, times_ms: list[float]) -> str:
    return (
        f"{label:<34} p50 {statistics.median(times_ms):7.2f} ms   p99 {pct(times_ms, 99):7.2f}"
        f" ms   max {max(times_ms):7.2f} ms   >100 ms: {sum(t > 100 for t in times_ms)}"
    )


# --- child: import only (for a clean peak RSS) ------------------------------------------------
def child_import(db: str, extract: str) -> None:
    from dossier_service.directory.importer import import_extract
    from dossier_service.directory.store import connect
    from dossier_service.migrate import upgrade_blocking

    upgrade_blocking(f"sqlite:///{db}")  # the dossier's schema, directory tables included
    conn = connect(db)
    t = time.monotonic()
    report = import_extract(conn, Path(extract))
    seconds = time.monotonic() - t
    conn.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mb": usage.ru_maxrss / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "load": os.getloadavg()[0],
                **report.as_dict(),
            }
        )
    )


# --- child: HTTP server ----------------------------------------------------------------------
def child_serve(db: str, port: int, session_key: str) -> None:
    from aiohttp import web

    from dossier_service.directory.web import setup

    config = bench_config(
        f"sqlite+aiosqlite:///{db}",
        Path(db).parent,
        server_name="bench.test",
        session_key=session_key,
        service_token=secrets.token_urlsafe(32),
        public_url=f"http://127.0.0.1:{port}",
    )
    app = web.Application()
    setup(app, config)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def http_times(port: int, token: str, queries: list[str]) -> list[float]:
    import aiohttp

    out = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for _ in range(100):  # wait for the server
            try:
                async with session.get("/api/v1/annuaire", params={"q": "x"}, headers=headers) as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        for q in queries[:50]:  # warm-up
            async with session.get("/api/v1/annuaire", params={"q": q}, headers=headers) as r:
                await r.read()
        for q in queries:
            t = time.perf_counter()
            async with session.get("/api/v1/annuaire", params={"q": q}, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            out.append((time.perf_counter() - t) * 1000)
    return out


# --- raw FTS5 baseline ------------------------------------------------------------------------
def build_fts(db: str, fts_db: str) -> float:
    if os.path.exists(fts_db):
        os.remove(fts_db)
    t = time.monotonic()
    conn = sqlite3.connect(fts_db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"ATTACH DATABASE '{db}' AS src")
    conn.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(nom, prenom, profession, specialite, ville, "
        "code_postal, email, tokenize=\"unicode61 remove_diacritics 2 tokenchars '-'\")"
    )
    conn.execute(
        "INSERT INTO fts (rowid, nom, prenom, profession, specialite, ville, code_postal, email) "
        "SELECT a.id, p.last_name, p.first_name, p.profession, a.specialty, a.city, a.postcode, "
        "a.email FROM src.annuaire_activity a JOIN src.annuaire_professional p "
        "ON p.id = a.professional_id "
        "WHERE p.active = 1"
    )
    conn.commit()
    conn.execute("DETACH DATABASE src")
    conn.close()
    return time.monotonic() - t


def fts_query(text: str) -> str:
    words = [w for w in text.replace("'", " ").replace('"', " ").split() if w]
    return " AND ".join(f'"{w}"*' for w in words)


def fts_times(fts_db: str, queries: list[str]) -> tuple[list[float], int]:
    conn = sqlite3.connect(fts_db)
    out = []
    found = 0
    for q in queries[:50]:
        conn.execute(
            "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT 20", (fts_query(q),)
        ).fetchall()
    for q in queries:
        t = time.perf_counter()
        rows = conn.execute(
            "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT 20", (fts_query(q),)
        ).fetchall()
        out.append((time.perf_counter() - t) * 1000)
        found += bool(rows)
    return out, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--workdir", default="/tmp/cercle-bench-annuaire")
    ap.add_argument("--child-import", nargs=2, metavar=("DB", "EXTRACT"))
    ap.add_argument("--child-serve", nargs=3, metavar=("DB", "PORT", "KEY"))
    a = ap.parse_args()
    if a.child_import:
        child_import(*a.child_import)
        return 0
    if a.child_serve:
        child_serve(a.child_serve[0], int(a.child_serve[1]), a.child_serve[2])
        return 0

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    extract = work / f"PS_LibreAcces_Personne_activite_{a.rows}.txt"
    if not extract.exists():
        t = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                str(GENERATOR),
                "--rows",
                str(a.rows),
                "--seed",
                "1",
                "--out",
                str(extract),
            ],
            check=True,
        )
        print(
            f"generated {a.rows} lines ({extract.stat().st_size / 1e6:.0f} MB) "
            f"in {time.monotonic() - t:.0f} s"
        )
    db = work / "annuaire.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)

    out = subprocess.run(
        [sys.executable, __file__, "--child-import", str(db), str(extract)],
        check=True,
        capture_output=True,
        text=True,
    )
    imp = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"import: {imp['lignes']} lines -> {imp['ajoutes']} professionals, "
        f"{imp['lignes_rejetees']} rejected, {imp['seconds']:.1f} s wall "
        f"({imp['cpu_seconds']:.1f} s CPU; machine load {imp['load']:.1f} on "
        f"{os.cpu_count()} cores), peak RSS {imp['rss_mb']:.0f} MB, database "
        f"{db.stat().st_size / 1e6:.0f} MB (goals: <= 120 s, <= 500 MB)"
    )
    print(f"  phases (cumulative s): {imp['phases']}")

    fts_db = str(work / "fts.db")
    print(f"raw FTS5 index built in {build_fts(str(db), fts_db):.1f} s (baseline)")

    from dossier_service.directory.search import Directory
    from dossier_service.directory.store import connect

    queries = query_mix(a.queries)
    conn = connect(db)
    directory = Directory(conn)
    for q in queries[:50]:
        directory.search(q)
    server = []
    nonempty = 0
    for q in queries:
        t = time.perf_counter()
        result = directory.search(q)
        server.append((time.perf_counter() - t) * 1000)
        nonempty += bool(result.hits)
    hard = []
    for q in HARD * 5:
        t = time.perf_counter()
        directory.search(q)
        hard.append((time.perf_counter() - t) * 1000)
    conn.close()
    raw, raw_found = fts_times(fts_db, queries)

    port = free_port()
    key = secrets.token_hex(32)  # hex: a token starting with "-" would read as an option
    proc = subprocess.Popen([sys.executable, __file__, "--child-serve", str(db), str(port), key])
    try:
        from dossier_service.auth import issue_session

        http = asyncio.run(
            http_times(port, issue_session(key, "@bench:bench.test", lifetime=3600), queries)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(
        f"queries: {len(queries)} (names, name + city, profession + postcode, 2-letter "
        f"prefixes); with results: directory {nonempty}, raw FTS5 {raw_found}"
    )
    print(summary("search, server-side (Directory)", server))
    print(summary("search, HTTP /api/v1/annuaire", http))
    print(summary("raw FTS5 MATCH … ORDER BY rank", raw))
    print(summary(f"hard queries x5 ({len(HARD)}, not in mix)", hard))
    kinds: dict[str, list[float]] = {
        "names": [],
        "name + city": [],
        "profession + postcode": [],
        "2-letter prefix": [],
    }
    for i, t in enumerate(server):
        kinds[query_kind(i)].append(t)
    for i, t in enumerate(raw):
        kinds.setdefault("fts " + query_kind(i), []).append(t)
    for label, times in kinds.items():
        print("  " + summary(label, times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
