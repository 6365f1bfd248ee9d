"""The directory of professionals ("annuaire"), in the dossier's database (issue 14 item 5).

The public RPPS extract is imported into ``annuaire_professional`` / ``annuaire_activity``;
``annuaire_search_key`` holds one row per (name token x place of practice) so that a name
prefix together with a place, profession or specialty is one range scan of a covering index
(a token is "<name token> <the other name>": "martin marie", "marie martin");
``annuaire_commune`` is the gazetteer the query parser uses. ``annuaire_account_link``,
``annuaire_account_request``, ``annuaire_activation`` and ``annuaire_audit`` belong to account
requests.

Tokens are compared as code points (the search's ranges end at U+10FFFF): SQLite's default
BINARY collation does so, PostgreSQL needs ``COLLATE "C"`` on ``token``.

A second kind of entry (structures, FINESS, issue 18) fits beside professionals: its own
table keyed by its FINESS number, its own search keys, the same gazetteer and the same
import runs (``annuaire_import_run.kind``); accounts and requests stay per professional.
The search reads these tables with plain SQL through :mod:`dossier_service.directory.database`
(a range scan per word, measured in ``bench/annuaire.py``); the schema is declared here and
changed only through Alembic.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# code point order on both engines (see the module's docstring)
TOKEN = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_PLACE = ("dept", "commune_code", "postcode", "profession_code", "specialty_code", "mode_code")
_ACTIVITY_PLACE = (
    "dept",
    "profession_code",
    "commune_code",
    "postcode",
    "specialty_code",
    "mode_code",
    "professional_id",
)
# the partial indexes of the rows of a professional linked to a Matrix account
_LINKED_ONLY: dict[str, Any] = {
    "sqlite_where": sa.text("linked = 1"),
    "postgresql_where": sa.text("linked = 1"),
}


class ImportRun(SQLModel, table=True):
    __tablename__ = "annuaire_import_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(
        default="rpps", sa_type=sa.Text, sa_column_kwargs={"server_default": "rpps"}
    )  # issue 18: "finess" beside it
    file_name: str = Field(sa_type=sa.Text)
    started_at: str = Field(sa_type=sa.Text)  # ISO 8601 UTC
    finished_at: str | None = Field(default=None, sa_type=sa.Text)
    lines: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    added: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    updated: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    unchanged: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    deactivated: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    rejected: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ImportedEntry(SQLModel):
    """What an import run keeps of each entry it reads (a professional, a structure): how it
    sorts, the digest that tells an unchanged line, the last run that saw it (an entry no
    longer seen is deactivated, ``ImportRun.deactivate_absent``), when it last changed."""

    sort_key: str = Field(sa_type=sa.Text)
    content_hash: bytes = Field(sa_type=sa.LargeBinary)
    seen_run: int
    active: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    updated_at: str = Field(sa_type=sa.Text)


class Professional(ImportedEntry, table=True):
    __tablename__ = "annuaire_professional"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    national_id: str = Field(sa_type=sa.Text, unique=True)
    id_type: str = Field(sa_type=sa.Text)
    civility: str = Field(sa_type=sa.Text)
    last_name: str = Field(sa_type=sa.Text)
    first_name: str = Field(sa_type=sa.Text)
    profession_code: str = Field(sa_type=sa.Text)
    profession: str = Field(sa_type=sa.Text)


class Activity(SQLModel, table=True):
    """One place of practice of a professional."""

    __tablename__ = "annuaire_activity"
    __table_args__ = (
        sa.Index("ix_annuaire_activity_professional", "professional_id"),
        sa.Index("ix_annuaire_activity_finess", "finess"),
        sa.Index("ix_annuaire_activity_siret", "siret"),
        sa.Index("ix_annuaire_activity_place", *_ACTIVITY_PLACE),
        sa.Index("ix_annuaire_activity_linked", *_ACTIVITY_PLACE, **_LINKED_ONLY),
    )

    id: int | None = Field(default=None, primary_key=True)
    professional_id: int = Field(foreign_key="annuaire_professional.id")
    profession_code: str = Field(sa_type=sa.Text)
    specialty_code: str = Field(sa_type=sa.Text)
    specialty: str = Field(sa_type=sa.Text)
    mode_code: str = Field(sa_type=sa.Text)
    mode: str = Field(sa_type=sa.Text)
    structure: str = Field(sa_type=sa.Text)
    address: str = Field(sa_type=sa.Text)
    postcode: str = Field(sa_type=sa.Text)
    commune_code: str = Field(sa_type=sa.Text)
    city: str = Field(sa_type=sa.Text)
    dept: str = Field(sa_type=sa.Text)
    phone: str = Field(sa_type=sa.Text)
    email: str = Field(sa_type=sa.Text)
    # issue 18: the site's SIRET / FINESS numbers (a linked professional is a member of the
    # structure they name)
    siret: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    finess: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    # flagged while the professional is linked to a Matrix account (partial index above)
    linked: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class SearchKey(SQLModel, table=True):
    """One row per (name token x place of practice); covering indexes answer a search."""

    __tablename__ = "annuaire_search_key"
    __table_args__ = (
        sa.Index("ix_annuaire_key_token", "token", *_PLACE),
        sa.Index("ix_annuaire_key_place", "dept", "token", *_PLACE[1:]),
        sa.Index("ix_annuaire_key_linked", "token", *_PLACE, **_LINKED_ONLY),
        {"sqlite_with_rowid": False},
    )

    professional_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    token: str = Field(sa_type=TOKEN)
    dept: str = Field(sa_type=sa.Text)
    commune_code: str = Field(sa_type=sa.Text)
    postcode: str = Field(sa_type=sa.Text)
    profession_code: str = Field(sa_type=sa.Text)
    specialty_code: str = Field(sa_type=sa.Text)
    mode_code: str = Field(sa_type=sa.Text)
    linked: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Commune(SQLModel, table=True):
    """The gazetteer: communes and postcodes seen in the imported practices."""

    __tablename__ = "annuaire_commune"
    __table_args__ = ({"sqlite_with_rowid": False},)

    commune_code: str = Field(sa_type=sa.Text, primary_key=True)
    postcode: str = Field(sa_type=sa.Text, primary_key=True)
    dept: str = Field(sa_type=sa.Text)
    name: str = Field(sa_type=sa.Text)
    name_key: str = Field(sa_type=sa.Text)


class AccountLink(SQLModel, table=True):
    """A Matrix account known to be a professional's."""

    __tablename__ = "annuaire_account_link"

    mxid: str = Field(sa_type=sa.Text, primary_key=True)
    national_id: str = Field(sa_type=sa.Text, unique=True)
    source: str = Field(sa_type=sa.Text)
    linked_at: str = Field(sa_type=sa.Text)


