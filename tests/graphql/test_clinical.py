from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import Prescription, Treatment, TreatmentPlan
from tests import factories
from tests.graphql.helpers import code, snapshot

CREATE_PLAN = """mutation($input: CreateTreatmentPlanInput!) {
  createTreatmentPlan(input: $input) {
    id status goals diagnosis { code description } doctor { lastName } patient { lastName }
  }
}"""
UPDATE_PLAN = """mutation($id: ID!, $input: UpdateTreatmentPlanInput!) {
  updateTreatmentPlan(id: $id, input: $input) { status goals notes }
}"""
RECORD = """mutation($planId: ID!, $input: RecordTreatmentInput!) {
  recordTreatment(planId: $planId, input: $input) { id procedure performedByRole plan { id } }
}"""
CREATE_RX = """mutation($input: CreatePrescriptionInput!) {
  createPrescription(input: $input) { id status drug route statusHistory { status } }
}"""
UPDATE_RX = """mutation($id: ID!, $input: UpdatePrescriptionInput!) {
  updatePrescription(id: $id, input: $input) { dose frequency }
}"""
RX_STATUS = """mutation($id: ID!, $status: PrescriptionStatus!) {
  updatePrescriptionStatus(id: $id, status: $status) { status statusHistory { status } }
}"""
HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


async def test_create_treatment_plan(gql: Any) -> None:
    patient = await factories.patient(last_name="Curie")
    doctor = await factories.doctor(last_name="Osler")
    data = await gql.data(
        CREATE_PLAN,
        input={
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "diagnosis": {"code": "E11.9", "description": "Type 2 diabetes"},
            "goals": ["HbA1c below 7%"],
        },
    )
    plan = data["createTreatmentPlan"]
    assert plan["status"] == "ACTIVE" and plan["goals"] == ["HbA1c below 7%"]
    assert plan["doctor"] == {"lastName": "Osler"} and plan["patient"] == {"lastName": "Curie"}


