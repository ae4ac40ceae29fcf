"""Bad input is refused with a code and changes nothing; transitions are compare-and-set."""

from __future__ import annotations

from typing import Any

from models.outpatient import OutpatientQueueNumber, OutpatientVisit
from models.scheduling import Appointment
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.outpatient.helpers import (
    CALL,
    CALL_NEXT,
    CHECK_IN,
    COMPLETE,
    START,
    WALK_IN,
    booked,
    clinic,
)

STORES = (OutpatientVisit, OutpatientQueueNumber, Appointment)


async def test_a_walk_in_names_every_bad_field_at_once(gql: Any) -> None:
    dept, doctor = await clinic()
    other_dept, _ = await clinic()
    patient = await factories.patient()
    before = await snapshot(*STORES)
    error = await gql.error(
        WALK_IN,
        input={
            "patientId": "0000000000000000000000aa",
            "departmentId": "0000000000000000000000bb",
        },
    )
    assert code(error) == "BAD_USER_INPUT"
    assert set(error["extensions"]["fields"]) == {"patientId", "departmentId"}
    error = await gql.error(
        WALK_IN,
        input={
            "patientId": str(patient.id),
            "departmentId": str(other_dept.id),
            "doctorId": str(doctor.id),
        },
    )
    assert code(error) == "BAD_USER_INPUT" and "doctorId" in error["extensions"]["fields"]
    error = await gql.error(
        WALK_IN,
        input={"patientId": "nope", "departmentId": str(dept.id)},
    )
    assert code(error) == "BAD_USER_INPUT" and "patientId" in error["extensions"]["fields"]
    error = await gql.error(
        WALK_IN,
        input={"patientId": str(patient.id), "departmentId": str(dept.id), "reason": "x" * 201},
    )
    assert code(error) == "BAD_USER_INPUT" and "reason" in error["extensions"]["fields"]
    assert await snapshot(*STORES) == before


async def test_a_patient_waits_in_one_queue_at_a_time(gql: Any) -> None:
    dept, doctor = await clinic()
    patient, appointment = await booked(doctor)
    await gql.data(WALK_IN, input={"patientId": str(patient.id), "departmentId": str(dept.id)})
    before = await snapshot(*STORES)
    error = await gql.error(
        WALK_IN, input={"patientId": str(patient.id), "departmentId": str(dept.id)}
    )
    assert code(error) == "CONFLICT"
    # Their appointment is not checked in while they wait elsewhere.
    error = await gql.error(CHECK_IN, input={"appointmentId": str(appointment.id)})
    assert code(error) == "CONFLICT"
    assert await snapshot(*STORES) == before


async def test_closed_or_unknown_appointments_do_not_check_in(gql: Any) -> None:
    _, doctor = await clinic()
    _, cancelled = await booked(doctor, status="cancelled")
    before = await snapshot(*STORES)
    error = await gql.error(CHECK_IN, input={"appointmentId": str(cancelled.id)})
    assert code(error) == "BAD_USER_INPUT" and "appointmentId" in error["extensions"]["fields"]
    error = await gql.error(CHECK_IN, input={"appointmentId": "0000000000000000000000ab"})
    assert code(error) == "NOT_FOUND"
    assert await snapshot(*STORES) == before


async def test_steps_out_of_order_and_stale_versions_change_nothing(gql: Any) -> None:
    dept, _ = await clinic()
    made = await gql.data(
        WALK_IN,
        input={"patientId": str((await factories.patient()).id), "departmentId": str(dept.id)},
    )
    visit = made["walkInOutpatient"]
    before = await snapshot(*STORES)
    error = await gql.error(COMPLETE, id=visit["id"])  # waiting: not seen yet
    assert code(error) == "BAD_USER_INPUT" and error["extensions"]["fields"] == {
        "id": "visit is waiting; cannot become completed"
    }
    error = await gql.error(START, id=visit["id"])  # not called yet
    assert code(error) == "BAD_USER_INPUT"
    error = await gql.error(CALL, id=visit["id"], room="  ")
    assert code(error) == "BAD_USER_INPUT" and "room" in error["extensions"]["fields"]
    error = await gql.error(CALL, id=visit["id"], room="1", v=visit["version"] + 1)
    assert code(error) == "CONFLICT"
    error = await gql.error(CALL, id="0000000000000000000000ab", room="1")
    assert code(error) == "NOT_FOUND"
    for args in ({}, {"departmentId": str(dept.id), "doctorId": str(dept.id)}):
        error = await gql.error(CALL_NEXT, room="1", **args)
        assert code(error) == "BAD_USER_INPUT"
    error = await gql.error(CALL_NEXT, room="1", departmentId="0000000000000000000000ab")
    assert code(error) == "NOT_FOUND"
    assert await snapshot(*STORES) == before
    called = await gql.data(CALL, id=visit["id"], room="1", v=visit["version"])
    assert called["callOutpatient"]["version"] == visit["version"] + 1