class AccountRequest(SQLModel, table=True):
    """A "Demander un compte" form, waiting for (or after) an administrator's decision."""

    __tablename__ = "annuaire_account_request"
    __table_args__ = (
        sa.Index("ix_annuaire_request_status", "status", "id"),
        sa.Index("ix_annuaire_request_finess", "finess", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: str = Field(sa_type=sa.Text)
    status: str = Field(sa_type=sa.Text)
    last_name: str = Field(sa_type=sa.Text)
    first_name: str = Field(sa_type=sa.Text)
    identifier: str = Field(sa_type=sa.Text)
    profession: str = Field(sa_type=sa.Text)
    structure: str = Field(sa_type=sa.Text)
    email: str = Field(sa_type=sa.Text)
    phone: str = Field(sa_type=sa.Text)
    consent_at: str = Field(sa_type=sa.Text)
    match: str = Field(sa_type=sa.Text)
    match_detail: str = Field(sa_type=sa.Text)
    national_id: str | None = Field(default=None, sa_type=sa.Text)
    decided_at: str | None = Field(default=None, sa_type=sa.Text)
    decided_by: str | None = Field(default=None, sa_type=sa.Text)
    refusal_reason: str | None = Field(default=None, sa_type=sa.Text)
    mxid: str | None = Field(default=None, sa_type=sa.Text)
    # issue 18: a professional without RPPS names a FINESS structure and a social role
    # (``identifier`` is then empty); its referents decide it beside the admins
    finess: str | None = Field(default=None, sa_type=sa.Text)
    social_role: str | None = Field(default=None, sa_type=sa.Text)


class Activation(SQLModel, table=True):
    """A one-time activation link (its token stored as SHA-256)."""

    __tablename__ = "annuaire_activation"

    token_hash: str = Field(sa_type=sa.Text, primary_key=True)
    request_id: int = Field(foreign_key="annuaire_account_request.id")
    mxid: str = Field(sa_type=sa.Text)
    created_at: str = Field(sa_type=sa.Text)
    expires_at: str = Field(sa_type=sa.Text)
    used_at: str | None = Field(default=None, sa_type=sa.Text)


class DirectoryAudit(SQLModel, table=True):
    """Who did what to requests and links (not patient files: those use ``audit_log``)."""

    __tablename__ = "annuaire_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: str = Field(sa_type=sa.Text)
    actor: str = Field(sa_type=sa.Text)
    action: str = Field(sa_type=sa.Text)
    target: str = Field(sa_type=sa.Text)
    detail: str = Field(default="{}", sa_type=sa.Text, sa_column_kwargs={"server_default": "{}"})


# the secondary indexes a first bulk import drops and rebuilds (faster than maintaining them)
BULK_INDEXES = ("ix_annuaire_key_token", "ix_annuaire_key_place", "ix_annuaire_activity_place")


class Structure(ImportedEntry, table=True):
    """An establishment of the FINESS extract (issue 18), keyed by its FINESS number."""

    __tablename__ = "annuaire_structure"
    __table_args__ = (
        sa.Index("ix_annuaire_structure_siret", "siret"),
        sa.Index("ix_annuaire_structure_legal", "legal_finess"),
    )

    finess: str = Field(sa_type=sa.Text, primary_key=True)
    legal_finess: str = Field(sa_type=sa.Text)
    name: str = Field(sa_type=sa.Text)
    long_name: str = Field(sa_type=sa.Text)
    address: str = Field(sa_type=sa.Text)
    postcode: str = Field(sa_type=sa.Text)
    city: str = Field(sa_type=sa.Text)
    commune_code: str = Field(sa_type=sa.Text)  # INSEE code (département + commune)
    dept: str = Field(sa_type=sa.Text)
    phone: str = Field(sa_type=sa.Text)
    category_code: str = Field(sa_type=sa.Text)
    category: str = Field(sa_type=sa.Text)
    aggregate: str = Field(sa_type=sa.Text)
    siret: str = Field(sa_type=sa.Text)
    x: float | None = None  # Lambert 93
    y: float | None = None


class StructureKey(SQLModel, table=True):
    """One row per (word of the structure's names); a covering index answers a search."""

    __tablename__ = "annuaire_structure_key"
    __table_args__ = (
        sa.Index("ix_annuaire_structure_key_token", "token", "dept", "category_code", "finess"),
        {"sqlite_with_rowid": False},
    )

    finess: str = Field(sa_type=sa.Text, primary_key=True)
    token: str = Field(sa_type=TOKEN, primary_key=True)
    dept: str = Field(sa_type=sa.Text)
    category_code: str = Field(sa_type=sa.Text)
