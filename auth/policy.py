"""The access-policy vocabulary and the registry of declared entities.

Every entity declares itself once, next to its model (``declare(...)`` in ``models/<domain>.py``
or, for entities with no collection of their own, in the service that computes them): its
collection, the patient it belongs to, its reference fields, whether it is cached, whether it
creates care relationships, and the policy of every one of its GraphQL fields as classified
field groups, each with the roles and relations that may read (and write) it. Access control,
loaders, caches, events, the schema's automatic enforcement and ``docs/access-policy.md`` all
read this registry, so a new module adds its own files and edits no list here.

How to read a grant: a viewer relates to a row in one or more ways (``Rel``): ``ANY`` always
holds; ``DEPARTMENT`` when the row belongs to the viewer's department (for patient data: the
patient is being seen there); ``CARE`` when the viewer treats the patient (computed from
clinical facts with a lifetime, see ``services.care``, or a live break-the-glass grant);
``SELF`` when it is the viewer's own record. A grant lists the relations under which a role may
use a field group (or action); no grant means never.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from auth.roles import Role

Kind = str
"""An entity's name, which is also the name of the GraphQL type that presents it."""


class Rel(StrEnum):
    ANY = "any"
    DEPARTMENT = "department"
    CARE = "care"
    SELF = "self"


class Access(StrEnum):
    FULL = "full"
    MASKED = "masked"
    NONE = "none"


class Classification(StrEnum):
    """What a field group holds; the README's data-protection section maps each to the law."""

    IDENTITY = "identity"  # who a person is: names, national ids, dates of birth
    CONTACT = "contact"  # how to reach them
    DEMOGRAPHIC = "demographic"  # sex and other population attributes
    CLINICAL = "clinical"  # health information, free text about care included
    FINANCIAL = "financial"  # charges, payments, insurance
    OPERATIONAL = "operational"  # scheduling, devices, rosters, bookkeeping timestamps
    SECURITY = "security"  # the audit trail and access grants


@dataclass(frozen=True)
class Grant:
    relations: frozenset[Rel]
    access: Access = Access.FULL

    def holds(self, rels: Iterable[Rel]) -> bool:
        return not self.relations.isdisjoint(rels)


def grant(*relations: Rel, access: Access = Access.FULL) -> Grant:
    return Grant(frozenset(relations), access)


A, D, C, S = Rel.ANY, Rel.DEPARTMENT, Rel.CARE, Rel.SELF
R = Role
ROW = "row"
"""The group that decides whether a row is visible at all."""

Rules = Mapping[Role, Grant]

STAFF_ROLES = (R.ADMIN, R.ADMIN_STAFF, R.BILLING, R.DOCTOR, R.NURSE, R.COMPLIANCE)
EVERYONE = (*STAFF_ROLES, R.PATIENT, R.ANALYST, R.SERVICE)
SCHEDULERS = (R.ADMIN, R.ADMIN_STAFF, R.DOCTOR, R.NURSE)
"""Who reads calendars: the front desk, clinicians and admin."""


def each(roles: Iterable[Role], g: Grant) -> dict[Role, Grant]:
    return {role: g for role in roles}


ADMIN_ONLY: Rules = {R.ADMIN: grant(A)}
CLINICAL_ROW: Rules = {R.DOCTOR: grant(C), R.NURSE: grant(C, D), R.PATIENT: grant(S)}
STAFF_DETAILS: Rules = each(STAFF_ROLES, grant(A))


class Action(StrEnum):
    """The common verbs; a declaration may name others (any string)."""

    CREATE = "create"
    UPDATE = "update"
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    RECORD_TREATMENT = "recordTreatment"
    CHANGE_STATUS = "changeStatus"
    ALLOCATE = "allocate"
    CHARGE = "charge"
    PAY = "pay"
    BREAK_GLASS = "breakTheGlass"
    CHECK_IN = "checkIn"
    COMPLETE = "complete"
    MARK_NO_SHOW = "markNoShow"


CREATES = frozenset({Action.CREATE, Action.SCHEDULE, Action.RECORD_TREATMENT})


@dataclass(frozen=True)
class Group:
    """GraphQL fields that share one classification and one read policy."""

    name: str
    classification: Classification
    fields: tuple[str, ...]
    read: Rules


def row(classification: Classification, fields: Iterable[str], read: Rules) -> Group:
    return Group(ROW, classification, tuple(fields), read)


def group(name: str, classification: Classification, fields: Iterable[str], read: Rules) -> Group:
    return Group(name, classification, tuple(fields), read)


