"""Saved queries: GraphQL documents stored by name, versioned, and run as the caller.

- Saving validates the document against the live schema (one query operation, no errors) and
  its variable defaults against the declared types; a name saved again gets a new version,
  appended with one compare-and-set update, and the unique ``name`` index decides between two
  first saves.
- Running re-executes the stored text with a fresh copy of the caller's context, so the access
  policy applies inside and the inner reads are audited as the caller's. Answers without errors
  are kept in the result cache per caller and dropped by writes to the collections the document
  reads; a cached answer replays its audit records, since serving it is a new access.
- Every run, refused or not, lands in the ``saved_query_runs`` log.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from beanie.odm.utils.encoder import Encoder
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_list_type,
    is_non_null_type,
    parse,
    type_from_ast,
    validate,
    visit,
)
from graphql.execution.values import get_variable_values
from pymongo.errors import DuplicateKeyError
from strawberry.types.graphql import OperationType as StrawberryOperation

from auth.policy import READ, WRITE, Access, Action, EntityKind, Rel, best
from auth.principal import Principal
from auth.roles import Role
from cache import results
from errors import BadUserInput, Conflict, Forbidden, NotFound, ShmsError
from models.base import utcnow
from models.saved_queries import SavedQuery, SavedQueryRun, SavedQueryVersion
from services.changes import changed
from services.pagination import ASC, DESC, Page, PageArgs, Query, Sort, paginate
from services.validation import require

if TYPE_CHECKING:
    from schema.context import Context

NAME = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
MAX_DOCUMENT_CHARS = 20_000
"""Every version stays inside one MongoDB document (16 MB), so each text is kept modest."""
MAX_DESCRIPTION_CHARS = 2_000
MAX_LOGGED_VARIABLES_CHARS = 10_000
SAVE_ATTEMPTS = 5
FORBIDDEN_ROOTS = frozenset({"runSavedQuery"})
"""Root fields a saved document may not select: a query that runs itself would never end."""

_encoder = Encoder()
BY_NAME: Sort = (("name", ASC), ("_id", ASC))
NEWEST_FIRST: Sort = (("at", DESC), ("_id", DESC))

ANALYTICS_INPUTS = ("appointments", "treatment_plans", "doctors", "equipment", "billing_accounts")
ALWAYS_INPUTS = ("access_grants", "patients", "saved_queries")
"""Break-the-glass grants and care relationships (on patients) change what a clinician sees,
and a deleted and re-saved name must not be answered from its predecessor's results."""

TYPE_INPUTS: dict[str, tuple[str, ...]] = {
    "Patient": ("patients",),
    "Appointment": ("appointments",),
    "TreatmentPlan": ("treatment_plans",),
    "Treatment": ("treatments",),
    "Prescription": ("prescriptions",),
    "BillingAccount": ("billing_accounts",),
    "Doctor": ("doctors",),
    "Nurse": ("nurses",),
    "AdminStaff": ("admin_staff",),
    "StaffMember": ("doctors", "nurses", "admin_staff"),
    "DoctorDistance": ("doctors", "departments"),
    "Department": ("departments",),
    "MedicalEquipment": ("equipment",),
    "EquipmentStatusEntry": ("equipment",),  # live status, kept in step with equipment writes
    "Notification": ("notifications",),
    "AuditEvent": ("audit_events",),
    "AccessGrant": ("access_grants",),
    "Viewer": ("access_grants",),
    "AppointmentType": ("appointment_types",),
    "CalendarException": ("calendar_exceptions",),
    "MaintenanceWindow": ("maintenance_windows",),
    "WorkingHours": ("working_hours",),
    "Slot": (
        "appointments",
        "working_hours",
        "calendar_exceptions",
        "maintenance_windows",
        "appointment_types",
        "doctors",
    ),
    "SavedQuery": ("saved_queries",),
    "SavedQueryVersion": ("saved_queries",),
    "SavedQueryRun": ("saved_query_runs",),
}
"""GraphQL types that are (or are computed from) stored documents -> the collections read.
A type in neither this map nor ``EMBEDDED`` makes the whole document depend on any write."""

