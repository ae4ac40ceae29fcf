"""A subscription the viewer may not see is refused when it is opened (``FORBIDDEN``), not
accepted and left silent; a filter naming a record that does not exist is ``NOT_FOUND``
(issue 13, point 6). Both WebSocket protocols carry the refusal as the stream's first result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from starlette.testclient import TestClient

from app import create_app
from models.audit import AuditEvent
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    PROTOCOLS,
    TRANSPORT_WS,
    Subscriber,
    call,
    metric,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)

APPOINTMENTS = """subscription($doctorId: ID, $patientId: ID, $departmentId: ID) {
  appointmentChanged(doctorId: $doctorId, patientId: $patientId, departmentId: $departmentId) {
    change appointmentId
  }
}"""
EQUIPMENT = """subscription($departmentId: ID, $equipmentId: ID) {
  equipmentStatusChanged(departmentId: $departmentId, equipmentId: $equipmentId) { change }
}"""
APPOINTMENT_FIELD = "appointmentChanged"
EQUIPMENT_FIELD = "equipmentStatusChanged"
NOBODY = "0" * 23 + "9"


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def refused(live: Subscriber, id: str) -> str:
    """The code of the one error a refused subscription gets, then its completion."""
    result = live.next(id)
    assert result["data"] is None, result
    (error,) = result["errors"]
    live.completed(id)
    return str(error["extensions"]["code"])


def accepted(client: TestClient, live: Subscriber, field: str, query: str, **filters: Any) -> None:
    """The subscription is open and listening (and so counted), then stopped again."""
    before = metric(client, open_subscriptions(field))
    live.subscribe("ok", query, **filters)
    wait_for_metric(client, open_subscriptions(field), before + 1)
    live.stop("ok")
    if live.protocol != TRANSPORT_WS:
        live.completed("ok")
    wait_for_metric(client, open_subscriptions(field), before)


def clinician(client: TestClient, role: str, staff: Any) -> str:
    claims = {"sid": str(staff.id), "did": str(staff.department_id)}
    return token_for(client.app, sub=f"test:{role}", roles=[role], **claims)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_clinician_may_not_follow_a_patient_they_have_no_relation_to(
    client: TestClient, protocol: str
) -> None:
    doctor = call(client, factories.doctor)
    stranger = call(client, factories.patient, clinician_access=False)
    treated = call(client, factories.patient, clinician_access=False)
    call(client, factories.appointment, treated, doctor)  # an upcoming visit: a care relation
    with subscriber(client, protocol, clinician(client, "doctor", doctor)) as live:
        live.subscribe("theirs", APPOINTMENTS, patientId=str(stranger.id))
        assert refused(live, "theirs") == "FORBIDDEN"
        accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, patientId=str(treated.id))

    trail = call(client, AuditEvent.find({"actor_subject": "test:doctor"}).to_list)
    denials = [(e.outcome.value, e.patient_id, e.entity) for e in trail]
    assert ("denied", stranger.id, "Appointment") in denials  # the refusal is audited


def test_a_patient_may_follow_only_their_own_appointments(client: TestClient) -> None:
    me = call(client, factories.patient, clinician_access=False)
    other = call(client, factories.patient, clinician_access=False)
    doctor = call(client, factories.doctor)
    token = token_for(client.app, sub="test:patient", roles=["patient"], pid=str(me.id))
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.subscribe("other", APPOINTMENTS, patientId=str(other.id))
        assert refused(live, "other") == "FORBIDDEN"
        live.subscribe("both", APPOINTMENTS, patientId=str(other.id), doctorId=str(doctor.id))
        assert refused(live, "both") == "FORBIDDEN"
        accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, patientId=str(me.id))
        # Their own visits with one doctor, or in one department, may arrive: accepted.
        accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, doctorId=str(doctor.id))
        accepted(
            client, live, APPOINTMENT_FIELD, APPOINTMENTS, departmentId=str(doctor.department_id)
        )


def test_a_clinician_follows_their_own_department_and_diary_only(client: TestClient) -> None:
    cardiology, oncology = call(client, factories.department), call(client, factories.department)
    doctor = call(client, factories.doctor, cardiology)
    colleague = call(client, factories.doctor, cardiology)
    elsewhere = call(client, factories.doctor, oncology)
    nurse = call(client, factories.nurse, cardiology)
    for role, staff in (("doctor", doctor), ("nurse", nurse)):
        with subscriber(client, TRANSPORT_WS, clinician(client, role, staff)) as live:
            live.subscribe("dept", APPOINTMENTS, departmentId=str(oncology.id))
            assert refused(live, "dept") == "FORBIDDEN"
            live.subscribe("doctor", APPOINTMENTS, doctorId=str(elsewhere.id))
            assert refused(live, "doctor") == "FORBIDDEN"
            live.subscribe("mixed", APPOINTMENTS, doctorId=str(colleague.id),
                           departmentId=str(oncology.id))  # fmt: skip
            assert refused(live, "mixed") == "FORBIDDEN"
            own = {"departmentId": str(cardiology.id)}
            accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, **own)
            accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, doctorId=str(colleague.id))
    with subscriber(client, TRANSPORT_WS, clinician(client, "doctor", elsewhere)) as live:
        accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, doctorId=str(elsewhere.id))


def test_roles_granted_every_appointment_follow_any_filter(client: TestClient) -> None:
    doctor = call(client, factories.doctor)
    patient = call(client, factories.patient, clinician_access=False)
    front_desk = token_for(client.app, roles=["admin_staff"])
    with subscriber(client, TRANSPORT_WS, front_desk) as live:
        for filters in (
            {"patientId": str(patient.id)},
            {"doctorId": str(doctor.id)},
            {"departmentId": str(doctor.department_id)},
        ):
            accepted(client, live, APPOINTMENT_FIELD, APPOINTMENTS, **filters)


def test_a_filter_naming_no_record_is_not_found(client: TestClient) -> None:
    with subscriber(client, TRANSPORT_WS, token_for(client.app, roles=["admin"])) as live:
        for n, filters in enumerate(
            ({"patientId": NOBODY}, {"doctorId": NOBODY}, {"departmentId": NOBODY})
        ):
            live.subscribe(f"a{n}", APPOINTMENTS, **filters)
            assert refused(live, f"a{n}") == "NOT_FOUND"
        for n, filters in enumerate(({"equipmentId": NOBODY}, {"departmentId": NOBODY})):
            live.subscribe(f"e{n}", EQUIPMENT, **filters)
            assert refused(live, f"e{n}") == "NOT_FOUND"
        live.subscribe("bad", EQUIPMENT, equipmentId="not-an-id")
        assert refused(live, "bad") == "BAD_USER_INPUT"


def test_a_missing_patient_is_forbidden_not_revealed_to_those_without_access(
    client: TestClient,
) -> None:
    nurse = call(client, factories.nurse)
    with subscriber(client, TRANSPORT_WS, clinician(client, "nurse", nurse)) as live:
        live.subscribe("ghost", APPOINTMENTS, patientId=NOBODY)
        assert refused(live, "ghost") == "FORBIDDEN"  # the same answer as for a real stranger
        live.subscribe("real", APPOINTMENTS, patientId=str(ObjectId()))
        assert refused(live, "real") == "FORBIDDEN"


def test_equipment_filters_are_accepted_for_every_role_that_reads_equipment(
    client: TestClient,
) -> None:
    dept = call(client, factories.department)
    device = call(client, factories.equipment, dept)
    me = call(client, factories.patient, clinician_access=False)
    patient = token_for(client.app, roles=["patient"], pid=str(me.id))
    with subscriber(client, TRANSPORT_WS, patient) as live:
        accepted(client, live, EQUIPMENT_FIELD, EQUIPMENT, equipmentId=str(device.id))
        accepted(client, live, EQUIPMENT_FIELD, EQUIPMENT, departmentId=str(dept.id))
