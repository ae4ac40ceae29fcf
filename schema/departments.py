"""GraphQL types and inputs for departments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import departments as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.equipment import EquipmentStatus, MedicalEquipment
    from schema.staff import AdminStaff, Doctor, Nurse


@strawberry.type(description="A unit of the facility that owns staff, equipment and bookings.")
class Department:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    code: str
    description: str | None
    location: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def head_doctor_id(root: strawberry.Parent[m.Department]) -> strawberry.ID | None:
        return ref_id(root.head_doctor_id)

    @strawberry.field
    @staticmethod
    async def head_doctor(
        root: strawberry.Parent[m.Department], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        if root.head_doctor_id is None:
            return None
        return await info.context.loaders.doctor_by_id.load(root.head_doctor_id)

    @strawberry.field
    @staticmethod
    async def doctors(
        root: strawberry.Parent[m.Department],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Doctor, strawberry.lazy("schema.staff")]] | None:
        from schema.staff import Doctor

        key = (root.id, info.context.page(first, after), ())
        return connection(Doctor, await info.context.loaders.doctors_by_department.load(key))

    @strawberry.field
    @staticmethod
    async def nurses(
        root: strawberry.Parent[m.Department],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Nurse, strawberry.lazy("schema.staff")]] | None:
        from schema.staff import Nurse

        key = (root.id, info.context.page(first, after), ())
        return connection(Nurse, await info.context.loaders.nurses_by_department.load(key))

    @strawberry.field
    @staticmethod
    async def admin_staff(
        root: strawberry.Parent[m.Department],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[AdminStaff, strawberry.lazy("schema.staff")]] | None:
        from schema.staff import AdminStaff

        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.admin_staff_by_department.load(key)
        return connection(AdminStaff, page)

    @strawberry.field
    @staticmethod
    async def equipment(
        root: strawberry.Parent[m.Department],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: Annotated[EquipmentStatus, strawberry.lazy("schema.equipment")] | None = None,
    ) -> Connection[Annotated[MedicalEquipment, strawberry.lazy("schema.equipment")]] | None:
        from schema.equipment import MedicalEquipment

        filt = (("status", status.value),) if status else ()
        key = (root.id, info.context.page(first, after), filt)
        page = await info.context.loaders.equipment_by_department.load(key)
        return connection(MedicalEquipment, page)


@strawberry.input
class CreateDepartmentInput:
    name: str
    code: str = strawberry.field(description="Short unique code in capitals, e.g. CARD")
    description: str | None = None
    location: str | None = None
    head_doctor_id: strawberry.ID | None = None


@strawberry.input(description="Only the fields given change.")
class UpdateDepartmentInput:
    name: str | None = strawberry.UNSET
    code: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    location: str | None = strawberry.UNSET
    head_doctor_id: strawberry.ID | None = strawberry.UNSET