EMBEDDED = frozenset(
    {
        "Address", "Allergy", "Cancellation", "Charge", "Contact", "DayHours", "Diagnosis",
        "EmergencyContact", "EquipmentAllocation", "EquipmentStatusChange",
        "GeoPoint", "Insurance", "MedicalHistoryEntry", "Money", "Payment",
        "PageInfo", "PrescriptionStatusChange", "Reschedule", "StaffContact", "TimeRange",
        "Query",
    }
)  # fmt: skip
"""Value types stored inside their parent document: reading them reads nothing more."""


def _schema() -> Any:
    """The live Strawberry schema; imported late because the schema imports this module."""
    from schema import schema

    return schema


def _graphql_schema() -> GraphQLSchema:
    return cast(GraphQLSchema, _schema()._schema)


# -- validation ------------------------------------------------------------------------------


class InvalidDocument(BadUserInput):
    """The document does not parse or validate; ``extensions.errors`` lists each problem."""

    def __init__(self, message: str, errors: Sequence[GraphQLError] = ()) -> None:
        super().__init__(message, {"document": message})
        self.extensions["errors"] = [
            {
                "message": e.message,
                "locations": [
                    {"line": loc.line, "column": loc.column} for loc in e.locations or ()
                ],
            }
            for e in errors
        ]


@dataclass(frozen=True)
class Parsed:
    document: DocumentNode
    operation: OperationDefinitionNode


def parse_document(
    text: str, max_tokens: int | None = None, hide_suggestions: bool = False
) -> Parsed:
    """Parse and validate ``text`` against the live schema: exactly one query operation.
    ``hide_suggestions`` drops "Did you mean" hints, for callers the schema is hidden from."""
    require(bool(text.strip()), "document", "must not be empty")
    require(len(text) <= MAX_DOCUMENT_CHARS, "document", f"at most {MAX_DOCUMENT_CHARS} characters")
    try:
        document = parse(text, max_tokens=max_tokens)
    except GraphQLError as exc:
        raise InvalidDocument(exc.message, [exc]) from None
    errors = validate(_graphql_schema(), document, hide_suggestions=hide_suggestions)
    if errors:
        raise InvalidDocument(f"The document is not valid: {errors[0].message}", errors)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise InvalidDocument(f"Give exactly one operation, not {len(operations)}")
    operation = operations[0]
    if operation.operation != OperationType.QUERY:
        kind = operation.operation.value
        raise InvalidDocument(f"Only queries can be saved, not a {kind}")
    for selection in operation.selection_set.selections:
        if isinstance(selection, FieldNode) and selection.name.value in FORBIDDEN_ROOTS:
            raise InvalidDocument(f"A saved query may not use {selection.name.value}")
    return Parsed(document, operation)


def _declared(operation: OperationDefinitionNode) -> dict[str, Any]:
    return {d.variable.name.value: d for d in operation.variable_definitions or ()}


def _variable_errors(
    operation: OperationDefinitionNode, values: Mapping[str, Any], prefix: str, only_given: bool
) -> dict[str, str]:
    """Coerce each variable to its declared type: the reason per ``<prefix><name>`` it fails."""
    declared = _declared(operation)
    problems = {
        f"{prefix}{name}": "is not a variable of this query"
        for name in values
        if name not in declared
    }
    schema = _graphql_schema()
    for name, definition in declared.items():
        if only_given and name not in values:
            continue
        given = {name: values[name]} if name in values else {}
        outcome = get_variable_values(schema, [definition], given)
        if isinstance(outcome, list) and outcome:
            problems[f"{prefix}{name}"] = outcome[0].message
    return problems


def check_defaults(operation: OperationDefinitionNode, defaults: Mapping[str, Any]) -> None:
    problems = _variable_errors(operation, defaults, "variableDefaults.", only_given=True)
    if problems:
        listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise BadUserInput(f"Invalid variable defaults: {listing}", problems)


def check_variables(operation: OperationDefinitionNode, values: Mapping[str, Any]) -> None:
    problems = _variable_errors(operation, values, "variables.", only_given=False)
    if problems:
        listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise BadUserInput(f"Invalid variables: {listing}", problems)


