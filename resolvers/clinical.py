"""Treatment plans, treatments and prescriptions."""

from __future__ import annotations

import strawberry

from schema.clinical import (
    CreatePrescriptionInput,
    CreateTreatmentPlanInput,
    Prescription,
    PrescriptionStatus,
    RecordTreatmentInput,
    Treatment,
    TreatmentPlan,
    TreatmentPlanStatus,
    UpdatePrescriptionInput,
    UpdateTreatmentPlanInput,
)
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from services import clinical


@strawberry.type
class ClinicalQuery:
    @strawberry.field
    async def treatment_plan(self, info: Info, id: strawberry.ID) -> TreatmentPlan | None:
        return await info.context.loaders.treatment_plan_by_id.load(oid(id))

    @strawberry.field(description="Treatment plans, oldest first, filtered.")
    async def treatment_plans(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
        status: TreatmentPlanStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[TreatmentPlan]:
        page = await clinical.list_treatment_plans(
            oid(patient_id, "patientId") if patient_id else None,
            oid(doctor_id, "doctorId") if doctor_id else None,
            status,
            info.context.page(first, after),
        )
        return connection(TreatmentPlan, page)

    @strawberry.field
    async def treatment(self, info: Info, id: strawberry.ID) -> Treatment | None:
        return await info.context.loaders.treatment_by_id.load(oid(id))

    @strawberry.field
    async def prescription(self, info: Info, id: strawberry.ID) -> Prescription | None:
        return await info.context.loaders.prescription_by_id.load(oid(id))

    @strawberry.field(description="Prescriptions, oldest first, filtered.")
    async def prescriptions(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        prescriber_id: strawberry.ID | None = None,
        status: PrescriptionStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Prescription]:
        page = await clinical.list_prescriptions(
            oid(patient_id, "patientId") if patient_id else None,
            oid(prescriber_id, "prescriberId") if prescriber_id else None,
            status,
            info.context.page(first, after),
        )
        return connection(Prescription, page)


@strawberry.type
class ClinicalMutation:
    @strawberry.mutation
    async def create_treatment_plan(self, input: CreateTreatmentPlanInput) -> TreatmentPlan:
        return view(TreatmentPlan, await clinical.create_treatment_plan(create_data(input)))

    @strawberry.mutation(description="Change a plan, including its status (see transitions).")
    async def update_treatment_plan(
        self, id: strawberry.ID, input: UpdateTreatmentPlanInput
    ) -> TreatmentPlan:
        plan = await clinical.update_treatment_plan(oid(id), update_data(input))
        return view(TreatmentPlan, plan)

    @strawberry.mutation(description="Record a treatment given under an active plan.")
    async def record_treatment(
        self, plan_id: strawberry.ID, input: RecordTreatmentInput
    ) -> Treatment:
        treatment = await clinical.record_treatment(oid(plan_id, "planId"), create_data(input))
        return view(Treatment, treatment)

    @strawberry.mutation
    async def create_prescription(self, input: CreatePrescriptionInput) -> Prescription:
        return view(Prescription, await clinical.create_prescription(create_data(input)))

    @strawberry.mutation(description="Change what was prescribed, before it is dispensed.")
    async def update_prescription(
        self, id: strawberry.ID, input: UpdatePrescriptionInput
    ) -> Prescription:
        changed = await clinical.update_prescription(oid(id), update_data(input))
        return view(Prescription, changed)

    @strawberry.mutation(description="Move a prescription on: dispensed, picked up, cancelled.")
    async def update_prescription_status(
        self, id: strawberry.ID, status: PrescriptionStatus
    ) -> Prescription:
        changed = await clinical.update_prescription_status(oid(id), status)
        return view(Prescription, changed)
