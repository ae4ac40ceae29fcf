"""A scanner is never double-booked: studies and appointments share its reservations."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bson import ObjectId

import db
from models import Reservation
from models.base import utcnow
from models.radiology import STUDY_HOLDER, ImagingAccessionCounter, ImagingOrder, ImagingStudy
from models.scheduling import ReservedResource
from services import scheduling
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.radiology.helpers import (
    CANCEL,
    SCHEDULE,
    START,
    Callers,
    facility,
    iso,
    ordered,
    scheduled,
    slot,
)
from tests.scheduling.helpers import SCHEDULE as BOOK_APPOINTMENT

_BOOKING = (ImagingOrder, ImagingStudy, Reservation, ImagingAccessionCounter)


async def test_two_racing_bookings_of_one_scanner_one_wins(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    first, second = await ordered(c, f), await ordered(c, f)
    overlapping = slot(f.ct, START + timedelta(minutes=15))
    answers = await asyncio.gather(
        c.radiologist(SCHEDULE, orderId=first, input=slot(f.ct)),
        c.radiographer(SCHEDULE, orderId=second, input=overlapping),
    )
    won = [a for a in answers if "errors" not in a]
    lost = [a["errors"][0] for a in answers if "errors" in a]
    assert len(won) == 1 and len(lost) == 1
    assert code(lost[0]) == "CONFLICT"
    winner = won[0]["data"]["scheduleImagingStudy"]["id"]
    assert lost[0]["extensions"]["imagingStudyIds"] == [winner]
    assert await ImagingStudy.count() == 1
    held = await Reservation.find_all().to_list()
    assert len(held) == 6  # the winner's 30 minutes of 5-minute slots; none of the loser's
    assert {(str(r.appointment_id), r.holder) for r in held} == {(winner, "imaging_study")}
    statuses = sorted([o.status.value for o in await ImagingOrder.find_all().to_list()])
    assert statuses == ["ordered", "scheduled"]


async def test_adjacent_bookings_both_succeed(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    first, second = await ordered(c, f), await ordered(c, f)
    answers = await asyncio.gather(
        c.radiologist(SCHEDULE, orderId=first, input=slot(f.ct)),
        c.radiologist(SCHEDULE, orderId=second, input=slot(f.ct, START + timedelta(minutes=30))),
    )
    assert all("errors" not in a for a in answers), answers
    numbers = {a["data"]["scheduleImagingStudy"]["accessionNumber"] for a in answers}
    assert len(numbers) == 2
    assert await Reservation.count() == 12


async def test_studies_and_appointments_never_share_a_scanner(gql: Any, client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    _, study = await scheduled(c, f)
    booking = {
        "patientId": str((await factories.patient()).id),
        "doctorId": str(f.radiologist.id),
        "equipmentId": str(f.ct.id),
        "startAt": iso(START + timedelta(minutes=10)),
        "endAt": iso(START + timedelta(minutes=40)),
        "reason": "CT scan",
    }
    clash = await gql.error(BOOK_APPOINTMENT, input=booking)
    assert code(clash) == "CONFLICT" and clash["extensions"]["imagingStudyIds"] == [study]

    booking["startAt"] = iso(START + timedelta(hours=2))
    booking["endAt"] = iso(START + timedelta(hours=3))
    appointment = (await gql.data(BOOK_APPOINTMENT, input=booking))["scheduleAppointment"]["id"]
    other = await ordered(c, f)
    refused = await c.radiologist.error(
        SCHEDULE, orderId=other, input=slot(f.ct, START + timedelta(hours=2, minutes=30))
    )
    assert code(refused) == "CONFLICT"
    assert refused["extensions"]["appointmentIds"] == [appointment]


async def test_cancelling_a_scheduled_order_frees_the_scanner(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, _ = await scheduled(c, f)
    cancelled = await c.doctor.data(CANCEL, id=order_id, reason="Clinically resolved")
    assert cancelled["cancelImagingOrder"]["status"] == "CANCELLED"
    assert await Reservation.count() == 0
    again = await ordered(c, f)
    await c.radiologist.data(SCHEDULE, orderId=again, input=slot(f.ct))
    refused = await c.doctor.error(CANCEL, id=order_id)
    assert code(refused) == "BAD_USER_INPUT"


async def test_a_device_that_does_not_fit_is_refused_and_nothing_changes(
    client_as: Any,
) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id = await ordered(c, f)  # a CT order
    before = await snapshot(*_BOOKING)
    wrong_type = await c.radiologist.error(SCHEDULE, orderId=order_id, input=slot(f.xray))
    assert code(wrong_type) == "BAD_USER_INPUT"
    assert "cannot perform CT" in wrong_type["extensions"]["fields"]["equipmentId"]
    elsewhere = await c.radiologist.error(SCHEDULE, orderId=order_id, input=slot(f.ward_ct))
    assert "performing department" in elsewhere["extensions"]["fields"]["equipmentId"]
    off_grid = slot(f.ct, START + timedelta(minutes=7))
    bad_times = await c.radiologist.error(SCHEDULE, orderId=order_id, input=off_grid)
    assert "startAt" in bad_times["extensions"]["fields"]
    past = slot(f.ct, START.replace(year=2020))
    assert (
        "startAt"
        in (await c.radiologist.error(SCHEDULE, orderId=order_id, input=past))["extensions"][
            "fields"
        ]
    )
    assert await snapshot(*_BOOKING) == before


async def test_a_retried_booking_with_its_key_books_once(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id = await ordered(c, f)
    keyed = """mutation($orderId: ID!, $input: ScheduleImagingStudyInput!, $key: String) {
      scheduleImagingStudy(orderId: $orderId, input: $input, idempotencyKey: $key) { id } }"""
    first, again = await asyncio.gather(
        c.radiologist.data(keyed, orderId=order_id, input=slot(f.ct), key="rad-1"),
        c.radiologist.data(keyed, orderId=order_id, input=slot(f.ct), key="rad-1"),
    )
    assert first == again and await ImagingStudy.count() == 1
    other = slot(f.ct, START + timedelta(hours=1))
    refused = await c.radiologist.error(keyed, orderId=order_id, input=other, key="rad-1")
    assert code(refused) == "CONFLICT"


async def test_a_study_left_by_a_crashed_scheduling_is_recovered(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id = await ordered(c, f)
    # A crash after the study's insert, before the order named it: nobody owns that study.
    old = utcnow() - scheduling.STALE_AFTER * 2
    orphan = ImagingStudy(
        order_id=ObjectId(order_id), patient_id=f.patient.id, ordering_doctor_id=f.doctor.id,
        department_id=f.radiology.id, accession_number="RAD-ORPHAN", modality="CT",
        equipment_id=f.ct.id, scheduled_start=START, scheduled_end=START + timedelta(minutes=30),
        created_at=old, updated_at=old,
    )  # fmt: skip
    await orphan.insert()
    assert orphan.id is not None and f.ct.id is not None
    await scheduling.reserve(
        orphan.id, {(ReservedResource.EQUIPMENT, f.ct.id, START)}, STUDY_HOLDER
    )
    await db.collection(Reservation).update_many({}, {"$set": {"created_at": old}})
    study = (await c.radiologist.data(SCHEDULE, orderId=order_id, input=slot(f.ct)))[
        "scheduleImagingStudy"
    ]
    assert study["id"] != str(orphan.id) and await ImagingStudy.count() == 1
    holders = {str(r.appointment_id) for r in await Reservation.find_all().to_list()}
    assert holders == {study["id"]}