def _type_inputs(name: str) -> tuple[str, ...]:
    for suffix in ("Connection", "Edge"):
        base = name.removesuffix(suffix)
        if base != name and (base in TYPE_INPUTS or base in EMBEDDED):
            return _type_inputs(base)
    if name in TYPE_INPUTS:
        return TYPE_INPUTS[name]
    if name in EMBEDDED:
        return ()
    if name in ("Analytics", "ConditionCount") or name.endswith(("Report", "Group")):
        return ANALYTICS_INPUTS  # the aggregate reports of ``analytics { ... }``
    return (results.ANY,)


def inputs_of(document: DocumentNode) -> frozenset[str]:
    """The collections whose writes can change this document's answer."""
    info = TypeInfo(_graphql_schema())
    found: set[str] = set(ALWAYS_INPUTS)

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            returned = info.get_type()
            if returned is None:  # not in the schema (any more): assume it reads anything
                found.add(results.ANY)
                return
            named = get_named_type(returned)
            if not isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
                found.update(_type_inputs(named.name))

    visit(document, TypeInfoVisitor(info, Collect()))
    return frozenset(found)


# -- query-string variables (the HTTP endpoint) ----------------------------------------------


def _text_value(text: str, type_: GraphQLInputType, path: str) -> Any:
    if is_non_null_type(type_):
        type_ = type_.of_type
    if is_list_type(type_) or isinstance(type_, GraphQLInputObjectType):
        try:
            return json.loads(text)
        except ValueError:
            raise BadUserInput(f"{path}: not JSON", {path: "must be JSON text"}) from None
    if isinstance(type_, GraphQLEnumType):
        return text
    name = getattr(type_, "name", "")
    try:
        if name == "Int":
            return int(text)
        if name == "Float":
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return number
    except ValueError:
        raise BadUserInput(f"{path}: not a {name}", {path: f"must be a {name}"}) from None
    if name == "Boolean":
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise BadUserInput(f"{path}: not a Boolean", {path: "must be true or false"})
    return text  # String, ID and custom scalars take their text


