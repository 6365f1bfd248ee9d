"""Fixtures of the dossier service tests: a fresh database per test (SQLite, and PostgreSQL
for tests marked or parametrised ``postgres``), the real app, and callers of every kind."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dossier_service import auth
from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.migrate import upgrade

PROJECT = Path(__file__).resolve().parents[2]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICE_TOKEN = "service-token-" + "x" * 20
SESSION_KEY = "session-key-for-tests"
ADMIN = "@admin:cercle.test"
COORD = "@coord:cercle.test"
MEMBER = "@member:cercle.test"
NOACCESS = "@noaccess:cercle.test"
OUTSIDER = "@outsider:cercle.test"


# ----------------------------------------------------------------------------- databases
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (a fresh database per test)."""
    path = tmp_path_factory.mktemp("dossier-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated once, used as a template and
    dropped at the end."""
    name = f"cercle_dossier_tpl_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except OSError:
        pytest.skip("PostgreSQL injoignable sur 127.0.0.1:5432")
    asyncio.run(upgrade(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"))
    yield name
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        target = tmp_path / "dossier.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"cercle_dossier_t_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def test_config(database_url: str, tmp_path: Path) -> DossierConfig:
    return DossierConfig(
        database_url=database_url,
        documents_dir=tmp_path / "documents",
        homeserver_url="http://127.0.0.1:9",
        server_name="cercle.test",
        session_key=SESSION_KEY,
        service_token=SERVICE_TOKEN,
        admins=frozenset({ADMIN}),
        documents_max_size=256 * 1024,
        json_max_size=64 * 1024,
        forms_dir=PROJECT / "config" / "forms",
    )


# ----------------------------------------------------------------------------- callers
def session_headers(user_id: str) -> dict[str, str]:
    token = auth.issue_session(SESSION_KEY, user_id, lifetime=3600)
    return {"Authorization": f"Bearer {token}"}


def service_headers(on_behalf_of: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    if on_behalf_of:
        headers["X-Cercle-On-Behalf-Of"] = on_behalf_of
    return headers


@dataclass
class Api:
    """The real app behind a test client, with one helper per kind of caller."""

    client: TestClient[Any, Any]
    app: web.Application

    async def call(
        self,
        method: str,
        path: str,
        *,
        as_user: str | None = None,
        service: bool = False,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        h: dict[str, str] = {}
        if service:
            h.update(service_headers())
        elif as_user:
            h.update(session_headers(as_user))
        h.update(headers or {})
        resp = await self.client.request(method, path, json=json, data=data, headers=h)
        body: Any
        if resp.content_type == "application/json":
            body = await resp.json()
        else:
            body = await resp.read()
        return resp.status, body

    async def ok(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        status, body = await self.call(method, path, **kw)
        assert status == expect, (status, body)
        return body

    async def refused(self, method: str, path: str, status: int, **kw: Any) -> Any:
        """`method` on `path` must be refused with `status` (4xx or 5xx); the body it returns."""
        assert status >= 400, status
        return await self.ok(method, path, status, **kw)

    async def created(self, path: str, json: Any, **kw: Any) -> Any:
        """POST `json` to `path`, which must answer 201 Created; the body it returns."""
        return await self.ok("POST", path, 201, json=json, **kw)

    async def new_patient(self, coordinator: str = COORD, **identity: Any) -> str:
        body = await self.created(
            "/api/v1/patients", {"label": "Patient test", **identity}, as_user=coordinator
        )
        return str(body["id"])

    async def add_member(
        self,
        pid: str,
        user_id: str,
        *,
        role: str = "intervenant",
        has_access: bool = True,
        by: str = COORD,
    ) -> dict[str, Any]:
        body = await self.created(
            f"/api/v1/patients/{pid}/circle",
            {
                "kind": "professionnel",
                "display_name": user_id[1:].split(":")[0].title(),
                "matrix_user_id": user_id,
                "profession": "Infirmier",
                "role": role,
                "has_access": has_access,
            },
            as_user=by,
        )
        return dict(body)

    async def patient_with_circle(self) -> str:
        """A file with a coordinator, a member with access and one without."""
        pid = await self.new_patient()
        await self.add_member(pid, MEMBER)
        await self.add_member(pid, NOACCESS, has_access=False)
        return pid

    async def count(self, table: str, where: str = "") -> int:
        from sqlalchemy import text

        from dossier_service import appkeys

        db = self.app[appkeys.DATABASE]
        async with db.sessions() as session:
            result = await session.execute(text(f"SELECT count(*) FROM {table} {where}"))
            return int(result.scalar_one())


@pytest.fixture
async def api(test_config: DossierConfig, aiohttp_client: Any) -> AsyncIterator[Api]:
    app = create_app(test_config, with_pages=False)
    client = await aiohttp_client(app)
    yield Api(client=client, app=app)


def with_config(config: DossierConfig, **changes: Any) -> DossierConfig:
    return config.replaced(**changes)


def random_user() -> str:
    return f"@u{secrets.token_hex(4)}:cercle.test"
