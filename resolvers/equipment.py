"""Medical equipment: registry, allocation to departments, status changes."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from cache.equipment import department_status
from resolvers.common import perform
from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.equipment import (
    EquipmentStatus,
    EquipmentStatusEntry,
    MedicalEquipment,
    RegisterEquipmentInput,
)
from services import equipment


@strawberry.type
class EquipmentQuery:
    @strawberry.field(description="One device by id; null if there is none.")
    async def equipment(self, info: Info, id: strawberry.ID) -> MedicalEquipment | None:
        return await info.context.loaders.equipment_by_id.load(oid(id))

    @strawberry.field(description="Devices in registration order, by department and status.")
    async def equipment_list(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        status: EquipmentStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[MedicalEquipment]:
        await info.context.access.scope(K.EQUIPMENT)
        page = await equipment.list_equipment(
            oid(department_id, "departmentId") if department_id else None,
            status,
            info.context.page(first, after),
        )
        return connection(MedicalEquipment, page)

    @strawberry.field(
        description="A department's devices and their live status, by name; answered from "
        "Redis, kept in step with every equipment write.",
        metadata=reads(K.EQUIPMENT),
    )
    async def department_equipment_status(
        self, info: Info, department_id: strawberry.ID
    ) -> list[EquipmentStatusEntry]:
        access = info.context.access
        scope = await access.scope(K.EQUIPMENT)  # FORBIDDEN without any row grant
        entries = await department_status(oid(department_id, "departmentId"))
        if scope:  # a grant that depends on the row: the same row check as a lookup by id
            entries = [e for e in entries if await access.can_see(K.EQUIPMENT, e)]
        return [view(EquipmentStatusEntry, e) for e in entries]


@strawberry.type
class EquipmentMutation:
    @strawberry.mutation(
        description="Add a device to a department's inventory.",
        metadata=acts(K.EQUIPMENT, Action.CREATE),
    )
    async def register_equipment(
        self, info: Info, input: RegisterEquipmentInput
    ) -> MedicalEquipment:
        data = create_data(input)
        run = partial(equipment.register_equipment, data)
        return view(MedicalEquipment, await perform(info, K.EQUIPMENT, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Move a device to another department (not while in use).",
        metadata=acts(K.EQUIPMENT, Action.ALLOCATE),
    )
    async def allocate_equipment(
        self,
        info: Info,
        id: strawberry.ID,
        department_id: strawberry.ID,
        reason: str | None = None,
    ) -> MedicalEquipment:
        run = partial(
            equipment.allocate_equipment, oid(id), oid(department_id, "departmentId"), reason
        )
        moved = await perform(info, K.EQUIPMENT, Action.ALLOCATE, run, ["department_id"])
        return view(MedicalEquipment, moved)

    @strawberry.mutation(
        description="Change a device's status along the allowed transitions.",
        metadata=acts(K.EQUIPMENT, Action.CHANGE_STATUS),
    )
    async def update_equipment_status(
        self,
        info: Info,
        id: strawberry.ID,
        status: EquipmentStatus,
        reason: str | None = None,
    ) -> MedicalEquipment:
        device = await equipment.get_equipment(oid(id))
        run = partial(equipment.update_equipment_status, oid(id), status, reason)
        changed = await perform(
            info, K.EQUIPMENT, Action.CHANGE_STATUS, run, ["status"], row=device
        )
        return view(MedicalEquipment, changed)
