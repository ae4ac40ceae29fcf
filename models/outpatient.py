"""Outpatient visits: one per arrival at a clinic, and the queue they wait in.

A visit is created at check-in (from an appointment or as a walk-in) and moves through the
queue by compare-and-set transitions on ``status`` (see ``services/outpatient.py``). Other
modules (vital signs, notes, laboratory, radiology) find a visit by ``appointment_id`` and link
to it, so that field and its unique sparse index are part of this module's contract.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from auth.policy import (
    CONFIGURED_CARE_DAYS,
    STAFF_ROLES,
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
from models.base import Entity, Name, Ref, ShortText, UtcDatetime, utcnow


class Arrival(StrEnum):
    WALK_IN = "walk_in"
    APPOINTMENT = "appointment"


class VisitPriority(StrEnum):
    """Queue classes, most urgent first: ``rank`` orders the queue."""

    EMERGENCY = "emergency"
    ELDERLY = "elderly"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self]


PRIORITY_RANK: dict[VisitPriority, int] = {
    VisitPriority.EMERGENCY: 0,
    VisitPriority.ELDERLY: 1,
    VisitPriority.ROUTINE: 2,
}


class VisitStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    IN_CONSULTATION = "in_consultation"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    LEFT = "left"


QUEUED_STATUSES = (VisitStatus.WAITING, VisitStatus.CALLED)
"""Statuses that keep a visit on the queue (called patients stay shown until they go in)."""
OPEN_STATUSES = (VisitStatus.WAITING, VisitStatus.CALLED, VisitStatus.IN_CONSULTATION)
"""Statuses of a visit that has not ended."""

VISIT_TRANSITIONS: dict[VisitStatus, frozenset[VisitStatus]] = {
    # No-show is for a called patient who did not come; one gone from the waiting room left.
    VisitStatus.WAITING: frozenset({VisitStatus.CALLED, VisitStatus.LEFT}),
    VisitStatus.CALLED: frozenset(
        {
            VisitStatus.CALLED,  # called again (another room, or a reminder)
            VisitStatus.IN_CONSULTATION,
            VisitStatus.NO_SHOW,
            VisitStatus.LEFT,
        }
    ),
    VisitStatus.IN_CONSULTATION: frozenset({VisitStatus.COMPLETED, VisitStatus.LEFT}),
    VisitStatus.COMPLETED: frozenset(),
    VisitStatus.NO_SHOW: frozenset(),
    VisitStatus.LEFT: frozenset(),
}


class VisitStatusChange(BaseModel):
    from_status: VisitStatus | None = None
    to_status: VisitStatus
    at: UtcDatetime
    by: str | None = Field(
        default=None, max_length=255, description="Who took the step: their token's subject."
    )
    room: Name | None = None


class OutpatientVisit(Entity):
    patient_id: Ref
    appointment_id: Ref | None = Field(
        default=None, description="The appointment checked in; at most one visit per appointment."
    )
    doctor_id: Ref | None = Field(
        default=None, description="The doctor seeing the patient; None while in a clinic queue."
    )
    department_id: Ref = Field(description="The clinic the patient waits for.")
    arrival: Arrival
    priority: VisitPriority = VisitPriority.ROUTINE
    priority_rank: int = Field(default=2, ge=0, le=9, description="Stored for the queue index.")
    status: VisitStatus = VisitStatus.WAITING
    queue_date: str = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}$", description="The UTC day the number belongs to."
    )
    queue_number: int = Field(ge=1, description="Per clinic and day, shown on the screens.")
    reason: ShortText | None = None
    checked_in_at: UtcDatetime
    called_at: UtcDatetime | None = None
    called_to: Name | None = Field(default=None, description="The room the patient was called to.")
    seen_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = Field(
        default=None, description="When the visit left the queue for good (any final status)."
    )
    status_at: UtcDatetime = Field(
        description="When the visit entered its current status: care lifetimes run from it."
    )
    open_patient_id: Ref | None = Field(
        default=None,
        description="The patient while the visit is open, absent once it ends: its unique index"
        " keeps a patient in one queue at a time, across processes.",
    )
    version: int = 0
    history: list[VisitStatusChange] = Field(default_factory=list)

    class Settings:
        name = "outpatient_visits"
        # Absent rather than null, so the sparse unique indexes skip walk-ins and ended visits.
        keep_nulls = False
        indexes = [
            pymongo.IndexModel(
                "appointment_id", unique=True, sparse=True, name="one_visit_per_appointment"
            ),
            pymongo.IndexModel(
                "open_patient_id", unique=True, sparse=True, name="one_open_visit_per_patient"
            ),
            pymongo.IndexModel(
                [("department_id", 1), ("queue_date", 1), ("queue_number", 1)],
                unique=True,
                name="one_number_per_clinic_day",
            ),
            pymongo.IndexModel([("patient_id", 1), ("checked_in_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("doctor_id", 1), ("checked_in_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("checked_in_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("checked_in_at", 1), ("_id", 1)]),
            # The queues: open visits of a clinic or a doctor in priority, then arrival order.
            pymongo.IndexModel(
                [
                    ("status", 1),
                    ("department_id", 1),
                    ("priority_rank", 1),
                    ("checked_in_at", 1),
                    ("_id", 1),
                ]
            ),
            pymongo.IndexModel(
                [
                    ("status", 1),
                    ("doctor_id", 1),
                    ("priority_rank", 1),
                    ("checked_in_at", 1),
                    ("_id", 1),
                ]
            ),
        ]


# Why the patient came is encrypted at rest: the queues and boards never read or query it.
OUTPATIENT_VISIT_SEALED = sealed(OutpatientVisit, "outpatient_visits", ("reason",), {})


class OutpatientQueueNumber(Document):
    """The last queue number handed out per clinic and day ($inc is atomic across processes)."""

    department_id: Ref
    queue_date: str
    last: int = 0
    updated_at: UtcDatetime = Field(default_factory=utcnow)

    class Settings:
        name = "outpatient_queue_numbers"
        indexes = [
            pymongo.IndexModel(
                [("department_id", 1), ("queue_date", 1)], unique=True, name="one_counter"
            )
        ]


# Who sees a visit: the front desk and billing (to charge it), the clinic's and the patient's
# clinicians, and the patient; analysts get aggregates only.
_SEEN = {
    **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
    R.DOCTOR: grant(C, D),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
# Arrival is recorded by the front desk or the patient's clinicians; never by the patient.
_FRONT_DESK_OR_CARE_TEAM = {
    **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    R.DOCTOR: grant(C, D),
    R.NURSE: grant(C, D),
}
_CLINIC = {R.ADMIN: grant(A), R.DOCTOR: grant(C, D), R.NURSE: grant(C, D)}

OUTPATIENT_VISIT = declare(
    "OutpatientVisit",
    OutpatientVisit,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "arrival",
            "priority",
            "status",
            "queueDate",
            "queueNumber",
            "position",
            "checkedInAt",
            "calledAt",
            "calledTo",
            "seenAt",
            "completedAt",
            "endedAt",
            "version",
            "allowedTransitions",
            "departmentId",
            "department",
            "doctorId",
            "doctor",
            "appointmentId",
            "appointment",
            "createdAt",
            "updatedAt",
        ),
        _SEEN,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _SEEN),
    # Who took each step (staff sign-ins) is for the hospital, not for the patient.
    group(
        "history",
        Class.OPERATIONAL,
        ("history",),
        {**each((R.ADMIN, R.ADMIN_STAFF), grant(A)), R.DOCTOR: grant(C, D), R.NURSE: grant(C, D)},
    ),
    # Why the patient came is clinical free text: not for billing.
    group(
        "reason",
        Class.CLINICAL,
        ("reason",),
        {
            **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
    ),
    actions={
        Action.CHECK_IN: _FRONT_DESK_OR_CARE_TEAM,
        "call": {**_CLINIC, R.ADMIN_STAFF: grant(A)},
        "startConsultation": {R.ADMIN: grant(A), R.DOCTOR: grant(C, D)},
        Action.COMPLETE: {R.ADMIN: grant(A), R.DOCTOR: grant(C, D), R.NURSE: grant(C, D)},
        Action.MARK_NO_SHOW: _FRONT_DESK_OR_CARE_TEAM,
        "leave": _FRONT_DESK_OR_CARE_TEAM,
        Action.UPDATE: _FRONT_DESK_OR_CARE_TEAM,
    },
    creates=frozenset({Action.CHECK_IN}),  # a check-in opens the visit
    patient="patient_id",
    clinicians=("doctor_id",),
    department="department_id",
    refs=("patient_id", "doctor_id", "department_id", "appointment_id"),
    cached=True,
    # The visit's doctor (and clinic) treat the patient while they wait and are seen (a day
    # from the last step at most, so a visit left open does not grant care for ever), and for
    # the configured number of days after the consultation ends; no-shows and walk-outs never.
    care=CareSource(
        clinician="doctor_id",
        department="department_id",
        ends="status_at",
        lifetime={
            VisitStatus.WAITING: timedelta(days=1),
            VisitStatus.CALLED: timedelta(days=1),
            VisitStatus.IN_CONSULTATION: timedelta(days=1),
            VisitStatus.COMPLETED: CONFIGURED_CARE_DAYS,
        },
    ),
    order=(("checked_in_at", 1), ("_id", 1)),
)

# The waiting-room board: queue numbers, priority classes and positions, never who is waiting.
# Any staff member and the dashboard (service) clients may show it.
OUTPATIENT_BOARD = declare(
    "OutpatientBoard",
    None,
    row(
        Class.OPERATIONAL,
        (
            "departmentId",
            "doctorId",
            "queueDate",
            "entries",
            "updatedAt",
            "queueNumber",
            "priority",
            "status",
            "position",
            "calledTo",
            "calledAt",
        ),
        each((*STAFF_ROLES, R.SERVICE), grant(A)),
    ),
    graphql_types=("OutpatientBoard", "OutpatientBoardEntry"),
    inputs=("outpatient_visits",),
)
