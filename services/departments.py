"""Departments and their head doctor.

A department's head must be one of its own active doctors. A new department has no doctors yet,
so the head is appointed with an update once doctors have joined; staff moves and deactivations
that would leave a department headed by an outsider are refused in ``services.staff``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import ObjectId

from errors import BadUserInput
from models.departments import Department
from models.staff import Doctor
from services import common
from services.pagination import ASC, Page, PageArgs, Sort, paginate
from services.validation import build, require

NAME_ORDER: Sort = (("name", ASC), ("_id", ASC))


async def list_departments(args: PageArgs) -> Page[Department]:
    return await paginate(Department, {}, NAME_ORDER, args)


async def get_department(id: ObjectId) -> Department:
    return await common.get_or_404(Department, id, "Department")


async def create_department(data: Mapping[str, Any]) -> Department:
    department = build(Department, data)
    require(
        department.head_doctor_id is None,
        "headDoctorId",
        "a new department has no doctors yet; appoint its head once a doctor has joined",
    )
    return await common.insert(department, "department")


async def _check_head(department_id: ObjectId, doctor_id: ObjectId | None) -> None:
    """Access is scoped by department, so a head must be an active member of the one they lead."""
    if doctor_id is None:
        return
    doctor = await Doctor.get(doctor_id)
    if doctor is None:
        raise BadUserInput(
            f"headDoctorId: no doctor with id {doctor_id}", {"headDoctorId": "no such doctor"}
        )
    require(
        doctor.department_id == department_id, "headDoctorId", "must be a doctor of this department"
    )
    require(doctor.active, "headDoctorId", "must be an active doctor")


async def update_department(id: ObjectId, changes: Mapping[str, Any]) -> Department:
    department = await get_department(id)
    if "head_doctor_id" in changes:
        await _check_head(id, changes["head_doctor_id"])
    return await common.update(department, changes, "department")
