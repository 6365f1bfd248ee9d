"""The activity figures of a structure or a platform over a period (pure).

Input: plain facts read from the dossier (files and their status changes, care-circle changes,
message counts per patient room and day, flags with their first acknowledgement, tasks,
exports, hospitalisations). Output: :class:`Extraction`, one table per theme plus a summary,
and monthly series for the charts. Counts only: no message, note or document content ever
reaches here. A patient appears by the file's label only when the requester is in that
patient's care circle (``visible``); otherwise as « Dossier n°k », numbered in the order of
the extraction and meaningless outside it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from statistics import median_low

from deployment.conventions import FRENCH_MONTHS, PARIS


@dataclass(frozen=True)
class Period:
    """Both ends included, in Paris days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("La fin de la période précède son début.")

    def holds(self, at: datetime | date) -> bool:
        if isinstance(at, datetime):  # compared as instants: no time zone arithmetic per fact
            first, after = self.instants
            return first <= at < after
        return self.start <= at <= self.end

    @cached_property
    def instants(self) -> tuple[datetime, datetime]:
        """[the first day's Paris midnight, the midnight after the last day), in UTC."""
        first = datetime.combine(self.start, time.min, PARIS).astimezone(UTC)
        after = datetime.combine(self.end + timedelta(days=1), time.min, PARIS).astimezone(UTC)
        return first, after

    def months(self) -> list[str]:
        out, year, month = [], self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


@dataclass(frozen=True, slots=True)  # hundreds of thousands in a platform's year
class FileFact:
    patient_id: str
    label: str
    opened_at: datetime
    # (status, changed_at) in time order; "clos" closes the file, another status reopens it
    status_changes: tuple[tuple[str, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class CircleChange:
    patient_id: str
    at: datetime
    change: str  # "ajout" | "retrait"
    member_kind: str  # "professionnel", "structure", "aidant", …


@dataclass(frozen=True, slots=True)
class RoomMessages:
    patient_id: str
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class FlagFact:
    patient_id: str
    kind: str  # "urgent", "demande", "a_traiter"
    raised_at: datetime
    first_ack_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskFact:
    patient_id: str | None
    created_at: datetime
    closed_at: datetime | None = None
    due: date | None = None


@dataclass(frozen=True, slots=True)
class ExportFact:
    patient_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HospitalisationFact:
    patient_id: str
    admission_at: datetime
    discharge_at: datetime | None = None


@dataclass(frozen=True)
class Facts:
    files: Sequence[FileFact] = ()
    circle: Sequence[CircleChange] = ()
    messages: Sequence[RoomMessages] = ()
    flags: Sequence[FlagFact] = ()
    tasks: Sequence[TaskFact] = ()
    exports: Sequence[ExportFact] = ()
    hospitalisations: Sequence[HospitalisationFact] = ()


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str | int | float | None]] = field(default_factory=list)


@dataclass
class Extraction:
    scope: str  # "la structure X" / "toute la plateforme"
    period: Period
    made_at: datetime
    summary: list[tuple[str, str | int | float | None]]
    tables: list[Table]
    # theme → (month labels, values), for the charts
    monthly: dict[str, tuple[list[str], list[int]]]

    @property
    def title(self) -> str:
        return (
            f"Document d'extraction brute des données pour {self.scope} réalisée le "
            f"{_fr_day(self.made_at.astimezone(PARIS).date())}. Période du "
            f"{_fr_day(self.period.start)} au {_fr_day(self.period.end)}"
        )


CLOSED = "clos"


