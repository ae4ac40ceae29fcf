"""Operating theatres, the surgeries booked into them, and the record of each operation.

A booking reserves four things at once through the slot reservations appointments use
(``services.scheduling``): the theatre, the surgeon, the anaesthetist and the patient. The
theatre is held for ``[start_at, reserved_until)``, the case plus the theatre's cleaning time
(``turnover_minutes``), the people only for ``[start_at, end_at)``. Two reservation holders
name the booking: ``surgery_booking`` (theatre, surgeon, patient) and ``surgery_anaesthesia``
(the anaesthetist: a holder maps one field per resource, and both clinicians are doctors).

Starting the surgery creates its one ``SurgicalRecord``: the pre-op checklist (complete before
the incision), anaesthesia, the ordered times in theatre, procedure codes, complications and
the post-op destination; completing it charges the patient once.

Who reads what (the declarations below):
- the case's surgeon and anaesthetist (clinicians of every row), doctors with care;
- nurses of the theatre's department (its theatre team): the schedule and the record's times
  and checklist; nurses with care as well;
- admins, and admin staff of the theatre's department (they book the lists);
- billing: bookings with their charge fields, never the procedure or notes;
- the patient: their own bookings and records, never the staff notes;
- analysts: nothing.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BaseModel, Field, StringConstraints

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
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, LongText, Name, Ref, ShortText, UtcDatetime, utcnow
from models.scheduling import ReservationHolder, ReservedResource, register_holder

ANAESTHESIA_SPECIALTY_WORDS = ("anaesth", "anesth")
"""A doctor whose specialty contains one of these (case-insensitive) may anaesthetise."""

ProcedureCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Z0-9][A-Z0-9.\-]{2,15}$"),
]
"""An ICD-10-PCS (7 characters) or CPT-like (5 digits) code; letters, digits, dots, dashes."""


class OperatingTheatre(Entity):
    name: Name
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_-]{0,15}$", description="Short unique code: OT1")
    department_id: Ref
    active: bool = True
    turnover_minutes: int = Field(
        default=30, ge=0, le=240, description="Cleaning time held after every case."
    )
    hourly_rate: int = Field(
        default=60_000, gt=0, description="Minor units per hour; charged per started 15 minutes."
    )

    class Settings:
        name = "operating_theatres"
        indexes = [
            pymongo.IndexModel("code", unique=True),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
        ]


class SurgeryStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ACTIVE_SURGERY_STATUSES = (SurgeryStatus.SCHEDULED, SurgeryStatus.IN_PROGRESS)
"""A booking holds its theatre and people while scheduled or in progress."""


class SurgeryPriority(StrEnum):
    ELECTIVE = "elective"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class PlannedProcedure(BaseModel):
    description: ShortText
    codes: list[ProcedureCode] = Field(default_factory=list, max_length=20)


class SurgeryReschedule(BaseModel):
    previous_start_at: UtcDatetime
    previous_end_at: UtcDatetime
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText | None = None
    at: UtcDatetime


class SurgeryCancellation(BaseModel):
    reason: ShortText
    at: UtcDatetime


class SurgeryBooking(Entity):
    patient_id: Ref
    admission_id: Ref | None = None
    theatre_id: Ref
    department_id: Ref = Field(description="The theatre's department, when booked.")
    surgeon_id: Ref
    anaesthetist_id: Ref
    start_at: UtcDatetime
    end_at: UtcDatetime
    reserved_until: UtcDatetime = Field(
        description="end_at plus the theatre's turnover: until when the theatre is held."
    )
    procedure: PlannedProcedure
    priority: SurgeryPriority = SurgeryPriority.ELECTIVE
    status: SurgeryStatus = SurgeryStatus.SCHEDULED
    status_at: UtcDatetime = Field(default_factory=utcnow)
    notes: LongText | None = None
    reschedule_history: list[SurgeryReschedule] = Field(default_factory=list)
    cancellation: SurgeryCancellation | None = None
    record_id: Ref | None = None
    theatre_charge: int | None = Field(default=None, description="Minor units, on completion.")
    procedure_fee: int | None = Field(default=None, description="Minor units, on completion.")
    charged_at: UtcDatetime | None = None
    version: int = 0

    class Settings:
        name = "surgery_bookings"
        indexes = [
            pymongo.IndexModel([("theatre_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("surgeon_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("anaesthetist_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("start_at", 1)]),
            pymongo.IndexModel([("start_at", 1), ("_id", 1)]),
        ]


# The planned procedure (its description names the operation, sealed whole with its codes)
# and the booking's notes are encrypted at rest; nothing queries either.
SURGERY_BOOKING_SEALED = sealed(SurgeryBooking, "surgery_bookings", ("procedure", "notes"), {})


class ChecklistItem(StrEnum):
    IDENTITY_CONFIRMED = "identity_confirmed"
    SITE_MARKED = "site_marked"
    CONSENT_SIGNED = "consent_signed"
    FASTING_CONFIRMED = "fasting_confirmed"
    ALLERGIES_REVIEWED = "allergies_reviewed"


class ChecklistCheck(BaseModel):
    item: ChecklistItem
    checked_by_id: Ref
    checked_at: UtcDatetime


class AnaesthesiaType(StrEnum):
    GENERAL = "general"
    REGIONAL = "regional"
    LOCAL = "local"
    SEDATION = "sedation"


class PostOpDestination(StrEnum):
    RECOVERY = "recovery"
    WARD = "ward"
    ICU = "icu"
    HOME = "home"


SURGICAL_TIMES = (
    "in_theatre_at",
    "anaesthesia_start_at",
    "incision_at",
    "closure_at",
    "out_of_theatre_at",
)
"""The record's times, in the order they must happen (each optional until completion)."""


