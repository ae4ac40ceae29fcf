"""Medical equipment, its department and its status history."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

from auth.policy import ADMIN_ONLY, A, Action, D, R, declare, each, grant, row
from auth.policy import Classification as Class
from models.base import Entity, Name, Ref, ShortText, UtcDatetime


class EquipmentStatus(StrEnum):
    AVAILABLE = "available"
    IN_USE = "in_use"
    MAINTENANCE = "maintenance"
    OUT_OF_SERVICE = "out_of_service"


EQUIPMENT_TRANSITIONS: dict[EquipmentStatus, frozenset[EquipmentStatus]] = {
    EquipmentStatus.AVAILABLE: frozenset(
        {EquipmentStatus.IN_USE, EquipmentStatus.MAINTENANCE, EquipmentStatus.OUT_OF_SERVICE}
    ),
    EquipmentStatus.IN_USE: frozenset(
        {EquipmentStatus.AVAILABLE, EquipmentStatus.MAINTENANCE, EquipmentStatus.OUT_OF_SERVICE}
    ),
    EquipmentStatus.MAINTENANCE: frozenset(
        {EquipmentStatus.AVAILABLE, EquipmentStatus.OUT_OF_SERVICE}
    ),
    EquipmentStatus.OUT_OF_SERVICE: frozenset({EquipmentStatus.MAINTENANCE}),
}


class EquipmentStatusChange(BaseModel):
    from_status: EquipmentStatus | None
    to_status: EquipmentStatus
    reason: ShortText | None = None
    at: UtcDatetime


class EquipmentAllocation(BaseModel):
    from_department_id: Ref
    to_department_id: Ref
    reason: ShortText | None = None
    at: UtcDatetime


class MedicalEquipment(Entity):
    name: Name
    equipment_type: Name
    serial_number: str = Field(min_length=1, max_length=64)
    manufacturer: Name | None = None
    model: Name | None = None
    department_id: Ref
    status: EquipmentStatus = EquipmentStatus.AVAILABLE
    status_history: list[EquipmentStatusChange] = Field(default_factory=list)
    allocation_history: list[EquipmentAllocation] = Field(default_factory=list)

    class Settings:
        name = "equipment"
        indexes = [
            pymongo.IndexModel("serial_number", unique=True),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("department_id", 1)]),
        ]


EQUIPMENT = declare(
    "MedicalEquipment",
    MedicalEquipment,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "name",
            "equipmentType",
            "serialNumber",
            "manufacturer",
            "model",
            "status",
            "statusHistory",
            "allocationHistory",
            "createdAt",
            "updatedAt",
            "departmentId",
            "department",
            "allowedTransitions",
            "appointments",
        ),
        # Patients too: their appointments name the device they are booked on. Radiologists
        # (doctors' accounts) as doctors: the scanners their studies are booked on.
        each(
            (
                R.ADMIN,
                R.ADMIN_STAFF,
                R.BILLING,
                R.DOCTOR,
                R.RADIOLOGIST,
                R.NURSE,
                R.ANALYST,
                R.SERVICE,
                R.PATIENT,
            ),
            grant(A),
        ),
    ),
    actions={
        Action.CREATE: ADMIN_ONLY,
        Action.ALLOCATE: ADMIN_ONLY,
        Action.CHANGE_STATUS: {R.ADMIN: grant(A), R.DOCTOR: grant(D), R.NURSE: grant(D)},
    },
    department="department_id",
    refs=("department_id",),
    cached=True,
    name="equipment",
)