def from_query_string(
    operation: OperationDefinitionNode, params: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Query-string values converted by each variable's declared type; a list variable takes
    the parameter repeated, an input object JSON text."""
    declared = _declared(operation)
    schema = _graphql_schema()
    out: dict[str, Any] = {}
    for name, texts in params.items():
        path = f"variables.{name}"
        definition = declared.get(name)
        if definition is None:
            raise BadUserInput(
                f"{path}: no such variable", {path: "is not a variable of this query"}
            )
        type_ = type_from_ast(schema, definition.type)
        if type_ is None:
            raise BadUserInput(f"{path}: unknown type", {path: "has a type the schema lacks"})
        bare = type_.of_type if is_non_null_type(type_) else type_
        if is_list_type(bare):
            out[name] = [_text_value(t, bare.of_type, f"{path}.{i}") for i, t in enumerate(texts)]
        elif len(texts) != 1:
            raise BadUserInput(f"{path}: given {len(texts)} times", {path: "give it once"})
        else:
            out[name] = _text_value(texts[0], cast(GraphQLInputType, type_), path)
    return out


# -- who may do what -------------------------------------------------------------------------


def may_run(principal: Principal, saved: SavedQuery) -> bool:
    """Admins, the author, and callers holding one of the allowed roles."""
    return (
        principal.has(Role.ADMIN)
        or saved.author == principal.subject
        or principal.has(*saved.allowed_roles)
    )


def _may_write(principal: Principal, action: Action, saved: SavedQuery | None) -> bool:
    rels = {Rel.ANY}
    if saved is not None and saved.author == principal.subject:
        rels.add(Rel.SELF)
    rules = WRITE[EntityKind.SAVED_QUERY][action]
    return best(rules, principal.roles, rels) != Access.NONE


def _require_change(principal: Principal, saved: SavedQuery) -> None:
    if not _may_write(principal, Action.UPDATE, saved):
        raise Forbidden(f"Only its author or an admin may change saved query {saved.name}")


def require_run_reader(principal: Principal) -> None:
    """The run log names who ran what with which variables: admin and compliance only."""
    rules = READ[EntityKind.SAVED_QUERY]["runs"]
    if best(rules, principal.roles, {Rel.ANY}) == Access.NONE:
        raise Forbidden("Only administrators and compliance officers may read the run log")


def visible_filter(principal: Principal) -> Query:
    if principal.has(Role.ADMIN):
        return {}
    roles = sorted(r.value for r in principal.roles)
    return {"$or": [{"allowed_roles": {"$in": roles}}, {"author": principal.subject}]}


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A saved query as shown: the document and the version picked (the latest by default)."""

    query: SavedQuery
    version: SavedQueryVersion


async def find(name: str) -> SavedQuery:
    saved = await SavedQuery.find_one({"name": name})
    if saved is None:
        raise NotFound("SavedQuery", name)
    return saved


def _version(saved: SavedQuery, number: int | None) -> SavedQueryVersion:
    chosen = saved.at(number)
    if chosen is None:
        raise NotFound("SavedQuery version", f"{saved.name}@{number}")
    return chosen


async def show(principal: Principal, name: str, version: int | None = None) -> Shown:
    saved = await find(name)
    if not may_run(principal, saved):
        raise Forbidden(f"Not allowed to see saved query {name}")
    return Shown(saved, _version(saved, version))


async def list_visible(principal: Principal, args: PageArgs) -> Page[SavedQuery]:
    return await paginate(SavedQuery, visible_filter(principal), BY_NAME, args)


_paginate_runs = cast(
    Callable[[type[SavedQueryRun], Query, Sort, PageArgs], Awaitable[Page[Any]]], paginate
)


async def list_runs(name: str | None, args: PageArgs) -> Page[Any]:
    """The run log, newest first; ``Page[Any]`` because a run is a log row, not an ``Entity``."""
    return await _paginate_runs(SavedQueryRun, {"name": name} if name else {}, NEWEST_FIRST, args)


# -- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveInput:
    name: str
    document: str
    description: str | None = None
    variable_defaults: object = None  # checked to be an object (client JSON)
    allowed_roles: Sequence[Role] = ()


def _check(data: SaveInput, max_tokens: int | None, hide_suggestions: bool) -> SaveInput:
    require(bool(NAME.match(data.name)), "name", "must match ^[a-z][a-z0-9_-]{1,63}$")
    description = data.description.strip() if data.description else None
    if description is not None:
        require(
            len(description) <= MAX_DESCRIPTION_CHARS,
            "description",
            f"at most {MAX_DESCRIPTION_CHARS} characters",
        )
    defaults = data.variable_defaults if data.variable_defaults is not None else {}
    if not isinstance(defaults, Mapping):
        raise BadUserInput("variableDefaults: not an object", {"variableDefaults": "not an object"})
    parsed = parse_document(data.document, max_tokens, hide_suggestions)
    check_defaults(parsed.operation, defaults)
    return SaveInput(
        data.name,
        data.document,
        description or None,
        dict(defaults),
        sorted(set(data.allowed_roles)),
    )


def _new_version(data: SaveInput, number: int, author: str) -> SavedQueryVersion:
    return SavedQueryVersion(
        number=number,
        document=data.document,
        description=data.description,
        variable_defaults=dict(cast(Mapping[str, Any], data.variable_defaults or {})),
        allowed_roles=list(data.allowed_roles),
        author=author,
    )


async def save(
    principal: Principal,
    data: SaveInput,
    max_tokens: int | None = None,
    hide_suggestions: bool = False,
) -> SavedQuery:
    """Create ``data.name``, or append a version to it; bad input changes nothing."""
    if not _may_write(principal, Action.CREATE, None):
        raise Forbidden("Only analysts and admins may save queries")
    data = _check(data, max_tokens, hide_suggestions)
    collection = SavedQuery.get_motor_collection()
    for _ in range(SAVE_ATTEMPTS):
        saved = await SavedQuery.find_one({"name": data.name})
        if saved is None:
            created = SavedQuery(
                name=data.name,
                author=principal.subject,
                version=1,
                allowed_roles=list(data.allowed_roles),
                versions=[_new_version(data, 1, principal.subject)],
            )
            try:
                await created.insert()
            except DuplicateKeyError:
                continue  # a concurrent first save won: ours becomes its next version
            await changed(created, "created")
            return created
        _require_change(principal, saved)
        version = _new_version(data, saved.version + 1, principal.subject)
        now = utcnow()
        outcome = await collection.update_one(
            {"_id": saved.id, "version": saved.version},
            {
                "$push": {"versions": _encoder.encode(version)},
                "$set": {
                    "version": version.number,
                    "allowed_roles": [r.value for r in version.allowed_roles],
                    "updated_at": now,
                },
            },
        )
        if outcome.modified_count == 1:
            updated = saved.model_copy(
                update={
                    "version": version.number,
                    "allowed_roles": list(version.allowed_roles),
                    "versions": [*saved.versions, version],
                    "updated_at": now,
                }
            )
            await changed(updated, "versioned")
            return updated
    raise Conflict(f"Saved query {data.name} kept changing meanwhile; read it again and retry")


async def delete(principal: Principal, name: str) -> SavedQuery:
    """Remove it with every version (the run log stays); the name is free again."""
    saved = await find(name)
    _require_change(principal, saved)
    outcome = await SavedQuery.get_motor_collection().delete_one(
        {"_id": saved.id, "version": saved.version}
    )
    if outcome.deleted_count != 1:
        raise Conflict(f"Saved query {name} changed meanwhile; read it again and retry")
    await changed(saved, "deleted")
    return saved


# -- running ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    name: str
    version: int
    data: Any
    errors: list[dict[str, Any]]
    duration_ms: float
    cached: bool
    ran_at: datetime


@dataclass
class _Log:
    """What the run log row will say, filled in as the run gets further."""

    name: str
    via: str
    version: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)


