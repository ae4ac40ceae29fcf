"""Who may see and move outpatient visits: every refusal by role and by relation."""

from __future__ import annotations

from typing import Any

from models.outpatient import OutpatientVisit
from models.scheduling import Appointment
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.outpatient.helpers import (
    BOARD,
    CALL_NEXT,
    CHECK_IN,
    LEFT,
    QUEUE,
    VISIT,
    WALK_IN,
    booked,
    clinic,
)

HISTORY = "query($id: ID!) { visit(id: $id) { status history { toStatus by } } }"
VISITS = """query($filter: OutpatientVisitFilter) {
  visits(filter: $filter, first: 50) { nodes { id patientId reason } totalCount }
}"""


async def _waiting(gql: Any, **walk_in: Any) -> dict[str, Any]:
    made = await gql.data(WALK_IN, input=walk_in)
    result: dict[str, Any] = made["walkInOutpatient"]
    return result


async def test_billing_sees_the_visit_but_not_why_the_patient_came(
    gql: Any, client_as: Any
) -> None:
    dept, _doctor = await clinic()
    patient = await factories.patient()
    visit = await _waiting(
        gql, patientId=str(patient.id), departmentId=str(dept.id), reason="Chest pain"
    )
    billing = client_as(roles=["billing"])
    body = await billing(VISIT, id=visit["id"])
    shown = body["data"]["visit"]
    assert shown["id"] == visit["id"] and shown["patientId"] == str(patient.id)
    assert shown["reason"] is None
    assert [e["path"][-1] for e in body["errors"]] == ["reason"]
    assert {code(e) for e in body["errors"]} == {"FORBIDDEN"}
    assert "Chest pain" not in str(body)


async def test_analysts_read_no_visit_queue_or_board(gql: Any, client_as: Any) -> None:
    dept, _ = await clinic()
    visit = await _waiting(
        gql, patientId=str((await factories.patient()).id), departmentId=str(dept.id)
    )
    analyst = client_as(roles=["analyst"])
    for query, args in (
        (VISIT, {"id": visit["id"]}),
        (VISITS, {}),
        (QUEUE, {"departmentId": str(dept.id)}),
        (BOARD, {"departmentId": str(dept.id)}),
    ):
        error = await analyst.error(query, **args)
        assert code(error) == "FORBIDDEN", query


async def test_a_patient_sees_their_own_visit_and_place_and_nobody_elses(
    gql: Any, client_as: Any
) -> None:
    dept, _doctor = await clinic()
    me = await factories.patient()
    other = await factories.patient()
    theirs = await _waiting(
        gql,
        patientId=str(other.id),
        departmentId=str(dept.id),
        reason="Private",
        priority="EMERGENCY",
    )
    mine = await _waiting(gql, patientId=str(me.id), departmentId=str(dept.id), reason="Cough")
    patient = client_as(roles=["patient"], pid=str(me.id))
    own = (await patient.data(VISIT, id=mine["id"]))["visit"]
    assert own["reason"] == "Cough" and own["position"] == 2
    assert code(await patient.error(VISIT, id=theirs["id"])) == "FORBIDDEN"
    steps = await patient(HISTORY, id=mine["id"])  # who took each step is staff's business
    assert steps["data"]["visit"] == {"status": "WAITING", "history": None}
    assert [code(e) for e in steps["errors"]] == ["FORBIDDEN"]
    desk = client_as(roles=["admin_staff"])
    assert (await desk.data(HISTORY, id=mine["id"]))["visit"]["history"][0]["by"] == "test:staff"
    listed = (await patient.data(VISITS))["visits"]
    assert [n["id"] for n in listed["nodes"]] == [mine["id"]] and listed["totalCount"] == 1
    queue = (await patient.data(QUEUE, departmentId=str(dept.id)))["queue"]
    assert [(v["id"], v["position"]) for v in queue] == [(mine["id"], 2)]
    assert code(await patient.error(BOARD, departmentId=str(dept.id))) == "FORBIDDEN"
    before = await snapshot(OutpatientVisit)
    refused = await patient.error(
        WALK_IN, input={"patientId": str(me.id), "departmentId": str(dept.id)}
    )
    assert code(refused) == "FORBIDDEN"
    refused = await patient.error(CALL_NEXT, room="1", departmentId=str(dept.id))
    assert code(refused) == "FORBIDDEN"
    assert await snapshot(OutpatientVisit) == before


