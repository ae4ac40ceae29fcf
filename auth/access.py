"""Per-request access decisions, all read from the declared entities (``auth.policy``).

The schema applies them by itself (``schema.enforce``): every field of a declared type is
checked against its group, every returned row against the row policy, and every mutation's
declared action before its resolver runs. Lists are also filtered in the database query
(``scope``), so pages are whole. Every decision about patient data lands in the request's audit
trail. Relations come from the row itself, the caller's token, and the patient's care facts
(``services.care``: batched per request and cached in Redis), so checks add no per-row queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bson import ObjectId

import db
from auth.identity import load_grants
from auth.policy import (
    CREATES,
    REGISTRY,
    ROW,
    Access,
    Action,
    Declaration,
    Kind,
    Rel,
    Rules,
    best,
    relations_for,
)
from auth.principal import Principal
from errors import Forbidden, Unauthenticated
from models.audit import AuditAction
from models.base import utcnow
from models.patients import Patient
from services import care
from services.pagination import Query
from services.validation import camel

if TYPE_CHECKING:
    from auth.audit import AuditTrail
    from loaders import Loaders

NOTHING: Query = {"_id": {"$exists": False}}


def audit_action(action: str, entity: Kind | None = None) -> AuditAction:
    """The audit trail's coarse verb for a policy action (its ``operation`` keeps the detail):
    CREATE for the shared creating actions and those the entity declares as creating."""
    if action == Action.BREAK_GLASS:
        return AuditAction.BREAK_GLASS
    creates = action in CREATES or (entity is not None and action in REGISTRY[entity].creates)
    return AuditAction.CREATE if creates else AuditAction.UPDATE


def mask(value: str | None) -> str | None:
    """Keep the last four characters: enough to confirm an identity, not to steal it."""
    if value is None:
        return None
    return "•" * max(len(value) - 4, 0) + value[-4:]


def value_at(row: Any, path: str) -> Any:
    """A row field by declared name (``id``, ``patient_id``, ``recipient.id``)."""
    for part in path.split("."):
        if row is None:
            return None
        row = row.get(part) if isinstance(row, Mapping) else getattr(row, part, None)
    return row


def stored(path: str) -> str:
    """The MongoDB name of a declared row field."""
    return "_id" if path == "id" else path


def patient_of(entity: Kind, row: Any) -> ObjectId | None:
    declaration = REGISTRY.get(entity)
    if row is None or declaration is None or declaration.patient is None:
        return None
    found = value_at(row, declaration.patient)
    return found if isinstance(found, ObjectId) else None


def _patient_kind() -> Kind:
    """The entity that is a patient (its own patient field is its id)."""
    for declaration in REGISTRY:
        if declaration.patient == "id":
            return declaration.kind
    raise LookupError("no patient entity is declared")


class AccessControl:
    def __init__(
        self,
        principal: Principal | None,
        loaders: Loaders,
        audit: AuditTrail,
        auth_error: Unauthenticated | None = None,
    ) -> None:
        self._principal = principal
        self.loaders = loaders
        self.audit = audit
        self.auth_error = auth_error
        self._rels: dict[tuple[Kind, Any], frozenset[Rel]] = {}
        self._grants_loaded = False
        self._patients_where: dict[tuple[str, ObjectId], list[ObjectId]] = {}

    async def _grants(self) -> Principal:
        """The caller, with their break-the-glass grants loaded (once per request or event)."""
        principal = self.principal
        if not self._grants_loaded:
            await load_grants(principal)
            self._grants_loaded = True
        return principal

    @property
    def principal(self) -> Principal:
        """The caller; every GraphQL field that touches data needs one."""
        if self._principal is None:
            raise self.auth_error or Unauthenticated("Sign in first: send a bearer token")
        return self._principal

    # -- relations ---------------------------------------------------------------------------

    def _needs_relations(self, declaration: Declaration) -> bool:
        """Whether any grant the caller holds depends on how they relate to the row."""
        roles = self.principal.roles
        for rules in (*declaration.read.values(), *declaration.write.values()):
            for role in roles:
                g = rules.get(role)
                if g is not None and Rel.ANY not in g.relations:
                    return True
        return False

    def forget(self, entity: Kind, id: ObjectId) -> None:
        """Drop a cached relation (a grant was just opened on it)."""
        self._rels.pop((entity, id), None)

    def _key(self, entity: Kind, row: Any) -> tuple[Kind, Any]:
        return (entity, getattr(row, "id", None) or id(row))

    def _patient_needed(self, d: Declaration, row: Any) -> ObjectId | None:
        """The patient whose care facts decide this row's relations, when they must be loaded."""
        if row is None or d.patient is None or d.patient == "id":
            return None
        if self.principal.patient_id is not None or not self._needs_relations(d):
            return None
        patient_id = value_at(row, d.patient)
        return patient_id if isinstance(patient_id, ObjectId) else None

    async def relations(self, entity: Kind, row: Any) -> frozenset[Rel]:
        key = self._key(entity, row)
        cached = self._rels.get(key)
        if cached is not None:
            return cached
        await self._grants()
        d = REGISTRY[entity]
        needed = self._patient_needed(d, row)
        patient = await self.loaders.patient_by_id.load(needed) if needed is not None else None
        cached = frozenset(self._relations(d, row, patient))
        self._rels[key] = cached
        return cached

    def relations_now(self, entity: Kind, row: Any) -> frozenset[Rel] | None:
        """``relations`` when nothing needs awaiting (known already, or decided by the row and
        the token alone); ``None`` otherwise. Most rows of a page take this path."""
        key = self._key(entity, row)
        cached = self._rels.get(key)
        if cached is not None or not self._grants_loaded:
            return cached
        d = REGISTRY[entity]
        if self._patient_needed(d, row) is not None:
            return None
        cached = frozenset(self._relations(d, row, None))
        self._rels[key] = cached
        return cached

    def _relations(self, d: Declaration, row: Any, patient: Any) -> set[Rel]:
        """``patient``: the row's patient document, when ``_patient_needed`` asked for it."""
        p = self.principal
        rels = {Rel.ANY}
        if row is None:
            return rels
        for path, attribute in d.own:
            mine = getattr(p, attribute, None)
            if mine is not None and value_at(row, path) == mine:
                rels.add(Rel.SELF)
        if d.patient is not None:
            patient_id = value_at(row, d.patient)
            if p.patient_id is not None:  # a patient relates to nothing but their own rows
                if patient_id == p.patient_id:
                    rels.add(Rel.SELF)
                return rels
            if not self._needs_relations(d):
                return rels
            facts = care.of(row if d.patient == "id" else patient)
            now = utcnow()
            if patient_id in p.glass or facts.treated_by(p.staff_id, now, p.ward_id):
                rels.add(Rel.CARE)
            if p.staff_id is not None and any(value_at(row, f) == p.staff_id for f in d.clinicians):
                rels.add(Rel.CARE)
            if d.department is not None:
                if p.department_id is not None and value_at(row, d.department) == p.department_id:
                    rels.add(Rel.DEPARTMENT)
            elif facts.seen_in(p.department_id, now):
                rels.add(Rel.DEPARTMENT)
            return rels
        department = value_at(row, d.department) if d.department is not None else None
        if department is not None and department == p.department_id:
            rels.add(Rel.DEPARTMENT)
        return rels

    # -- reading -----------------------------------------------------------------------------

    async def field_access(self, entity: Kind, group: str, row: Any) -> Access:
        rules = REGISTRY[entity].read.get(group)
        if rules is None:
            return Access.FULL if group != ROW else Access.NONE
        return best(rules, self.principal.roles, await self.relations(entity, row))

    async def can_see(self, entity: Kind, row: Any) -> bool:
        return await self.field_access(entity, ROW, row) != Access.NONE

    async def field(self, entity: Kind, group: str, row: Any, name: str | None = None) -> Access:
        """Access to a guarded field; ``FORBIDDEN`` (a null at its path, and a ``DENIED`` event
        naming the field) when there is none."""
        return self._allowed(entity, group, row, name, await self.field_access(entity, group, row))

    def field_now(
        self, entity: Kind, group: str, row: Any, name: str | None = None
    ) -> Access | None:
        """``field`` without awaiting, when the row's relations are already known (every row
        the schema returns had them computed by its row check); ``None`` when they are not.

        A field decided here stays a plain value for graphql-core, not a task of its own: on a
        page of 100 rows that is most of the work the policy adds."""
        rules = REGISTRY[entity].read.get(group)
        if rules is None:
            return self._allowed(
                entity, group, row, name, Access.FULL if group != ROW else Access.NONE
            )
        rels = self.relations_now(entity, row)
        if rels is None:
            return None
        return self._allowed(entity, group, row, name, best(rules, self.principal.roles, rels))

    def _allowed(
        self, entity: Kind, group: str, row: Any, name: str | None, access: Access
    ) -> Access:
        if access == Access.NONE:
            names = ", ".join(REGISTRY[entity].fields.get(group, (group,)))
            self.audit.denied(
                entity,
                getattr(row, "id", None),
                patient_of(entity, row),
                AuditAction.READ,
                f"{group} fields",
                [name] if name else (),
            )
            raise Forbidden(f"Not allowed to read {entity}.{names}", field=group)
        return access

    def may_read_kind(self, entity: Kind) -> bool:
        """Whether any role of the caller may read some rows of ``entity`` (before any query)."""
        return bool(relations_for(REGISTRY[entity].read[ROW], self.principal.roles))

    def require_kind(
        self,
        entity: Kind,
        entity_id: ObjectId | None = None,
        patient_id: ObjectId | None = None,
    ) -> None:
        """Refuse before any database work a caller no role of whom may read ``entity``
        (audited with the ids the request named)."""
        if not self.may_read_kind(entity):
            self.audit.denied(entity, entity_id, patient_id, AuditAction.READ, "no role grants it")
            raise Forbidden(f"Not allowed to read {entity} records")

    async def one(self, entity: Kind, row: Any, requested: Iterable[str] = ()) -> Any:
        """A row reached by id or relation: returned if visible, else ``FORBIDDEN``."""
        if row is not None:
            await self.relations(entity, row)
        return self.one_now(entity, row, requested)

    def one_now(self, entity: Kind, row: Any, requested: Iterable[str] = ()) -> Any:
        """``one`` for a row whose relations are known (``relations_now`` is not ``None``)."""
        if row is None:
            return None
        if self._access(entity, ROW, row) == Access.NONE:
            self.audit_denied(entity, row)
            raise Forbidden(f"Not allowed to read this {entity}")
        self._audit_known(entity, [row], requested)
        return row

    def _access(self, entity: Kind, group: str, row: Any) -> Access:
        """``field_access`` from relations already computed."""
        rules = REGISTRY[entity].read.get(group)
        if rules is None:
            return Access.FULL if group != ROW else Access.NONE
        return best(rules, self.principal.roles, self._rels[self._key(entity, row)])

    def audit_denied(self, entity: Kind, row: Any) -> None:
        """Record a row withheld from the caller (patient data only)."""
        if REGISTRY[entity].patient_data:
            patient = patient_of(entity, row)
            self.audit.denied(entity, row.id, patient, AuditAction.READ, "no relationship")

    async def visible(self, entity: Kind, rows: Sequence[Any]) -> list[bool]:
        """Row visibility of many rows at once (their care facts load in one batch)."""
        await self._relations_of(entity, rows)
        return [self._access(entity, ROW, row) != Access.NONE for row in rows]

    async def _relations_of(self, entity: Kind, rows: Sequence[Any]) -> None:
        """Relations of every row not known yet, concurrently, so care facts batch."""
        missing = [row for row in rows if self.relations_now(entity, row) is None]
        if len(missing) == 1:
            await self.relations(entity, missing[0])
        elif missing:
            await asyncio.gather(*(self.relations(entity, row) for row in missing))

    async def audit_rows(self, entity: Kind, rows: Sequence[Any], requested: Iterable[str]) -> None:
        if REGISTRY[entity].patient_data and rows:
            await self._relations_of(entity, rows)
            self._audit_known(entity, rows, requested)

    def _audit_known(self, entity: Kind, rows: Sequence[Any], requested: Iterable[str]) -> None:
        declaration = REGISTRY[entity]
        if not declaration.patient_data or not rows:
            return
        wanted = sorted(set(requested))
        groups = [(name, declaration.group_of(name) or ROW) for name in wanted]
        for row in rows:
            withheld = [
                name
                for name, group in groups
                if group != ROW and self._access(entity, group, row) == Access.NONE
            ]
            patient_id = patient_of(entity, row)
            self.audit.read(
                entity,
                row.id,
                patient_id,
                [n for n in wanted if n not in withheld],
                withheld,
                self.principal.glass.get(patient_id) if patient_id else None,
            )

    # -- list filters ------------------------------------------------------------------------

    async def scope(self, entity: Kind) -> Query:
        """The database filter for rows of ``entity`` this caller may list."""
        await self._grants()
        declaration = REGISTRY[entity]
        rels = relations_for(declaration.read[ROW], self.principal.roles)
        if not rels:
            if declaration.patient_data:
                self.audit.denied(entity, None, None, AuditAction.READ, "no role grants it")
            raise Forbidden(f"Not allowed to list {entity} records")
        if Rel.ANY in rels:
            return {}
        branches = [b for rel in sorted(rels) for b in await self._branches(declaration, rel)]
        if not branches:
            return NOTHING
        return branches[0] if len(branches) == 1 else {"$or": branches}

    async def _branches(self, d: Declaration, rel: Rel) -> list[Query]:
        p = self.principal
        out: list[Query] = []
        patient = stored(d.patient) if d.patient is not None else None
        if rel == Rel.SELF:
            for path, attribute in d.own:
                mine = getattr(p, attribute, None)
                if mine is not None:
                    out.append({stored(path): mine})
            if patient is not None and p.patient_id is not None:
                out.append({patient: p.patient_id})
            return out
        if patient is None or p.patient_id is not None:
            if rel == Rel.DEPARTMENT and d.department is not None and p.department_id:
                return [{stored(d.department): p.department_id}]
            return []
        if rel == Rel.CARE:
            if d.patient == "id":  # the patient entity itself: its own derived relations
                if p.staff_id is not None:
                    out.append(care.where(clinician=p.staff_id))
                if p.ward_id is not None:
                    out.append(care.where(ward=p.ward_id))
                return out + ([{"_id": {"$in": sorted(p.glass)}}] if p.glass else [])
            if p.staff_id is not None:
                out += [{stored(f): p.staff_id} for f in d.clinicians]
            treated = await self._patients("clinician", p.staff_id) if p.staff_id else []
            ward = await self._patients("ward", p.ward_id) if p.ward_id else []
            ids = sorted(set(treated) | set(ward) | set(p.glass))
            if ids:
                out.append({patient: {"$in": ids}})
            return out
        if rel == Rel.DEPARTMENT and p.department_id is not None:
            if d.department is not None:
                return [{stored(d.department): p.department_id}]
            if d.patient == "id":
                return [care.where(department=p.department_id)]
            seen = await self._patients("department", p.department_id)
            return [{patient: {"$in": seen}}] if seen else []
        return []

    async def _patients(self, by: str, key: ObjectId) -> list[ObjectId]:
        """Patients a clinician or a ward's team treats, or a department sees, now: one indexed
        query, once per request."""
        memo = (by, key)
        if memo not in self._patients_where:
            query = care.where(**{by: key})
            ids = await db.collection(Patient).distinct("_id", query)
            self._patients_where[memo] = sorted(ids)
        return self._patients_where[memo]

    # -- writing -----------------------------------------------------------------------------

    def _write_rules(self, entity: Kind, action: str) -> Rules:
        return REGISTRY[entity].write.get(action, {})

    def may_ever(self, entity: Kind, action: str) -> bool:
        """Whether some role of the caller could do ``action`` on some row of ``entity``."""
        return bool(relations_for(self._write_rules(entity, action), self.principal.roles))

    def require_role(
        self,
        entity: Kind,
        action: str,
        entity_id: ObjectId | None = None,
        patient_id: ObjectId | None = None,
    ) -> None:
        """Refuse when no role of the caller could ever do ``action``; the answer is the same
        whether the named record exists or not, while the audit keeps the ids it names."""
        if not self.may_ever(entity, action):
            self.audit.denied(
                entity, entity_id, patient_id, audit_action(action, entity), "no role grants it"
            )
            raise Forbidden(f"Not allowed to {action} {entity} records")

    async def require(
        self,
        entity: Kind,
        action: str,
        row: Any = None,
        patient: Any = None,
        patient_id: ObjectId | None = None,
    ) -> None:
        """Refuse (``FORBIDDEN``, audited) unless the policy grants ``action`` here.

        The relation is taken from ``row`` when the action targets an existing record, else
        from the ``patient`` it is about (a new plan needs a care relationship with them).
        """
        self.require_role(entity, action)
        await self._grants()
        rules = self._write_rules(entity, action)
        if row is not None:
            rels = await self.relations(entity, row)
        elif patient is not None:
            rels = await self.relations(_patient_kind(), patient)
        else:
            rels = frozenset({Rel.ANY})
            p = self.principal
            if patient_id is not None and p.patient_id == patient_id:
                rels = rels | {Rel.SELF}
        if best(rules, self.principal.roles, rels) == Access.NONE:
            target = getattr(row, "id", None) or getattr(patient, "id", None)
            about = patient_id or (patient.id if patient else None) or patient_of(entity, row)
            self.audit.denied(entity, target, about, audit_action(action, entity), "not permitted")
            raise Forbidden(f"Not allowed to {action} this {entity}")

    def wrote(
        self,
        entity: Kind,
        row: Any,
        action: str,
        fields: Iterable[str] = (),
        note: str | None = None,
    ) -> None:
        """Record a successful write in the audit trail."""
        patient_id = patient_of(entity, row)
        self.audit.write(
            entity,
            row.id,
            patient_id,
            audit_action(action, entity),
            sorted(camel(f) for f in fields),  # the GraphQL names, as reads record them
            self.principal.glass.get(patient_id) if patient_id else None,
            note=note,
        )

    async def require_update(self, entity: Kind, row: Any, changes: Mapping[str, Any]) -> None:
        """Each group of input fields being changed needs its own grant (``updates``)."""
        await self._grants()
        rels = await self.relations(entity, row)
        for group, (names, rules) in REGISTRY[entity].updates.items():
            touched = set(changes) & set(names)
            if touched and best(rules, self.principal.roles, rels) == Access.NONE:
                self.audit.denied(
                    entity, row.id, patient_of(entity, row), AuditAction.UPDATE, f"{group} fields"
                )
                raise Forbidden(f"Not allowed to change {group} fields of this {entity}")
