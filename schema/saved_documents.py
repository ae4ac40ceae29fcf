"""The GraphQL side of saved queries: a document is validated against the live schema when it
is saved, and executed as the caller when it is run.

- Saving validates the document (one query operation, no errors) and its variable defaults
  against the declared types; ``services.saved_queries`` stores and versions it.
- Running re-executes the stored text with a fresh copy of the caller's context, so the access
  policy applies inside and the inner reads are audited as the caller's. Answers without errors
  are kept in the result cache per caller and dropped by writes to the collections the document
  reads; a cached answer replays its audit records, since serving it is a new access.

Executing documents belongs to the API layer, so the service never imports graphql-core; the
functions here take the Strawberry schema from their caller (``info.schema`` in a resolver),
which also spares this module an import of the schema that imports it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

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
from strawberry import Schema
from strawberry.types.graphql import OperationType as StrawberryOperation

from auth.principal import Principal
from cache import results
from errors import BadUserInput, ShmsError
from models.base import utcnow
from models.saved_queries import SavedQuery
from schema.context import Context
from services import saved_queries
from services.saved_queries import FORBIDDEN_ROOTS, RunLog, RunResult, SaveInput

ANALYTICS_INPUTS = (
    "appointments", "treatment_plans", "doctors", "equipment", "billing_accounts", "lab_orders",
    "outpatient_visits", "admissions", "wards", "operating_theatres", "surgery_bookings",
    "surgical_records", "emergency_visits", "dispenses", "drugs", "stock_batches", "claims",
    "payers",
)  # fmt: skip
"""Every collection an ``analytics`` report reads (services.analytics, inpatient_analytics,
revenue_analytics)."""
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


def _graphql(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema under Strawberry's, which validation and type lookups need."""
    return schema._schema


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
    schema: Schema, text: str, max_tokens: int | None = None, hide_suggestions: bool = False
) -> Parsed:
    """Parse and validate ``text`` against the live schema: exactly one query operation.
    ``hide_suggestions`` drops "Did you mean" hints, for callers the schema is hidden from."""
    try:
        document = parse(text, max_tokens=max_tokens)
    except GraphQLError as exc:
        raise InvalidDocument(exc.message, [exc]) from None
    errors = validate(_graphql(schema), document, hide_suggestions=hide_suggestions)
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
    schema: Schema,
    operation: OperationDefinitionNode,
    values: Mapping[str, Any],
    prefix: str,
    only_given: bool,
) -> dict[str, str]:
    """Coerce each variable to its declared type: the reason per ``<prefix><name>`` it fails."""
    declared = _declared(operation)
    problems = {
        f"{prefix}{name}": "is not a variable of this query"
        for name in values
        if name not in declared
    }
    graphql_schema = _graphql(schema)
    for name, definition in declared.items():
        if only_given and name not in values:
            continue
        given = {name: values[name]} if name in values else {}
        outcome = get_variable_values(graphql_schema, [definition], given)
        if isinstance(outcome, list) and outcome:
            problems[f"{prefix}{name}"] = outcome[0].message
    return problems


def _refuse(what: str, problems: dict[str, str]) -> None:
    if problems:
        listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise BadUserInput(f"Invalid {what}: {listing}", problems)


def check_defaults(
    schema: Schema, operation: OperationDefinitionNode, defaults: Mapping[str, Any]
) -> None:
    problems = _variable_errors(schema, operation, defaults, "variableDefaults.", only_given=True)
    _refuse("variable defaults", problems)


def check_variables(
    schema: Schema, operation: OperationDefinitionNode, values: Mapping[str, Any]
) -> None:
    _refuse(
        "variables", _variable_errors(schema, operation, values, "variables.", only_given=False)
    )


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


