"""Fixtures of the page tests: the real app on a fresh migrated database, people
signed in with real session cookies, files seeded through the core's services.

Tests reach the constants through the ``site`` fixture (``site.COORD`` …)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dossier_service import appkeys, auth
from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.models.circle import CircleMember
from dossier_service.models.patient import Patient
from dossier_service.policy import Principal
from dossier_service.schemas import CircleMemberIn, PatientCreate
from dossier_service.services import circle, patients

REPO = Path(__file__).resolve().parents[3]
SERVER = "cercle.test"
ELEMENT_ORIGIN = "https://element.cercle.test"
COORD = "@coord:cercle.test"
NURSE = "@ide:cercle.test"
NO_ACCESS = "@aidant:cercle.test"
OUTSIDER = "@autre:cercle.test"
ADMIN = "@admin:cercle.test"
# the patient of the browser tests, as the new-file form fills her identity
MME_DURAND: dict[str, Any] = {
    "label": "Mme D. — Minimes",
    "birth_name": "DURAND",
    "sex": "F",
    "birth_first_names": ["Marie"],
    "birth_date": "1940-11-20",
}


async def open_file(
    session: Any,
    by: str,
    today: date,
    *,
    members: Sequence[dict[str, Any]] = (),
    **fields: Any,
) -> Patient:
    """A patient file opened by ``by`` through the core's services, from the form's fields,
    then ``members`` (the circle form's fields) added to its care circle."""
    patient = await patients.create_patient(
        session,
        principal=Principal(by),
        today=today,
        data=PatientCreate.model_validate(fields, strict=False),
    )
    for member in members:
        await circle.add_member(
            session,
            principal=Principal(by),
            patient=patient,
            data=CircleMemberIn.model_validate(member, strict=False),
        )
    return patient


async def file_opened_today(app: Any, by: str, **fields: Any) -> Patient:
    """A patient file opened today by ``by`` (``open_file``) in a transaction of its own."""
    async with app[appkeys.DATABASE].transaction() as session:
        return await open_file(session, by, date.today(), **fields)


def make_config(tmp_path: Path, **overrides: Any) -> DossierConfig:
    values: dict[str, Any] = dict(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        documents_dir=tmp_path / "documents",
        homeserver_url="http://127.0.0.1:9",
        server_name=SERVER,
        session_key="clé-de-session-de-test-" + "x" * 16,
        service_token="jeton-de-service-de-test-" + "y" * 16,
        element_origin=ELEMENT_ORIGIN,
        documents_max_size=200_000,
        admins=frozenset({ADMIN}),
        forms_dir=REPO / "config" / "forms",
    )
    values.update(overrides)
    return DossierConfig(**values)


@dataclass
class Person:
    user_id: str
    cookie: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{auth.SESSION_COOKIE}={self.cookie}"}


@dataclass
class Site:
    client: TestClient
    config: DossierConfig
    COORD = COORD
    NURSE = NURSE
    NO_ACCESS = NO_ACCESS
    OUTSIDER = OUTSIDER
    ADMIN = ADMIN
    ELEMENT_ORIGIN = ELEMENT_ORIGIN

    def person(self, user_id: str) -> Person:
        token = auth.issue_session(self.config.session_key, user_id, lifetime=3600)
        session = auth.read_session(self.config.session_key, token)
        assert session is not None
        return Person(user_id, token, auth.csrf_token(self.config.session_key, session))

    @property
    def db(self) -> Any:
        return self.client.server.app[appkeys.DATABASE]  # type: ignore[union-attr]

    async def get(self, who: Person | None, path: str, **kw: Any) -> tuple[int, str, Any]:
        resp = await self.client.get(
            path, headers=who.headers if who else {}, allow_redirects=False, **kw
        )
        return resp.status, await resp.text(), resp

    async def post(
        self, who: Person, path: str, data: Any, *, csrf: bool = True, **kw: Any
    ) -> tuple[int, str, Any]:
        if csrf and isinstance(data, dict):
            data = {"csrf_token": who.csrf, **data}
        resp = await self.client.post(
            path, data=data, headers=who.headers, allow_redirects=False, **kw
        )
        return resp.status, await resp.text(), resp

    async def seed_patient(self, label: str = "Dossier Durand", **identity: Any) -> Patient:
        """A file opened by COORD, with NURSE (access) and NO_ACCESS (no access) in its circle."""
        async with self.db.transaction() as session:
            patient = await open_file(
                session,
                COORD,
                date(2026, 11, 25),
                members=[
                    {
                        "kind": "professionnel" if access else "aidant",
                        "display_name": name,
                        "matrix_user_id": user,
                        "role": role,
                        "has_access": access,
                    }
                    for user, role, access, name in (
                        (NURSE, "intervenant", True, "Inès Dupont"),
                        (NO_ACCESS, "aidant_principal", False, "Paul Durand"),
                    )
                ],
                **{"label": label, "coordinator_name": "Camille Coord", **identity},
            )
        return patient

    async def members(self, patient_id: str) -> list[CircleMember]:
        async with self.db.transaction() as session:
            return await circle.list_members(session, patient_id=patient_id, include_ended=True)

    @staticmethod
    def location(resp: Any) -> str:
        return str(resp.headers.get("Location", ""))

    @staticmethod
    def text_of(html: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
async def site(
    database_url: str, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> AsyncIterator[Site]:
    """The pages on a fresh, migrated database: SQLite, and PostgreSQL (``database_url`` of
    ``tests/dossier_service/conftest.py`` runs each page test on both)."""
    config = make_config(tmp_path, database_url=database_url)
    client = await aiohttp_client(create_app(config))
    yield Site(client=client, config=config)
