"""Booking through the API, and the reservation invariant every scheduling test ends with."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from models import Appointment, Reservation
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, SLOT

SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id startAt endAt } }"""
RESCHEDULE = """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $input) { startAt endAt } }"""
CANCEL = """mutation($id: ID!) { cancelAppointment(id: $id) { status } }"""
START = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def booking(
    patient: Any, doctor: Any, start: datetime, minutes: int = 30, device: Any = None
) -> dict[str, Any]:
    payload = {
        "patientId": str(patient.id),
        "doctorId": str(doctor.id),
        "startAt": iso(start),
        "endAt": iso(start + timedelta(minutes=minutes)),
        "reason": "Check-up",
    }
    if device is not None:
        payload["equipmentId"] = str(device.id)
    return payload


async def book(gql: Any, *args: Any, **kwargs: Any) -> str:
    data = await gql.data(SCHEDULE, input=booking(*args, **kwargs))
    return str(data["scheduleAppointment"]["id"])


async def held(appointment_id: Any) -> set[tuple[str, Any, datetime]]:
    rows = await Reservation.find({"appointment_id": appointment_id}).to_list()
    return {(r.resource.value, r.resource_id, r.slot) for r in rows}


def expected(appointment: Appointment) -> set[tuple[str, Any, datetime]]:
    owners = [("doctor", appointment.doctor_id), ("patient", appointment.patient_id)]
    if appointment.equipment_id is not None:
        owners.append(("equipment", appointment.equipment_id))
    slots = (appointment.end_at - appointment.start_at) // SLOT
    return {
        (resource, owner, appointment.start_at + i * SLOT)
        for resource, owner in owners
        for i in range(slots)
    }


async def assert_reservations_match_appointments() -> list[Appointment]:
    """Active appointments never overlap per resource, and reservations are exactly theirs."""
    active = [
        a for a in await Appointment.find_all().to_list() if a.status in ACTIVE_APPOINTMENT_STATUSES
    ]
    for field in ("doctor_id", "patient_id", "equipment_id"):
        by_owner: dict[Any, list[Appointment]] = defaultdict(list)
        for a in active:
            if getattr(a, field) is not None:
                by_owner[getattr(a, field)].append(a)
        for own in by_owner.values():
            for x, y in combinations(own, 2):
                assert x.end_at <= y.start_at or y.end_at <= x.start_at, (field, x.id, y.id)
    by_appointment: dict[Any, set[tuple[str, Any, datetime]]] = defaultdict(set)
    for r in await Reservation.find({"holder": "appointment"}).to_list():  # other holders: theirs
        by_appointment[r.appointment_id].add((r.resource.value, r.resource_id, r.slot))
    assert set(by_appointment) == {a.id for a in active}, "orphan or missing reservations"
    for a in active:
        assert by_appointment[a.id] == expected(a), a.id
    return active
