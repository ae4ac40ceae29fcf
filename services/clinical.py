"""Treatment plans, the treatments recorded under them, and prescriptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId

import db
from errors import BadUserInput, Conflict
from models.base import utcnow
from models.clinical import (
    PRESCRIPTION_TRANSITIONS,
    PerformerRole,
    Prescription,
    PrescriptionStatus,
    StatusChange,
    Treatment,
    TreatmentPlan,
    TreatmentPlanStatus,
)
from models.drugs import Drug
from models.equipment import MedicalEquipment
from models.patients import Patient, fold
from models.staff import Doctor, Nurse
from services import common
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.validation import build, merged, require

_encoder = Encoder()
_CLOSED_PLANS = (TreatmentPlanStatus.COMPLETED, TreatmentPlanStatus.CANCELLED)
PLAN_TRANSITIONS: dict[TreatmentPlanStatus, frozenset[TreatmentPlanStatus]] = {
    TreatmentPlanStatus.DRAFT: frozenset(
        {TreatmentPlanStatus.ACTIVE, TreatmentPlanStatus.CANCELLED}
    ),
    TreatmentPlanStatus.ACTIVE: frozenset(
        {TreatmentPlanStatus.ON_HOLD, TreatmentPlanStatus.COMPLETED, TreatmentPlanStatus.CANCELLED}
    ),
    TreatmentPlanStatus.ON_HOLD: frozenset(
        {TreatmentPlanStatus.ACTIVE, TreatmentPlanStatus.COMPLETED, TreatmentPlanStatus.CANCELLED}
    ),
    TreatmentPlanStatus.COMPLETED: frozenset(),
    TreatmentPlanStatus.CANCELLED: frozenset(),
}


def _query(**fields: Any) -> Query:
    return {k: v for k, v in fields.items() if v is not None}


async def list_treatment_plans(
    patient_id: ObjectId | None,
    doctor_id: ObjectId | None,
    status: TreatmentPlanStatus | None,
    args: PageArgs,
    scope: Query | None = None,
) -> Page[TreatmentPlan]:
    query = _query(patient_id=patient_id, doctor_id=doctor_id, status=status and status.value)
    return await paginate(TreatmentPlan, both(query, scope), BY_ID, args)


async def get_treatment_plan(id: ObjectId) -> TreatmentPlan:
    return await common.get_or_404(TreatmentPlan, id, "TreatmentPlan")


async def create_treatment_plan(data: Mapping[str, Any]) -> TreatmentPlan:
    plan = build(TreatmentPlan, data)
    require(plan.status not in _CLOSED_PLANS, "status", "a new plan cannot start closed")
    await common.ensure_exists(Patient, plan.patient_id, "patientId", "patient")
    doctor = await Doctor.get(plan.doctor_id)
    require(doctor is not None and doctor.active, "doctorId", "no such active doctor")
    _check_dates(plan)
    await common.insert(plan, "treatment plan")  # its care relationship follows (services.care)
    return plan


def _check_dates(plan: TreatmentPlan) -> None:
    if plan.start_date and plan.end_date:
        require(plan.end_date >= plan.start_date, "endDate", "must not be before startDate")


async def update_treatment_plan(id: ObjectId, changes: Mapping[str, Any]) -> TreatmentPlan:
    plan = await get_treatment_plan(id)
    if plan.status in _CLOSED_PLANS:
        raise BadUserInput(
            f"A {plan.status.value} plan cannot be changed", {"id": f"plan is {plan.status.value}"}
        )
    new_doctor = await Doctor.get(changes["doctor_id"]) if changes.get("doctor_id") else None
    if "doctor_id" in changes:
        require(new_doctor is not None, "doctorId", "no such doctor")
    require("patient_id" not in changes, "patientId", "a plan cannot move to another patient")
    candidate, _ = merged(plan, changes)
    if candidate.status != plan.status:
        require(
            candidate.status in PLAN_TRANSITIONS[plan.status],
            "status",
            f"cannot go from {plan.status.value} to {candidate.status.value}",
        )
    _check_dates(candidate)
    updated = await common.update(
        plan, changes, "treatment plan", expected={"status": plan.status.value}
    )
    return updated


async def record_treatment(plan_id: ObjectId, data: Mapping[str, Any]) -> Treatment:
    plan = await get_treatment_plan(plan_id)
    treatment = build(Treatment, {**data, "plan_id": plan_id, "patient_id": plan.patient_id})
    if plan.status != TreatmentPlanStatus.ACTIVE:
        raise BadUserInput(
            f"Treatments are recorded on active plans; this one is {plan.status.value}",
            {"planId": f"plan is {plan.status.value}"},
        )
    performer = Doctor if treatment.performed_by_role == PerformerRole.DOCTOR else Nurse
    await common.ensure_exists(
        performer, treatment.performed_by_id, "performedById", treatment.performed_by_role.value
    )
    await common.ensure_exists(MedicalEquipment, treatment.equipment_id, "equipmentId", "equipment")
    require(treatment.performed_at <= utcnow(), "performedAt", "must not be in the future")
    return await common.insert(treatment, "treatment")


async def list_prescriptions(
    patient_id: ObjectId | None,
    prescriber_id: ObjectId | None,
    status: PrescriptionStatus | None,
    args: PageArgs,
    scope: Query | None = None,
) -> Page[Prescription]:
    query = _query(
        patient_id=patient_id, prescriber_id=prescriber_id, status=status and status.value
    )
    return await paginate(Prescription, both(query, scope), BY_ID, args)


async def get_prescription(id: ObjectId) -> Prescription:
    return await common.get_or_404(Prescription, id, "Prescription")


async def create_prescription(data: Mapping[str, Any]) -> Prescription:
    now = utcnow()
    prescription = build(Prescription, {**data, "status": PrescriptionStatus.PRESCRIBED})
    await common.ensure_exists(Patient, prescription.patient_id, "patientId", "patient")
    await common.ensure_exists(Doctor, prescription.prescriber_id, "prescriberId", "doctor")
    if prescription.treatment_plan_id is not None:
        plan = await TreatmentPlan.get(prescription.treatment_plan_id)
        require(plan is not None, "treatmentPlanId", "no such treatment plan")
        assert plan is not None
        require(
            plan.patient_id == prescription.patient_id,
            "treatmentPlanId",
            "belongs to another patient",
        )
    if prescription.drug_id is not None:  # the drug master's product: the text must name it
        drug = await Drug.get(prescription.drug_id)
        require(drug is not None, "drugId", "no such drug")
        assert drug is not None
        require(
            " ".join(fold(prescription.drug).split()) in drug.match_keys,
            "drug",
            f"does not name drug {prescription.drug_id} ({drug.generic_name})",
        )
    prescription.status_history = [StatusChange(status=prescription.status.value, at=now)]
    return await common.insert(prescription, "prescription")


async def update_prescription(id: ObjectId, changes: Mapping[str, Any]) -> Prescription:
    """Change what was prescribed; only before it is dispensed."""
    prescription = await get_prescription(id)
    require(
        prescription.status == PrescriptionStatus.PRESCRIBED,
        "id",
        f"a {prescription.status.value} prescription cannot be changed",
    )
    require(
        not {"patient_id", "prescriber_id", "status", "drug_id"} & changes.keys(),
        "input",
        "not editable",
    )
    if "drug" in changes and prescription.drug_id is not None:  # it keeps naming its product
        drug = await Drug.get(prescription.drug_id)
        text = " ".join(fold(str(changes["drug"] or "")).split())
        require(drug is None or text in drug.match_keys, "drug", "must still name its drugId")
    updated = await common.update(prescription, changes, "prescription")
    return updated


async def update_prescription_status(id: ObjectId, status: PrescriptionStatus) -> Prescription:
    prescription = await get_prescription(id)
    allowed = PRESCRIPTION_TRANSITIONS[prescription.status]
    if status not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none"
        raise BadUserInput(
            f"A {prescription.status.value} prescription cannot become {status.value} "
            f"(allowed: {names})",
            {"status": f"cannot go from {prescription.status.value} to {status.value}"},
        )
    now = utcnow()
    change = StatusChange(status=status.value, at=now)
    result = await db.collection(Prescription).update_one(
        {"_id": id, "status": prescription.status.value},
        {
            "$set": {"status": status.value, "updated_at": now},
            "$push": {"status_history": _encoder.encode(change)},
        },
    )
    if result.matched_count == 0:
        raise Conflict("The prescription changed meanwhile; read it again and retry")
    stored = await get_prescription(id)
    await changed(stored, "status_changed")
    return stored
