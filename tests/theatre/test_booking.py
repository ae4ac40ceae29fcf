"""A booking holds theatre, surgeon, anaesthetist and patient together, or nothing at all."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from models import Reservation
from models.scheduling import ReservedResource
from models.theatre import SurgeryBooking
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.scheduling.helpers import SCHEDULE as BOOK_APPOINTMENT
from tests.theatre.helpers import (
    BOOK,
    CANCEL,
    RESCHEDULE,
    SCHEDULE_DAY,
    START,
    Callers,
    booked,
    booking,
    iso,
    suite,
)


async def _held(booking_id: str) -> dict[str, set[Any]]:
    held: dict[str, set[Any]] = {}
    for r in await Reservation.find({"appointment_id": factories_oid(booking_id)}).to_list():
        held.setdefault(r.resource.value, set()).add(r.resource_id)
    return held


def factories_oid(value: str) -> Any:
    from bson import ObjectId

    return ObjectId(value)


async def test_a_booking_holds_all_four_with_the_theatre_cleaning(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    data = await c.scheduler.data(BOOK, input=booking(s))
    made = data["bookSurgery"]
    assert made["status"] == "SCHEDULED" and made["priority"] == "ELECTIVE"
    assert made["reservedUntil"] == (START + timedelta(minutes=90)).isoformat()  # 60 + 30 cleaning
    rows = await Reservation.find({"appointment_id": factories_oid(made["id"])}).to_list()
    count = {res: sum(1 for r in rows if r.resource == res) for res in ReservedResource}
    assert count[ReservedResource.THEATRE] == 18  # 90 minutes of 5-minute slots
    assert count[ReservedResource.DOCTOR] == 24  # surgeon and anaesthetist, 60 minutes each
    assert count[ReservedResource.PATIENT] == 12
    doctors = {r.resource_id for r in rows if r.resource == ReservedResource.DOCTOR}
    assert doctors == {s.surgeon.id, s.anaesthetist.id}


@pytest.mark.parametrize(
    ("role", "field"),
    [
        ("theatre", "theatreId"),
        ("surgeon", "surgeonId"),
        ("anaesthetist", "anaesthetistId"),
        ("patient", "patientId"),
    ],
)
async def test_each_resource_clash_refuses_the_whole_booking(
    client_as: Any, role: str, field: str
) -> None:
    s = await suite()
    c = Callers(client_as, s)
    first = await booked(c, s)
    # Everything else differs from the first booking; only `role` is shared.
    fresh: dict[str, Any] = {
        "theatreId": str(s.theatre2.id),
        "surgeonId": str(s.surgeon2.id),
        "anaesthetistId": str(s.anaesthetist2.id),
        "patientId": str(s.patient2.id),
    }
    fresh[field] = booking(s)[field]
    before = await snapshot(SurgeryBooking, Reservation)
    answer = await c.scheduler(BOOK, input=booking(s, START + timedelta(minutes=30), **fresh))
    error = answer["errors"][0]
    assert code(error) == "CONFLICT"
    assert error["extensions"]["clashes"] == [role]
    assert error["extensions"]["fields"] == [field]
    holders = error["extensions"].get("surgeryBookingIds", [])
    holders += error["extensions"].get("anaesthesiaBookingIds", [])
    assert set(holders) == {first}
    assert role in error["message"]
    assert await snapshot(SurgeryBooking, Reservation) == before  # nothing held, nothing written


async def test_an_appointment_of_the_surgeon_refuses_the_booking(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    other = await factories.patient()
    appointment = {
        "patientId": str(other.id),
        "doctorId": str(s.surgeon.id),
        "startAt": iso(START + timedelta(minutes=20)),
        "endAt": iso(START + timedelta(minutes=40)),
        "reason": "Clinic",
    }
    assert "errors" not in await c.admin(BOOK_APPOINTMENT, input=appointment)
    answer = await c.scheduler(BOOK, input=booking(s))
    assert code(answer["errors"][0]) == "CONFLICT"
    assert answer["errors"][0]["extensions"]["clashes"] == ["surgeon"]
    assert len(answer["errors"][0]["extensions"]["appointmentIds"]) == 1
    assert await SurgeryBooking.count() == 0


async def test_turnover_a_case_in_the_cleaning_time_is_refused_one_at_its_end_succeeds(
    client_as: Any,
) -> None:
    s = await suite()
    c = Callers(client_as, s)
    await booked(c, s)  # 08:00-09:00, cleaning until 09:30
    others: dict[str, Any] = {
        "surgeonId": str(s.surgeon2.id),
        "anaesthetistId": str(s.anaesthetist2.id),
    }
    others["patientId"] = str(s.patient2.id)
    during = await c.scheduler(BOOK, input=booking(s, START + timedelta(minutes=80), **others))
    assert code(during["errors"][0]) == "CONFLICT"
    assert during["errors"][0]["extensions"]["clashes"] == ["theatre"]
    # The surgeon and the patient are free at 09:00: only the theatre is cleaned.
    people = await c.scheduler(
        BOOK, input=booking(s, START + timedelta(minutes=60), theatreId=str(s.theatre2.id))
    )
    assert "errors" not in people, people
    after = await c.scheduler(BOOK, input=booking(s, START + timedelta(minutes=90), **others))
    assert "errors" not in after, after


async def test_emergency_priority_does_not_bypass_the_invariant(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    await booked(c, s)
    answer = await c.scheduler(
        BOOK,
        input=booking(
            s,
            START + timedelta(minutes=15),
            priority="EMERGENCY",
            patientId=str(s.patient2.id),
            surgeonId=str(s.surgeon2.id),
            anaesthetistId=str(s.anaesthetist2.id),
        ),
    )
    assert code(answer["errors"][0]) == "CONFLICT"
    assert await SurgeryBooking.count() == 1


async def test_racing_bookings_of_one_theatre_one_wins(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    answers = await asyncio.gather(
        c.scheduler(BOOK, input=booking(s)),
        c.admin(
            BOOK,
            input=booking(
                s,
                START + timedelta(minutes=10),
                patientId=str(s.patient2.id),
                surgeonId=str(s.surgeon2.id),
                anaesthetistId=str(s.anaesthetist2.id),
            ),
        ),
    )
    won = [a for a in answers if "errors" not in a]
    lost = [a for a in answers if "errors" in a]
    assert len(won) == 1 and len(lost) == 1
    assert code(lost[0]["errors"][0]) == "CONFLICT"
    winner = won[0]["data"]["bookSurgery"]["id"]
    assert {str(r.appointment_id) for r in await Reservation.find_all().to_list()} == {winner}


async def test_bad_input_is_reported_together_and_changes_nothing(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    answer = await c.admin(
        BOOK,
        input=booking(
            s,
            START + timedelta(minutes=3),
            anaesthetistId=str(s.outsider.id),
        ),
    )
    error = answer["errors"][0]
    assert code(error) == "BAD_USER_INPUT"
    assert "anaesthesia" in error["extensions"]["fields"]["anaesthetistId"]
    assert "grid" in error["extensions"]["fields"]["startAt"]
    assert await Reservation.count() == 0 and await SurgeryBooking.count() == 0


async def test_reschedule_moves_the_reservations_and_cancel_releases_them(
    client_as: Any,
) -> None:
    s = await suite()
    c = Callers(client_as, s)
    id = await booked(c, s)
    later = START + timedelta(hours=3)
    moved = await c.scheduler.data(
        RESCHEDULE,
        id=id,
        input={"startAt": iso(later), "endAt": iso(later + timedelta(minutes=60))},
        version=0,
    )
    assert (
        moved["rescheduleSurgery"]["reservedUntil"] == (later + timedelta(minutes=90)).isoformat()
    )
    slots = {r.slot for r in await Reservation.find({"resource": "theatre"}).to_list()}
    assert min(slots) == later and len(slots) == 18
    # The old time is free for another case of other people.
    others: dict[str, Any] = {
        "patientId": str(s.patient2.id),
        "surgeonId": str(s.surgeon2.id),
        "anaesthetistId": str(s.anaesthetist2.id),
    }
    assert "errors" not in await c.scheduler(BOOK, input=booking(s, **others))
    # A move onto a taken time changes nothing.
    before = await snapshot(SurgeryBooking, Reservation)
    clash = await c.scheduler(
        RESCHEDULE,
        id=id,
        input={"startAt": iso(START), "endAt": iso(START + timedelta(minutes=30))},
    )
    assert code(clash["errors"][0]) == "CONFLICT"
    assert await snapshot(SurgeryBooking, Reservation) == before
    cancelled = await c.scheduler.data(CANCEL, id=id, reason="Patient unwell")
    assert cancelled["cancelSurgery"]["status"] == "CANCELLED"
    assert await Reservation.find({"appointment_id": factories_oid(id)}).count() == 0
    assert "errors" not in await c.scheduler(BOOK, input=booking(s, later))


async def test_theatre_schedule_shows_cases_and_cleaning(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    first = await booked(c, s)
    others: dict[str, Any] = {
        "patientId": str(s.patient2.id),
        "surgeonId": str(s.surgeon2.id),
        "anaesthetistId": str(s.anaesthetist2.id),
    }
    second = await booked(c, s, start=START + timedelta(minutes=90), **others)
    day = await c.nurse.data(SCHEDULE_DAY, theatreId=str(s.theatre.id), day="2031-06-02")
    blocks = day["theatreSchedule"]["blocks"]
    assert [(b["kind"], b["booking"]["id"]) for b in blocks] == [
        ("CASE", first),
        ("CLEANING", first),
        ("CASE", second),
        ("CLEANING", second),
    ]
    assert blocks[1]["startAt"] == (START + timedelta(minutes=60)).isoformat()
    assert blocks[1]["endAt"] == (START + timedelta(minutes=90)).isoformat()
