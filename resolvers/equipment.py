"""Medical equipment: registry, allocation to departments, status changes."""

from __future__ import annotations

import strawberry

from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.equipment import EquipmentStatus, MedicalEquipment, RegisterEquipmentInput
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
        page = await equipment.list_equipment(
            oid(department_id, "departmentId") if department_id else None,
            status,
            info.context.page(first, after),
        )
        return connection(MedicalEquipment, page)


@strawberry.type
class EquipmentMutation:
    @strawberry.mutation(description="Add a device to a department's inventory.")
    async def register_equipment(self, input: RegisterEquipmentInput) -> MedicalEquipment:
        return view(MedicalEquipment, await equipment.register_equipment(create_data(input)))

    @strawberry.mutation(description="Move a device to another department (not while in use).")
    async def allocate_equipment(
        self, id: strawberry.ID, department_id: strawberry.ID, reason: str | None = None
    ) -> MedicalEquipment:
        moved = await equipment.allocate_equipment(
            oid(id), oid(department_id, "departmentId"), reason
        )
        return view(MedicalEquipment, moved)

    @strawberry.mutation(description="Change a device's status along the allowed transitions.")
    async def update_equipment_status(
        self, id: strawberry.ID, status: EquipmentStatus, reason: str | None = None
    ) -> MedicalEquipment:
        changed = await equipment.update_equipment_status(oid(id), status, reason)
        return view(MedicalEquipment, changed)