class _Uncacheable(Exception):
    """A computed answer that must not be kept (it has errors, or was read under glass)."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__("not cacheable")
        self.value = value


def _error(error: GraphQLError) -> dict[str, Any]:
    return {"message": error.message, "path": error.path, "extensions": error.extensions or {}}


def outcome_of(errors: Iterable[Mapping[str, Any]]) -> str:
    codes = sorted({str((e.get("extensions") or {}).get("code", "INTERNAL")) for e in errors})
    return ",".join(codes) or "ok"


def _scope(principal: Principal) -> str:
    """Answers are shared only by one subject with the same roles and linked records."""
    roles = ",".join(sorted(r.value for r in principal.roles))
    links = (principal.staff_id, principal.department_id, principal.patient_id)
    return f"saved:{principal.subject}|{roles}|" + "|".join(str(x or "") for x in links)


async def _execute(ctx: Context, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Run ``document`` as the caller, on a fresh context whose reads are audited and flushed."""
    inner = ctx.for_event()
    inner.audit.keep_written = True
    limit = ctx.settings.shms_operation_timeout_seconds
    try:
        result = await asyncio.wait_for(
            _schema().execute(
                document,
                variable_values=variables,
                context_value=inner,
                allowed_operation_types=(StrawberryOperation.QUERY,),
            ),
            limit,
        )
    except TimeoutError:
        message = f"The operation took longer than {limit:g} s (SHMS_OPERATION_TIMEOUT_SECONDS)"
        error = {"message": message, "path": None, "extensions": {"code": "TIMEOUT"}}
        raise _Uncacheable({"data_json": "null", "errors": [error], "audit": []}) from None
    audit = inner.audit.snapshot()
    value = {
        # As text: the cache stores its values with sorted keys, and a CSV's columns (like
        # any client) follow the order the document selected its fields in.
        "data_json": json.dumps(result.data, separators=(",", ":")),
        "errors": [_error(e) for e in result.errors or ()],
        "audit": audit,
        "operation": inner.audit.operation,
    }
    # Access under break-the-glass ends when the grant expires, which no write announces.
    if value["errors"] or any(r["break_glass"] for r in audit):
        raise _Uncacheable(value)
    return value


