"""GraphQL types and inputs for doctors, nurses and administrative staff."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import staff as m
from schema.common import entity_id
from schema.context import Info
from schema.scheduling import appointments_field

if TYPE_CHECKING:
    from schema.departments import Department

strawberry.enum(m.AdminDuty, description="What an administrative employee does.")
AdminDuty = m.AdminDuty


@strawberry.type(description="A place in decimal degrees (WGS 84).")
class GeoPoint:
    latitude: float
    longitude: float


@strawberry.type
class StaffContact:
    email: str | None
    phone: str | None


async def _department(root: m.StaffMember, info: Info) -> Department | None:
    return await info.context.loaders.department_by_id.load(root.department_id)


@strawberry.interface(description="Fields every employee has.")
class StaffMember:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    first_name: str
    last_name: str
    active: bool
    created_at: datetime
    updated_at: datetime

    contact: StaffContact | None = strawberry.field(description="Work contact; staff only.")

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.StaffMember]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.StaffMember], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await _department(root, info)


@strawberry.type
class Doctor(StaffMember):
    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, m.Doctor)

    specialty: str
    licence_number: str | None
    location: GeoPoint | None = strawberry.field(
        description="Where the doctor practises, if recorded; see doctorsNear."
    )

    appointments = appointments_field("appointments_by_doctor", "This doctor's appointments")


@strawberry.type
class Nurse(StaffMember):
    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, m.Nurse)

    licence_number: str | None
    ward: str | None
    ward_id: strawberry.ID | None = strawberry.field(
        description="The ward the nurse is assigned to: its current inpatients are in their care."
    )


@strawberry.type
class AdminStaff(StaffMember):
    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, m.AdminStaff)

    duties: list[AdminDuty]


@strawberry.type(description="A doctor found by doctorsNear, with how far away they are.")
class DoctorDistance:
    doctor: Doctor
    distance_km: float = strawberry.field(description="Great-circle distance, in kilometres.")


@strawberry.input(description="Latitude -90..90 and longitude -180..180, in decimal degrees.")
class GeoPointInput:
    latitude: float
    longitude: float


@strawberry.input
class StaffContactInput:
    email: str | None = None
    phone: str | None = None


@strawberry.input
class CreateDoctorInput:
    first_name: str
    last_name: str
    department_id: strawberry.ID
    specialty: str
    licence_number: str
    contact: StaffContactInput | None = None
    location: GeoPointInput | None = None


@strawberry.input(description="Only the fields given change.")
class UpdateDoctorInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    specialty: str | None = strawberry.UNSET
    licence_number: str | None = strawberry.UNSET
    contact: StaffContactInput | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    location: GeoPointInput | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it."
    )


@strawberry.input
class CreateNurseInput:
    first_name: str
    last_name: str
    department_id: strawberry.ID
    licence_number: str
    ward: str | None = None
    ward_id: strawberry.ID | None = None
    contact: StaffContactInput | None = None


@strawberry.input(description="Only the fields given change.")
class UpdateNurseInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    licence_number: str | None = strawberry.UNSET
    ward: str | None = strawberry.UNSET
    ward_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it."
    )
    contact: StaffContactInput | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class CreateAdminStaffInput:
    first_name: str
    last_name: str
    department_id: strawberry.ID
    duties: list[AdminDuty] | None = None
    contact: StaffContactInput | None = None


@strawberry.input(description="Only the fields given change; duties via assignAdminStaffDuties.")
class UpdateAdminStaffInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    contact: StaffContactInput | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
