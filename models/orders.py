"""Doctor orders for an admission: medication, laboratory, imaging, diet, activity, nursing.

An order belongs to one active admission (its patient, ward and department are copied from it
and follow it on a transfer) and carries the details of its kind and a schedule. Its status
moves ``active <-> held``, and from either to ``completed`` or ``cancelled`` (final), each step
a compare-and-set on status and version with a history entry. The nursing tasks it asks for are
generated from its schedule (``services.nursing``); a laboratory or imaging order also places
its LabOrder or ImagingOrder with the admission as source.

Who reads what (the declaration below): the care team (doctors treating the patient, the
ordering doctor, nurses of the patient's ward: the admission gives them the care relation while
it is active), admin, and the patient their own orders. Billing and analysts: nothing. Doctors
with a care relation order and change orders; an admin may enter one for a named doctor.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import A, Action, C, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow
from models.radiology import ImagingLaterality, ImagingModality

ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]
TestCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2)]


class OrderKind(StrEnum):
    MEDICATION = "medication"
    LABORATORY = "laboratory"
    IMAGING = "imaging"
    DIET = "diet"
    ACTIVITY = "activity"
    NURSING = "nursing"


INSTRUCTION_KINDS = frozenset({OrderKind.DIET, OrderKind.ACTIVITY, OrderKind.NURSING})
"""Kinds whose details are one instruction text."""


class OrderStatus(StrEnum):
    ACTIVE = "active"
    HELD = "held"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.ACTIVE: frozenset({OrderStatus.HELD, OrderStatus.COMPLETED, OrderStatus.CANCELLED}),
    OrderStatus.HELD: frozenset({OrderStatus.ACTIVE, OrderStatus.COMPLETED, OrderStatus.CANCELLED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
"""Where each status may go; completed and cancelled are final."""

OPEN_ORDER_STATUSES = (OrderStatus.ACTIVE, OrderStatus.HELD)


class MedicationRoute(StrEnum):
    ORAL = "oral"
    INTRAVENOUS = "intravenous"
    INTRAMUSCULAR = "intramuscular"
    SUBCUTANEOUS = "subcutaneous"
    INHALED = "inhaled"
    TOPICAL = "topical"
    RECTAL = "rectal"
    SUBLINGUAL = "sublingual"


class SchedulePattern(StrEnum):
    ONCE = "once"
    EVERY_HOURS = "every_hours"
    TIMES_OF_DAY = "times_of_day"
    PRN = "prn"  # as needed: no tasks are generated


class Schedule(BaseModel):
    """When the order's tasks fall due. Times of day are wall-clock times of the facility's
    time zone (``SHMS_FACILITY_TIMEZONE``)."""

    pattern: SchedulePattern
    start_at: UtcDatetime
    end_at: UtcDatetime | None = None
    every_hours: int | None = Field(default=None, ge=1, le=168)
    times_of_day: list[time] = Field(default_factory=list, max_length=24)


class MedicationDetails(BaseModel):
    drug: ShortText
    dose: float = Field(gt=0, le=1_000_000)
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    route: MedicationRoute
    frequency: ShortText | None = Field(
        default=None, description="As written (say 'q8h'); the schedule is what generates tasks."
    )


class LaboratoryDetails(BaseModel):
    test_codes: list[TestCode] = Field(min_length=1, max_length=30)


class ImagingDetails(BaseModel):
    modality: ImagingModality
    body_part: ShortText
    laterality: ImagingLaterality = ImagingLaterality.NOT_APPLICABLE
    clinical_question: ClinicalText


class OrderStatusChange(BaseModel):
    status: OrderStatus
    at: UtcDatetime
    by: str | None = Field(default=None, max_length=255, description="Token subject.")
    reason: ShortText | None = None


class DoctorOrder(Entity):
    admission_id: Ref
    patient_id: Ref
    ward_id: Ref
    department_id: Ref
    ordered_by_id: Ref
    kind: OrderKind
    medication: MedicationDetails | None = None
    laboratory: LaboratoryDetails | None = None
    imaging: ImagingDetails | None = None
    instruction: ClinicalText | None = Field(
        default=None, description="Diet, activity and nursing orders; a note on the others."
    )
    schedule: Schedule
    status: OrderStatus = OrderStatus.ACTIVE
    status_at: UtcDatetime = Field(default_factory=utcnow)
    reason: ShortText | None = Field(default=None, description="Why it was held or cancelled.")
    history: list[OrderStatusChange] = Field(default_factory=list)
    lab_order_id: Ref | None = None
    imaging_order_id: Ref | None = None
    tasks_from: UtcDatetime = Field(
        default_factory=utcnow,
        description="Tasks fall due from here (placed or last resumed).",
    )
    tasks_until: UtcDatetime | None = Field(
        default=None, description="Tasks exist for due times before this instant."
    )
    version: int = 0

    class Settings:
        name = "doctor_orders"
        indexes = [
            pymongo.IndexModel([("admission_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("tasks_until", 1)]),
            pymongo.IndexModel([("ordered_by_id", 1), ("_id", 1)]),
        ]


# What is ordered is clinical text (no query reads medication.* or imaging.*): encrypted at rest.
# Why it was held or cancelled is free text too (nothing matches it by value).
DOCTOR_ORDER_SEALED = sealed(
    DoctorOrder, "doctor_orders", ("medication", "imaging", "instruction", "reason"), {}
)


# -- the policy --------------------------------------------------------------------------------

_CARE_TEAM = {R.DOCTOR: grant(C), R.NURSE: grant(C), R.ADMIN: grant(A), R.PATIENT: grant(S)}
_ORDERERS = {R.DOCTOR: grant(C), R.ADMIN: grant(A)}

DOCTOR_ORDER = declare(
    "DoctorOrder",
    DoctorOrder,
    row(
        Class.CLINICAL,
        (
            "id",
            "createdAt",
            "updatedAt",
            "kind",
            "medication",
            "laboratory",
            "imaging",
            "instruction",
            "schedule",
            "status",
            "statusAt",
            "reason",
            "history",
            "version",
            "admissionId",
            "admission",
            "wardId",
            "departmentId",
            "orderedById",
            "orderedBy",
            "labOrderId",
            "labOrder",
            "imagingOrderId",
            "imagingOrder",
            "tasks",
        ),
        _CARE_TEAM,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _CARE_TEAM),
    actions={
        Action.CREATE: _ORDERERS,
        "hold": _ORDERERS,
        "resume": _ORDERERS,
        Action.COMPLETE: _ORDERERS,
        Action.CANCEL: _ORDERERS,
    },
    patient="patient_id",
    clinicians=("ordered_by_id",),
    department="department_id",
    refs=("patient_id", "admission_id", "ward_id", "department_id", "ordered_by_id"),
    cached=True,
)
