"""Booking and rescheduling respect a doctor's calendar, when the doctor has one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from models import Appointment
from tests import factories
from tests.calendars.test_availability import ADD_EXCEPTION, set_hours
from tests.graphql.helpers import code, snapshot

MONDAY = date(2031, 1, 6)  # winter: Europe/Berlin is UTC+1
SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id startAt } }"""
RESCHEDULE = """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $input) { startAt } }"""


def utc(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).isoformat()


async def test_bookings_must_fit_the_doctors_hours_and_avoid_leave(gql: Any, app: Any) -> None:
    doctor, patient = await factories.doctor(), await factories.patient()
    await set_hours(gql, doctor)  # Mon-Fri 09:00-12:00 Berlin = 08:00-11:00Z in January

    def visit(day: date, hour: int, minute: int = 0) -> dict[str, Any]:
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        return {
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "startAt": start.isoformat(),
            "endAt": (start + timedelta(minutes=30)).isoformat(),
            "reason": "Check-up",
        }

    booked = await gql.data(SCHEDULE, input=visit(MONDAY, 8))
    assert booked["scheduleAppointment"]["startAt"].startswith("2031-01-06T08:00")
    before = await snapshot(Appointment)
    for refused in (visit(MONDAY, 7, 45), visit(MONDAY, 10, 45), visit(MONDAY + timedelta(5), 9)):
        error = await gql.error(SCHEDULE, input=refused)
        assert code(error) == "BAD_USER_INPUT", error
        assert "working hours" in error["extensions"]["fields"]["startAt"]
    await gql.data(
        ADD_EXCEPTION,
        input={
            "doctorId": str(doctor.id),
            "firstDay": str(MONDAY + timedelta(1)),
            "lastDay": str(MONDAY + timedelta(1)),
            "reason": "Conference",
        },
    )
    on_leave = await gql.error(SCHEDULE, input=visit(MONDAY + timedelta(1), 9))
    assert "leave" in on_leave["extensions"]["fields"]["startAt"]
    assert await snapshot(Appointment) == before

    moved_out = await gql.error(
        RESCHEDULE,
        id=booked["scheduleAppointment"]["id"],
        input={"startAt": utc(MONDAY, 12), "endAt": utc(MONDAY, 12, 30)},
    )
    assert code(moved_out) == "BAD_USER_INPUT"
    assert await snapshot(Appointment) == before
    moved = await gql.data(
        RESCHEDULE,
        id=booked["scheduleAppointment"]["id"],
        input={
            "startAt": utc(MONDAY + timedelta(2), 10),
            "endAt": utc(MONDAY + timedelta(2), 10, 30),
        },
    )
    assert moved["rescheduleAppointment"]["startAt"].startswith("2031-01-08T10:00")


async def test_doctors_without_a_calendar_are_booked_freely(gql: Any) -> None:
    doctor, patient = await factories.doctor(), await factories.patient()
    start = datetime(2031, 1, 11, 22, 0, tzinfo=UTC)  # a Saturday night
    booked = await gql.data(
        SCHEDULE,
        input={
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "startAt": start.isoformat(),
            "endAt": (start + timedelta(minutes=30)).isoformat(),
            "reason": "Night clinic",
        },
    )
    assert booked["scheduleAppointment"]["id"]
