"""Appointments, their reschedule history, and the slot reservations that keep them apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from auth.policy import (
    CONFIGURED_CARE_DAYS,
    A,
    Action,
    C,
    CareSource,
    D,
    R,
    S,
    declare,
    each,
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, LongText, Ref, ShortText, UtcDatetime, utcnow


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


ACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.CHECKED_IN)


class Reschedule(BaseModel):
    id: Ref | None = Field(
        default=None,
        description="Chosen by the writer, one per reschedule: keys its confirmation. None on"
        " entries written before it existed.",
    )
    previous_start_at: UtcDatetime
    previous_end_at: UtcDatetime
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText | None = None
    at: UtcDatetime


class Cancellation(BaseModel):
    reason: ShortText | None = None
    at: UtcDatetime


class Appointment(Entity):
    patient_id: Ref
    doctor_id: Ref
    department_id: Ref = Field(description="The doctor's department when booked, for filtering.")
    equipment_id: Ref | None = None
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText
    notes: LongText | None = None
    status: AppointmentStatus = AppointmentStatus.SCHEDULED
    reschedule_history: list[Reschedule] = Field(default_factory=list)
    cancellation: Cancellation | None = None

    class Settings:
        name = "appointments"
        indexes = [
            pymongo.IndexModel([("doctor_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("equipment_id", 1), ("start_at", 1)]),
            pymongo.IndexModel([("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("start_at", 1)]),
        ]


# Why the visit was booked and the clinician's notes are encrypted at rest: bookings,
# reservations, calendars and analytics work on times, people and statuses only.
APPOINTMENT_SEALED = sealed(Appointment, "appointments", ("reason", "notes"), {})


_SEEN = {
    **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
    R.DOCTOR: grant(C, D),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
# Booking makes the booked doctor part of the patient's care team, so a clinician may book only
# for a patient they already treat (or, for nurses, one of their department): otherwise a
# doctor could book themselves to open any chart. New patients are booked by the front desk.
_FRONT_DESK_OR_CLINICIAN = {
    **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
# The visit itself (arrival, outcome) is recorded by the front desk or the patient's clinicians,
# with the same relation rules as booking; never by the patient.
_FRONT_DESK_OR_CARE_TEAM = {
    **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
}

APPOINTMENT = declare(
    "Appointment",
    Appointment,
    # Analysts get aggregates only: no appointment row reaches them by any path.
    row(
        Class.OPERATIONAL,
        (
            "id",
            "startAt",
            "endAt",
            "status",
            "doctor",
            "doctorId",
            "department",
            "departmentId",
            "equipment",
            "equipmentId",
            "createdAt",
            "updatedAt",
        ),
        {**_SEEN, R.SERVICE: grant(A)},
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _SEEN),
    # Why a visit was booked, moved or cancelled is clinical free text.
    group(
        "reason",
        Class.CLINICAL,
        ("reason", "rescheduleHistory", "cancellation"),
        {
            **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
    ),
    group(
        "notes",
        Class.CLINICAL,
        ("notes",),
        {R.DOCTOR: grant(C), R.NURSE: grant(C, D), R.PATIENT: grant(S)},
    ),
    actions={
        Action.SCHEDULE: _FRONT_DESK_OR_CLINICIAN,
        Action.RESCHEDULE: _FRONT_DESK_OR_CLINICIAN,
        Action.CANCEL: _FRONT_DESK_OR_CLINICIAN,
        Action.CHECK_IN: _FRONT_DESK_OR_CARE_TEAM,
        Action.COMPLETE: {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
        Action.MARK_NO_SHOW: _FRONT_DESK_OR_CARE_TEAM,
    },
    patient="patient_id",
    clinicians=("doctor_id",),
    department="department_id",
    refs=("patient_id", "doctor_id", "department_id", "equipment_id"),
    cached=True,
    # Upcoming and current visits relate the doctor (and department) until the day after; a
    # completed one for the configured number of days; cancelled and missed ones never.
    care=CareSource(
        clinician="doctor_id",
        department="department_id",
        ends="end_at",
        lifetime={
            AppointmentStatus.SCHEDULED: timedelta(days=1),
            AppointmentStatus.CHECKED_IN: timedelta(days=1),
            AppointmentStatus.COMPLETED: CONFIGURED_CARE_DAYS,
        },
    ),
    order=(("start_at", 1), ("_id", 1)),
)


class ReservedResource(StrEnum):
    DOCTOR = "doctor"
    PATIENT = "patient"
    EQUIPMENT = "equipment"
    THEATRE = "theatre"


SLOT = timedelta(minutes=5)
"""The booking grid: appointments start and end on it, and reservations hold one slot each."""
_GRID_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


def on_grid(moment: datetime) -> bool:
    return (moment - _GRID_ORIGIN) % SLOT == timedelta(0)


def grid_slots(start_at: datetime, end_at: datetime) -> list[datetime]:
    """The starts of the grid slots covering ``[start_at, end_at)``; both ends on the grid."""
    count = (end_at - start_at) // SLOT
    return [start_at + i * SLOT for i in range(count)]


def held_resources(appointment: Appointment) -> list[tuple[ReservedResource, Ref]]:
    """What an active appointment occupies: its doctor, its patient and its device, if any."""
    held = [
        (ReservedResource.DOCTOR, appointment.doctor_id),
        (ReservedResource.PATIENT, appointment.patient_id),
    ]
    if appointment.equipment_id is not None:
        held.append((ReservedResource.EQUIPMENT, appointment.equipment_id))
    return held


@dataclass(frozen=True)
class ReservationHolder:
    """A kind of record that may hold reservations (an appointment, an imaging study...), and
    how ``services.scheduling`` tells whether one of them still needs a slot it holds: the
    record exists, its status is one of ``active``, its ``resources`` field names the resource
    and its ``[start, end)`` covers the slot."""

    name: str
    """Stored in ``Reservation.holder``."""
    model: type[Document]
    active: frozenset[str]
    start: str
    end: str
    resources: Mapping[ReservedResource, str]
    label: str
    """How a clash names it: "appointment", "imaging study"."""
    extension: str
    """The CONFLICT extension listing clashing holders of this kind: ``appointmentIds``..."""
    claimed_by: tuple[str, type[Document], str] | None = None
    """(holder field naming its parent, parent model, parent field): a holder its parent does
    not name back (a crash between the holder's insert and its parent's update) keeps its slots
    only for ``STALE_AFTER``, like a reservation whose holder is missing."""


RESERVATION_HOLDERS: dict[str, ReservationHolder] = {}


def register_holder(holder: ReservationHolder) -> ReservationHolder:
    """Called once, at import of the module whose records hold reservations."""
    if RESERVATION_HOLDERS.setdefault(holder.name, holder) is not holder:
        raise ValueError(f"reservation holder {holder.name!r} is registered twice")
    return holder


APPOINTMENT_HOLDER = register_holder(
    ReservationHolder(
        name="appointment",
        model=Appointment,
        active=frozenset(s.value for s in ACTIVE_APPOINTMENT_STATUSES),
        start="start_at",
        end="end_at",
        resources={
            ReservedResource.DOCTOR: "doctor_id",
            ReservedResource.PATIENT: "patient_id",
            ReservedResource.EQUIPMENT: "equipment_id",
        },
        label="appointment",
        extension="appointmentIds",
    )
)


class Reservation(Document):
    """One grid slot of one doctor, patient or device, held by one active appointment (or
    another registered holder, such as an imaging study booking a scanner).

    The unique index on (resource, resource_id, slot) is what makes double booking impossible:
    MongoDB refuses a second holder of a slot, whichever process or request tries, whatever kind
    of record holds it. See ``services/scheduling.py`` for how bookings, reschedules and
    cancellations use it.
    """

    resource: ReservedResource
    resource_id: Ref
    slot: UtcDatetime = Field(description="Start of the grid slot (SLOT long) that is held.")
    appointment_id: Ref = Field(
        description="The holder's id: an appointment's, or (see ``holder``) another record's."
    )
    holder: str = Field(
        default=APPOINTMENT_HOLDER.name,
        description="The kind of record holding the slot (``RESERVATION_HOLDERS``).",
    )
    created_at: UtcDatetime = Field(default_factory=utcnow)

    class Settings:
        name = "reservations"
        indexes = [
            pymongo.IndexModel(
                [("resource", 1), ("resource_id", 1), ("slot", 1)],
                unique=True,
                name="one_holder_per_slot",
            ),
            pymongo.IndexModel([("appointment_id", 1)]),
        ]
