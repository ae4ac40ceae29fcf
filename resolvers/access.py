"""``viewer`` (who am I, what may I do) and ``breakTheGlass``, both from the policy table."""

from __future__ import annotations

from typing import Any

import strawberry

from auth.policy import REGISTRY, ROW, Access, Action, Rel, best
from auth.policy import EntityKind as K
from models.audit import AuditAction
from schema.access import AccessGrant, EntityKind, FieldPermission, Permissions, Role
from schema.common import oid, ref_id, view
from schema.context import Info
from schema.enforce import about_caller, acts
from services import grants


async def permissions(info: Info, entity: EntityKind, id: strawberry.ID | None) -> Permissions:
    access = info.context.access
    roles = access.principal.roles
    declaration = REGISTRY[entity.value]
    # Without an id: what the caller may do with at least some records of the kind.
    rels: frozenset[Rel] = frozenset(Rel)
    if id is not None and declaration.model is not None:
        loader = getattr(info.context.loaders, f"{declaration.name}_by_id")
        row: Any = await loader.load(oid(id))
        rels = frozenset({Rel.ANY}) if row is None else await access.relations(entity.value, row)
    read = declaration.read
    visible = best(read.get(ROW, {}), roles, rels) != Access.NONE
    fields = [
        FieldPermission(name=name, access=best(rules, roles, rels) if visible else Access.NONE)
        for group, rules in read.items()
        if group != ROW
        for name in declaration.fields.get(group, ())
    ]
    actions = sorted(
        str(action)
        for action, rules in declaration.actions.items()
        if best(rules, roles, rels) != Access.NONE
    )
    actions += [
        f"{Action.UPDATE.value}:{group}"
        for group, (_, rules) in declaration.updates.items()
        if best(rules, roles, rels) != Access.NONE
    ]
    return Permissions(entity=entity, id=id, visible=visible, actions=actions, fields=fields)


@strawberry.type(description="The signed-in caller, and what the policy lets them do.")
class Viewer:
    subject: str
    roles: list[Role]
    patient_id: strawberry.ID | None
    staff_id: strawberry.ID | None
    department_id: strawberry.ID | None

    @strawberry.field(description="Open break-the-glass grants: patient id and reason.")
    async def emergency_access(self, info: Info) -> list[AccessGrant]:
        subject = info.context.access.principal.subject
        return [view(AccessGrant, g) for g in await grants.live(subject)]

    @strawberry.field(description="Actions and fields the viewer may use on a kind or a record.")
    async def permissions(
        self, info: Info, entity: EntityKind, id: strawberry.ID | None = None
    ) -> Permissions:
        return await permissions(info, entity, id)


@strawberry.type
class AccessQuery:
    @strawberry.field(
        description="Who I am and what I may do; requires a token.", metadata=about_caller()
    )
    def viewer(self, info: Info) -> Viewer:
        p = info.context.access.principal
        return Viewer(
            subject=p.subject,
            roles=sorted(p.roles),
            patient_id=ref_id(p.patient_id),
            staff_id=ref_id(p.staff_id),
            department_id=ref_id(p.department_id),
        )


@strawberry.type
class AccessMutation:
    @strawberry.mutation(
        description="Emergency access to a patient without a care relationship: time-boxed, "
        "audited, and every access under it is flagged.",
        metadata=acts(K.PATIENT, Action.BREAK_GLASS),
    )
    async def break_the_glass(
        self, info: Info, patient_id: strawberry.ID, reason: str
    ) -> AccessGrant:
        access = info.context.access
        await access.require(K.PATIENT, Action.BREAK_GLASS)
        principal = access.principal
        grant = await grants.open_grant(
            principal.subject,
            oid(patient_id, "patientId"),
            reason,
            info.context.settings.shms_break_glass_minutes,
        )
        principal.glass[grant.patient_id] = grant.reason
        access.forget(K.PATIENT, grant.patient_id)
        info.context.audit.write(
            K.PATIENT,
            grant.patient_id,
            grant.patient_id,
            AuditAction.BREAK_GLASS,
            ["emergencyAccess"],
            grant.reason,
        )
        return view(AccessGrant, grant)
