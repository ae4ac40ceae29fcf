"""Fixed ObjectIds for demo records, so the README, tests and other processes can name them.

An id is 4 bytes of timestamp (always 2026-01-01T00:00Z), 1 byte naming the collection and a
7-byte big-endian sequence number starting at 1: ``patient_id(1)`` is the same on every seed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum

from beanie import PydanticObjectId
from bson import ObjectId

ID_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_PREFIX = int(ID_EPOCH.timestamp()).to_bytes(4, "big")
_MAX_SEQUENCE = 2**56 - 1


class Kind(IntEnum):
    """The collection byte of a demo id."""

    DEPARTMENT = 1
    DOCTOR = 2
    NURSE = 3
    ADMIN_STAFF = 4
    EQUIPMENT = 5
    PATIENT = 6
    APPOINTMENT = 7
    TREATMENT_PLAN = 8
    TREATMENT = 9
    PRESCRIPTION = 10
    BILLING_ACCOUNT = 11
    CHARGE = 12
    PAYMENT = 13
    WORKING_HOURS = 14
    APPOINTMENT_TYPE = 15


def make_id(kind: Kind, n: int) -> PydanticObjectId:
    if not 1 <= n <= _MAX_SEQUENCE:
        raise ValueError(f"demo sequence numbers start at 1; got {n}")
    return PydanticObjectId(_PREFIX + bytes([kind]) + n.to_bytes(7, "big"))


def parse_id(id: ObjectId) -> tuple[Kind, int] | None:
    """The (kind, number) of a demo id, or ``None`` for any other ObjectId."""
    raw = id.binary
    if raw[:4] != _PREFIX or raw[4] not in Kind._value2member_map_:
        return None
    return Kind(raw[4]), int.from_bytes(raw[5:], "big")


def department_id(n: int) -> PydanticObjectId:
    return make_id(Kind.DEPARTMENT, n)


def doctor_id(n: int) -> PydanticObjectId:
    return make_id(Kind.DOCTOR, n)


def nurse_id(n: int) -> PydanticObjectId:
    return make_id(Kind.NURSE, n)


def admin_staff_id(n: int) -> PydanticObjectId:
    return make_id(Kind.ADMIN_STAFF, n)


def equipment_id(n: int) -> PydanticObjectId:
    return make_id(Kind.EQUIPMENT, n)


def patient_id(n: int) -> PydanticObjectId:
    return make_id(Kind.PATIENT, n)


def appointment_id(n: int) -> PydanticObjectId:
    return make_id(Kind.APPOINTMENT, n)


def treatment_plan_id(n: int) -> PydanticObjectId:
    return make_id(Kind.TREATMENT_PLAN, n)


def treatment_id(n: int) -> PydanticObjectId:
    return make_id(Kind.TREATMENT, n)


def prescription_id(n: int) -> PydanticObjectId:
    return make_id(Kind.PRESCRIPTION, n)


def billing_account_id(n: int) -> PydanticObjectId:
    """The account of patient ``n``: accounts are numbered like their patients."""
    return make_id(Kind.BILLING_ACCOUNT, n)


def charge_id(n: int) -> PydanticObjectId:
    return make_id(Kind.CHARGE, n)


def payment_id(n: int) -> PydanticObjectId:
    return make_id(Kind.PAYMENT, n)


def working_hours_id(n: int) -> PydanticObjectId:
    return make_id(Kind.WORKING_HOURS, n)


def appointment_type_id(n: int) -> PydanticObjectId:
    return make_id(Kind.APPOINTMENT_TYPE, n)
