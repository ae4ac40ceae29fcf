"""No two active appointments overlap per doctor, patient or device: MongoDB enforces it."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from models import Appointment, Reservation
from models.base import utcnow
from models.scheduling import ReservedResource
from services import scheduling
from tests import factories
from tests.graphql.helpers import code
from tests.scheduling.helpers import (
    CANCEL,
    RESCHEDULE,
    SCHEDULE,
    START,
    assert_reservations_match_appointments,
    book,
    booking,
    held,
    iso,
)


class _Yielding:
    """The reservations collection, giving the event loop away around every write.

    The embedded store answers without ever suspending, so concurrent requests would otherwise
    run each booking's steps back to back; a real server interleaves them like this.
    """

    def __init__(self, collection: Any, rng: random.Random) -> None:
        self._collection = collection
        self._rng = rng

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._collection, name)
        if name not in {"insert_many", "delete_many", "delete_one"}:
            return method

        async def interleaved(*args: Any, **kwargs: Any) -> Any:
            for _ in range(self._rng.randrange(3)):
                await asyncio.sleep(0)
            result = await method(*args, **kwargs)
            for _ in range(self._rng.randrange(3)):
                await asyncio.sleep(0)
            return result

        return interleaved


async def test_concurrent_bookings_never_overlap(
    gql: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random("shms/concurrent-bookings")
    collection = Reservation.get_motor_collection()
    monkeypatch.setattr(scheduling, "_reservations", lambda: _Yielding(collection, rng))
    dept = await factories.department()
    doctor, patient, device = (
        await factories.doctor(dept),
        await factories.patient(),
        await factories.equipment(dept),
    )
    others = [await factories.doctor(dept) for _ in range(8)]
    strangers = [await factories.patient() for _ in range(40)]
    requests = []
    for i in range(200):
        start = START + rng.randrange(24) * timedelta(minutes=5)  # two hours: heavy overlap
        minutes = rng.choice((10, 15, 30, 45))
        kind = i % 4
        if kind == 0:  # shares only the doctor
            payload = booking(rng.choice(strangers), doctor, start, minutes)
        elif kind == 1:  # shares only the device
            payload = booking(rng.choice(strangers), rng.choice(others), start, minutes, device)
        elif kind == 2:  # shares only the patient
            payload = booking(patient, rng.choice(others), start, minutes)
        else:  # all three
            payload = booking(patient, doctor, start, minutes, device)
        requests.append(payload)

    began = time.perf_counter()
    answers = await asyncio.gather(*(gql(SCHEDULE, input=p) for p in requests))
    took = time.perf_counter() - began

    won = [a for a in answers if not a.get("errors")]
    lost = [a for a in answers if a.get("errors")]
    for answer in lost:
        assert [code(e) for e in answer["errors"]] == ["CONFLICT"], answer
        assert answer["errors"][0]["extensions"]["conflicts"], answer
    active = await assert_reservations_match_appointments()
    assert {a["data"]["scheduleAppointment"]["id"] for a in won} == {str(a.id) for a in active}
    assert won and lost
    # Two hours of one doctor, patient and device: at most 24 slots' worth of winners each.
    assert sum(1 for a in active if a.doctor_id == doctor.id) <= 24
    with capsys.disabled():
        print(f"\n200 concurrent bookings: {len(won)} won, {len(lost)} CONFLICT, {took:.2f}s")


async def test_conflict_names_every_clashing_resource(gql: Any) -> None:
    dept = await factories.department()
    doctor, device = await factories.doctor(dept), await factories.equipment(dept)
    first = await book(gql, await factories.patient(), doctor, START, device=device)
    other_doctor = await factories.doctor(dept)
    error = await gql.error(
        SCHEDULE,
        input=booking(await factories.patient(), other_doctor, START, device=device),
    )
    assert code(error) == "CONFLICT"
    assert error["extensions"]["conflicts"] == ["equipment"]
    error = await gql.error(
        SCHEDULE,
        input=booking(
            await factories.patient(), doctor, START + timedelta(minutes=25), device=device
        ),
    )
    assert error["extensions"]["conflicts"] == ["doctor", "equipment"]
    assert error["extensions"]["appointmentIds"] == [first]
    assert "doctor, equipment" in error["message"]
    # Back to back is not an overlap: [09:00, 09:30) then [09:30, 10:00).
    await book(gql, await factories.patient(), doctor, START + timedelta(minutes=30), device=device)
    assert await Appointment.count() == 2
    await assert_reservations_match_appointments()


async def test_reschedule_holds_the_new_time_before_releasing_the_old(gql: Any) -> None:
    dept = await factories.department()
    doctor, patient = await factories.doctor(dept), await factories.patient()
    mine = await book(gql, patient, doctor, START)
    theirs = START + timedelta(hours=1)
    await book(gql, await factories.patient(), doctor, theirs)
    before = await held(ObjectId(mine))

    clash = {"startAt": iso(theirs), "endAt": iso(theirs + timedelta(minutes=30))}
    error = await gql.error(RESCHEDULE, id=mine, input=clash)
    assert code(error) == "CONFLICT" and error["extensions"]["conflicts"] == ["doctor"]
    assert await held(ObjectId(mine)) == before  # the original time is still held
    stored = await Appointment.get(ObjectId(mine))
    assert stored is not None and stored.start_at == START

    # Fifteen minutes later overlaps its own old window: only the difference moves.
    later = START + timedelta(minutes=15)
    moved = await gql.data(
        RESCHEDULE,
        id=mine,
        input={"startAt": iso(later), "endAt": iso(later + timedelta(minutes=30))},
    )
    assert moved["rescheduleAppointment"]["startAt"].startswith("2031-06-02T09:15")
    await assert_reservations_match_appointments()
    # The released quarter hour is free for someone else at once.
    await book(gql, await factories.patient(), doctor, START, minutes=15)
    await assert_reservations_match_appointments()


async def test_reschedule_of_an_unreserved_appointment_reserves_its_new_time(gql: Any) -> None:
    """Appointments written before reservations existed hold nothing; moving them still works."""
    legacy = await factories.appointment(start=START)
    later = START + timedelta(minutes=15)
    await gql.data(
        RESCHEDULE,
        id=str(legacy.id),
        input={"startAt": iso(later), "endAt": iso(later + timedelta(minutes=30))},
    )
    await assert_reservations_match_appointments()


async def test_cancelling_frees_the_time_at_once(gql: Any) -> None:
    dept = await factories.department()
    doctor, device = await factories.doctor(dept), await factories.equipment(dept)
    patient = await factories.patient()
    first = await book(gql, patient, doctor, START, device=device)
    error = await gql.error(SCHEDULE, input=booking(patient, doctor, START, device=device))
    assert error["extensions"]["conflicts"] == ["doctor", "equipment", "patient"]
    assert (await gql.data(CANCEL, id=first))["cancelAppointment"]["status"] == "CANCELLED"
    assert await held(ObjectId(first)) == set()
    await book(gql, patient, doctor, START, device=device)
    await assert_reservations_match_appointments()


async def test_times_must_be_on_the_five_minute_grid(gql: Any) -> None:
    doctor, patient = await factories.doctor(), await factories.patient()
    payload = booking(patient, doctor, START)
    cases = {
        "startAt": {"startAt": iso(START + timedelta(minutes=2))},
        "endAt": {"endAt": iso(START + timedelta(minutes=31))},
    }
    for field, change in cases.items():
        error = await gql.error(SCHEDULE, input={**payload, **change})
        assert code(error) == "BAD_USER_INPUT", error
        assert "grid" in error["extensions"]["fields"][field], error
    seconds = await gql.error(SCHEDULE, input={**payload, "startAt": "2031-06-02T09:00:30Z"})
    assert "startAt" in seconds["extensions"]["fields"]
    booked = await book(gql, patient, doctor, START)
    off = {"startAt": iso(START + timedelta(minutes=7)), "endAt": iso(START + timedelta(hours=1))}
    error = await gql.error(RESCHEDULE, id=booked, input=off)
    assert code(error) == "BAD_USER_INPUT" and "startAt" in error["extensions"]["fields"]
    assert await Appointment.count() == 1
    await assert_reservations_match_appointments()


async def _orphan(resource_id: Any, appointment_id: Any, age: timedelta, minutes: int = 30) -> None:
    created = utcnow() - age
    for i in range(minutes // 5):
        await Reservation(
            resource=ReservedResource.DOCTOR,
            resource_id=resource_id,
            slot=START + i * timedelta(minutes=5),
            appointment_id=appointment_id,
            created_at=created,
        ).insert()


async def test_stale_reservations_are_recovered(gql: Any) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    # A crash after reserving, before inserting the appointment: nobody owns these slots.
    await _orphan(doctor.id, ObjectId(), age=scheduling.STALE_AFTER * 2)
    await book(gql, await factories.patient(), doctor, START)
    await assert_reservations_match_appointments()

    # A crash after cancelling, before releasing: the appointment is inactive, stale at once.
    other = await factories.doctor(dept)
    cancelled = await factories.appointment(doc=other, start=START, status="cancelled")
    await _orphan(other.id, cancelled.id, age=timedelta(0))
    await book(gql, await factories.patient(), other, START)
    await assert_reservations_match_appointments()


async def test_fresh_reservations_of_a_booking_in_flight_are_respected(gql: Any) -> None:
    doctor = await factories.doctor()
    in_flight = ObjectId()  # reserved a moment ago; its appointment is about to be inserted
    await _orphan(doctor.id, in_flight, age=timedelta(seconds=1))
    error = await gql.error(SCHEDULE, input=booking(await factories.patient(), doctor, START))
    assert code(error) == "CONFLICT"
    assert error["extensions"]["appointmentIds"] == [str(in_flight)]
    assert await Reservation.find({"appointment_id": in_flight}).count() == 6
    assert await Appointment.count() == 0


async def test_a_failed_appointment_insert_releases_its_reservations(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Appointment, **kwargs: Any) -> Appointment:
        raise RuntimeError("MongoDB went away")

    monkeypatch.setattr(Appointment, "insert", broken)
    body = await gql(
        SCHEDULE, input=booking(await factories.patient(), await factories.doctor(), START)
    )
    assert code(body["errors"][0]) == "INTERNAL"
    assert await Reservation.count() == 0
