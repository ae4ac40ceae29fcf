"""Per-request access decisions, all read from ``auth.policy``.

Rows are filtered in the database query (``scope``) for lists and checked one by one for
lookups by id and relations (``one``); guarded fields ask ``field``; mutations ask ``require``.
Every decision about patient data lands in the request's audit trail. Relations are computed
from the rows themselves (and the patient row for clinical records, through the batching
loaders), so access checks add no per-row queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from auth.identity import load_grants
from auth.policy import (
    FIELDS,
    PATIENT_DATA,
    READ,
    ROW,
    WRITE,
    WRITE_FIELDS,
    Access,
    Action,
    EntityKind,
    Rel,
    best,
    group_of,
    relations_for,
)
from auth.principal import Principal
from errors import Forbidden, Unauthenticated
from models.audit import AuditAction
from models.patients import Patient
from services.pagination import Page, Query

if TYPE_CHECKING:
    from auth.audit import AuditTrail
    from loaders import Loaders

NOTHING: Query = {"_id": {"$exists": False}}
# Which field of a clinical row names the clinician who made it: making it is caring.
OWNER_FIELD = {
    EntityKind.APPOINTMENT: "doctor_id",
    EntityKind.TREATMENT_PLAN: "doctor_id",
    EntityKind.TREATMENT: "performed_by_id",
    EntityKind.PRESCRIPTION: "prescriber_id",
}


_CREATES = frozenset({Action.CREATE, Action.SCHEDULE, Action.RECORD_TREATMENT})


def audit_action(action: Action) -> AuditAction:
    """The audit trail's coarse verb for a policy action (its ``operation`` keeps the detail)."""
    if action == Action.BREAK_GLASS:
        return AuditAction.BREAK_GLASS
    return AuditAction.CREATE if action in _CREATES else AuditAction.UPDATE