async def test_a_doctor_cannot_queue_a_stranger_to_open_their_chart(client_as: Any) -> None:
    dept, doctor = await clinic()
    stranger = await factories.patient(clinician_access=False)
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    before = await snapshot(OutpatientVisit)
    refused = await me.error(
        WALK_IN,
        input={
            "patientId": str(stranger.id),
            "departmentId": str(dept.id),
            "doctorId": str(doctor.id),
        },
    )
    assert code(refused) == "FORBIDDEN"
    assert await snapshot(OutpatientVisit) == before
    # The front desk may; then the clinic's doctor treats the patient while they wait.
    desk = client_as(roles=["admin_staff"])
    visit = (
        await desk.data(
            WALK_IN,
            input={
                "patientId": str(stranger.id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id),
            },
        )
    )["walkInOutpatient"]
    assert (await me.data(VISIT, id=visit["id"]))["visit"]["patient"]["id"] == str(stranger.id)


async def test_check_in_from_an_appointment_follows_the_appointment(client_as: Any) -> None:
    dept, doctor = await clinic()
    patient, appointment = await booked(doctor, await factories.patient(clinician_access=False))
    elsewhere, outsider = await clinic()
    billing = client_as(roles=["billing"])
    error = await billing.error(CHECK_IN, input={"appointmentId": str(appointment.id)})
    assert code(error) == "FORBIDDEN"
    foreign = client_as(roles=["doctor"], sid=str(outsider.id), did=str(elsewhere.id))
    error = await foreign.error(CHECK_IN, input={"appointmentId": str(appointment.id)})
    assert code(error) == "FORBIDDEN"
    stored = await Appointment.get(appointment.id)
    assert stored is not None and stored.status.value == "scheduled"
    assert await OutpatientVisit.find_all().count() == 0
    nurse = await factories.nurse(dept)
    ward = client_as(roles=["nurse"], sid=str(nurse.id), did=str(dept.id))
    visit = (await ward.data(CHECK_IN, input={"appointmentId": str(appointment.id)}))[
        "checkInOutpatient"
    ]
    assert visit["patientId"] == str(patient.id)


async def test_only_the_clinic_calls_its_queue(gql: Any, client_as: Any) -> None:
    dept, doctor = await clinic()
    other_dept, other_doctor = await clinic()
    await _waiting(gql, patientId=str((await factories.patient()).id), departmentId=str(dept.id))
    before = await snapshot(OutpatientVisit)
    foreign = client_as(roles=["doctor"], sid=str(other_doctor.id), did=str(other_dept.id))
    for args in ({"departmentId": str(dept.id)}, {"doctorId": str(doctor.id)}):
        assert code(await foreign.error(CALL_NEXT, room="1", **args)) == "FORBIDDEN"
    billing = client_as(roles=["billing"])
    assert code(await billing.error(CALL_NEXT, room="1", departmentId=str(dept.id))) == "FORBIDDEN"
    assert await snapshot(OutpatientVisit) == before
    nurse = await factories.nurse(dept)
    ward = client_as(roles=["nurse"], sid=str(nurse.id), did=str(dept.id))
    called = await ward.data(CALL_NEXT, room="Triage", departmentId=str(dept.id))
    assert called["callNextOutpatient"]["status"] == "CALLED"


async def test_care_lasts_while_the_visit_is_open_and_ends_with_a_walk_out(
    client_as: Any,
) -> None:
    dept, doctor = await clinic()
    stranger = await factories.patient(clinician_access=False)
    desk = client_as(roles=["admin_staff"])
    made = await desk.data(
        WALK_IN,
        input={
            "patientId": str(stranger.id),
            "departmentId": str(dept.id),
            "doctorId": str(doctor.id),
        },
    )
    visit = made["walkInOutpatient"]
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    chart = "query($id: ID!) { patient(id: $id) { id lastName } }"
    assert (await me.data(chart, id=str(stranger.id)))["patient"]["id"] == str(stranger.id)
    await desk.data(LEFT, id=visit["id"])
    assert code(await me.error(chart, id=str(stranger.id))) == "FORBIDDEN"
