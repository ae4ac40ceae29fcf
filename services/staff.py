"""Doctors, nurses and administrative staff: each belongs to an existing department.

Licence numbers are unique per profession through unique indexes, so two concurrent hires with
the same number cannot both succeed (the loser gets ``CONFLICT``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from bson import ObjectId

from errors import BadUserInput
from models.departments import Department
from models.staff import AdminDuty, AdminStaff, Doctor, Nurse, StaffMember
from models.wards import Ward
from services import common
from services.pagination import ASC, Page, PageArgs, Query, Sort, paginate
from services.validation import build, require

S = TypeVar("S", bound=StaffMember)

NAME_ORDER: Sort = (("last_name", ASC), ("first_name", ASC), ("_id", ASC))


def _department_filter(department_id: ObjectId | None) -> Query:
    return {} if department_id is None else {"department_id": department_id}


async def _create(model: type[S], data: Mapping[str, Any], entity: str) -> S:
    member = build(model, data)
    await common.ensure_exists(Department, member.department_id, "departmentId", "department")
    return await common.insert(member, entity)


async def _update(member: S, changes: Mapping[str, Any], entity: str) -> S:
    if "department_id" in changes:
        await common.ensure_exists(
            Department, changes["department_id"], "departmentId", "department"
        )
    return await common.update(member, changes, entity)


# Doctors


def specialty_filter(specialty: str | None) -> Query:
    """Case-insensitive whole-value match; anchored and escaped so input is never a pattern."""
    wanted = (specialty or "").strip()
    if not wanted:
        return {}
    require(len(wanted) <= 200, "specialty", "may be at most 200 characters")
    return {"specialty": {"$regex": f"^{re.escape(wanted)}$", "$options": "i"}}


async def list_doctors(
    department_id: ObjectId | None, specialty: str | None, args: PageArgs
) -> Page[Doctor]:
    query = {**_department_filter(department_id), **specialty_filter(specialty)}
    return await paginate(Doctor, query, NAME_ORDER, args)


async def get_doctor(id: ObjectId) -> Doctor:
    return await common.get_or_404(Doctor, id, "Doctor")


async def create_doctor(data: Mapping[str, Any]) -> Doctor:
    return await _create(Doctor, data, "doctor")


async def update_doctor(id: ObjectId, changes: Mapping[str, Any]) -> Doctor:
    doctor = await get_doctor(id)
    moving = "department_id" in changes and changes["department_id"] != doctor.department_id
    leaving = "active" in changes and changes["active"] is False
    if moving or leaving:
        # A department head must stay one of its active doctors (see services.departments).
        headed = await Department.find_one({"head_doctor_id": id})
        if headed is not None:
            field = "departmentId" if moving else "active"
            reason = f"is head of department {headed.code}; appoint another head first"
            raise BadUserInput(f"{field}: doctor {reason}", {field: reason})
    return await _update(doctor, changes, "doctor")


# Nurses


async def list_nurses(department_id: ObjectId | None, args: PageArgs) -> Page[Nurse]:
    return await paginate(Nurse, _department_filter(department_id), NAME_ORDER, args)


async def get_nurse(id: ObjectId) -> Nurse:
    return await common.get_or_404(Nurse, id, "Nurse")


async def create_nurse(data: Mapping[str, Any]) -> Nurse:
    await common.ensure_exists(Ward, data.get("ward_id"), "wardId", "ward")
    return await _create(Nurse, data, "nurse")


async def update_nurse(id: ObjectId, changes: Mapping[str, Any]) -> Nurse:
    """A new ``ward_id`` moves the nurse's care to that ward's inpatients at once (their
    standing is looked up afresh after every staff write)."""
    await common.ensure_exists(Ward, changes.get("ward_id"), "wardId", "ward")
    return await _update(await get_nurse(id), changes, "nurse")


# Administrative staff


async def list_admin_staff(department_id: ObjectId | None, args: PageArgs) -> Page[AdminStaff]:
    return await paginate(AdminStaff, _department_filter(department_id), NAME_ORDER, args)


async def get_admin_staff(id: ObjectId) -> AdminStaff:
    return await common.get_or_404(AdminStaff, id, "AdminStaff")


async def create_admin_staff(data: Mapping[str, Any]) -> AdminStaff:
    return await _create(AdminStaff, data, "admin staff")


async def update_admin_staff(id: ObjectId, changes: Mapping[str, Any]) -> AdminStaff:
    return await _update(await get_admin_staff(id), changes, "admin staff")


def _parse_duties(duties: Sequence[AdminDuty | str]) -> list[AdminDuty]:
    """Parse before deduplicating: a str enum hashes by name, so ``{"billing", BILLING}`` is 2."""
    parsed: set[AdminDuty] = set()
    bad: dict[str, str] = {}
    allowed = ", ".join(d.value for d in AdminDuty)
    for i, duty in enumerate(duties):
        try:
            parsed.add(AdminDuty(duty))
        except ValueError:
            bad[f"duties.{i}"] = f"is not a duty (one of: {allowed})"
    if bad:
        raise BadUserInput("Invalid input: " + "; ".join(f"{k}: {v}" for k, v in bad.items()), bad)
    # Declaration order, so the same set is always stored and returned the same way.
    return [duty for duty in AdminDuty if duty in parsed]


async def assign_admin_duties(id: ObjectId, duties: Sequence[AdminDuty | str]) -> AdminStaff:
    """Replace the whole duty set: assigning is idempotent, unlike adding or removing one."""
    member = await get_admin_staff(id)
    return await common.update(member, {"duties": _parse_duties(duties)}, "admin staff")
