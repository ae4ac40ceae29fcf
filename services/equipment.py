"""Medical equipment: registration, moves between departments and status changes.

Status changes and moves are single ``find_one_and_update`` calls whose filter repeats what the
decision was based on (compare-and-set), so of two concurrent writers starting from the same
state only one applies; the other gets ``CONFLICT`` and can re-read and retry.

Refusals that follow from the current state (an illegal transition, moving equipment that is in
use) are ``BAD_USER_INPUT``: retrying the same request will not help until the state changes.
``CONFLICT`` means the state changed between our read and our write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import utcnow
from models.departments import Department
from models.equipment import (
    EQUIPMENT_TRANSITIONS,
    EquipmentAllocation,
    EquipmentStatus,
    EquipmentStatusChange,
    MedicalEquipment,
)
from services import common
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, paginate
from services.validation import build

_encoder = Encoder()


async def list_equipment(
    department_id: ObjectId | None, status: EquipmentStatus | None, args: PageArgs
) -> Page[MedicalEquipment]:
    # Sorted by _id (registration order): the (department_id, _id) index serves it.
    query: Query = {}
    if department_id is not None:
        query["department_id"] = department_id
    if status is not None:
        query["status"] = _parse_status(status).value
    return await paginate(MedicalEquipment, query, BY_ID, args)


async def get_equipment(id: ObjectId) -> MedicalEquipment:
    return await common.get_or_404(MedicalEquipment, id, "Equipment")


def _change(
    from_status: EquipmentStatus | None, to_status: EquipmentStatus, reason: str | None
) -> EquipmentStatusChange:
    data = {"from_status": from_status, "to_status": to_status, "reason": reason, "at": utcnow()}
    return build(EquipmentStatusChange, data)


async def register_equipment(data: Mapping[str, Any]) -> MedicalEquipment:
    """The history starts with the registration so every status has a recorded origin."""
    equipment = build(MedicalEquipment, {**data, "status_history": []})
    await common.ensure_exists(Department, equipment.department_id, "departmentId", "department")
    equipment.status_history = [_change(None, equipment.status, "registered")]
    return await common.insert(equipment, "equipment")


def _parse_status(status: EquipmentStatus | str) -> EquipmentStatus:
    try:
        return EquipmentStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in EquipmentStatus)
        raise BadUserInput(
            f"status: {status!r} is not a status", {"status": f"must be one of: {allowed}"}
        ) from None


async def _compare_and_set(
    current: MedicalEquipment, expected: Query, update: Query
) -> MedicalEquipment | None:
    raw = await db.collection(MedicalEquipment).find_one_and_update(
        {"_id": current.id, **expected}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else MedicalEquipment.model_validate(raw)


async def _lost_race(id: ObjectId, what: str) -> Conflict | NotFound:
    fresh = await MedicalEquipment.get(id)
    if fresh is None:
        return NotFound("Equipment", str(id))
    return Conflict(
        f"Equipment {id} changed while {what} (now {fresh.status.value} in department "
        f"{fresh.department_id}); re-read it and retry",
        status=fresh.status.value,
    )


async def update_equipment_status(
    id: ObjectId, status: EquipmentStatus | str, reason: str | None = None
) -> MedicalEquipment:
    target = _parse_status(status)
    equipment = await get_equipment(id)
    current = equipment.status
    if target == current:
        raise BadUserInput(
            f"status: equipment is already {current.value}",
            {"status": f"is already {current.value}"},
        )
    if target not in EQUIPMENT_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in EQUIPMENT_TRANSITIONS[current])) or "none"
        reason_text = f"cannot change from {current.value} to {target.value} (allowed: {allowed})"
        raise BadUserInput(f"status: {reason_text}", {"status": reason_text})
    change = _change(current, target, reason)
    updated = await _compare_and_set(
        equipment,
        {"status": current.value},
        {
            "$set": {"status": target.value, "updated_at": change.at},
            "$push": {"status_history": _encoder.encode(change)},
        },
    )
    if updated is None:
        raise await _lost_race(id, f"changing its status from {current.value}")
    await changed(updated, "status_changed")
    return updated


async def allocate_equipment(
    id: ObjectId, department_id: ObjectId, reason: str | None = None
) -> MedicalEquipment:
    """Move equipment to another department; refused while it is in use by a patient."""
    equipment = await get_equipment(id)
    move = build(
        EquipmentAllocation,
        {
            "from_department_id": equipment.department_id,
            "to_department_id": department_id,
            "reason": reason,
            "at": utcnow(),
        },
    )
    await common.ensure_exists(Department, department_id, "departmentId", "department")
    if department_id == equipment.department_id:
        raise BadUserInput(
            "departmentId: equipment is already in this department",
            {"departmentId": "is already the equipment's department"},
        )
    if equipment.status == EquipmentStatus.IN_USE:
        raise BadUserInput(
            f"Equipment {id} is in use; make it available before moving it",
            {"id": "is in use; make it available before moving it"},
        )
    updated = await _compare_and_set(
        equipment,
        # Same department and same status: a concurrent move or checkout makes this one lose.
        {"department_id": equipment.department_id, "status": equipment.status.value},
        {
            "$set": {"department_id": department_id, "updated_at": move.at},
            "$push": {"allocation_history": _encoder.encode(move)},
        },
    )
    if updated is None:
        raise await _lost_race(id, "moving it")
    await changed(updated, "allocated")
    return updated
