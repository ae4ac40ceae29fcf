"""Treatment plans, treatments and prescriptions."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from errors import BadUserInput
from models.patients import Patient as PatientDoc
from resolvers.common import perform
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
from schema.common import (
    Connection,
    connection,
    create_data,
    oid,
    requested,
    requested_nodes,
    update_data,
    view,
)
from schema.context import Info
from services import clinical


async def _patient(info: Info, data: dict[str, object]) -> PatientDoc:
    """The patient a new record is about: a care relationship with them is what permits it."""
    patient = await info.context.loaders.patient_by_id.load(data.get("patient_id"))
    if patient is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    return patient


@strawberry.type
class ClinicalQuery:
    @strawberry.field
    async def treatment_plan(self, info: Info, id: strawberry.ID) -> TreatmentPlan | None:
        found = await info.context.loaders.treatment_plan_by_id.load(oid(id))
        return await info.context.access.one(K.TREATMENT_PLAN, found, requested(info))

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
        access = info.context.access
        page = await clinical.list_treatment_plans(
            oid(patient_id, "patientId") if patient_id else None,
            oid(doctor_id, "doctorId") if doctor_id else None,
            status,
            info.context.page(first, after),
            await access.scope(K.TREATMENT_PLAN),
        )
        await access.page(K.TREATMENT_PLAN, page, requested_nodes(info))
        return connection(TreatmentPlan, page)

    @strawberry.field
    async def treatment(self, info: Info, id: strawberry.ID) -> Treatment | None:
        found = await info.context.loaders.treatment_by_id.load(oid(id))
        return await info.context.access.one(K.TREATMENT, found, requested(info))

    @strawberry.field
    async def prescription(self, info: Info, id: strawberry.ID) -> Prescription | None:
        found = await info.context.loaders.prescription_by_id.load(oid(id))
        return await info.context.access.one(K.PRESCRIPTION, found, requested(info))

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
        access = info.context.access
        page = await clinical.list_prescriptions(
            oid(patient_id, "patientId") if patient_id else None,
            oid(prescriber_id, "prescriberId") if prescriber_id else None,
            status,
            info.context.page(first, after),
            await access.scope(K.PRESCRIPTION),
        )
        await access.page(K.PRESCRIPTION, page, requested_nodes(info))
        return connection(Prescription, page)


@strawberry.type
class ClinicalMutation:
    @strawberry.mutation
    async def create_treatment_plan(
        self, info: Info, input: CreateTreatmentPlanInput
    ) -> TreatmentPlan:
        data = create_data(input)
        info.context.access.require_role(K.TREATMENT_PLAN, Action.CREATE)
        run = partial(clinical.create_treatment_plan, data)
        patient = await _patient(info, data)
        plan = await perform(info, K.TREATMENT_PLAN, Action.CREATE, run, data, patient=patient)
        return view(TreatmentPlan, plan)

    @strawberry.mutation(description="Change a plan, including its status (see transitions).")
    async def update_treatment_plan(
        self, info: Info, id: strawberry.ID, input: UpdateTreatmentPlanInput
    ) -> TreatmentPlan:
        changes = update_data(input)
        info.context.access.require_role(K.TREATMENT_PLAN, Action.UPDATE)
        plan = await clinical.get_treatment_plan(oid(id))
        run = partial(clinical.update_treatment_plan, oid(id), changes)
        updated = await perform(info, K.TREATMENT_PLAN, Action.UPDATE, run, changes, row=plan)
        return view(TreatmentPlan, updated)

    @strawberry.mutation(description="Record a treatment given under an active plan.")
    async def record_treatment(
        self, info: Info, plan_id: strawberry.ID, input: RecordTreatmentInput
    ) -> Treatment:
        data = create_data(input)
        access = info.context.access
        access.require_role(K.TREATMENT_PLAN, Action.RECORD_TREATMENT)
        plan = await clinical.get_treatment_plan(oid(plan_id, "planId"))
        await access.require(K.TREATMENT_PLAN, Action.RECORD_TREATMENT, row=plan)
        treatment = await clinical.record_treatment(oid(plan_id, "planId"), data)
        access.wrote(K.TREATMENT, treatment, Action.RECORD_TREATMENT, data)
        return view(Treatment, treatment)

    @strawberry.mutation
    async def create_prescription(self, info: Info, input: CreatePrescriptionInput) -> Prescription:
        data = create_data(input)
        info.context.access.require_role(K.PRESCRIPTION, Action.CREATE)
        run = partial(clinical.create_prescription, data)
        patient = await _patient(info, data)
        created = await perform(info, K.PRESCRIPTION, Action.CREATE, run, data, patient=patient)
        return view(Prescription, created)

    @strawberry.mutation(description="Change what was prescribed, before it is dispensed.")
    async def update_prescription(
        self, info: Info, id: strawberry.ID, input: UpdatePrescriptionInput
    ) -> Prescription:
        changes = update_data(input)
        info.context.access.require_role(K.PRESCRIPTION, Action.UPDATE)
        row = await clinical.get_prescription(oid(id))
        run = partial(clinical.update_prescription, oid(id), changes)
        changed = await perform(info, K.PRESCRIPTION, Action.UPDATE, run, changes, row=row)
        return view(Prescription, changed)

    @strawberry.mutation(description="Move a prescription on: dispensed, picked up, cancelled.")
    async def update_prescription_status(
        self, info: Info, id: strawberry.ID, status: PrescriptionStatus
    ) -> Prescription:
        info.context.access.require_role(K.PRESCRIPTION, Action.CHANGE_STATUS)
        row = await clinical.get_prescription(oid(id))
        run = partial(clinical.update_prescription_status, oid(id), status)
        changed = await perform(
            info, K.PRESCRIPTION, Action.CHANGE_STATUS, run, ["status"], row=row
        )
        return view(Prescription, changed)