def extract(
    facts: Facts,
    period: Period,
    *,
    scope: str,
    visible: Mapping[str, str],
    made_at: datetime,
    today: date | None = None,
) -> Extraction:
    """``visible``: patient id → label, for the patients whose circle holds the requester."""
    today = today or made_at.astimezone(PARIS).date()
    names = _Names(visible)
    in_period = period.holds

    followed = _followed(facts.files, period)
    for pid in sorted(followed, key=lambda p: followed[p]):
        names.name(pid)
    opened = [f for f in facts.files if in_period(f.opened_at)]
    closures = [
        (f.patient_id, at)
        for f in facts.files
        for status, at in f.status_changes
        if status == CLOSED and in_period(at)
    ]

    circle = [c for c in facts.circle if in_period(c.at)]
    messages = [m for m in facts.messages if in_period(m.day)]
    flags = [f for f in facts.flags if in_period(f.raised_at)]
    tasks_created = [t for t in facts.tasks if in_period(t.created_at)]
    tasks_done = [t for t in facts.tasks if t.closed_at is not None and in_period(t.closed_at)]
    overdue = [
        t
        for t in facts.tasks
        if t.due is not None
        and t.due < min(today, period.end + timedelta(days=1))
        and (t.closed_at is None or t.closed_at.astimezone(PARIS).date() > t.due)
        and t.created_at.astimezone(PARIS).date() <= period.end
    ]
    exports = [e for e in facts.exports if in_period(e.at)]
    stays = [h for h in facts.hospitalisations if in_period(h.admission_at)]

    urgent = [f for f in flags if f.kind == "urgent"]
    delays = sorted(
        (f.first_ack_at - f.raised_at).total_seconds() / 60
        for f in urgent
        if f.first_ack_at is not None
    )
    median_delay = round(median_low(delays), 1) if delays else None
    p90_delay = round(_percentile(delays, 0.9), 1) if delays else None

    summary: list[tuple[str, str | int | float | None]] = [
        ("Patients suivis", len(followed)),
        ("Dossiers ouverts", len(opened)),
        ("Dossiers clos", len(closures)),
        ("Ajouts au cercle de soins", sum(c.change == "ajout" for c in circle)),
        ("Retraits du cercle de soins", sum(c.change == "retrait" for c in circle)),
        ("Messages échangés", sum(m.count for m in messages)),
        ("Signalements", len(flags)),
        ("dont urgences", len(urgent)),
        ("Urgences sans prise en compte", sum(f.first_ack_at is None for f in urgent)),
        ("Délai médian urgence → première prise en compte (min)", median_delay),
        ("Délai 90e centile urgence → première prise en compte (min)", p90_delay),
        ("Tâches créées", len(tasks_created)),
        ("Tâches terminées", len(tasks_done)),
        ("Tâches en retard", len(overdue)),
        ("Exports", len(exports)),
        ("Hospitalisations", len(stays)),
    ]

    per_patient: dict[str, Counter[str]] = defaultdict(Counter)
    for m in messages:
        per_patient[m.patient_id]["messages"] += m.count
    for f in flags:
        per_patient[f.patient_id]["signalements"] += 1
    for t in tasks_created:
        if t.patient_id:
            per_patient[t.patient_id]["taches"] += 1
    for e in exports:
        per_patient[e.patient_id]["exports"] += 1
    for h in stays:
        per_patient[h.patient_id]["hospitalisations"] += 1
    patients = Table(
        "Patients",
        [
            "Dossier",
            "Suivi depuis",
            "Messages",
            "Signalements",
            "Tâches",
            "Exports",
            "Hospitalisations",
        ],
    )
    for pid in names.order(set(followed) | set(per_patient)):
        counts = per_patient.get(pid, Counter())
        since = followed.get(pid)
        patients.rows.append(
            [
                names.name(pid),
                since.isoformat() if since else None,
                counts["messages"],
                counts["signalements"],
                counts["taches"],
                counts["exports"],
                counts["hospitalisations"],
            ]
        )

    files = Table("Dossiers", ["Dossier", "Évènement", "Date"])
    for file in opened:
        files.rows.append([names.name(file.patient_id), "ouverture", _day(file.opened_at)])
    for pid, at in closures:
        files.rows.append([names.name(pid), "clôture", _day(at)])
    files.rows.sort(key=lambda r: (str(r[2]), str(r[0])))

    circle_table = Table("Cercle de soins", ["Dossier", "Changement", "Membre", "Date"])
    for c in sorted(circle, key=lambda c: c.at):
        circle_table.rows.append([names.name(c.patient_id), c.change, c.member_kind, _day(c.at)])

    message_table = Table("Messages", ["Dossier", "Jour", "Messages"])
    for m in sorted(messages, key=lambda m: (m.day, names.name(m.patient_id))):
        message_table.rows.append([names.name(m.patient_id), m.day.isoformat(), m.count])

    flag_table = Table(
        "Signalements",
        ["Dossier", "Type", "Levé le", "Première prise en compte", "Délai (min)"],
    )
    for f in sorted(flags, key=lambda f: f.raised_at):
        delay = (
            round((f.first_ack_at - f.raised_at).total_seconds() / 60, 1)
            if f.first_ack_at
            else None
        )
        flag_table.rows.append(
            [
                names.name(f.patient_id),
                f.kind,
                _stamp(f.raised_at),
                _stamp(f.first_ack_at) if f.first_ack_at else None,
                delay,
            ]
        )

    task_table = Table("Tâches", ["Indicateur", "Nombre"])
    task_table.rows = [
        ["créées", len(tasks_created)],
        ["terminées", len(tasks_done)],
        ["en retard", len(overdue)],
    ]
    export_table = Table("Exports", ["Dossier", "Date"])
    for e in sorted(exports, key=lambda e: e.at):
        export_table.rows.append([names.name(e.patient_id), _day(e.at)])
    stay_table = Table("Hospitalisations", ["Dossier", "Entrée", "Sortie"])
    for h in sorted(stays, key=lambda h: h.admission_at):
        stay_table.rows.append(
            [
                names.name(h.patient_id),
                _day(h.admission_at),
                _day(h.discharge_at) if h.discharge_at else None,
            ]
        )

    months = period.months()
    monthly = {
        "Messages": (months, _by_month(months, ((m.day, m.count) for m in messages))),
        "Signalements": (months, _by_month(months, ((f.raised_at, 1) for f in flags))),
        "Tâches créées": (months, _by_month(months, ((t.created_at, 1) for t in tasks_created))),
        "Dossiers ouverts": (months, _by_month(months, ((f.opened_at, 1) for f in opened))),
    }
    return Extraction(
        scope=scope,
        period=period,
        made_at=made_at,
        summary=summary,
        tables=[
            patients,
            files,
            circle_table,
            message_table,
            flag_table,
            task_table,
            export_table,
            stay_table,
        ],
        monthly=monthly,
    )


