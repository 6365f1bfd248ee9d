"""The dossier API declared once: each operation of ``/api/v1`` is one ``Operation`` (method,
path, request body, query parameters, required access, audit action), and routing, the access
check, the audit row and the OpenAPI description are all derived from it
(``api/runner.py`` serves it, ``api/openapi.py`` describes it). A handler only does its work:
it cannot forget its audit row nor drift from its documentation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import FileAccess, query_date, query_datetime, query_int
from dossier_service.api.errors import ApiError
from dossier_service.policy import Action, Principal

if TYPE_CHECKING:
    from dossier_service.api.context import Ctx

T = TypeVar("T")
Reply = tuple[int, Any] | web.StreamResponse
Handler = Callable[["Call", AsyncSession], Awaitable[Reply]]
Before = Callable[["Call"], Awaitable[web.StreamResponse | None]]
RowLoader = Callable[["Call", AsyncSession, Action], Awaitable[None]]


@dataclass(frozen=True)
class Access:
    """Who may call an operation. ``name`` is what the OpenAPI description shows
    (``x-cercle-access``)."""

    name: str
    authenticated: bool = True
    allowed: Callable[[Principal], bool] | None = None  # checked before anything is read
    refusal: str | None = None
    file: Action | None = None  # the file named by the path's {patient_id}
    named_file: Action | None = None  # the file a body's or the query's patient_id names, if any
    row: RowLoader | None = None  # a row outside a file's path (a task, an event)
    row_action: Action | None = None


PUBLIC = Access("public", authenticated=False)
SIGNED_IN = Access("signed_in")
# signed in; and when the request names a file (the body's or the query's patient_id: a task,
# an event may belong to none), the right to read or to write it
READ_NAMED_FILE = Access("signed_in+named_file:read", named_file=Action.READ)
WRITE_NAMED_FILE = Access("signed_in+named_file:write", named_file=Action.WRITE)


def member_of_file(action: Action) -> Access:
    """A member of the file's care circle with the right to ``action`` (or the service)."""
    return Access(f"file:{action.value}", file=action)


def allowed_when(name: str, rule: Callable[[Principal], bool]) -> Access:
    """Signed in, and ``rule(principal)`` holds (coordinators, admins, the service …)."""
    return Access(name, allowed=rule)


def person(refusal: str) -> Access:
    """A person signed in (never the service's token alone)."""
    return Access("person", allowed=lambda p: p.kind == "user", refusal=refusal)


def row_access(name: str, loader: RowLoader, action: Action) -> Access:
    """A row found through ``loader``, which refuses (Denied) when the caller may not."""
    return Access(f"{name}:{action.value}", row=loader, row_action=action)


@dataclass(frozen=True)
class Audit:
    """The audit row every call writes in its own transaction. A handler may make its
    resource more precise (``tasks`` → ``tasks/<id>``), never change its family."""

    action: str
    resource: str


@dataclass(frozen=True)
class Param:
    """One query parameter: parsed (French error on bad input) before any transaction."""

    name: str
    kind: str = "text"  # text | int | flag | date | datetime | choice
    default: Any = None
    low: int = 0
    high: int = 10**9
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    refusal: str = ""

    def parse(self, request: web.Request) -> Any:
        raw = request.query.get(self.name)
        if self.kind == "int":
            return query_int(request, self.name, self.default, low=self.low, high=self.high)
        if self.kind == "flag":
            return raw in ("1", "true")
        if self.kind == "date":
            return query_date(request, self.name)
        if self.kind == "datetime":
            return query_datetime(request, self.name)
        if self.kind == "choice" and raw and raw not in self.choices:
            raise ApiError("M_INVALID_PARAM", self.refusal)
        if self.max_length is not None:
            return (raw or "").strip()[: self.max_length]
        return raw or None

    def schema(self) -> dict[str, Any]:
        if self.kind == "int":
            return {"type": "integer", "minimum": self.low, "maximum": self.high}
        if self.kind == "flag":
            return {"type": "string", "enum": ["0", "1", "true", "false"]}
        if self.kind in ("date", "datetime"):
            return {"type": "string", "format": "date" if self.kind == "date" else "date-time"}
        if self.kind == "choice":
            return {"type": "string", "enum": list(self.choices)}
        return {"type": "string"}


