"""Clinical records: treatment plans, the treatments recorded under them, prescriptions."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

from auth.policy import CLINICAL_ROW, A, Action, C, CareSource, D, R, declare, grant, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, LongText, Ref, ShortText, UtcDatetime


class TreatmentPlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Diagnosis(BaseModel):
    code: str | None = Field(
        default=None, pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$", description="ICD-10"
    )
    description: ShortText


class TreatmentPlan(Entity):
    patient_id: Ref
    doctor_id: Ref
    diagnosis: Diagnosis
    goals: list[ShortText] = Field(default_factory=list, max_length=50)
    notes: LongText | None = None
    status: TreatmentPlanStatus = TreatmentPlanStatus.ACTIVE
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None

    class Settings:
        name = "treatment_plans"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("doctor_id", 1), ("_id", 1)]),
            pymongo.IndexModel("status"),
        ]


def condition_text(diagnosis: object) -> str | None:
    """What plans are grouped by as one condition: the ICD-10 code, else the case-folded
    description (the clear text of the ``diagnosis_key`` blind index)."""
    if not isinstance(diagnosis, dict):
        return None
    code, description = diagnosis.get("code"), diagnosis.get("description")
    if code:
        return f"code:{code}"
    return f"text:{description.lower()}" if isinstance(description, str) else None


def description_text(diagnosis: object) -> str | None:
    return str(diagnosis.get("description")) if isinstance(diagnosis, dict) else None


# The diagnosis, goals and notes are encrypted at rest; ``diagnosis_key`` (a keyed hash of the
# condition, see ``condition_text``) lets analytics group plans by condition in the database,
# and ``description_key`` (of the exact description) tell its spellings apart.
TREATMENT_PLAN_SEALED = sealed(
    TreatmentPlan,
    "treatment_plans",
    ("diagnosis", "goals", "notes"),
    {
        "diagnosis_key": ("diagnosis", condition_text),
        "description_key": ("diagnosis", description_text),
    },
)


class PerformerRole(StrEnum):
    DOCTOR = "doctor"
    NURSE = "nurse"


class Treatment(Entity):
    """One treatment actually given under a plan; the unit a treatment charge refers to."""

    plan_id: Ref
    patient_id: Ref
    performed_by_id: Ref
    performed_by_role: PerformerRole
    performed_at: UtcDatetime
    procedure: ShortText
    notes: LongText | None = None
    outcome: ShortText | None = None
    equipment_id: Ref | None = None

    class Settings:
        name = "treatments"
        indexes = [
            pymongo.IndexModel([("plan_id", 1), ("performed_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("performed_at", 1)]),
        ]


class PrescriptionStatus(StrEnum):
    PRESCRIBED = "prescribed"
    DISPENSED = "dispensed"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"


PRESCRIPTION_TRANSITIONS: dict[PrescriptionStatus, frozenset[PrescriptionStatus]] = {
    PrescriptionStatus.PRESCRIBED: frozenset(
        {PrescriptionStatus.DISPENSED, PrescriptionStatus.CANCELLED}
    ),
    PrescriptionStatus.DISPENSED: frozenset(
        {PrescriptionStatus.PICKED_UP, PrescriptionStatus.CANCELLED}
    ),
    PrescriptionStatus.PICKED_UP: frozenset(),
    PrescriptionStatus.CANCELLED: frozenset(),
}


class Route(StrEnum):
    ORAL = "oral"
    INTRAVENOUS = "intravenous"
    INTRAMUSCULAR = "intramuscular"
    SUBCUTANEOUS = "subcutaneous"
    TOPICAL = "topical"
    INHALED = "inhaled"
    RECTAL = "rectal"
    SUBLINGUAL = "sublingual"
    OTHER = "other"


class StatusChange(BaseModel):
    status: str
    at: UtcDatetime


class Prescription(Entity):
    patient_id: Ref
    prescriber_id: Ref
    treatment_plan_id: Ref | None = None
    drug: ShortText
    drug_id: Ref | None = Field(
        default=None, description="The drug master's product (models.drugs), when known."
    )
    dose: ShortText = Field(description="Amount and unit, e.g. '500 mg'")
    route: Route
    frequency: ShortText = Field(description="e.g. 'every 8 hours'")
    duration_days: int = Field(ge=1, le=3650)
    refills: int = Field(default=0, ge=0, le=12)
    instructions: LongText | None = None
    status: PrescriptionStatus = PrescriptionStatus.PRESCRIBED
    status_history: list[StatusChange] = Field(default_factory=list)

    class Settings:
        name = "prescriptions"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("prescriber_id", 1), ("_id", 1)]),
            pymongo.IndexModel("status"),
        ]


# Drug and instructions are clinical text no query reads (dispensing matches in Python): sealed.
PRESCRIPTION_SEALED = sealed(Prescription, "prescriptions", ("drug", "instructions"), {})


# Clinical records are for the patient's clinicians and the patient alone. A doctor writes them
# in their own name; an admin may enter one for a named clinician (recorded as such).
_CLINICAL_AUTHOR = {R.DOCTOR: grant(C), R.ADMIN: grant(A)}

TREATMENT_PLAN = declare(
    "TreatmentPlan",
    TreatmentPlan,
    row(
        Class.CLINICAL,
        (
            "id",
            "diagnosis",
            "goals",
            "notes",
            "status",
            "startDate",
            "endDate",
            "createdAt",
            "updatedAt",
            "patientId",
            "doctorId",
            "patient",
            "doctor",
            "treatments",
        ),
        CLINICAL_ROW,
    ),
    actions={
        Action.CREATE: _CLINICAL_AUTHOR,
        Action.UPDATE: {R.DOCTOR: grant(C)},
        Action.RECORD_TREATMENT: {R.DOCTOR: grant(C), R.NURSE: grant(C, D), R.ADMIN: grant(A)},
    },
    patient="patient_id",
    clinicians=("doctor_id",),
    refs=("patient_id", "doctor_id"),
    cached=True,
    # The overseeing doctor treats the patient while the plan is active (or paused).
    care=CareSource(
        clinician="doctor_id",
        lifetime={TreatmentPlanStatus.ACTIVE: None, TreatmentPlanStatus.ON_HOLD: None},
    ),
)

TREATMENT = declare(
    "Treatment",
    Treatment,
    row(
        Class.CLINICAL,
        (
            "id",
            "performedByRole",
            "performedAt",
            "procedure",
            "notes",
            "outcome",
            "createdAt",
            "updatedAt",
            "planId",
            "performedById",
            "equipmentId",
            "plan",
            "equipment",
        ),
        CLINICAL_ROW,
    ),
    patient="patient_id",
    clinicians=("performed_by_id",),
    refs=("patient_id", "plan_id", "equipment_id"),
    cached=True,
    order=(("performed_at", 1), ("_id", 1)),
)

# What was done and how it went: clinical text, sealed at rest like the plan it belongs to.
TREATMENT_SEALED = sealed(Treatment, "treatments", ("procedure", "notes", "outcome"), {})

PRESCRIPTION = declare(
    "Prescription",
    Prescription,
    row(
        Class.CLINICAL,
        (
            "id",
            "drug",
            "drugId",
            "dose",
            "route",
            "frequency",
            "durationDays",
            "refills",
            "instructions",
            "status",
            "statusHistory",
            "createdAt",
            "updatedAt",
            "patientId",
            "prescriberId",
            "treatmentPlanId",
            "patient",
            "prescriber",
            "treatmentPlan",
        ),
        # Pharmacists read every prescription: they dispense them (models.pharmacy).
        {**CLINICAL_ROW, R.PHARMACIST: grant(A)},
    ),
    actions={
        Action.CREATE: _CLINICAL_AUTHOR,
        Action.UPDATE: {R.DOCTOR: grant(C)},
        Action.CHANGE_STATUS: {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
    },
    patient="patient_id",
    clinicians=("prescriber_id",),
    refs=("patient_id", "prescriber_id", "treatment_plan_id", "drug_id"),
    cached=True,
)
