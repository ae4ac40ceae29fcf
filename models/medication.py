"""The medication administration record (MAR) of inpatients: one row per scheduled dose.

A ``MedicationAdministration`` is one due time of an active medication order, made with the
order's nursing task for that time (``services.nursing`` generation calls
``services.medication``) and linked to it (``task_id``): recording the dose records the task, and
the task of a dose is recorded only through the dose. Unique ``(order_id, due_at)``: generation
is idempotent like the tasks'.

The dose names the master drug the order's text resolves to (``drug_id``, None when the master
has no unique match: the dose is still charted, and consumes no stock) and how many units of
issue one dose takes (``units``). Its status moves ``scheduled -> giving -> given`` (``giving``
holds the claim while the ward's stock is taken; a crash there is recovered), or ``scheduled ->
held`` / ``refused`` with a reason, or ``scheduled -> cancelled`` with its task (order held,
completed or cancelled, patient discharged; back to ``scheduled`` when a held order resumes).
Missed is not a status: a dose is overdue while it is scheduled past its due time.

Who reads what: the care team (nurses of the patient's ward, doctors treating the patient, the
ordering doctor, the nurse who recorded it), admin, the patient their own. Billing and analysts
nothing. Pharmacists read no dose: they read the ward's consumption per drug
(``WardMedicationConsumption``), which names no patient. Nurses with the care relation record
doses (an admin for a named nurse).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import A, C, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow
from models.orders import MedicationRoute

ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]


class DoseStatus(StrEnum):
    SCHEDULED = "scheduled"
    GIVING = "giving"  # claimed by a nurse while the ward's stock is taken (moments)
    GIVEN = "given"
    HELD = "held"
    REFUSED = "refused"
    CANCELLED = "cancelled"


RECORDED = (DoseStatus.GIVEN, DoseStatus.HELD, DoseStatus.REFUSED)


class DoseLine(BaseModel):
    """Units one dose took from one ward batch; ``op`` is the batch operation that took them."""

    op: PydanticObjectId = Field(default_factory=PydanticObjectId)
    batch_id: Ref
    batch_number: str
    expiry: date
    quantity: int = Field(gt=0)


class MedicationAdministration(Entity):
    order_id: Ref
    task_id: Ref | None = None
    admission_id: Ref
    patient_id: Ref
    ward_id: Ref
    department_id: Ref
    ordered_by_id: Ref
    drug_id: Ref | None = Field(default=None, description="None: not in the drug master.")
    drug_name: ShortText = Field(description="As the order names it.")
    dose: float = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)
    route: MedicationRoute
    units: int = Field(ge=0, le=1000, description="Units of issue one dose takes (0: no drug).")
    due_at: UtcDatetime
    status: DoseStatus = DoseStatus.SCHEDULED
    status_at: UtcDatetime = Field(default_factory=utcnow)
    recorded_by_id: Ref | None = None
    recorded_by: str | None = Field(default=None, max_length=255, description="Token subject.")
    recorded_at: UtcDatetime | None = None
    given_at: UtcDatetime | None = None
    note: ClinicalText | None = None
    reason: ShortText | None = Field(default=None, description="Why held, refused, cancelled.")
    lines: list[DoseLine] = Field(default_factory=list)
    claimed_at: UtcDatetime | None = Field(default=None, description="While giving.")
    version: int = 0

    class Settings:
        name = "medication_administrations"
        indexes = [
            pymongo.IndexModel(
                [("order_id", 1), ("due_at", 1)], unique=True, name="one_dose_per_order_due"
            ),
            pymongo.IndexModel("task_id"),
            pymongo.IndexModel("lines.op"),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("given_at", 1)]),
            pymongo.IndexModel([("admission_id", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("claimed_at", 1)]),
            pymongo.IndexModel([("due_at", 1), ("_id", 1)]),
        ]


# Encrypted at rest: the note is clinical text, the drug name copies the order's (sealed) words.
MEDICATION_ADMINISTRATION_SEALED = sealed(
    MedicationAdministration, "medication_administrations", ("drug_name", "note"), {}
)


# -- the policy --------------------------------------------------------------------------------

_CARE_TEAM = {R.DOCTOR: grant(C), R.NURSE: grant(C), R.ADMIN: grant(A), R.PATIENT: grant(S)}
_RECORDERS = {R.NURSE: grant(C), R.ADMIN: grant(A)}

MEDICATION_ADMINISTRATION = declare(
    "MedicationAdministration",
    MedicationAdministration,
    row(
        Class.CLINICAL,
        (
            "id",
            "createdAt",
            "updatedAt",
            "orderId",
            "order",
            "taskId",
            "task",
            "admissionId",
            "wardId",
            "departmentId",
            "orderedById",
            "drugId",
            "drug",
            "drugName",
            "dose",
            "unit",
            "route",
            "units",
            "dueAt",
            "overdue",
            "status",
            "statusAt",
            "recordedById",
            "recordedBy",
            "recordedAt",
            "givenAt",
            "note",
            "reason",
            "lines",
            "version",
        ),
        _CARE_TEAM,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _CARE_TEAM),
    actions={"give": _RECORDERS, "hold": _RECORDERS, "refuse": _RECORDERS},
    patient="patient_id",
    clinicians=("ordered_by_id", "recorded_by_id"),
    department="department_id",
    refs=(
        "patient_id",
        "admission_id",
        "ward_id",
        "department_id",
        "order_id",
        "task_id",
        "drug_id",
    ),
    cached=True,
    order=(("due_at", 1), ("_id", 1)),
)

# A ward's consumption per drug (``services.medication.ward_consumption``): operational stock
# figures with no patient in them, for the pharmacy that restocks the ward.
_PHARMACY = {R.PHARMACIST: grant(A), R.ADMIN: grant(A)}

WARD_MEDICATION_CONSUMPTION = declare(
    "WardMedicationConsumption",
    None,
    row(
        Class.OPERATIONAL,
        (
            "wardId",
            "from",
            "to",
            "drugs",
            "drugId",
            "drug",
            "drugName",
            "dosesGiven",
            "unitsConsumed",
            "stockRemaining",
        ),
        _PHARMACY,
    ),
    graphql_types=("WardMedicationConsumption", "DrugConsumption"),
)