async def _replay(ctx: Context, value: Mapping[str, Any]) -> None:
    """A cached answer is a new access: audit it as the caller, like the run that made it."""
    trail = ctx.for_event(value.get("operation")).audit
    trail.replay(value.get("audit") or ())
    await trail.flush()


async def _run(
    ctx: Context,
    log: _Log,
    version: int | None,
    variables: object,
    query_string: Mapping[str, Sequence[str]] | None,
) -> tuple[dict[str, Any], bool]:
    principal = ctx.access.principal
    saved = await find(log.name)
    log.version = version if version is not None else saved.version
    if not may_run(principal, saved):
        raise Forbidden(f"Not allowed to run saved query {log.name}")
    chosen = _version(saved, version)
    log.version = chosen.number
    parsed = parse_document(chosen.document)
    if query_string is not None:
        log.variables = {k: list(v) for k, v in query_string.items()}  # logged even if bad
        given = from_query_string(parsed.operation, query_string)
    else:
        if variables is not None and not isinstance(variables, Mapping):
            raise BadUserInput("variables: not an object", {"variables": "must be an object"})
        given = dict(variables or {})
    log.variables = {**chosen.variable_defaults, **given}
    check_variables(parsed.operation, log.variables)

    ran = False

    async def compute() -> dict[str, Any]:
        nonlocal ran
        ran = True
        return await _execute(ctx, chosen.document, log.variables)

    try:
        value, hit = await results.remember(
            operation=f"saved:{saved.name}:{chosen.number}",
            params=log.variables,
            scope=_scope(principal),
            inputs=inputs_of(parsed.document),
            compute=compute,
        )
    except _Uncacheable as uncached:
        value, hit = uncached.value, False
    if not ran:  # a hit, or a concurrent identical run's answer shared with this one
        await _replay(ctx, value)
    return value, hit


async def run(
    ctx: Context,
    name: str,
    *,
    version: int | None = None,
    variables: object = None,
    query_string: Mapping[str, Sequence[str]] | None = None,
    via: str = "graphql",
) -> RunResult:
    """Run saved query ``name`` as the caller; ``query_string`` holds HTTP parameters still to
    convert by type. Refusals raise (``FORBIDDEN``, ``NOT_FOUND``, ``BAD_USER_INPUT``); errors
    inside the query come back in ``errors``. Logged in every case."""
    started = time.perf_counter()
    ran_at = utcnow()
    log = _Log(name=name, via=via)
    cached = False
    try:
        value, cached = await _run(ctx, log, version, variables, query_string)
    except ShmsError as exc:
        await _record(ctx, log, exc.code, started, ran_at, cached)
        raise
    except Exception:
        await _record(ctx, log, "INTERNAL", started, ran_at, cached)
        raise
    errors: list[dict[str, Any]] = value.get("errors") or []
    duration = await _record(ctx, log, outcome_of(errors), started, ran_at, cached)
    return RunResult(
        name=name,
        version=log.version or 0,
        data=json.loads(value.get("data_json") or "null"),
        errors=errors,
        duration_ms=duration,
        cached=cached,
        ran_at=ran_at,
    )


async def _record(
    ctx: Context, log: _Log, outcome: str, started: float, at: datetime, cached: bool
) -> float:
    duration = round((time.perf_counter() - started) * 1000, 3)
    principal = ctx.principal
    try:
        text = json.dumps(log.variables, sort_keys=True, default=str)
    except ValueError:  # circular or otherwise unprintable input: keep the names at least
        text = "{}"
    if len(text) > MAX_LOGGED_VARIABLES_CHARS:
        text = json.dumps({"truncated": text[:MAX_LOGGED_VARIABLES_CHARS]})
    await SavedQueryRun(
        name=log.name[:100],
        version=log.version,
        actor_subject=principal.subject if principal else "anonymous",
        actor_roles=sorted(r.value for r in principal.roles) if principal else [],
        at=at,
        duration_ms=duration,
        outcome=outcome,
        via=log.via,
        cached=cached,
        variable_names=sorted(log.variables),
        variables_json=text,
        request_id=ctx.request_id,
    ).insert()
    return duration