class SurgicalRecord(Entity):
    booking_id: Ref
    patient_id: Ref
    theatre_id: Ref
    department_id: Ref
    surgeon_id: Ref
    anaesthetist_id: Ref
    checklist: list[ChecklistCheck] = Field(default_factory=list)
    anaesthesia_type: AnaesthesiaType | None = None
    in_theatre_at: UtcDatetime | None = None
    anaesthesia_start_at: UtcDatetime | None = None
    incision_at: UtcDatetime | None = None
    closure_at: UtcDatetime | None = None
    out_of_theatre_at: UtcDatetime | None = None
    procedure_codes: list[ProcedureCode] = Field(default_factory=list, max_length=20)
    complications: LongText | None = None
    post_op_destination: PostOpDestination | None = None
    post_op_ward_id: Ref | None = None
    notes: LongText | None = None
    completed_at: UtcDatetime | None = None
    version: int = 0

    class Settings:
        name = "surgical_records"
        indexes = [
            pymongo.IndexModel("booking_id", unique=True, name="one_record_per_booking"),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("theatre_id", 1), ("_id", 1)]),
        ]


# Complications and the operation notes are free clinical text: encrypted at rest.
SURGICAL_RECORD_SEALED = sealed(SurgicalRecord, "surgical_records", ("complications", "notes"), {})


SURGERY_HOLDER = register_holder(
    ReservationHolder(
        name="surgery_booking",
        model=SurgeryBooking,
        active=frozenset(s.value for s in ACTIVE_SURGERY_STATUSES),
        start="start_at",
        end="reserved_until",
        resources={
            ReservedResource.THEATRE: "theatre_id",
            ReservedResource.DOCTOR: "surgeon_id",
            ReservedResource.PATIENT: "patient_id",
        },
        label="surgery booking",
        extension="surgeryBookingIds",
    )
)
"""The theatre (with its cleaning time), the surgeon and the patient."""

ANAESTHESIA_HOLDER = register_holder(
    ReservationHolder(
        name="surgery_anaesthesia",
        model=SurgeryBooking,
        active=frozenset(s.value for s in ACTIVE_SURGERY_STATUSES),
        start="start_at",
        end="end_at",
        resources={ReservedResource.DOCTOR: "anaesthetist_id"},
        label="surgery booking (anaesthetist)",
        extension="anaesthesiaBookingIds",
    )
)
"""The anaesthetist's slots of the same booking (see the module notes)."""

# -- the policy --------------------------------------------------------------------------------

_CASE_TEAM = {R.DOCTOR: grant(C), R.NURSE: grant(C, D)}
_SCHEDULE = {
    **_CASE_TEAM,
    R.ADMIN: grant(A),
    R.ADMIN_STAFF: grant(D),
    R.BILLING: grant(A),
    R.PATIENT: grant(S),
}
_PROCEDURE = {**_CASE_TEAM, R.ADMIN: grant(A), R.ADMIN_STAFF: grant(D), R.PATIENT: grant(S)}
_STAFF_NOTES = {**_CASE_TEAM, R.ADMIN: grant(A)}
_BOOKERS = {R.ADMIN: grant(A), R.ADMIN_STAFF: grant(D)}
_THEATRE_TEAM = {R.DOCTOR: grant(C), R.NURSE: grant(D), R.ADMIN: grant(A)}
_STAMPS = ("id", "createdAt", "updatedAt")

