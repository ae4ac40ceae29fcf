"""Departments: the unit that owns staff, equipment and appointments."""

from __future__ import annotations

import pymongo
from pydantic import Field

from auth.policy import ADMIN_ONLY, EVERYONE, A, Action, R, declare, each, grant, row
from auth.policy import Classification as Class
from models.base import Entity, LongText, Name, Ref, ShortText


class Department(Entity):
    name: Name
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$", description="Short unique code, e.g. CARD")
    description: LongText | None = None
    location: ShortText | None = None
    head_doctor_id: Ref | None = None

    class Settings:
        name = "departments"
        indexes = [
            pymongo.IndexModel("code", unique=True),
            pymongo.IndexModel("name", unique=True),
        ]


DEPARTMENT = declare(
    "Department",
    Department,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "name",
            "code",
            "description",
            "location",
            "createdAt",
            "updatedAt",
            "headDoctorId",
            "headDoctor",
            "doctors",
            "nurses",
            "adminStaff",
            "equipment",
        ),
        # Also the lab and radiologists: the department of the doctors whose orders they work.
        each((*EVERYONE, R.LAB_TECHNICIAN, R.RADIOLOGIST), grant(A)),
    ),
    actions={Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    department="id",
)