class BodyReader:
    """A request body that is not a JSON model (a multipart upload): ``read`` returns the
    parsed value and the bytes its idempotency fingerprint is made of."""

    async def read(self, call: Call) -> tuple[Any, bytes]:
        raise NotImplementedError

    def openapi(self, request_app: web.Application) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    access: Access
    audit: Audit | None
    handler: Handler | None = None  # inside the request's one transaction
    before: Before | None = None  # before it; may answer alone (then no transaction)
    resource: str = ""  # named in a refusal's audit row; the audit's resource by default
    body: type[BaseModel] | BodyReader | None = None
    query: tuple[Param, ...] = ()
    response: type[BaseModel] | None = None
    idempotent: bool = False  # an Idempotency-Key makes a replay answer the first reply

    def __post_init__(self) -> None:
        if self.method != "GET" and self.audit is None:
            raise TypeError(f"{self.method} {self.path}: une écriture déclare son audit")
        if self.handler is None and (self.before is None or self.audit is not None):
            raise TypeError(f"{self.method} {self.path}: rien à exécuter")
        if (self.access.file is not None) != ("{patient_id}" in self.path):
            raise TypeError(f"{self.method} {self.path}: l'accès au dossier suit le chemin")
        if self.access.named_file is not None and not self.names_file:
            raise TypeError(f"{self.method} {self.path}: aucun patient_id ne nomme le dossier")

    @property
    def names_file(self) -> bool:
        """A ``patient_id`` in the query or the JSON body may name a file."""
        in_body = isinstance(self.body, type) and "patient_id" in self.body.model_fields
        return in_body or any(param.name == "patient_id" for param in self.query)

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def refused_resource(self) -> str:
        return self.resource or (self.audit.resource if self.audit else "")

    @property
    def function(self) -> Callable[..., Any]:
        function = self.handler or self.before
        assert function is not None
        return function

    @property
    def operation_id(self) -> str:
        return f"{self.method.lower()}_{self.function.__name__}"

    @property
    def summary(self) -> str:
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.function.__name__.replace("_", " ")


@dataclass
class Call:
    """One call of an operation: what the runner parsed and checked, and what the handler
    tells the audit row."""

    op: Operation
    request: web.Request
    context: Ctx | None
    principal: Principal | None
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    raw: bytes = b""
    file: FileAccess | None = None
    row: Any = None
    audit_resource: str = ""
    audit_patient_id: str | None = None
    audited: bool = True
    state: dict[str, Any] = field(default_factory=dict)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def ctx(self) -> Ctx:
        assert self.context is not None, "opération publique : pas d'appelant"
        return self.context

    @property
    def me(self) -> Principal:
        return self.ctx.principal

    @property
    def patient(self) -> Any:
        assert self.file is not None
        return self.file.patient

    @property
    def named_patient(self) -> Any:
        """The file the request named (``Access.named_file``); None when it named none."""
        return self.file.patient if self.file is not None else None

    def named_file_id(self) -> str | None:
        return self.query.get("patient_id") or getattr(self.body, "patient_id", None)

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    async def on_file(
        self, work: Callable[..., Awaitable[T]], session: AsyncSession, /, **arguments: Any
    ) -> T:
        """``work(session, principal=…, patient=…, **arguments)``: a service's change made by
        the caller on the file the request names — its path's, or the one a task or an event
        is created in (None: outside any file); every such service is told who and which file
        this one way."""
        return await work(session, principal=self.me, patient=self.named_patient, **arguments)

    def data(self, model: type[T]) -> T:
        assert isinstance(self.body, model)
        return self.body

    def today(self) -> date:
        return self.ctx.today()

    def now(self) -> datetime:
        return self.ctx.now()

    def audit_as(self, resource: str | None = None, *, patient_id: str | None = None) -> None:
        """A more precise resource (same family) and/or the file the row is about."""
        assert self.op.audit is not None
        if resource is not None:
            if not resource.startswith(self.op.audit.resource):
                raise ValueError(f"{resource!r} hors de la famille {self.op.audit.resource!r}")
            self.audit_resource = resource
        if patient_id is not None:
            self.audit_patient_id = patient_id

    def nothing_read(self) -> None:
        """A read that returned nobody's data (an empty poll) leaves no audit row. Writes
        cannot: the runner refuses them."""
        if self.op.writes:
            raise RuntimeError(f"{self.op.method} {self.op.path}: une écriture s'audite")
        self.audited = False


class Operations:
    """The operations of one resource module, declared with ``@operations.get(…)`` etc."""

    def __init__(self) -> None:
        self._ops: list[Operation] = []

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def declare(self, method: str, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._ops.append(Operation(method, path, handler=handler, **declared))
            return handler

        return register

    def get(self, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.declare("GET", path, **declared)

    def post(self, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.declare("POST", path, **declared)

    def put(self, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.declare("PUT", path, **declared)

    def patch(self, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.declare("PATCH", path, **declared)

    def delete(self, path: str, **declared: Any) -> Callable[[Handler], Handler]:
        return self.declare("DELETE", path, **declared)

    def answer(self, method: str, path: str, **declared: Any) -> Callable[[Before], Before]:
        """An operation answered without a transaction (its ``before`` alone)."""

        def register(before: Before) -> Before:
            self._ops.append(Operation(method, path, before=before, **declared))
            return before

        return register
