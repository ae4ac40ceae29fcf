"""Doctors, nurses and administrative staff."""

from __future__ import annotations

import strawberry

from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.staff import (
    AdminDuty,
    AdminStaff,
    CreateAdminStaffInput,
    CreateDoctorInput,
    CreateNurseInput,
    Doctor,
    Nurse,
    UpdateAdminStaffInput,
    UpdateDoctorInput,
    UpdateNurseInput,
)
from services import staff


@strawberry.type
class StaffQuery:
    @strawberry.field(description="One doctor by id; null if there is none.")
    async def doctor(self, info: Info, id: strawberry.ID) -> Doctor | None:
        return await info.context.loaders.doctor_by_id.load(oid(id))

    @strawberry.field(description="Doctors by name; `specialty` matches whole, any case.")
    async def doctors(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        specialty: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Doctor]:
        page = await staff.list_doctors(
            oid(department_id, "departmentId") if department_id else None,
            specialty,
            info.context.page(first, after),
        )
        return connection(Doctor, page)

    @strawberry.field(description="One nurse by id; null if there is none.")
    async def nurse(self, info: Info, id: strawberry.ID) -> Nurse | None:
        return await info.context.loaders.nurse_by_id.load(oid(id))

    @strawberry.field(description="Nurses by name.")
    async def nurses(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Nurse]:
        page = await staff.list_nurses(
            oid(department_id, "departmentId") if department_id else None,
            info.context.page(first, after),
        )
        return connection(Nurse, page)

    @strawberry.field(description="One administrative employee by id; null if there is none.")
    async def admin_staff_member(self, info: Info, id: strawberry.ID) -> AdminStaff | None:
        return await info.context.loaders.admin_staff_by_id.load(oid(id))

    @strawberry.field(description="Administrative staff by name.")
    async def admin_staff(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AdminStaff]:
        page = await staff.list_admin_staff(
            oid(department_id, "departmentId") if department_id else None,
            info.context.page(first, after),
        )
        return connection(AdminStaff, page)


@strawberry.type
class StaffMutation:
    @strawberry.mutation
    async def create_doctor(self, input: CreateDoctorInput) -> Doctor:
        return view(Doctor, await staff.create_doctor(create_data(input)))

    @strawberry.mutation
    async def update_doctor(self, id: strawberry.ID, input: UpdateDoctorInput) -> Doctor:
        return view(Doctor, await staff.update_doctor(oid(id), update_data(input)))

    @strawberry.mutation
    async def create_nurse(self, input: CreateNurseInput) -> Nurse:
        return view(Nurse, await staff.create_nurse(create_data(input)))

    @strawberry.mutation
    async def update_nurse(self, id: strawberry.ID, input: UpdateNurseInput) -> Nurse:
        return view(Nurse, await staff.update_nurse(oid(id), update_data(input)))

    @strawberry.mutation
    async def create_admin_staff(self, input: CreateAdminStaffInput) -> AdminStaff:
        return view(AdminStaff, await staff.create_admin_staff(create_data(input)))

    @strawberry.mutation
    async def update_admin_staff(
        self, id: strawberry.ID, input: UpdateAdminStaffInput
    ) -> AdminStaff:
        return view(AdminStaff, await staff.update_admin_staff(oid(id), update_data(input)))

    @strawberry.mutation(description="Replace an administrative employee's duties.")
    async def assign_admin_staff_duties(
        self, id: strawberry.ID, duties: list[AdminDuty]
    ) -> AdminStaff:
        return view(AdminStaff, await staff.assign_admin_duties(oid(id), duties))
