"""The access holes of issue 11, tried over real HTTP (and WebSocket) as an attacker would.

Each test failed on the code before the declared-domain change: care relationships that never
ended, analysts reading appointment rows, clinical records written in another clinician's name,
and clinical free text (why a visit was cancelled) shown to billing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from starlette.testclient import TestClient

from app import create_app
from models.audit import AuditEvent
from models.clinical import Prescription, TreatmentPlan
from models.patients import Patient
from models.scheduling import AppointmentStatus
from models.staff import Doctor
from tests import factories
from tests.conftest import token_for
from tests.events.live import TRANSPORT_WS, call, subscriber

CHART = "query($id: ID!) { patient(id: $id) { id allergies { substance } } }"
BOOK = (
    """mutation($input: ScheduleAppointmentInput!) { scheduleAppointment(input: $input) { id } }"""
)
CANCEL = """mutation($id: ID!, $reason: String) {
  cancelAppointment(id: $id, reason: $reason) { id status }
}"""
START = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def _doctor_and_patient() -> tuple[Doctor, Patient]:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    patient = await factories.patient(
        clinician_access=False, allergies=[{"substance": "Penicillin", "severity": "severe"}]
    )
    return doctor, patient


def _as_doctor(client_as: Any, doctor: Doctor) -> Any:
    return client_as(roles=["doctor"], sid=str(doctor.id), did=str(doctor.department_id))


# -- 1. care relationships end with their facts ------------------------------------------------


async def test_a_cancelled_booking_ends_the_care_it_gave(client_as: Any) -> None:
    doctor, patient = await _doctor_and_patient()
    desk = client_as(roles=["admin_staff"])
    me = _as_doctor(client_as, doctor)
    assert _codes(await me(CHART, id=str(patient.id))) == ["FORBIDDEN"]

    start = START.isoformat()
    end = (START + timedelta(minutes=30)).isoformat()
    booking = {
        "patientId": str(patient.id), "doctorId": str(doctor.id), "startAt": start,
        "endAt": end, "reason": "Check-up",
    }  # fmt: skip
    booked = await desk.data(BOOK, input=booking)
    chart = await me.data(CHART, id=str(patient.id))
    assert chart["patient"]["allergies"] == [{"substance": "Penicillin"}]

    await desk.data(CANCEL, id=booked["scheduleAppointment"]["id"])
    assert _codes(await me(CHART, id=str(patient.id))) == ["FORBIDDEN"]
    listed = await me.data("{ patients { nodes { id } } }")
    assert listed["patients"]["nodes"] == []


@pytest.mark.parametrize(
    ("status", "days_ago", "cares"),
    [
        (AppointmentStatus.COMPLETED, 30, True),
        (AppointmentStatus.COMPLETED, 91, False),
        (AppointmentStatus.NO_SHOW, 1, False),
        (AppointmentStatus.CANCELLED, 1, False),
    ],
)
async def test_past_visits_relate_for_the_configured_days_only(
    client_as: Any, status: AppointmentStatus, days_ago: int, cares: bool
) -> None:
    doctor, patient = await _doctor_and_patient()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    await factories.appointment(patient, doctor, start=start, status=status)
    body = await _as_doctor(client_as, doctor)(CHART, id=str(patient.id))
    assert _codes(body) == ([] if cares else ["FORBIDDEN"]), body


async def test_a_closed_plan_ends_the_overseeing_doctors_access(client_as: Any) -> None:
    doctor, patient = await _doctor_and_patient()
    plan = await factories.treatment_plan(patient, doctor)
    me = _as_doctor(client_as, doctor)
    assert _codes(await me(CHART, id=str(patient.id))) == []
    close = """mutation($id: ID!) {
      updateTreatmentPlan(id: $id, input: {status: COMPLETED}) { status }
    }"""
    assert (await me.data(close, id=str(plan.id)))["updateTreatmentPlan"]["status"] == "COMPLETED"
    assert _codes(await me(CHART, id=str(patient.id))) == ["FORBIDDEN"]


async def test_care_is_derived_not_accumulated(app: Any) -> None:
    """The stored relations are recomputed from the sources on every write."""
    doctor, patient = await _doctor_and_patient()
    first = await factories.appointment(patient, doctor, start=START)
    stored = await Patient.get(patient.id)
    assert stored is not None and [c.clinician_id for c in stored.care] == [doctor.id]
    first.status = AppointmentStatus.CANCELLED
    await first.save()
    from services import care

    await care.refresh(patient.id)
    stored = await Patient.get(patient.id)
    assert stored is not None and stored.care == []


# -- 2. analysts get aggregates only ------------------------------------------------------------


ANALYST_PROBES = {
    "list by patient": (
        "query($p: ID!) { appointments(filter: {patientId: $p}) { totalCount nodes { id } } }"
    ),
    "list by department and status": (
        "query($d: ID!) { appointments(filter: {departmentId: $d, status: [CANCELLED]}) "
        "{ totalCount } }"
    ),
    "by id": "query($a: ID!) { appointment(id: $a) { id status } }",
    "nested under a doctor": (
        "query($doc: ID!) { doctor(id: $doc) { appointments { totalCount } } }"
    ),
    "nested under a device": "{ equipmentList { nodes { appointments { totalCount } } } }",
}


@pytest.mark.parametrize("probe", list(ANALYST_PROBES))
async def test_analysts_reach_no_appointment_row_by_any_path(client_as: Any, probe: str) -> None:
    doctor, patient = await _doctor_and_patient()
    device = await factories.equipment()
    booked = await factories.appointment(patient, doctor, device)
    analyst = client_as(roles=["analyst"])
    variables = {"p": str(patient.id), "d": str(doctor.department_id), "a": str(booked.id)}
    variables["doc"] = str(doctor.id)
    query = ANALYST_PROBES[probe]
    used = {k: v for k, v in variables.items() if f"${k}" in query}
    body = await analyst(query, **used)
    assert "FORBIDDEN" in _codes(body), body
    assert str(booked.id) not in str(body.get("data")), body


@pytest.fixture
def live(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_analysts_cannot_subscribe_to_a_patients_appointments(live: TestClient) -> None:
    patient = call(live, factories.patient)
    events = """subscription($p: ID) { appointmentChanged(patientId: $p) { appointmentId } }"""
    with subscriber(live, TRANSPORT_WS, token_for(live.app, roles=["analyst"])) as ws:
        ws.subscribe("x", events, p=str(patient.id))
        refused = ws.next("x")
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        ws.completed("x")


# -- 4. clinicians write in their own name ------------------------------------------------------


async def test_a_doctor_cannot_prescribe_in_another_doctors_name(client_as: Any) -> None:
    doctor, patient = await _doctor_and_patient()
    other = await factories.doctor()
    await factories.treatment_plan(patient, doctor)
    me = _as_doctor(client_as, doctor)
    prescribe = """mutation($input: CreatePrescriptionInput!) {
      createPrescription(input: $input) { id prescriberId }
    }"""
    item = {
        "patientId": str(patient.id), "drug": "Amoxicillin", "dose": "500 mg",
        "route": "ORAL", "frequency": "every 8 hours", "durationDays": 7,
    }  # fmt: skip
    forged = await me(prescribe, input={**item, "prescriberId": str(other.id)})
    assert _codes(forged) == ["FORBIDDEN"]
    assert await Prescription.find_all().count() == 0

    mine = await me.data(prescribe, input=item)
    assert mine["createPrescription"]["prescriberId"] == str(doctor.id)


async def test_a_doctor_creates_plans_as_themselves_and_an_admin_entry_is_audited(
    client_as: Any,
) -> None:
    doctor, patient = await _doctor_and_patient()
    await factories.appointment(patient, doctor, start=START)
    other = await factories.doctor()
    create = """mutation($input: CreateTreatmentPlanInput!) {
      createTreatmentPlan(input: $input) { id doctorId }
    }"""
    plan = {"patientId": str(patient.id), "diagnosis": {"description": "Hypertension"}}
    me = _as_doctor(client_as, doctor)
    assert _codes(await me(create, input={**plan, "doctorId": str(other.id)})) == ["FORBIDDEN"]
    assert await TreatmentPlan.find_all().count() == 0
    assert (await me.data(create, input=plan))["createTreatmentPlan"]["doctorId"] == str(doctor.id)

    admin = client_as(sub="acct-admin", roles=["admin"])
    entered = await admin.data(create, input={**plan, "doctorId": str(other.id)})
    assert entered["createTreatmentPlan"]["doctorId"] == str(other.id)
    events = await AuditEvent.find({"actor_subject": "acct-admin"}).to_list()
    (event,) = [e for e in events if e.entity == "TreatmentPlan" and e.action == "create"]
    assert event.reason is not None and str(other.id) in event.reason


# -- 5. clinical free text is classified clinical ----------------------------------------------


async def test_a_cancellation_reason_does_not_reach_billing(client_as: Any) -> None:
    doctor, patient = await _doctor_and_patient()
    booked = await factories.appointment(patient, doctor, start=START)
    desk = client_as(roles=["admin_staff"])
    why = "admitted to psychiatric ward"
    await desk.data(CANCEL, id=str(booked.id), reason=why)
    card = """query($id: ID!) { appointment(id: $id) {
      id status cancellation { reason } rescheduleHistory { reason } } }"""
    billing = await client_as(roles=["billing"])(card, id=str(booked.id))
    assert why not in str(billing.get("data")), billing
    assert set(_codes(billing)) == {"FORBIDDEN"}
    assert billing["data"]["appointment"]["status"] == "CANCELLED"
    seen = await desk.data(card, id=str(booked.id))
    assert seen["appointment"]["cancellation"] == {"reason": why}


async def test_unknown_object_ids_are_never_care(client_as: Any) -> None:
    """A clinician with no facts sees nothing, whatever id they try."""
    doctor, patient = await _doctor_and_patient()
    me = _as_doctor(client_as, doctor)
    for target in (patient.id, ObjectId()):
        body = await me(CHART, id=str(target))
        assert body["data"]["patient"] is None