OPERATING_THEATRE = declare(
    "OperatingTheatre",
    OperatingTheatre,
    row(
        Class.OPERATIONAL,
        (*_STAMPS, "name", "code", "active", "turnoverMinutes", "departmentId", "department"),
        {
            R.ADMIN: grant(A),
            R.ADMIN_STAFF: grant(A),
            R.DOCTOR: grant(A),
            R.NURSE: grant(A),
            R.BILLING: grant(A),
        },
    ),
    group("rate", Class.FINANCIAL, ("hourlyRate",), {R.ADMIN: grant(A), R.BILLING: grant(A)}),
    actions={Action.CREATE: {R.ADMIN: grant(A)}, Action.UPDATE: {R.ADMIN: grant(A)}},
    department="department_id",
    refs=("department_id",),
    cached=True,
)

SURGERY_BOOKING = declare(
    "SurgeryBooking",
    SurgeryBooking,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "startAt",
            "endAt",
            "reservedUntil",
            "priority",
            "status",
            "statusAt",
            "version",
            "theatreId",
            "theatre",
            "departmentId",
            "department",
            "surgeonId",
            "surgeon",
            "anaesthetistId",
            "anaesthetist",
            "admissionId",
            "recordId",
        ),
        _SCHEDULE,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _SCHEDULE),
    group(
        "procedure",
        Class.CLINICAL,
        ("procedure", "rescheduleHistory", "cancellation"),
        _PROCEDURE,
    ),
    group("notes", Class.CLINICAL, ("notes",), _STAFF_NOTES),
    group(
        "charge",
        Class.FINANCIAL,
        ("theatreCharge", "procedureFee", "chargedAt"),
        {R.BILLING: grant(A), R.ADMIN: grant(A), R.PATIENT: grant(S), R.DOCTOR: grant(C)},
    ),
    group("record", Class.CLINICAL, ("record",), {**_CASE_TEAM, R.ADMIN: grant(A)}),
    actions={
        Action.SCHEDULE: _BOOKERS,
        Action.RESCHEDULE: _BOOKERS,
        Action.CANCEL: {**_BOOKERS, R.DOCTOR: grant(C)},
        "start": _THEATRE_TEAM,
        Action.COMPLETE: _THEATRE_TEAM,
    },
    patient="patient_id",
    clinicians=("surgeon_id", "anaesthetist_id"),
    department="department_id",
    refs=("patient_id", "theatre_id", "surgeon_id", "anaesthetist_id", "department_id"),
    cached=True,
    # The surgeon and the anaesthetist treat the patient (and the theatre department sees them)
    # from the booking until the day after the case; after completion for the configured days.
    care=CareSource(
        clinician="surgeon_id",
        also=("anaesthetist_id",),
        department="department_id",
        ends="end_at",
        lifetime={
            SurgeryStatus.SCHEDULED: timedelta(days=1),
            SurgeryStatus.IN_PROGRESS: None,
            SurgeryStatus.COMPLETED: CONFIGURED_CARE_DAYS,
        },
    ),
    order=(("start_at", 1), ("_id", 1)),
)

SURGICAL_RECORD = declare(
    "SurgicalRecord",
    SurgicalRecord,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "bookingId",
            "booking",
            "theatreId",
            "departmentId",
            "surgeonId",
            "anaesthetistId",
            "inTheatreAt",
            "anaesthesiaStartAt",
            "incisionAt",
            "closureAt",
            "outOfTheatreAt",
            "postOpDestination",
            "postOpWardId",
            "completedAt",
            "version",
        ),
        {**_CASE_TEAM, R.ADMIN: grant(A), R.PATIENT: grant(S)},
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), {**_CASE_TEAM, R.ADMIN: grant(A)}),
    group(
        "checklist",
        Class.CLINICAL,
        ("checklist", "checklistComplete"),
        {**_CASE_TEAM, R.ADMIN: grant(A), R.PATIENT: grant(S)},
    ),
    group(
        "procedure",
        Class.CLINICAL,
        ("anaesthesiaType", "procedureCodes", "complications"),
        {**_CASE_TEAM, R.ADMIN: grant(A), R.PATIENT: grant(S)},
    ),
    group("notes", Class.CLINICAL, ("notes",), _CASE_TEAM),
    updates={
        # The theatre team (nurses of the theatre's department) keep the times and checklist;
        # the clinical content is the surgeon's and anaesthetist's (or a treating doctor's).
        "times": (
            ("checklist", *SURGICAL_TIMES, "post_op_destination", "post_op_ward_id"),
            {R.DOCTOR: grant(C), R.NURSE: grant(D)},
        ),
        "clinical": (
            ("anaesthesia_type", "procedure_codes", "complications", "notes"),
            {R.DOCTOR: grant(C)},
        ),
    },
    patient="patient_id",
    clinicians=("surgeon_id", "anaesthetist_id"),
    department="department_id",
    refs=("patient_id", "booking_id", "theatre_id", "surgeon_id", "anaesthetist_id"),
    cached=True,
)
