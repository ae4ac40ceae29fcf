"""Clinical records: treatment plans, the treatments recorded under them, prescriptions."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

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
