"""The outpatient journey over GraphQL: check-in, the queue, the call, the consultation, the end."""

from __future__ import annotations

from datetime import date
from typing import Any

from bson import ObjectId

from models.outpatient import OutpatientVisit
from models.scheduling import Appointment, AppointmentStatus
from tests import factories
from tests.outpatient.helpers import (
    BOARD,
    CALL,
    CALL_NEXT,
    CHECK_IN,
    COMPLETE,
    LEFT,
    NO_SHOW,
    PRIORITY,
    QUEUE,
    START,
    VISIT,
    WALK_IN,
    booked,
    clinic,
)


async def test_an_appointment_checks_in_once_and_walks_through_the_queue(
    gql: Any, client_as: Any
) -> None:
    dept, doctor = await clinic()
    patient, appointment = await booked(doctor)
    first = (await gql.data(CHECK_IN, input={"appointmentId": str(appointment.id)}))[
        "checkInOutpatient"
    ]
    assert first["status"] == "WAITING" and first["arrival"] == "APPOINTMENT"
    assert first["queueNumber"] == 1 and first["position"] == 1
    assert first["doctorId"] == str(doctor.id) and first["departmentId"] == str(dept.id)
    assert first["appointmentId"] == str(appointment.id)
    assert first["priority"] == "ROUTINE"
    stored = await Appointment.get(appointment.id)
    assert stored is not None and stored.status == AppointmentStatus.CHECKED_IN

    # Checking in again (a double click, a second desk) gives the same visit, never a second.
    again = await gql.data(CHECK_IN, input={"appointmentId": str(appointment.id)})
    assert again["checkInOutpatient"]["id"] == first["id"]
    assert await OutpatientVisit.find({"appointment_id": appointment.id}).count() == 1

    # An emergency walk-in goes ahead of the routine patient; an elderly one between them.
    urgent = (
        await gql.data(
            WALK_IN,
            input={
                "patientId": str((await factories.patient()).id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id),
                "priority": "EMERGENCY",
                "reason": "Chest pain",
            },
        )
    )["walkInOutpatient"]
    old = await factories.patient(date_of_birth=date(1940, 5, 1))
    elderly = (
        await gql.data(
            WALK_IN,
            input={
                "patientId": str(old.id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id),
            },
        )
    )["walkInOutpatient"]
    assert urgent["queueNumber"] == 2 and elderly["queueNumber"] == 3
    assert elderly["priority"] == "ELDERLY"  # from the date of birth
    queue = (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"]
    assert [(v["id"], v["position"]) for v in queue] == [
        (urgent["id"], 1),
        (elderly["id"], 2),
        (first["id"], 3),
    ]

    # The doctor calls the next patient: the emergency.
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    called = (await me.data(CALL_NEXT, room="Room 4", doctorId=str(doctor.id)))[
        "callNextOutpatient"
    ]
    assert called["id"] == urgent["id"]
    assert called["status"] == "CALLED" and called["calledTo"] == "Room 4"
    assert called["position"] is None
    queue = (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"]
    assert [(v["id"], v["status"], v["position"]) for v in queue] == [
        (urgent["id"], "CALLED", None),
        (elderly["id"], "WAITING", 1),
        (first["id"], "WAITING", 2),
    ]
    seen = (await me.data(START, id=urgent["id"]))["startOutpatientConsultation"]
    assert seen["status"] == "IN_CONSULTATION" and seen["seenAt"]
    done = (await me.data(COMPLETE, id=urgent["id"]))["completeOutpatientVisit"]
    assert done["status"] == "COMPLETED" and done["completedAt"] and done["position"] is None
    queue = (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"]
    assert [v["id"] for v in queue] == [elderly["id"], first["id"]]  # left the queue

    # The appointment's patient: called, seen and done; the appointment is completed too.
    await me.data(CALL, id=first["id"], room="Room 4")
    await me.data(START, id=first["id"])
    await me.data(COMPLETE, id=first["id"])
    stored = await Appointment.get(appointment.id)
    assert stored is not None and stored.status == AppointmentStatus.COMPLETED
    visit = (await gql.data(VISIT, id=first["id"]))["visit"]
    assert visit["status"] == "COMPLETED" and visit["patient"]["id"] == str(patient.id)
    assert visit["allowedTransitions"] == []

    # The elderly patient was called and did not come.
    await me.data(CALL, id=elderly["id"], room="Room 4")
    missed = (await me.data(NO_SHOW, id=elderly["id"]))["markOutpatientNoShow"]
    assert missed["status"] == "NO_SHOW" and missed["endedAt"]
    assert (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"] == []


async def test_a_clinic_queue_gives_a_doctor_unassigned_patients_and_makes_them_theirs(
    gql: Any, client_as: Any
) -> None:
    dept, doctor = await clinic()
    colleague = await factories.doctor(dept)
    theirs = (await gql.data(
        WALK_IN,
        input={
            "patientId": str((await factories.patient()).id),
            "departmentId": str(dept.id),
            "doctorId": str(colleague.id),
        },
    ))["walkInOutpatient"]  # fmt: skip
    anyone = (await gql.data(
        WALK_IN,
        input={"patientId": str((await factories.patient()).id), "departmentId": str(dept.id)},
    ))["walkInOutpatient"]  # fmt: skip
    assert anyone["doctorId"] is None and anyone["position"] == 2  # second in the clinic
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    called = (await me.data(CALL_NEXT, room="2", departmentId=str(dept.id)))["callNextOutpatient"]
    assert called["id"] == anyone["id"] and called["doctorId"] == str(doctor.id)
    # Nobody else waits for this doctor: the colleague's patient is not theirs to take.
    assert (await me.data(CALL_NEXT, room="2", departmentId=str(dept.id)))[
        "callNextOutpatient"
    ] is None
    # The front desk calling the clinic takes the clinic's next patient, whoever's it is.
    desk = client_as(roles=["admin_staff"])
    desk_call = await desk.data(CALL_NEXT, room="Triage", departmentId=str(dept.id))
    assert desk_call["callNextOutpatient"]["id"] == theirs["id"]


async def test_triage_reorders_and_a_patient_who_leaves_leaves_the_queue(gql: Any) -> None:
    dept, doctor = await clinic()
    ids = []
    for _ in range(3):
        made = await gql.data(
            WALK_IN,
            input={
                "patientId": str((await factories.patient()).id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id),
            },
        )
        ids.append(made["walkInOutpatient"]["id"])
    moved = (await gql.data(PRIORITY, id=ids[2], priority="EMERGENCY"))["changeOutpatientPriority"]
    assert moved["position"] == 1
    left = (await gql.data(LEFT, id=ids[0]))["markOutpatientLeft"]
    assert left["status"] == "LEFT"
    queue = (await gql.data(QUEUE, departmentId=str(dept.id)))["queue"]
    assert [(v["id"], v["position"]) for v in queue] == [(ids[2], 1), (ids[1], 2)]
    # Having left, the patient may queue again (one open visit at a time, not one ever).
    visit = await OutpatientVisit.get(ObjectId(ids[0]))
    assert visit is not None
    again = await gql.data(
        WALK_IN, input={"patientId": str(visit.patient_id), "departmentId": str(dept.id)}
    )
    assert again["walkInOutpatient"]["queueNumber"] == 4


async def test_the_board_shows_numbers_and_positions_but_no_one(gql: Any, client_as: Any) -> None:
    dept, _doctor = await clinic()
    patient = await factories.patient(first_name="Zebulon", last_name="Quixote")
    await gql.data(
        WALK_IN,
        input={"patientId": str(patient.id), "departmentId": str(dept.id), "priority": "EMERGENCY"},
    )
    await gql.data(
        WALK_IN,
        input={"patientId": str((await factories.patient()).id), "departmentId": str(dept.id)},
    )
    await gql.data(CALL_NEXT, room="Room 9", departmentId=str(dept.id))
    screen = client_as(roles=["service"])
    response = await screen(BOARD, departmentId=str(dept.id))
    assert "errors" not in response, response
    shown = response["data"]["outpatientBoard"]
    assert shown["departmentId"] == str(dept.id)
    assert [
        (e["queueNumber"], e["status"], e["position"], e["calledTo"]) for e in shown["entries"]
    ] == [
        (1, "CALLED", None, "Room 9"),
        (2, "WAITING", 1, None),
    ]
    raw = str(response)
    assert "Zebulon" not in raw and "Quixote" not in raw and str(patient.id) not in raw


async def test_positions_are_places_in_the_queue_asked_for(gql: Any) -> None:
    dept, doctor = await clinic()
    made = []
    for own in (True, False, True):
        walk_in = {"patientId": str((await factories.patient()).id), "departmentId": str(dept.id)}
        if own:
            walk_in["doctorId"] = str(doctor.id)
        made.append((await gql.data(WALK_IN, input=walk_in))["walkInOutpatient"])
    # On its own, a visit shows its place in its doctor's queue (or its clinic's, unassigned).
    assert [v["position"] for v in made] == [1, 2, 2]
    clinic_queue = (await gql.data(QUEUE, departmentId=str(dept.id)))["queue"]
    assert [(v["id"], v["position"]) for v in clinic_queue] == [
        (made[0]["id"], 1),
        (made[1]["id"], 2),
        (made[2]["id"], 3),
    ]
    doctor_queue = (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"]
    assert [(v["id"], v["position"]) for v in doctor_queue] == [
        (made[0]["id"], 1),
        (made[2]["id"], 2),
    ]
