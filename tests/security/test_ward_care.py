"""Nurses treat the current inpatients of the ward they are assigned to, and nobody else's.

The relation comes from the admission (a care source with a ward) and the nurse's record as it
stands now: never from a token's claims, and it ends with the discharge or the reassignment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from auth import status as auth_status
from models.admissions import Admission, AdmissionSource, AdmissionStatus
from models.base import utcnow
from models.patients import Patient
from models.staff import Nurse
from models.wards import Bed, Ward
from services import care
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)
from tests.graphql.helpers import code

CHART = """query($id: ID!) { patient(id: $id) { id allergies { substance } } }"""
PATIENTS = """{ patients(first: 50) { edges { node { id } } } }"""
MOVE = """mutation($id: ID!, $ward: ID) {
  updateNurse(id: $id, input: {wardId: $ward}) { wardId } }"""


async def _ward(code_: str) -> Ward:
    home = await factories.department()
    return await Ward(name=f"Ward {code_}", code=code_, department_id=home.id, capacity=4).insert()


async def _admitted(ward: Ward, status: AdmissionStatus = AdmissionStatus.ACTIVE) -> Any:
    patient = await factories.patient(clinician_access=False)
    doctor = await factories.doctor()
    bed = await Bed(ward_id=ward.id, department_id=ward.department_id, label="B1").insert()
    now = utcnow()
    await Admission(
        patient_id=patient.id,
        source=AdmissionSource.ELECTIVE,
        attending_doctor_id=doctor.id,
        department_id=ward.department_id,
        ward_id=ward.id,
        bed_id=bed.id,
        status=status,
        admitted_at=now - timedelta(days=1),
        discharged_at=now if status == AdmissionStatus.DISCHARGED else None,
        reason="Observation",
    ).insert()
    await care.refresh(patient.id)
    return patient


def _nurse_client(client_as: Any, nurse: Any, **extra: Any) -> Any:
    return client_as(roles=["nurse"], sid=str(nurse.id), did=str(nurse.department_id), **extra)


async def test_a_nurse_of_the_ward_treats_its_inpatients_whatever_their_department(
    client_as: Any,
) -> None:
    ward, other = await _ward("W1"), await _ward("W2")
    patient = await _admitted(ward)
    elsewhere = await factories.department()  # a float nurse: not the ward's department
    mine = await factories.nurse(elsewhere, ward_id=ward.id)
    stranger = await factories.nurse(elsewhere, ward_id=other.id)

    chart = await _nurse_client(client_as, mine).data(CHART, id=str(patient.id))
    assert chart["patient"]["allergies"] is not None
    listed = await _nurse_client(client_as, mine).data(PATIENTS)
    assert str(patient.id) in {e["node"]["id"] for e in listed["patients"]["edges"]}

    refused = await _nurse_client(client_as, stranger).error(CHART, id=str(patient.id))
    assert code(refused) == "FORBIDDEN"
    listed = await _nurse_client(client_as, stranger).data(PATIENTS)
    assert str(patient.id) not in {e["node"]["id"] for e in listed["patients"]["edges"]}


async def test_a_token_cannot_claim_a_ward(client_as: Any) -> None:
    ward = await _ward("W3")
    patient = await _admitted(ward)
    nurse = await factories.nurse(await factories.department())  # assigned to no ward
    forged = _nurse_client(client_as, nurse, wid=str(ward.id))
    assert code(await forged.error(CHART, id=str(patient.id))) == "FORBIDDEN"


async def test_discharge_ends_the_ward_teams_care_but_not_the_attending_doctors(
    client_as: Any,
) -> None:
    ward = await _ward("W4")
    patient = await _admitted(ward, AdmissionStatus.DISCHARGED)
    nurse = await factories.nurse(await factories.department(), ward_id=ward.id)
    assert code(await _nurse_client(client_as, nurse).error(CHART, id=str(patient.id))) == (
        "FORBIDDEN"
    )
    stored = await Patient.get(patient.id)
    assert stored is not None
    assert [link.ward_id for link in stored.care] == [None]  # the doctor's link alone remains
    assert stored.care[0].clinician_id is not None and stored.care[0].until is not None


async def test_moving_a_nurse_to_another_ward_moves_their_care_at_once(
    client_as: Any, gql: Any
) -> None:
    ward, other = await _ward("W5"), await _ward("W6")
    patient = await _admitted(ward)
    nurse = await factories.nurse(await factories.department(), ward_id=ward.id)
    client = _nurse_client(client_as, nurse)
    assert (await client.data(CHART, id=str(patient.id)))["patient"]["id"] == str(patient.id)

    moved = await gql.data(MOVE, id=str(nurse.id), ward=str(other.id))
    assert moved["updateNurse"]["wardId"] == str(other.id)
    assert code(await client.error(CHART, id=str(patient.id))) == "FORBIDDEN"


async def test_a_nurse_cannot_be_assigned_to_a_ward_that_does_not_exist(gql: Any) -> None:
    nurse = await factories.nurse()
    error = await gql.error(MOVE, id=str(nurse.id), ward="0" * 24)
    assert code(error) == "BAD_USER_INPUT"
    stored = await Nurse.get(nurse.id)
    assert stored is not None and stored.ward_id is None


EQUIPMENT_EVENTS = """subscription($departmentId: ID) {
  equipmentStatusChanged(departmentId: $departmentId) { change equipmentId }
}"""
STATUS = """mutation($id: ID!, $status: EquipmentStatus!) {
  updateEquipmentStatus(id: $id, status: $status) { status }
}"""


def test_a_subscriber_whose_ward_changed_is_disconnected_at_the_next_event(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live subscription decided under the old ward must not outlive the reassignment."""
    monkeypatch.setattr(auth_status, "RECHECK_SECONDS", 0.0)  # every event looks again
    with TestClient(create_app(settings)) as client:
        dept = call(client, factories.department)
        device = call(client, factories.equipment, dept)
        ward, other = call(client, _ward, "W7"), call(client, _ward, "W8")
        nurse = call(client, factories.nurse, dept, ward_id=ward.id)
        token = token_for(client.app, sub="test:nurse", roles=["nurse"], sid=str(nurse.id))
        admin = token_for(client.app, roles=["admin", "admin_staff"])
        field = open_subscriptions("equipmentStatusChanged")
        with subscriber(client, TRANSPORT_WS, token) as live:
            live.subscribe("board", EQUIPMENT_EVENTS, departmentId=str(dept.id))
            wait_for_metric(client, field, 1)
            data(client, admin, STATUS, id=str(device.id), status="MAINTENANCE")
            assert "errors" not in live.next("board")

            data(client, admin, MOVE, id=str(nurse.id), ward=str(other.id))
            data(client, admin, STATUS, id=str(device.id), status="AVAILABLE")
            ended = live.next("board")
            (error,) = ended["errors"]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            assert error["extensions"]["reason"] == "ward_changed"
            live.completed("board")