async def test_create_treatment_plan_rejections(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    base = {
        "patientId": str(patient.id),
        "doctorId": str(doctor.id),
        "diagnosis": {"description": "Hypertension"},
    }
    cases: dict[str, dict[str, Any]] = {
        "diagnosis.code": {"diagnosis": {"code": "not-icd", "description": "x"}},
        "doctorId": {"doctorId": str(patient.id)},
        "patientId": {"patientId": str(doctor.id)},
        "status": {"status": "COMPLETED"},
    }
    for field, change in cases.items():
        error = await gql.error(CREATE_PLAN, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    assert await TreatmentPlan.count() == 0


async def test_update_treatment_plan_follows_status_transitions(gql: Any) -> None:
    plan = await factories.treatment_plan()
    data = await gql.data(
        UPDATE_PLAN, id=str(plan.id), input={"status": "ON_HOLD", "notes": "Trip"}
    )
    assert data["updateTreatmentPlan"] == {
        "status": "ON_HOLD",
        "goals": plan.goals,
        "notes": "Trip",
    }
    done = await gql.data(UPDATE_PLAN, id=str(plan.id), input={"status": "COMPLETED"})
    assert done["updateTreatmentPlan"]["status"] == "COMPLETED"
    before = await snapshot(TreatmentPlan)
    closed = await gql.error(UPDATE_PLAN, id=str(plan.id), input={"notes": "late"})
    assert code(closed) == "BAD_USER_INPUT"
    assert await snapshot(TreatmentPlan) == before


async def test_update_treatment_plan_rejects_illegal_transition(gql: Any) -> None:
    plan = await factories.treatment_plan(status="draft")
    before = await snapshot(TreatmentPlan)
    error = await gql.error(UPDATE_PLAN, id=str(plan.id), input={"status": "COMPLETED"})
    assert code(error) == "BAD_USER_INPUT" and "status" in error["extensions"]["fields"]
    assert code(await gql.error(UPDATE_PLAN, id="0" * 24, input={"notes": "x"})) == "NOT_FOUND"
    assert await snapshot(TreatmentPlan) == before


async def test_record_treatment(gql: Any) -> None:
    plan = await factories.treatment_plan()
    nurse = await factories.nurse()
    data = await gql.data(
        RECORD,
        planId=str(plan.id),
        input={
            "performedById": str(nurse.id),
            "performedByRole": "NURSE",
            "performedAt": HOUR_AGO,
            "procedure": "Blood pressure check",
        },
    )
    assert data["recordTreatment"]["plan"] == {"id": str(plan.id)}
    listed = await gql.data(
        "query($id: ID!) { treatmentPlan(id: $id) {"
        " treatments { totalCount nodes { procedure } } } }",
        id=str(plan.id),
    )
    assert listed["treatmentPlan"]["treatments"] == {
        "totalCount": 1,
        "nodes": [{"procedure": "Blood pressure check"}],
    }


async def test_record_treatment_rejections(gql: Any) -> None:
    plan = await factories.treatment_plan()
    on_hold = await factories.treatment_plan(status="on_hold")
    doctor, nurse = await factories.doctor(), await factories.nurse()
    good = {
        "performedById": str(doctor.id),
        "performedByRole": "DOCTOR",
        "performedAt": HOUR_AGO,
        "procedure": "ECG",
    }
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for plan_id, change, field in [
        (plan.id, {"performedById": str(nurse.id)}, "performedById"),  # a nurse is no doctor
        (plan.id, {"performedAt": future}, "performedAt"),
        (plan.id, {"procedure": ""}, "procedure"),
        (on_hold.id, {}, "planId"),
    ]:
        error = await gql.error(RECORD, planId=str(plan_id), input={**good, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    assert code(await gql.error(RECORD, planId="0" * 24, input=good)) == "NOT_FOUND"
    assert await Treatment.count() == 0


async def test_prescription_life_cycle(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    plan = await factories.treatment_plan(patient, doctor)
    data = await gql.data(
        CREATE_RX,
        input={
            "patientId": str(patient.id),
            "prescriberId": str(doctor.id),
            "treatmentPlanId": str(plan.id),
            "drug": "Metformin",
            "dose": "500 mg",
            "route": "ORAL",
            "frequency": "twice daily",
            "durationDays": 90,
        },
    )
    rx = data["createPrescription"]
    assert rx["status"] == "PRESCRIBED" and rx["statusHistory"] == [{"status": "PRESCRIBED"}]
    changed = await gql.data(UPDATE_RX, id=rx["id"], input={"dose": "1000 mg"})
    assert changed["updatePrescription"] == {"dose": "1000 mg", "frequency": "twice daily"}
    for status in ["DISPENSED", "PICKED_UP"]:
        moved = await gql.data(RX_STATUS, id=rx["id"], status=status)
        assert moved["updatePrescriptionStatus"]["status"] == status
    assert [s["status"] for s in moved["updatePrescriptionStatus"]["statusHistory"]] == [
        "PRESCRIBED",
        "DISPENSED",
        "PICKED_UP",
    ]


async def test_prescription_rejections_change_nothing(gql: Any) -> None:
    patient, other, doctor = (
        await factories.patient(),
        await factories.patient(),
        await factories.doctor(),
    )
    others_plan = await factories.treatment_plan(other, doctor)
    base = {
        "patientId": str(patient.id),
        "prescriberId": str(doctor.id),
        "drug": "Ibuprofen",
        "dose": "200 mg",
        "route": "ORAL",
        "frequency": "as needed",
        "durationDays": 5,
    }
    rx_cases: dict[str, dict[str, Any]] = {
        "treatmentPlanId": {"treatmentPlanId": str(others_plan.id)},
        "durationDays": {"durationDays": 0},
        "refills": {"refills": 99},
        "prescriberId": {"prescriberId": str(patient.id)},
    }
    for field, change in rx_cases.items():
        error = await gql.error(CREATE_RX, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    assert await Prescription.count() == 0

    dispensed = await factories.prescription(patient, doctor, status="dispensed")
    before = await snapshot(Prescription)
    late = await gql.error(UPDATE_RX, id=str(dispensed.id), input={"dose": "400 mg"})
    assert code(late) == "BAD_USER_INPUT"
    backwards = await gql.error(RX_STATUS, id=str(dispensed.id), status="PRESCRIBED")
    assert code(backwards) == "BAD_USER_INPUT" and "allowed" in backwards["message"]
    assert await snapshot(Prescription) == before


async def test_clinical_lists_filter(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    await factories.treatment_plan(patient, doctor)
    await factories.treatment_plan(status="completed")
    await factories.prescription(patient, doctor)
    await factories.prescription(status="picked_up")
    data = await gql.data(
        "query($p: ID, $d: ID) { mine: treatmentPlans(patientId: $p) { totalCount }"
        " done: treatmentPlans(status: COMPLETED) { totalCount }"
        " rx: prescriptions(prescriberId: $d) { totalCount }"
        " picked: prescriptions(status: PICKED_UP) { totalCount } }",
        p=str(patient.id),
        d=str(doctor.id),
    )
    assert {k: v["totalCount"] for k, v in data.items()} == {
        "mine": 1,
        "done": 1,
        "rx": 1,
        "picked": 1,
    }
