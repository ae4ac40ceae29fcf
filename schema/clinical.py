"""GraphQL types and inputs for treatment plans, treatments and prescriptions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import clinical as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.equipment import MedicalEquipment
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.TreatmentPlanStatus)
TreatmentPlanStatus = m.TreatmentPlanStatus
strawberry.enum(m.PrescriptionStatus)
PrescriptionStatus = m.PrescriptionStatus
strawberry.enum(m.PerformerRole)
PerformerRole = m.PerformerRole
strawberry.enum(m.Route, description="How a drug is administered.")
Route = m.Route


@strawberry.type
class Diagnosis:
    code: str | None = strawberry.field(description="ICD-10 code")
    description: str


@strawberry.type(description="A doctor's plan for treating one patient's diagnosis.")
class TreatmentPlan:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    diagnosis: Diagnosis
    goals: list[str]
    notes: str | None
    status: TreatmentPlanStatus
    start_date: datetime | None
    end_date: datetime | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.TreatmentPlan]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def doctor_id(root: strawberry.Parent[m.TreatmentPlan]) -> strawberry.ID:
        return strawberry.ID(str(root.doctor_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.TreatmentPlan], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The overseeing doctor.")
    @staticmethod
    async def doctor(
        root: strawberry.Parent[m.TreatmentPlan], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.doctor_id)

    @strawberry.field(description="Treatments recorded under this plan, oldest first.")
    @staticmethod
    async def treatments(
        root: strawberry.Parent[m.TreatmentPlan],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Treatment]:
        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.treatments_by_plan.load(key)
        return connection(Treatment, page)


@strawberry.type(description="A treatment actually given, recorded under a plan.")
class Treatment:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    performed_by_role: PerformerRole
    performed_at: datetime
    procedure: str
    notes: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def plan_id(root: strawberry.Parent[m.Treatment]) -> strawberry.ID:
        return strawberry.ID(str(root.plan_id))

    @strawberry.field
    @staticmethod
    def performed_by_id(root: strawberry.Parent[m.Treatment]) -> strawberry.ID:
        return strawberry.ID(str(root.performed_by_id))

    @strawberry.field
    @staticmethod
    def equipment_id(root: strawberry.Parent[m.Treatment]) -> strawberry.ID | None:
        return ref_id(root.equipment_id)

    @strawberry.field
    @staticmethod
    async def plan(root: strawberry.Parent[m.Treatment], info: Info) -> TreatmentPlan | None:
        return await info.context.loaders.treatment_plan_by_id.load(root.plan_id)

    @strawberry.field
    @staticmethod
    async def equipment(
        root: strawberry.Parent[m.Treatment], info: Info
    ) -> Annotated[MedicalEquipment, strawberry.lazy("schema.equipment")] | None:
        if root.equipment_id is None:
            return None
        return await info.context.loaders.equipment_by_id.load(root.equipment_id)


@strawberry.type
class PrescriptionStatusChange:
    status: PrescriptionStatus
    at: datetime


@strawberry.type(description="A medication order, followed until the patient picks it up.")
class Prescription:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    drug: str
    dose: str
    route: Route
    frequency: str
    duration_days: int
    refills: int
    instructions: str | None
    status: PrescriptionStatus
    status_history: list[PrescriptionStatusChange]
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Prescription]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def prescriber_id(root: strawberry.Parent[m.Prescription]) -> strawberry.ID:
        return strawberry.ID(str(root.prescriber_id))

    @strawberry.field
    @staticmethod
    def treatment_plan_id(root: strawberry.Parent[m.Prescription]) -> strawberry.ID | None:
        return ref_id(root.treatment_plan_id)

    @strawberry.field(description="The drug master's product, when the prescription names one.")
    @staticmethod
    def drug_id(root: strawberry.Parent[m.Prescription]) -> strawberry.ID | None:
        return ref_id(root.drug_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Prescription], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def prescriber(
        root: strawberry.Parent[m.Prescription], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.prescriber_id)

    @strawberry.field
    @staticmethod
    async def treatment_plan(
        root: strawberry.Parent[m.Prescription], info: Info
    ) -> TreatmentPlan | None:
        if root.treatment_plan_id is None:
            return None
        return await info.context.loaders.treatment_plan_by_id.load(root.treatment_plan_id)


@strawberry.input
class DiagnosisInput:
    code: str | None = None
    description: str


@strawberry.input
class CreateTreatmentPlanInput:
    patient_id: strawberry.ID
    doctor_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The overseeing doctor: the caller; only an admin may name another.",
    )
    diagnosis: DiagnosisInput
    goals: list[str] | None = None
    notes: str | None = None
    status: TreatmentPlanStatus = TreatmentPlanStatus.ACTIVE
    start_date: datetime | None = None
    end_date: datetime | None = None


@strawberry.input(description="Only the fields given change; closed plans cannot change.")
class UpdateTreatmentPlanInput:
    doctor_id: strawberry.ID | None = strawberry.UNSET
    diagnosis: DiagnosisInput | None = strawberry.UNSET
    goals: list[str] | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET
    status: TreatmentPlanStatus | None = strawberry.UNSET
    start_date: datetime | None = strawberry.UNSET
    end_date: datetime | None = strawberry.UNSET


@strawberry.input
class RecordTreatmentInput:
    performed_by_id: strawberry.ID | None = strawberry.field(
        default=None, description="Who gave it: the caller; only an admin may name another."
    )
    performed_by_role: PerformerRole | None = strawberry.field(
        default=None, description="Taken from the caller's role when they give it themselves."
    )
    performed_at: datetime
    procedure: str
    notes: str | None = None
    outcome: str | None = None
    equipment_id: strawberry.ID | None = None


@strawberry.input
class CreatePrescriptionInput:
    patient_id: strawberry.ID
    prescriber_id: strawberry.ID | None = strawberry.field(
        default=None, description="The prescriber: the caller; only an admin may name another."
    )
    drug: str
    dose: str
    route: Route
    frequency: str
    duration_days: int
    refills: int = 0
    instructions: str | None = None
    treatment_plan_id: strawberry.ID | None = None
    drug_id: strawberry.ID | None = strawberry.field(
        default=None, description="The drug master's product (its generic name must match drug)."
    )


@strawberry.input(description="Only the fields given change; only before dispensing.")
class UpdatePrescriptionInput:
    drug: str | None = strawberry.UNSET
    dose: str | None = strawberry.UNSET
    route: Route | None = strawberry.UNSET
    frequency: str | None = strawberry.UNSET
    duration_days: int | None = strawberry.UNSET
    refills: int | None = strawberry.UNSET
    instructions: str | None = strawberry.UNSET
