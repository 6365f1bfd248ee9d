"""What a directory search answers: professionals with their places of practice, a page of
them, and their JSON shape for the API (French keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .display import display_name, title_case
from .query import ParsedQuery


@dataclass(frozen=True)
class Practice:
    specialty: str
    mode: str
    structure: str
    address: str
    postcode: str
    city: str
    dept: str
    phone: str
    email: str


@dataclass(frozen=True)
class Hit:
    national_id: str
    civility: str
    last_name: str
    first_name: str
    profession_code: str
    profession: str
    practices: tuple[Practice, ...]
    mxid: str | None
    exact: bool

    @property
    def city(self) -> str:
        return title_case(self.practices[0].city) if self.practices else ""

    @property
    def specialty(self) -> str:
        return next((p.specialty for p in self.practices if p.specialty), "")

    @property
    def display_name(self) -> str:
        return display_name(
            self.last_name,
            self.first_name,
            self.profession,
            self.practices[0].city if self.practices else "",
            self.specialty,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.national_id,
            "civilite": self.civility,
            "nom": self.last_name,
            "prenom": self.first_name,
            "profession": self.profession,
            "code_profession": self.profession_code,
            "specialite": self.specialty,
            "nom_affiche": self.display_name,
            "compte_matrix": self.mxid,
            "nom_exact": self.exact,
            "exercices": [
                {
                    "specialite": p.specialty,
                    "mode": p.mode,
                    "structure": p.structure,
                    "adresse": p.address,
                    "code_postal": p.postcode,
                    "ville": title_case(p.city),
                    "departement": p.dept,
                    "telephone": p.phone,
                    "email": p.email,
                }
                for p in self.practices
            ],
        }


@dataclass(frozen=True)
class SearchResult:
    query: ParsedQuery
    hits: list[Hit]
    total: int
    more: bool  # total is a lower bound (more than COUNT_CAP)
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def as_json(self) -> dict[str, Any]:
        q = self.query
        return {
            "resultats": [h.as_json() for h in self.hits],
            "total": self.total,
            "total_minimum": self.more,
            "page": self.page,
            "par_page": self.per_page,
            "pages": self.pages,
            "requete": {
                "noms": list(q.names),
                "emails": list(q.emails),
                "professions": list(q.professions),
                "specialites": list(q.specialties),
                "modes": list(q.modes),
                "lieu": None
                if q.place is None
                else {
                    "type": q.place.kind,
                    "valeur": q.place.label,
                    "departements": list(q.place.depts),
                },
            },
        }
