"""GraphQL types and inputs for medical equipment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cache.equipment import StatusEntry
from models import equipment as m
from schema.common import entity_id
from schema.context import Info
from schema.scheduling import appointments_field

if TYPE_CHECKING:
    from schema.departments import Department

strawberry.enum(
    m.EquipmentStatus, description="Where a device is in its life cycle; see the transitions."
)
EquipmentStatus = m.EquipmentStatus


@strawberry.type
class EquipmentStatusChange:
    from_status: EquipmentStatus | None
    to_status: EquipmentStatus
    reason: str | None
    at: datetime


@strawberry.type(description="A move of a device from one department to another.")
class EquipmentAllocation:
    reason: str | None
    at: datetime

    @strawberry.field
    @staticmethod
    def from_department_id(root: strawberry.Parent[m.EquipmentAllocation]) -> strawberry.ID:
        return strawberry.ID(str(root.from_department_id))

    @strawberry.field
    @staticmethod
    def to_department_id(root: strawberry.Parent[m.EquipmentAllocation]) -> strawberry.ID:
        return strawberry.ID(str(root.to_department_id))


@strawberry.type(description="A tracked device, owned by one department.")
class MedicalEquipment:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    equipment_type: str
    serial_number: str
    manufacturer: str | None
    model: str | None
    status: EquipmentStatus
    status_history: list[EquipmentStatusChange]
    allocation_history: list[EquipmentAllocation]
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.MedicalEquipment]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.MedicalEquipment], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="Statuses this device may move to next.")
    @staticmethod
    def allowed_transitions(root: strawberry.Parent[m.MedicalEquipment]) -> list[EquipmentStatus]:
        return sorted(m.EQUIPMENT_TRANSITIONS[root.status], key=lambda s: s.value)

    appointments = appointments_field(
        "appointments_by_equipment", "Appointments booked on this device"
    )


def _department_id(root: strawberry.Parent[StatusEntry]) -> strawberry.ID:
    return strawberry.ID(str(root.department_id))


@strawberry.type(description="A device's live status, as a department's status board shows it.")
class EquipmentStatusEntry:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    equipment_type: str
    status: EquipmentStatus
    department_id: strawberry.ID = strawberry.field(resolver=_department_id)
    updated_at: datetime


@strawberry.input
class RegisterEquipmentInput:
    name: str
    equipment_type: str
    serial_number: str
    department_id: strawberry.ID
    manufacturer: str | None = None
    model: str | None = None
    status: EquipmentStatus = EquipmentStatus.AVAILABLE