CONFIGURED_CARE_DAYS = "SHMS_CARE_RELATIONSHIP_DAYS"
"""A care lifetime that is the deployment's setting rather than a fixed span."""


@dataclass(frozen=True)
class CareSource:
    """How rows of an entity make a clinician (and their department) part of a patient's care.

    ``lifetime`` maps a status to how long after the row's ``ends`` instant the relationship
    lasts (``None``: as long as the row keeps that status); statuses not listed give none.

    ``ward`` names the row's ward: while the row's status is one of ``ward_statuses`` the
    nurses assigned to that ward (``Nurse.ward_id``) treat the patient too: an admission's ward
    team, for as long as the patient lies there and no longer.
    """

    clinician: str
    lifetime: Mapping[str, timedelta | str | None]
    department: str | None = None
    ends: str | None = None
    status: str = "status"
    ward: str | None = None
    ward_statuses: frozenset[str] = frozenset()
    also: tuple[str, ...] = ()
    """Further fields naming clinicians related exactly like ``clinician`` (a surgery's
    anaesthetist beside its surgeon)."""


@dataclass(frozen=True)
class Declaration:
    kind: Kind
    model: type[Any] | None
    groups: tuple[Group, ...]
    actions: Mapping[str, Rules] = field(default_factory=dict)
    updates: Mapping[str, tuple[tuple[str, ...], Rules]] = field(default_factory=dict)
    """Per group of input fields (snake_case, as services receive them): who may change them."""
    patient: str | None = None
    """The row field naming the patient it belongs to (``id`` for the patient itself)."""
    clinicians: tuple[str, ...] = ()
    """Row fields naming clinicians who relate to the row by CARE (its author, performer)."""
    department: str | None = None
    """The row field naming its department (``id`` for a department itself)."""
    own: tuple[tuple[str, str], ...] = ()
    """(row field, principal attribute) pairs that make a row the caller's own (SELF)."""
    refs: tuple[str, ...] = ()
    """Reference fields copied into this entity's events, so subscribers filter cheaply."""
    cached: bool = False
    published: bool = True
    """Every write goes through ``services.changes.changed`` (caches and result generations
    follow it); False for append-only logs written directly."""
    inputs: tuple[str, ...] = ()
    """For an entity with no collection: the collections it is computed from."""
    care: CareSource | None = None
    creates: frozenset[str] = frozenset()
    """Actions of this entity, beyond ``CREATES``, that bring a new record into being (admit,
    register, record...): the audit trail files them as CREATE."""
    order: tuple[tuple[str, int], ...] = (("_id", 1),)
    """The order of this entity's nested lists."""
    graphql_types: tuple[str, ...] = ()
    name: str = ""
    """snake_case name for loaders (``patient_by_id``); derived from ``kind`` when empty."""

    def __post_init__(self) -> None:
        if not self.groups or self.groups[0].name != ROW:
            raise ValueError(f"{self.kind}: the first field group must be the row")
        if not self.graphql_types:
            object.__setattr__(self, "graphql_types", (self.kind,))
        if not self.name:
            object.__setattr__(self, "name", _snake(self.kind))
        seen: dict[str, str] = {}
        for g in self.groups:
            for f in g.fields:
                if f in seen:
                    raise ValueError(f"{self.kind}.{f} is in groups {seen[f]} and {g.name}")
                seen[f] = g.name

    @property
    def constant(self) -> str:
        return self.name.upper()

    @property
    def collection(self) -> str | None:
        settings = getattr(self.model, "Settings", None)
        name = getattr(settings, "name", None)
        return str(name) if name else None

    @property
    def patient_data(self) -> bool:
        return self.patient is not None

    @property
    def read(self) -> dict[str, Rules]:
        return {g.name: g.read for g in self.groups}

    @property
    def fields(self) -> dict[str, tuple[str, ...]]:
        return {g.name: g.fields for g in self.groups}

    def group_of(self, field_name: str) -> str | None:
        """The group of a GraphQL field, or None when it is not classified."""
        for g in self.groups:
            if field_name in g.fields:
                return g.name
        return None

    @property
    def write_fields(self) -> dict[str, tuple[tuple[str, ...], Rules]]:
        return dict(self.updates)

    @property
    def write(self) -> dict[str, Rules]:
        """Actions, plus ``update`` as the union of per-group update rules when declared."""
        out = dict(self.actions)
        if self.write_fields and Action.UPDATE not in out:
            merged: dict[Role, Grant] = {}
            for _, rules in self.write_fields.values():
                for role, g in rules.items():
                    old = merged.get(role)
                    merged[role] = g if old is None else Grant(old.relations | g.relations)
            out[Action.UPDATE] = merged
        return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Registry:
    """Every declared entity, by kind, model and GraphQL type name."""

    def __init__(self) -> None:
        self._by_kind: dict[Kind, Declaration] = {}
        self._by_model: dict[type[Any], Declaration] = {}
        self._by_type: dict[str, Declaration] = {}

    def add(self, declaration: Declaration) -> Declaration:
        if declaration.kind in self._by_kind:
            raise ValueError(f"{declaration.kind} is declared twice")
        self._by_kind[declaration.kind] = declaration
        if declaration.model is not None:
            self._by_model[declaration.model] = declaration
        for name in declaration.graphql_types:
            self._by_type[name] = declaration
        return declaration

    def __iter__(self) -> Iterator[Declaration]:
        _load()
        return iter(list(self._by_kind.values()))

    def get(self, kind: Kind) -> Declaration | None:
        _load()
        return self._by_kind.get(kind)

    def __getitem__(self, kind: Kind) -> Declaration:
        found = self.get(kind)
        if found is None:
            raise KeyError(f"no entity is declared as {kind!r}")
        return found

    def for_model(self, model: type[Any]) -> Declaration | None:
        _load()
        for cls in model.__mro__:
            found = self._by_model.get(cls)
            if found is not None:
                return found
        return None

    def for_type(self, graphql_type: str) -> Declaration | None:
        _load()
        return self._by_type.get(graphql_type)

    def by_constant(self, constant: str) -> Declaration | None:
        _load()
        for d in self._by_kind.values():
            if d.constant == constant:
                return d
        return None