def inputs_of(schema: Schema, document: DocumentNode) -> frozenset[str]:
    """The collections whose writes can change this document's answer."""
    info = TypeInfo(_graphql(schema))
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
    schema: Schema, operation: OperationDefinitionNode, params: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Query-string values converted by each variable's declared type; a list variable takes
    the parameter repeated, an input object JSON text."""
    declared = _declared(operation)
    graphql_schema = _graphql(schema)
    out: dict[str, Any] = {}
    for name, texts in params.items():
        path = f"variables.{name}"
        definition = declared.get(name)
        if definition is None:
            raise BadUserInput(
                f"{path}: no such variable", {path: "is not a variable of this query"}
            )
        type_ = type_from_ast(graphql_schema, definition.type)
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


# -- saving ----------------------------------------------------------------------------------


async def save(
    schema: Schema,
    principal: Principal,
    data: SaveInput,
    max_tokens: int | None = None,
    hide_suggestions: bool = False,
) -> SavedQuery:
    """``services.saved_queries.save``, validating the document against ``schema``."""

    def validate_document(text: str, defaults: Mapping[str, Any]) -> None:
        parsed = parse_document(schema, text, max_tokens, hide_suggestions)
        check_defaults(schema, parsed.operation, defaults)

    return await saved_queries.save(principal, data, validate_document)


# -- running ---------------------------------------------------------------------------------


class _Uncacheable(Exception):
    """A computed answer that must not be kept (it has errors, or was read under glass)."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__("not cacheable")
        self.value = value


def _error(error: GraphQLError) -> dict[str, Any]:
    return {"message": error.message, "path": error.path, "extensions": error.extensions or {}}


async def _execute(
    schema: Schema, ctx: Context, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """Run ``document`` as the caller, on a fresh context whose reads are audited and flushed."""
    inner = ctx.for_event()
    inner.audit.keep_written = True
    limit = ctx.settings.shms_operation_timeout_seconds
    try:
        result = await asyncio.wait_for(
            schema.execute(
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
    schema: Schema,
    ctx: Context,
    log: RunLog,
    version: int | None,
    variables: object,
    query_string: Mapping[str, Sequence[str]] | None,
) -> tuple[dict[str, Any], bool]:
    principal = ctx.access.principal
    saved, chosen = await saved_queries.runnable(principal, log, version)
    parsed = parse_document(schema, chosen.document)
    if query_string is not None:
        log.variables = {k: list(v) for k, v in query_string.items()}  # logged even if bad
        given = from_query_string(schema, parsed.operation, query_string)
    else:
        if variables is not None and not isinstance(variables, Mapping):
            raise BadUserInput("variables: not an object", {"variables": "must be an object"})
        given = dict(variables or {})
    log.variables = {**chosen.variable_defaults, **given}
    check_variables(schema, parsed.operation, log.variables)

    ran = False

    async def compute() -> dict[str, Any]:
        nonlocal ran
        ran = True
        return await _execute(schema, ctx, chosen.document, log.variables)

    try:
        value, hit = await results.remember(
            operation=f"saved:{saved.name}:{chosen.number}",
            params=log.variables,
            scope=saved_queries.cache_scope(principal),
            inputs=inputs_of(schema, parsed.document),
            compute=compute,
        )
    except _Uncacheable as uncached:
        value, hit = uncached.value, False
    if not ran:  # a hit, or a concurrent identical run's answer shared with this one
        await _replay(ctx, value)
    return value, hit


async def run(
    schema: Schema,
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
    log = RunLog(name=name, via=via)
    cached = False
    try:
        value, cached = await _run(schema, ctx, log, version, variables, query_string)
    except ShmsError as exc:
        await _record(ctx, log, exc.code, started, ran_at, cached)
        raise
    except Exception:
        await _record(ctx, log, "INTERNAL", started, ran_at, cached)
        raise
    errors: list[dict[str, Any]] = value.get("errors") or []
    outcome = saved_queries.outcome_of(errors)
    duration = await _record(ctx, log, outcome, started, ran_at, cached)
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
    ctx: Context, log: RunLog, outcome: str, started: float, at: datetime, cached: bool
) -> float:
    return await saved_queries.record(
        ctx.principal, ctx.request_id, log, outcome, started, at, cached
    )