def mask(value: str | None) -> str | None:
    """Keep the last four characters: enough to confirm an identity, not to steal it."""
    if value is None:
        return None
    return "•" * max(len(value) - 4, 0) + value[-4:]


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
        self._rels: dict[tuple[EntityKind, Any], frozenset[Rel]] = {}
        self._grants_loaded = False
        self._patients_where: dict[str, list[ObjectId]] = {}

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

    def _patient_rels(self, patient: Patient | None) -> set[Rel]:
        p = self.principal
        rels = {Rel.ANY}
        if patient is None:
            return rels
        if p.patient_id is not None and patient.id == p.patient_id:
            rels.add(Rel.SELF)
        if (p.staff_id is not None and p.staff_id in patient.care_team) or patient.id in p.glass:
            rels.add(Rel.CARE)
        if p.department_id is not None and p.department_id in patient.care_departments:
            rels.add(Rel.DEPARTMENT)
        return rels

    def _needs_relations(self, entity: EntityKind) -> bool:
        """Whether any grant the caller holds on ``entity`` depends on how they relate to it."""
        for rules in READ.get(entity, {}).values():
            for role in self.principal.roles:
                g = rules.get(role)
                if g is not None and Rel.ANY not in g.relations:
                    return True
        for actions in WRITE.get(entity, {}).values():
            for role in self.principal.roles:
                g = actions.get(role)
                if g is not None and Rel.ANY not in g.relations:
                    return True
        return entity == EntityKind.PATIENT

    def forget(self, entity: EntityKind, id: ObjectId) -> None:
        """Drop a cached relation (a grant was just opened on it)."""
        self._rels.pop((entity, id), None)

    async def relations(self, entity: EntityKind, row: Any) -> frozenset[Rel]:
        await self._grants()
        key = (entity, getattr(row, "id", None) or id(row))
        cached = self._rels.get(key)
        if cached is None:
            cached = frozenset(await self._relations(entity, row))
            self._rels[key] = cached
        return cached

    async def _relations(self, entity: EntityKind, row: Any) -> set[Rel]:
        p = self.principal
        if entity == EntityKind.PATIENT:
            return self._patient_rels(row)
        if not self._needs_relations(entity):
            return {Rel.ANY}
        if entity in PATIENT_DATA:
            if p.patient_id is not None:  # a patient relates to nothing but their own rows
                return {Rel.ANY, Rel.SELF} if row.patient_id == p.patient_id else {Rel.ANY}
            rels = self._patient_rels(await self.loaders.patient_by_id.load(row.patient_id))
            rels.discard(Rel.DEPARTMENT)
            owner = OWNER_FIELD.get(entity)
            if owner and p.staff_id is not None and getattr(row, owner) == p.staff_id:
                rels.add(Rel.CARE)
            if entity == EntityKind.APPOINTMENT:
                if p.department_id is not None and row.department_id == p.department_id:
                    rels.add(Rel.DEPARTMENT)
            elif p.department_id is not None:
                patient = await self.loaders.patient_by_id.load(row.patient_id)
                if patient is not None and p.department_id in patient.care_departments:
                    rels.add(Rel.DEPARTMENT)
            return rels
        rels = {Rel.ANY}
        if getattr(row, "id", None) is not None and row.id in (p.staff_id,):
            rels.add(Rel.SELF)
        department = (
            row.id if entity == EntityKind.DEPARTMENT else getattr(row, "department_id", None)
        )
        if p.department_id is not None and department == p.department_id:
            rels.add(Rel.DEPARTMENT)
        return rels

    # -- reading -----------------------------------------------------------------------------

    async def field_access(self, entity: EntityKind, group: str, row: Any) -> Access:
        rules = READ.get(entity, {}).get(group)
        if rules is None:
            return Access.FULL if group != ROW else Access.NONE
        return best(rules, self.principal.roles, await self.relations(entity, row))

    async def can_see(self, entity: EntityKind, row: Any) -> bool:
        return await self.field_access(entity, ROW, row) != Access.NONE

    async def field(self, entity: EntityKind, group: str, row: Any) -> Access:
        """Access to a guarded field; ``FORBIDDEN`` (a null at its path) when there is none."""
        access = await self.field_access(entity, group, row)
        if access == Access.NONE:
            names = ", ".join(FIELDS.get(entity, {}).get(group, (group,)))
            raise Forbidden(f"Not allowed to read {entity.value}.{names}", field=group)
        return access

    async def one(self, entity: EntityKind, row: Any, requested: Iterable[str] = ()) -> Any:
        """A row reached by id or relation: returned if visible, else ``FORBIDDEN``."""
        if row is None:
            return None
        if not await self.can_see(entity, row):
            if entity in PATIENT_DATA:
                self.audit.denied(
                    entity.value,
                    row.id,
                    _patient_of(entity, row),
                    AuditAction.READ,
                    "no relationship",
                )
            raise Forbidden(f"Not allowed to read this {entity.value}")
        await self._audit_reads(entity, [row], requested)
        return row

    async def page(
        self, entity: EntityKind, page: Page[Any], requested: Iterable[str]
    ) -> Page[Any]:
        """A page already filtered by ``scope``: recorded in the audit trail."""
        await self._audit_reads(entity, page.items, requested)
        return page

    async def _audit_reads(
        self, entity: EntityKind, rows: Sequence[Any], requested: Iterable[str]
    ) -> None:
        if entity not in PATIENT_DATA or not rows:
            return
        # Relations of every row at once, so their patient lookups batch into one query.
        await asyncio.gather(*(self.relations(entity, row) for row in rows))
        wanted = sorted(set(requested))
        for row in rows:
            withheld = []
            for name in wanted:
                group = group_of(entity, name)
                if group != ROW and await self.field_access(entity, group, row) == Access.NONE:
                    withheld.append(name)
            patient_id = _patient_of(entity, row)
            self.audit.read(
                entity.value,
                row.id,
                patient_id,
                [n for n in wanted if n not in withheld],
                withheld,
                self.principal.glass.get(patient_id) if patient_id else None,
            )

    # -- list filters ------------------------------------------------------------------------

    async def scope(self, entity: EntityKind) -> Query:
        """The database filter for rows of ``entity`` this caller may list."""
        await self._grants()
        rels = relations_for(READ.get(entity, {}).get(ROW, {}), self.principal.roles)
        if not rels:
            raise Forbidden(f"Not allowed to list {entity.value} records")
        if Rel.ANY in rels:
            return {}
        branches = [b for rel in sorted(rels) for b in await self._branches(entity, rel)]
        if not branches:
            return NOTHING
        return branches[0] if len(branches) == 1 else {"$or": branches}

    async def _branches(self, entity: EntityKind, rel: Rel) -> list[Query]:
        p = self.principal
        glass = list(p.glass)
        if entity == EntityKind.PATIENT:
            if rel == Rel.SELF and p.patient_id is not None:
                return [{"_id": p.patient_id}]
            if rel == Rel.CARE:
                mine = [{"care_team": p.staff_id}] if p.staff_id is not None else []
                return mine + ([{"_id": {"$in": glass}}] if glass else [])
            if rel == Rel.DEPARTMENT and p.department_id is not None:
                return [{"care_departments": p.department_id}]
            return []
        if entity not in PATIENT_DATA:
            return []
        if rel == Rel.SELF:
            return [{"patient_id": p.patient_id}] if p.patient_id is not None else []
        owner = OWNER_FIELD.get(entity)
        if rel == Rel.CARE:
            out: list[Query] = []
            if owner and p.staff_id is not None:
                out.append({owner: p.staff_id})
            cared = await self._patients({"care_team": p.staff_id}) if p.staff_id else []
            if cared or glass:
                out.append({"patient_id": {"$in": sorted(set(cared) | set(glass))}})
            return out
        if rel == Rel.DEPARTMENT and p.department_id is not None:
            if entity == EntityKind.APPOINTMENT:
                return [{"department_id": p.department_id}]
            seen = await self._patients({"care_departments": p.department_id})
            return [{"patient_id": {"$in": seen}}] if seen else []
        return []

    async def _patients(self, query: Query) -> list[ObjectId]:
        """Patient ids matching ``query``, once per request (one indexed query)."""
        key = repr(sorted(query.items()))
        if key not in self._patients_where:
            ids = await Patient.get_motor_collection().distinct("_id", query)
            self._patients_where[key] = sorted(ids)
        return self._patients_where[key]

    # -- writing -----------------------------------------------------------------------------

    def require_role(self, entity: EntityKind, action: Action) -> None:
        """Refuse before any lookup when no role of the caller could ever do ``action``, so
        answers to callers without the right cannot tell existing records from unknown ids."""
        if not relations_for(WRITE.get(entity, {}).get(action, {}), self.principal.roles):
            self.audit.denied(entity.value, None, None, audit_action(action), "no role grants it")
            raise Forbidden(f"Not allowed to {action.value} {entity.value} records")

    async def require(
        self,
        entity: EntityKind,
        action: Action,
        row: Any = None,
        patient: Patient | None = None,
        patient_id: ObjectId | None = None,
    ) -> None:
        """Refuse (``FORBIDDEN``, audited) unless the policy grants ``action`` here.

        The relation is taken from ``row`` when the action targets an existing record, else
        from the ``patient`` it is about (a new plan needs a care relationship with them).
        """
        self.require_role(entity, action)
        await self._grants()
        rules = WRITE.get(entity, {}).get(action, {})
        if row is not None:
            rels = await self.relations(entity, row)
        elif patient is not None:
            rels = frozenset(self._patient_rels(patient))
        else:
            rels = frozenset({Rel.ANY})
            p = self.principal
            if patient_id is not None and p.patient_id == patient_id:
                rels = rels | {Rel.SELF}
        if best(rules, self.principal.roles, rels) == Access.NONE:
            target = getattr(row, "id", None) or getattr(patient, "id", None)
            about = patient_id or (patient.id if patient else None) or _patient_of(entity, row)
            self.audit.denied(entity.value, target, about, audit_action(action), "not permitted")
            raise Forbidden(f"Not allowed to {action.value} this {entity.value}")

    def wrote(
        self, entity: EntityKind, row: Any, action: Action, fields: Iterable[str] = ()
    ) -> None:
        """Record a successful write in the audit trail."""
        patient_id = _patient_of(entity, row)
        self.audit.write(
            entity.value,
            row.id,
            patient_id,
            audit_action(action),
            sorted(fields),
            self.principal.glass.get(patient_id) if patient_id else None,
        )

    def require_patient_writer(self) -> None:
        """Refuse before any lookup callers that may change no patient field at all."""
        if not any(
            relations_for(rules, self.principal.roles) for _, rules in WRITE_FIELDS.values()
        ):
            self.audit.denied(EntityKind.PATIENT.value, None, None, AuditAction.UPDATE, "no role")
            raise Forbidden("Not allowed to change patient records")

    async def require_patient_update(self, patient: Patient, changes: Mapping[str, Any]) -> None:
        await self._grants()
        rels = frozenset(self._patient_rels(patient))
        for group, (names, rules) in WRITE_FIELDS.items():
            touched = set(changes) & set(names)
            if touched and best(rules, self.principal.roles, rels) == Access.NONE:
                self.audit.denied(
                    EntityKind.PATIENT.value,
                    patient.id,
                    patient.id,
                    AuditAction.UPDATE,
                    f"{group} fields",
                )
                raise Forbidden(f"Not allowed to change {group} fields of this patient")


def _patient_of(entity: EntityKind, row: Any) -> ObjectId | None:
    if row is None:
        return None
    if entity == EntityKind.PATIENT:
        return row.id
    return getattr(row, "patient_id", None)