REGISTRY = Registry()


def declare(kind: Kind, model: type[Any] | None, *groups: Group, **options: Any) -> Declaration:
    """Register an entity; call once, at import of the module that defines it."""
    return REGISTRY.add(Declaration(kind, model, tuple(groups), **options))


_loaded = False


def _load() -> None:
    """Import every module that declares entities (the ``models`` package imports all its
    modules), once, so a lookup never misses a declaration."""
    global _loaded
    if not _loaded:
        _loaded = True
        import models  # noqa: F401


class _Kinds:
    """``EntityKind.PATIENT`` -> ``"Patient"``: named constants for the declared kinds."""

    def __getattr__(self, name: str) -> Kind:
        if name.startswith("_"):
            raise AttributeError(name)
        found = REGISTRY.by_constant(name)
        if found is None:
            raise AttributeError(f"no entity is declared with the constant {name}")
        return found.kind

    def __iter__(self) -> Iterator[Kind]:
        return iter([d.kind for d in REGISTRY])


EntityKind: Any = _Kinds()


class _Table(Mapping[Kind, Any]):
    """A read-only view of one column of the registry (kept for callers of the old tables)."""

    def __init__(self, column: str) -> None:
        self._column = column

    def __getitem__(self, kind: Kind) -> Any:
        found = REGISTRY.get(kind)
        if found is None:
            raise KeyError(kind)
        return getattr(found, self._column)

    def __iter__(self) -> Iterator[Kind]:
        return iter([d.kind for d in REGISTRY])

    def __len__(self) -> int:
        return len(list(REGISTRY))


READ: Mapping[Kind, dict[str, Rules]] = _Table("read")
WRITE: Mapping[Kind, dict[str, Rules]] = _Table("write")
FIELDS: Mapping[Kind, dict[str, tuple[str, ...]]] = _Table("fields")


def best(rules: Rules, roles: Iterable[Role], rels: Iterable[Rel]) -> Access:
    """The widest access any of ``roles`` gets under ``rels``."""
    found = Access.NONE
    held = frozenset(rels)
    for role in roles:
        g = rules.get(role)
        if g is not None and g.holds(held):
            if g.access == Access.FULL:
                return Access.FULL
            found = Access.MASKED
    return found


def relations_for(rules: Rules, roles: Iterable[Role]) -> frozenset[Rel]:
    """Every relation under which any of ``roles`` is granted ``rules``."""
    out: set[Rel] = set()
    for role in roles:
        g = rules.get(role)
        if g is not None:
            out |= g.relations
    return frozenset(out)


def group_of(entity: Kind, field_name: str) -> str:
    found = REGISTRY.get(entity)
    return (found.group_of(field_name) if found else None) or ROW
