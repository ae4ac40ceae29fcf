"""Staff: doctors, nurses and administrative staff, each attached to a department."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, EmailStr, Field

from auth.policy import (
    ADMIN_ONLY,
    EVERYONE,
    SCHEDULERS,
    STAFF_DETAILS,
    STAFF_ROLES,
    A,
    Action,
    R,
    declare,
    each,
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from models.base import Entity, Name, Ref, ShortText


class AdminDuty(StrEnum):
    FRONT_DESK = "front_desk"
    SCHEDULING = "scheduling"
    MEDICAL_RECORDS = "medical_records"
    BILLING = "billing"
    INVENTORY = "inventory"
    HUMAN_RESOURCES = "human_resources"


class StaffContact(BaseModel):
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()\-]{5,25}$")


class GeoPoint(BaseModel):
    """A place on the globe in decimal degrees (WGS 84)."""

    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)


class StaffMember(Entity):
    first_name: Name
    last_name: Name
    department_id: Ref
    contact: StaffContact = Field(default_factory=StaffContact)
    active: bool = True


class Doctor(StaffMember):
    specialty: ShortText
    licence_number: str = Field(min_length=3, max_length=40)
    location: GeoPoint | None = Field(
        default=None, description="Where the doctor practises; searched by services.proximity."
    )

    class Settings:
        name = "doctors"
        indexes = [
            pymongo.IndexModel("licence_number", unique=True),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
            pymongo.IndexModel("specialty"),
            # Plain range index (no 2d/2dsphere: mongomock has neither): bounding-box queries.
            pymongo.IndexModel([("location.latitude", 1), ("location.longitude", 1)]),
        ]


class Nurse(StaffMember):
    licence_number: str = Field(min_length=3, max_length=40)
    ward: ShortText | None = None
    ward_id: Ref | None = Field(
        default=None,
        description="The ward the nurse is assigned to: they treat its current inpatients.",
    )

    class Settings:
        name = "nurses"
        indexes = [
            pymongo.IndexModel("licence_number", unique=True),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
        ]


class AdminStaff(StaffMember):
    duties: list[AdminDuty] = Field(default_factory=list, max_length=len(AdminDuty))

    class Settings:
        name = "admin_staff"
        indexes = [pymongo.IndexModel([("department_id", 1), ("_id", 1)])]


_STAFF_ROW = (
    "id", "firstName", "lastName", "department", "departmentId", "active", "createdAt",
    "updatedAt",
)  # fmt: skip
_STAFF_ACTIONS = {Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY}
# Radiologists are doctors' accounts: they read staff as a doctor does (but schedules, below).
# Lab technicians read the doctor row only (the ordering doctor of the orders they work on), not
# contact details, schedules or other staff.
RAD, LAB = R.RADIOLOGIST, R.LAB_TECHNICIAN
_STAFF = each((*STAFF_ROLES, RAD), grant(A))
_DETAILS = {**STAFF_DETAILS, RAD: grant(A)}

DOCTOR = declare(
    "Doctor",
    Doctor,
    row(
        Class.OPERATIONAL,
        (*_STAFF_ROW, "specialty", "location"),
        each((*EVERYONE, RAD, LAB), grant(A)),
    ),
    group("staffDetails", Class.CONTACT, ("contact", "licenceNumber"), _DETAILS),
    # Not radiologists: appointments grant them no rows (their worklist is imaging orders).
    group("schedule", Class.OPERATIONAL, ("appointments",), each(SCHEDULERS, grant(A))),
    actions=_STAFF_ACTIONS,
    department="department_id",
    own=(("id", "staff_id"),),
    refs=("department_id",),
    cached=True,
)
NURSE = declare(
    "Nurse",
    Nurse,
    row(Class.OPERATIONAL, (*_STAFF_ROW, "ward", "wardId"), _STAFF),
    group("staffDetails", Class.CONTACT, ("contact", "licenceNumber"), _DETAILS),
    actions=_STAFF_ACTIONS,
    department="department_id",
    own=(("id", "staff_id"),),
    refs=("department_id",),
)
ADMIN_STAFF = declare(
    "AdminStaff",
    AdminStaff,
    row(Class.OPERATIONAL, (*_STAFF_ROW, "duties"), _STAFF),
    group("staffDetails", Class.CONTACT, ("contact",), _DETAILS),
    actions=_STAFF_ACTIONS,
    department="department_id",
    own=(("id", "staff_id"),),
    refs=("department_id",),
)