def _followed(files: Iterable[FileFact], period: Period) -> dict[str, date]:
    """Files open at some moment of the period → the day their follow-up began."""
    out: dict[str, date] = {}
    end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), PARIS)
    start = datetime.combine(period.start, datetime.min.time(), PARIS)
    for f in files:
        if f.opened_at >= end:
            continue
        open_ = True
        open_during = False
        last = f.opened_at
        for status, at in f.status_changes:
            if at >= start and open_ and last < end:
                open_during = True
            open_ = status != CLOSED
            last = at
        if open_ and last < end:
            open_during = True
        if open_during:
            out[f.patient_id] = f.opened_at.astimezone(PARIS).date()
    return out


def _by_month(months: list[str], dated: Iterable[tuple[datetime | date, int]]) -> list[int]:
    index = {m: i for i, m in enumerate(months)}
    firsts = (
        [  # each month's first Paris midnight, in UTC, and the one after the last month
            datetime(int(m[:4]), int(m[5:7]), 1, tzinfo=PARIS).astimezone(UTC)
            for m in (*months, _next_month(months[-1]))
        ]
        if months
        else []
    )
    values = [0] * len(months)
    for at, n in dated:
        if isinstance(at, datetime):
            i = bisect_right(firsts, at) - 1
            if 0 <= i < len(months):
                values[i] += n
            continue
        j = index.get(f"{at.year:04d}-{at.month:02d}")
        if j is not None:
            values[j] += n
    return values


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + 1:04d}-01" if number == 12 else f"{year:04d}-{number + 1:02d}"


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ordered, non-empty sequence."""
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]


class _Names:
    def __init__(self, visible: Mapping[str, str]) -> None:
        self._visible = visible
        self._numbers: dict[str, int] = {}
        self._names: dict[str, str] = {}

    def name(self, patient_id: str) -> str:
        known = self._names.get(patient_id)
        if known is not None:
            return known
        label = self._visible.get(patient_id)
        if not label:
            number = self._numbers.setdefault(patient_id, len(self._numbers) + 1)
            label = f"Dossier n°{number}"
        self._names[patient_id] = label
        return label

    def order(self, ids: Iterable[str]) -> list[str]:
        return sorted(
            ids,
            key=lambda p: (
                self.name(p).startswith("Dossier n°"),
                self._numbers.get(p, 0),
                self.name(p),
            ),
        )


def _day(at: datetime) -> str:
    return at.astimezone(PARIS).date().isoformat()


def _stamp(at: datetime) -> str:
    return at.astimezone(PARIS).isoformat(" ", "minutes")[:16]  # strftime: ten times slower


def _fr_day(day: date) -> str:
    return f"{day.day} {FRENCH_MONTHS[day.month - 1]} {day.year}"
