"""Treatment plans, treatments and prescriptions."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from auth.roles import CLINICIANS, Role
from errors import BadUserInput, Forbidden
from models.audit import AuditAction
from models.clinical import PerformerRole
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
    update_data,
    view,
)
from schema.context import Info
from schema.enforce import acts
from services import clinical
from services.validation import camel


async def _patient(info: Info, data: dict[str, object]) -> PatientDoc:
    """The patient a new record is about: a care relationship with them is what permits it."""
    patient = await info.context.loaders.patient_by_id.load(data.get("patient_id"))
    if patient is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    return patient


def _in_own_name(
    info: Info, data: dict[str, Any], field: str, role_field: str | None = None
) -> str | None:
    """Clinicians write in their own name: ``field`` is the caller's staff record. An admin may
    name another clinician; the audit records it (the returned note)."""
    principal = info.context.access.principal
    given = data.get(field)
    clinician = principal.staff_id is not None and principal.has(*CLINICIANS)
    if clinician and given in (None, principal.staff_id):
        data[field] = principal.staff_id
        if role_field is not None and data.get(role_field) is None:
            own = PerformerRole.DOCTOR if principal.has(Role.DOCTOR) else PerformerRole.NURSE
            data[role_field] = own.value
        return None
    name = camel(field)
    if not principal.has(Role.ADMIN):
        info.context.access.audit.denied(
            K.PATIENT, data.get("patient_id"), data.get("patient_id"), AuditAction.CREATE,
            f"{name} names another clinician",
        )  # fmt: skip
        raise Forbidden(f"Clinicians write in their own name: leave out {name}", field=name)
    if given is None:
        raise BadUserInput(f"{name}: name the clinician you enter this for", {name: "required"})
    if role_field is not None and data.get(role_field) is None:
        raise BadUserInput(f"{camel(role_field)}: required", {camel(role_field): "required"})
    return f"entered by an administrator for {name} {given}"


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
        access = info.context.access
        page = await clinical.list_treatment_plans(
            oid(patient_id, "patientId") if patient_id else None,
            oid(doctor_id, "doctorId") if doctor_id else None,
            status,
            info.context.page(first, after),
            await access.scope(K.TREATMENT_PLAN),
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
        access = info.context.access
        page = await clinical.list_prescriptions(
            oid(patient_id, "patientId") if patient_id else None,
            oid(prescriber_id, "prescriberId") if prescriber_id else None,
            status,
            info.context.page(first, after),
            await access.scope(K.PRESCRIPTION),
        )
        return connection(Prescription, page)


@strawberry.type
class ClinicalMutation:
    @strawberry.mutation(metadata=acts(K.TREATMENT_PLAN, Action.CREATE))
    async def create_treatment_plan(
        self, info: Info, input: CreateTreatmentPlanInput
    ) -> TreatmentPlan:
        data = create_data(input)
        note = _in_own_name(info, data, "doctor_id")
        run = partial(clinical.create_treatment_plan, data)
        patient = await _patient(info, data)
        plan = await perform(
            info, K.TREATMENT_PLAN, Action.CREATE, run, data, note=note, patient=patient
        )
        return view(TreatmentPlan, plan)

    @strawberry.mutation(
        description="Change a plan, including its status (see transitions).",
        metadata=acts(K.TREATMENT_PLAN, Action.UPDATE),
    )
    async def update_treatment_plan(
        self, info: Info, id: strawberry.ID, input: UpdateTreatmentPlanInput
    ) -> TreatmentPlan:
        changes = update_data(input)
        plan = await clinical.get_treatment_plan(oid(id))
        run = partial(clinical.update_treatment_plan, oid(id), changes)
        updated = await perform(info, K.TREATMENT_PLAN, Action.UPDATE, run, changes, row=plan)
        return view(TreatmentPlan, updated)

    @strawberry.mutation(
        description="Record a treatment given under an active plan.",
        metadata=acts(K.TREATMENT_PLAN, Action.RECORD_TREATMENT),
    )
    async def record_treatment(
        self, info: Info, plan_id: strawberry.ID, input: RecordTreatmentInput
    ) -> Treatment:
        data = create_data(input)
        access = info.context.access
        note = _in_own_name(info, data, "performed_by_id", "performed_by_role")
        plan = await clinical.get_treatment_plan(oid(plan_id, "planId"))
        await access.require(K.TREATMENT_PLAN, Action.RECORD_TREATMENT, row=plan)
        treatment = await clinical.record_treatment(oid(plan_id, "planId"), data)
        access.wrote(K.TREATMENT, treatment, Action.RECORD_TREATMENT, data, note=note)
        return view(Treatment, treatment)

    @strawberry.mutation(metadata=acts(K.PRESCRIPTION, Action.CREATE))
    async def create_prescription(self, info: Info, input: CreatePrescriptionInput) -> Prescription:
        data = create_data(input)
        note = _in_own_name(info, data, "prescriber_id")
        run = partial(clinical.create_prescription, data)
        patient = await _patient(info, data)
        created = await perform(
            info, K.PRESCRIPTION, Action.CREATE, run, data, note=note, patient=patient
        )
        return view(Prescription, created)

    @strawberry.mutation(
        description="Change what was prescribed, before it is dispensed.",
        metadata=acts(K.PRESCRIPTION, Action.UPDATE),
    )
    async def update_prescription(
        self, info: Info, id: strawberry.ID, input: UpdatePrescriptionInput
    ) -> Prescription:
        changes = update_data(input)
        row = await clinical.get_prescription(oid(id))
        run = partial(clinical.update_prescription, oid(id), changes)
        changed = await perform(info, K.PRESCRIPTION, Action.UPDATE, run, changes, row=row)
        return view(Prescription, changed)

    @strawberry.mutation(
        description="Move a prescription on: dispensed, picked up, cancelled.",
        metadata=acts(K.PRESCRIPTION, Action.CHANGE_STATUS),
    )
    async def update_prescription_status(
        self, info: Info, id: strawberry.ID, status: PrescriptionStatus
    ) -> Prescription:
        row = await clinical.get_prescription(oid(id))
        run = partial(clinical.update_prescription_status, oid(id), status)
        changed = await perform(
            info, K.PRESCRIPTION, Action.CHANGE_STATUS, run, ["status"], row=row
        )
        return view(Prescription, changed)
