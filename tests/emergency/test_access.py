"""Who may do what in the ED: the declarations at work, refusals and masked clinical fields."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.emergency.helpers import (
    BOARD,
    DISPOSE,
    REGISTER_DESK,
    START,
    TRIAGE,
    VISITS,
    emergency_department,
)

DESK_VIEW = """query($id: ID!) { emergencyVisit(id: $id) {
  id status arrivalMode triageLevel patientId patient { lastName } } }"""
COMPLAINT = "query($id: ID!) { emergencyVisit(id: $id) { id chiefComplaint triage { level } } }"


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def _triaged_visit(client_as: Any) -> tuple[Any, str]:
    ed = await emergency_department()
    patient = await factories.patient(clinician_access=False)
    desk = client_as(**ed.claims("admin_staff"))
    arrival = {
        "patientId": str(patient.id),
        "departmentId": ed.id,
        "arrivalMode": "WALK_IN",
        "chiefComplaint": "Abdominal pain",
    }
    visit = (await desk.data(REGISTER_DESK, input=arrival))["registerEmergencyArrival"]["id"]
    await client_as(**ed.claims("nurse")).data(TRIAGE, id=visit, input={"level": 3})
    return ed, visit


async def test_the_front_desk_sees_the_board_and_who_not_the_clinical_fields(
    client_as: Any,
) -> None:
    ed, visit = await _triaged_visit(client_as)
    desk = client_as(**ed.claims("admin_staff"))
    seen = (await desk.data(DESK_VIEW, id=visit))["emergencyVisit"]
    assert seen["triageLevel"] == 3 and seen["patient"]["lastName"]
    clinical = await desk(COMPLAINT, id=visit)
    assert clinical["data"]["emergencyVisit"]["chiefComplaint"] is None
    assert {code({"errors": [e]}) for e in clinical["errors"]} == {"FORBIDDEN"}
    assert (await desk.data(BOARD, departmentId=ed.id))["emergencyBoard"]["open"] == 1
    assert code(await desk(TRIAGE, id=visit, input={"level": 2})) == "FORBIDDEN"
    assert code(await desk(START, id=visit)) == "FORBIDDEN"


async def test_billing_reads_operational_fields_only_and_analysts_nothing(client_as: Any) -> None:
    ed, visit = await _triaged_visit(client_as)
    billing = client_as(roles=["billing"])
    assert (await billing.data(DESK_VIEW, id=visit))["emergencyVisit"]["triageLevel"] == 3
    clinical = await billing(COMPLAINT, id=visit)
    assert clinical["data"]["emergencyVisit"]["chiefComplaint"] is None
    assert code(await billing(BOARD, departmentId=ed.id)) == "FORBIDDEN"
    assert code(await billing(DISPOSE, id=visit, kind="DISCHARGED")) == "FORBIDDEN"

    analyst = client_as(roles=["analyst"])
    assert code(await analyst(VISITS)) == "FORBIDDEN"
    assert code(await analyst(BOARD, departmentId=ed.id)) == "FORBIDDEN"
    assert (await analyst(DESK_VIEW, id=visit))["data"]["emergencyVisit"] is None


async def test_staff_of_another_department_and_nurses_are_refused_doctor_steps(
    client_as: Any,
) -> None:
    ed, visit = await _triaged_visit(client_as)
    elsewhere = await factories.department()
    outsider = await factories.nurse(elsewhere)
    stranger = client_as(roles=["nurse"], did=str(elsewhere.id), sid=str(outsider.id))
    assert code(await stranger(TRIAGE, id=visit, input={"level": 1})) == "FORBIDDEN"
    assert code(await stranger(BOARD, departmentId=ed.id)) == "FORBIDDEN"
    assert (await stranger(DESK_VIEW, id=visit))["data"]["emergencyVisit"] is None

    nurse = client_as(**ed.claims("nurse"))
    assert code(await nurse(START, id=visit)) == "FORBIDDEN"
    assert code(await nurse(DISPOSE, id=visit, kind="DISCHARGED")) == "FORBIDDEN"

    other_doctor = await factories.doctor(elsewhere)
    doctor = client_as(roles=["doctor"], did=str(elsewhere.id), sid=str(other_doctor.id))
    assert code(await doctor(START, id=visit)) == "FORBIDDEN"

    patient = client_as(roles=["patient"], pid=str((await factories.patient()).id))
    arrival = {
        "patientId": str((await factories.patient()).id),
        "departmentId": ed.id,
        "arrivalMode": "WALK_IN",
        "chiefComplaint": "x",
    }
    assert code(await patient(REGISTER_DESK, input=arrival)) == "FORBIDDEN"
