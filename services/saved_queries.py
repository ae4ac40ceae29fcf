"""Saved queries: GraphQL documents stored by name, versioned, and run as the caller.

This module keeps the storage and the rules: who may save, change, see and run what; a name
saved again gets a new version, appended with one compare-and-set update, and the unique
``name`` index decides between two first saves; every run, refused or not, lands in the
``saved_query_runs`` log. Parsing, validating and executing the GraphQL text is the API
layer's (``schema.saved_documents``): it validates a document as ``save`` asks it to, and runs
one with ``runnable``, ``cache_scope`` and ``record`` from here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from beanie.odm.utils.encoder import Encoder
from pymongo.errors import DuplicateKeyError

import db
from auth.policy import READ, WRITE, Access, Action, EntityKind, Rel, best
from auth.principal import Principal
from auth.roles import Role
from errors import BadUserInput, Conflict, Forbidden, NotFound
from models.base import utcnow
from models.saved_queries import SavedQuery, SavedQueryRun, SavedQueryVersion
from services.changes import changed
from services.pagination import ASC, DESC, Page, PageArgs, Query, Sort, paginate
from services.validation import require

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


Validator = Callable[[str, Mapping[str, Any]], None]
"""Checks a document and its variable defaults against the schema (the API layer's part);
raises ``BadUserInput`` when they do not fit."""


def _check(data: SaveInput, validate: Validator) -> SaveInput:
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
    require(bool(data.document.strip()), "document", "must not be empty")
    require(
        len(data.document) <= MAX_DOCUMENT_CHARS,
        "document",
        f"at most {MAX_DOCUMENT_CHARS} characters",
    )
    validate(data.document, defaults)
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


async def save(principal: Principal, data: SaveInput, validate: Validator) -> SavedQuery:
    """Create ``data.name``, or append a version to it; bad input changes nothing.

    ``validate`` runs after this module's own checks, so a request with several faults is
    told the same first one whichever layer finds it."""
    if not _may_write(principal, Action.CREATE, None):
        raise Forbidden("Only analysts and admins may save queries")
    data = _check(data, validate)
    collection = db.collection(SavedQuery)
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
    outcome = await db.collection(SavedQuery).delete_one(
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
class RunLog:
    """What the run log row will say, filled in as the run gets further."""

    name: str
    via: str
    version: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)


async def runnable(
    principal: Principal, log: RunLog, version: int | None
) -> tuple[SavedQuery, SavedQueryVersion]:
    """The version of ``log.name`` that ``principal`` may run (the latest by default);
    ``log`` learns the version asked for even when the run is refused."""
    saved = await find(log.name)
    log.version = version if version is not None else saved.version
    if not may_run(principal, saved):
        raise Forbidden(f"Not allowed to run saved query {log.name}")
    chosen = _version(saved, version)
    log.version = chosen.number
    return saved, chosen


def outcome_of(errors: Iterable[Mapping[str, Any]]) -> str:
    codes = sorted({str((e.get("extensions") or {}).get("code", "INTERNAL")) for e in errors})
    return ",".join(codes) or "ok"


def cache_scope(principal: Principal) -> str:
    """Answers are shared only by one subject with the same roles and linked records."""
    roles = ",".join(sorted(r.value for r in principal.roles))
    links = (principal.staff_id, principal.department_id, principal.patient_id)
    return f"saved:{principal.subject}|{roles}|" + "|".join(str(x or "") for x in links)


async def record(
    principal: Principal | None,
    request_id: str,
    log: RunLog,
    outcome: str,
    started: float,
    at: datetime,
    cached: bool,
) -> float:
    """Write the run's log row; its duration in milliseconds since ``started`` back."""
    duration = round((time.perf_counter() - started) * 1000, 3)
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
        request_id=request_id,
    ).insert()
    return duration
