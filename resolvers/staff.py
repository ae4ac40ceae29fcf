"""Doctors, nurses and administrative staff."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from resolvers.common import perform
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.staff import (
    AdminDuty,
    AdminStaff,
    CreateAdminStaffInput,
    CreateDoctorInput,
    CreateNurseInput,
    Doctor,
    DoctorDistance,
    Nurse,
    UpdateAdminStaffInput,
    UpdateDoctorInput,
    UpdateNurseInput,
)
from services import proximity, staff


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
        await info.context.access.scope(K.DOCTOR)
        page = await staff.list_doctors(
            oid(department_id, "departmentId") if department_id else None,
            specialty,
            info.context.page(first, after),
        )
        return connection(Doctor, page)

    @strawberry.field(
        description=(
            "Active doctors with a location within `radiusKm` (at most 200) of a point, nearest"
            " first, at most 50; `specialty` matches whole, any case."
        ),
        metadata=reads(K.DOCTOR),
    )
    async def doctors_near(
        self,
        info: Info,
        latitude: float,
        longitude: float,
        radius_km: float,
        specialty: str | None = None,
    ) -> list[DoctorDistance]:
        scope = await info.context.access.scope(K.DOCTOR)
        found = await proximity.doctors_near(latitude, longitude, radius_km, specialty, scope)
        return [view(DoctorDistance, d) for d in found]

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
        await info.context.access.scope(K.NURSE)
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
        await info.context.access.scope(K.ADMIN_STAFF)
        page = await staff.list_admin_staff(
            oid(department_id, "departmentId") if department_id else None,
            info.context.page(first, after),
        )
        return connection(AdminStaff, page)


@strawberry.type
class StaffMutation:
    @strawberry.mutation(metadata=acts(K.DOCTOR, Action.CREATE))
    async def create_doctor(self, info: Info, input: CreateDoctorInput) -> Doctor:
        data = create_data(input)
        created = await perform(
            info, K.DOCTOR, Action.CREATE, partial(staff.create_doctor, data), data
        )
        return view(Doctor, created)

    @strawberry.mutation(metadata=acts(K.DOCTOR, Action.UPDATE))
    async def update_doctor(
        self, info: Info, id: strawberry.ID, input: UpdateDoctorInput
    ) -> Doctor:
        changes = update_data(input)
        run = partial(staff.update_doctor, oid(id), changes)
        return view(Doctor, await perform(info, K.DOCTOR, Action.UPDATE, run, changes))

    @strawberry.mutation(metadata=acts(K.NURSE, Action.CREATE))
    async def create_nurse(self, info: Info, input: CreateNurseInput) -> Nurse:
        data = create_data(input)
        created = await perform(
            info, K.NURSE, Action.CREATE, partial(staff.create_nurse, data), data
        )
        return view(Nurse, created)

    @strawberry.mutation(metadata=acts(K.NURSE, Action.UPDATE))
    async def update_nurse(self, info: Info, id: strawberry.ID, input: UpdateNurseInput) -> Nurse:
        changes = update_data(input)
        run = partial(staff.update_nurse, oid(id), changes)
        return view(Nurse, await perform(info, K.NURSE, Action.UPDATE, run, changes))

    @strawberry.mutation(metadata=acts(K.ADMIN_STAFF, Action.CREATE))
    async def create_admin_staff(self, info: Info, input: CreateAdminStaffInput) -> AdminStaff:
        data = create_data(input)
        created = await perform(
            info, K.ADMIN_STAFF, Action.CREATE, partial(staff.create_admin_staff, data), data
        )
        return view(AdminStaff, created)

    @strawberry.mutation(metadata=acts(K.ADMIN_STAFF, Action.UPDATE))
    async def update_admin_staff(
        self, info: Info, id: strawberry.ID, input: UpdateAdminStaffInput
    ) -> AdminStaff:
        changes = update_data(input)
        run = partial(staff.update_admin_staff, oid(id), changes)
        return view(AdminStaff, await perform(info, K.ADMIN_STAFF, Action.UPDATE, run, changes))

    @strawberry.mutation(
        description="Replace an administrative employee's duties.",
        metadata=acts(K.ADMIN_STAFF, Action.UPDATE),
    )
    async def assign_admin_staff_duties(
        self, info: Info, id: strawberry.ID, duties: list[AdminDuty]
    ) -> AdminStaff:
        await info.context.access.require(K.ADMIN_STAFF, Action.UPDATE)
        changed = await staff.assign_admin_duties(oid(id), duties)
        info.context.access.wrote(K.ADMIN_STAFF, changed, Action.UPDATE, ["duties"])
        return view(AdminStaff, changed)
