"""Booking operating theatres, performing and recording surgery, and charging for it.

No two active surgeries (scheduled or in progress) overlap on a theatre, a surgeon, an
anaesthetist or a patient, and none overlaps an appointment or imaging study of those people:
every booking holds 5-minute reservations (``services.scheduling.reserve``, the same unique
index appointments use), the theatre for the case plus its cleaning time. No transactions:

- Book: the booking's id is chosen first; its reservations go in under two holders (see
  ``models.theatre``), the second's failure releasing the first's, then the booking is inserted
  (its failure releases them all). ``CONFLICT`` names the clashing role (theatre, surgeon,
  anaesthetist, patient) and leaves nothing held. Emergency priority only relaxes "in the
  future" to "from the current slot": it reserves like any other booking.
- Reschedule: hold the new slots not yet held, compare-and-set the times (on ``version``),
  release the old slots outside the new window. Cancel: compare-and-set, then release.
- Start: the record is inserted (one per booking: a unique index; a repeated start reuses it),
  then the booking moves ``scheduled -> in_progress`` naming it.
- Complete: ``in_progress -> completed`` by compare-and-set, the reservations go, then the two
  charges (theatre time per started 15 minutes, the procedure fee) are posted with sources
  ``surgery``/booking id and ``surgery``/record id: ``services.billing`` refuses a second
  charge of a source atomically, so concurrent or repeated completions charge once; completing
  a completed but uncharged booking (a crash between the steps) posts what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from auth.policy import REGISTRY
from errors import Conflict
from models.base import utcnow
from models.billing import BillingAccount, ChargeSource
from models.patients import Patient
from models.scheduling import SLOT, Reservation, ReservedResource, grid_slots, on_grid
from models.staff import Doctor
from models.theatre import (
    ANAESTHESIA_HOLDER,
    ANAESTHESIA_SPECIALTY_WORDS,
    SURGERY_HOLDER,
    SURGICAL_TIMES,
    ChecklistCheck,
    ChecklistItem,
    OperatingTheatre,
    PostOpDestination,
    SurgeryBooking,
    SurgeryCancellation,
    SurgeryPriority,
    SurgeryReschedule,
    SurgeryStatus,
    SurgicalRecord,
)
from services import billing, common, scheduling
from services.changes import changed
from services.pagination import ASC, BY_ID, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, build, require

BY_START: Sort = (("start_at", ASC), ("_id", ASC))
MAX_CASE = timedelta(hours=16)
CHARGE_SOURCE = ChargeSource.SURGERY
CHARGE_BLOCK = timedelta(minutes=15)
PROCEDURE_FEE = 120_000
"""The procedure fee of a case (minor units), for its first procedure code (or none)."""
ADDITIONAL_PROCEDURE_FEE = 40_000
"""Each further procedure code recorded adds this."""
_encoder = Encoder()


def _enc(value: Any) -> Any:
    return _encoder.encode(value)


# -- reads -----------------------------------------------------------------------------------


async def get_theatre(id: ObjectId) -> OperatingTheatre:
    return await common.get_or_404(OperatingTheatre, id, "OperatingTheatre")


async def get_booking(id: ObjectId) -> SurgeryBooking:
    return await common.get_or_404(SurgeryBooking, id, "SurgeryBooking")


async def get_record(id: ObjectId) -> SurgicalRecord:
    return await common.get_or_404(SurgicalRecord, id, "SurgicalRecord")


async def record_of(booking_id: ObjectId) -> SurgicalRecord | None:
    return await SurgicalRecord.find_one({"booking_id": booking_id})


def theatre_filter(*, department_id: ObjectId | None = None, active: bool | None = None) -> Query:
    query: Query = {}
    if department_id is not None:
        query["department_id"] = department_id
    if active is not None:
        query["active"] = active
    return query


async def list_theatres(
    query: Query, args: PageArgs, scope: Query | None
) -> Page[OperatingTheatre]:
    return await paginate(OperatingTheatre, both(query, scope), BY_ID, args)


def booking_filter(
    *,
    theatre_id: ObjectId | None = None,
    surgeon_id: ObjectId | None = None,
    anaesthetist_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    statuses: Sequence[SurgeryStatus] = (),
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
) -> Query:
    """Bookings whose case starts in ``[from, to)``."""
    problems = Problems()
    starts_from, starts_before = problems.window(starts_from, starts_before)
    problems.raise_any()
    query: Query = {}
    for field, value in (
        ("theatre_id", theatre_id),
        ("surgeon_id", surgeon_id),
        ("anaesthetist_id", anaesthetist_id),
        ("patient_id", patient_id),
    ):
        if value is not None:
            query[field] = value
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    window: dict[str, datetime] = {}
    if starts_from:
        window["$gte"] = starts_from
    if starts_before:
        window["$lt"] = starts_before
    if window:
        query["start_at"] = window
    return query


async def list_bookings(query: Query, args: PageArgs, scope: Query | None) -> Page[SurgeryBooking]:
    return await paginate(SurgeryBooking, both(query, scope), BY_START, args)


@dataclass(frozen=True)
class Block:
    """A stretch of a theatre's day: a case, or the cleaning after it."""

    kind: str  # "case" or "cleaning"
    start_at: datetime
    end_at: datetime
    booking: SurgeryBooking


async def theatre_day(
    theatre_id: ObjectId, day: date, zone: ZoneInfo | None, scope: Query | None
) -> list[Block]:
    """The theatre's cases and cleaning blocks touching ``day`` (in the facility's zone),
    cancelled cases aside; only the bookings ``scope`` lets the caller see."""
    await get_theatre(theatre_id)
    tz = zone or ZoneInfo("UTC")
    begins = datetime.combine(day, time(0), tz).astimezone(UTC)
    ends = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
    query: Query = {
        "theatre_id": theatre_id,
        "status": {"$ne": SurgeryStatus.CANCELLED.value},
        "start_at": {"$lt": ends, "$gte": begins - MAX_CASE - timedelta(hours=4)},
        "reserved_until": {"$gt": begins},
    }
    cursor = db.collection(SurgeryBooking).find(both(query, scope)).sort(list(BY_START))
    blocks: list[Block] = []
    for raw in await cursor.to_list(None):
        booking = SurgeryBooking.model_validate(raw)
        blocks.append(Block("case", booking.start_at, booking.end_at, booking))
        if booking.reserved_until > booking.end_at:
            blocks.append(Block("cleaning", booking.end_at, booking.reserved_until, booking))
    return [b for b in blocks if b.start_at < ends and b.end_at > begins]


# -- theatres --------------------------------------------------------------------------------


async def create_theatre(data: Mapping[str, Any]) -> OperatingTheatre:
    problems = Problems()
    theatre = problems.build(OperatingTheatre, data)
    if "departmentId" not in problems:
        await problems.check(
            common.ensure_exists(
                _department_model(), data.get("department_id"), "departmentId", "department"
            )
        )
    problems.raise_any()
    assert theatre is not None
    return await common.insert(theatre, "operating theatre")


def _department_model() -> Any:
    from models.departments import Department

    return Department


# -- booking ---------------------------------------------------------------------------------


def _time_problems(
    problems: Problems, start: Any, end: Any, now: datetime, priority: SurgeryPriority
) -> None:
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        problems.require(isinstance(start, datetime), "startAt", "is required")
        problems.require(isinstance(end, datetime), "endAt", "is required")
        return
    start_at, end_at = problems.instant(start, "startAt"), problems.instant(end, "endAt")
    if start_at is None or end_at is None:
        return
    grid = f"must be on the {SLOT.seconds // 60}-minute grid (like 09:00, 09:05, 09:10)"
    problems.require(on_grid(start_at), "startAt", grid)
    problems.require(on_grid(end_at), "endAt", grid)
    if problems.require(end_at > start_at, "endAt", "must be after startAt"):
        problems.require(end_at - start_at <= MAX_CASE, "endAt", "a case may last 16 hours")
    if priority == SurgeryPriority.EMERGENCY:  # may start in the current slot, not earlier
        problems.require(start_at > now - SLOT, "startAt", "must not be in the past")
    else:
        problems.require(start_at > now, "startAt", "must be in the future")


def is_anaesthetist(doctor: Doctor) -> bool:
    specialty = doctor.specialty.lower()
    return any(word in specialty for word in ANAESTHESIA_SPECIALTY_WORDS)


async def _doctor(problems: Problems, field: str, id: Any) -> Doctor | None:
    if field in problems or not isinstance(id, ObjectId):
        return None
    doctor = await Doctor.get(id)
    if problems.require(doctor is not None and doctor.active, field, "no such active doctor"):
        return doctor
    return None


async def _check_admission(problems: Problems, admission_id: Any, patient_id: Any) -> None:
    if admission_id is None or "admissionId" in problems:
        return
    declared = REGISTRY.get("Admission")
    if declared is None or declared.model is None:
        problems.require(False, "admissionId", "admissions are not recorded yet")
        return
    found = await db.collection(declared.model).find_one({"_id": admission_id})
    if problems.require(found is not None, "admissionId", "no such admission"):
        assert found is not None
        problems.require(
            found.get("patient_id") == patient_id,
            "admissionId",
            "is an admission of another patient",
        )
        problems.require(
            str(found.get("status")) == "active",
            "admissionId",
            f"the admission is {found.get('status')}, not active",
        )


Keys = set[scheduling.Key]


def reservation_keys(
    booking: SurgeryBooking, start: datetime, end: datetime, until: datetime
) -> list[Keys]:
    """What each holder reserves: the theatre for the case and its cleaning, the surgeon and
    the patient for the case (``SURGERY_HOLDER``); the anaesthetist for the case."""
    case = grid_slots(start, end)
    main: Keys = {
        (ReservedResource.THEATRE, booking.theatre_id, s) for s in grid_slots(start, until)
    }
    main |= {(ReservedResource.DOCTOR, booking.surgeon_id, s) for s in case}
    main |= {(ReservedResource.PATIENT, booking.patient_id, s) for s in case}
    anaesthetist: Keys = {(ReservedResource.DOCTOR, booking.anaesthetist_id, s) for s in case}
    return [main, anaesthetist]


_HOLDERS = (SURGERY_HOLDER, ANAESTHESIA_HOLDER)


async def reserve_all(booking: SurgeryBooking, wanted: Sequence[Keys]) -> list[ObjectId]:
    """Hold every key of both holders, or none of them (``CONFLICT`` naming who clashed)."""
    assert booking.id is not None
    taken: list[ObjectId] = []
    try:
        for holder, keys in zip(_HOLDERS, wanted, strict=True):
            taken += await scheduling.reserve(booking.id, keys, holder)
    except Conflict as clash:
        await scheduling.release_reservations(taken)
        raise await _named(booking, wanted, clash) from None
    except BaseException:
        await scheduling.release_reservations(taken)
        raise
    return taken


_ROLES = (
    ("theatre", "theatreId", ReservedResource.THEATRE, "theatre_id"),
    ("surgeon", "surgeonId", ReservedResource.DOCTOR, "surgeon_id"),
    ("anaesthetist", "anaesthetistId", ReservedResource.DOCTOR, "anaesthetist_id"),
    ("patient", "patientId", ReservedResource.PATIENT, "patient_id"),
)


async def _named(booking: SurgeryBooking, wanted: Sequence[Keys], clash: Conflict) -> Conflict:
    """The reservation clash, naming the booking's roles that are held by someone else."""
    keys = set().union(*wanted)
    roles: list[str] = []
    fields: list[str] = []
    for role, field, resource, attribute in _ROLES:
        resource_id = getattr(booking, attribute)
        slots = [s for r, i, s in keys if r == resource and i == resource_id]
        if not slots:
            continue
        other = await db.collection(Reservation).find_one(
            {
                "resource": resource.value,
                "resource_id": resource_id,
                "slot": {"$in": slots},
                "appointment_id": {"$ne": booking.id},
            },
            projection={"_id": 1},
        )
        if other is not None:
            roles.append(role)
            fields.append(field)
    if not roles:
        return clash
    detail = clash.message[clash.message.find(" (") :] if " (" in clash.message else ""
    message = f"Already booked at this time: {', '.join(roles)}{detail}"
    return Conflict(message, **{**clash.extensions, "clashes": roles, "fields": fields})


async def book(data: Mapping[str, Any]) -> SurgeryBooking:
    """Book a case; every problem of the input is reported at once, then the four resources
    are reserved together or not at all."""
    problems = Problems()
    now = utcnow()
    theatre_id = data.get("theatre_id")
    theatre = await OperatingTheatre.get(theatre_id) if isinstance(theatre_id, ObjectId) else None
    if problems.require(theatre is not None, "theatreId", "no such theatre"):
        assert theatre is not None
        problems.require(theatre.active, "theatreId", "the theatre is not in use")
    end = data.get("end_at")
    turnover = timedelta(minutes=theatre.turnover_minutes if theatre else 0)
    fields = {
        **{k: v for k, v in data.items() if k in _BOOKING_INPUT},
        "department_id": theatre.department_id if theatre else ObjectId(),
        "reserved_until": end + turnover if isinstance(end, datetime) else end,
        "status": SurgeryStatus.SCHEDULED,
        "status_at": now,
        "created_at": now,
        "updated_at": now,
    }
    booking = problems.build(SurgeryBooking, fields)
    await _doctor(problems, "surgeonId", data.get("surgeon_id"))
    anaesthetist = await _doctor(problems, "anaesthetistId", data.get("anaesthetist_id"))
    if anaesthetist is not None:
        problems.require(
            is_anaesthetist(anaesthetist),
            "anaesthetistId",
            f"is a doctor of {anaesthetist.specialty}, not anaesthesia",
        )
    if data.get("surgeon_id") is not None:
        problems.require(
            data.get("surgeon_id") != data.get("anaesthetist_id"),
            "anaesthetistId",
            "must be another doctor than the surgeon",
        )
    if "patientId" not in problems:
        await problems.check(
            common.ensure_exists(Patient, data.get("patient_id"), "patientId", "patient")
        )
    await _check_admission(problems, data.get("admission_id"), data.get("patient_id"))
    priority = SurgeryPriority(data.get("priority") or SurgeryPriority.ELECTIVE)
    _time_problems(problems, data.get("start_at"), end, now, priority)
    problems.raise_any()
    assert booking is not None
    booking.id = PydanticObjectId()  # chosen now: the reservations name it before it exists
    wanted = reservation_keys(booking, booking.start_at, booking.end_at, booking.reserved_until)
    await reserve_all(booking, wanted)
    try:
        await booking.insert()
    except BaseException:
        await scheduling.release_holder(booking.id)
        raise
    await changed(booking, "created")  # the care relationships follow (services.care)
    return booking


_BOOKING_INPUT = frozenset(
    {
        "patient_id",
        "admission_id",
        "theatre_id",
        "surgeon_id",
        "anaesthetist_id",
        "start_at",
        "end_at",
        "procedure",
        "priority",
        "notes",
    }
)


async def _booking_cas(
    booking: SurgeryBooking,
    expected: Query,
    sets: Mapping[str, Any],
    push: Mapping[str, Any] | None = None,
) -> SurgeryBooking | None:
    now = utcnow()
    update: dict[str, Any] = {
        "$set": {k: _enc(v) for k, v in {**sets, "updated_at": now}.items()},
        "$inc": {"version": 1},
    }
    if "status" in sets:
        update["$set"]["status_at"] = now
    if push:
        update["$push"] = {k: _enc(v) for k, v in push.items()}
    raw = await db.collection(SurgeryBooking).find_one_and_update(
        {"_id": booking.id, **expected}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else SurgeryBooking.model_validate(raw)


def _require_status(booking: SurgeryBooking, allowed: SurgeryStatus, what: str) -> None:
    status = booking.status.value
    require(
        booking.status == allowed,
        "id",
        f"only a {allowed.value} surgery can {what}; this one is {status}",
    )


def _require_version(booking: SurgeryBooking, version: int | None) -> None:
    if version is not None:
        require(version == booking.version, "version", f"the booking is at {booking.version}")


async def reschedule(
    id: ObjectId,
    start_at: datetime,
    end_at: datetime,
    reason: str | None,
    version: int | None = None,
) -> SurgeryBooking:
    booking = await get_booking(id)
    now = utcnow()
    problems = Problems()
    _time_problems(problems, start_at, end_at, now, booking.priority)
    if booking.status != SurgeryStatus.SCHEDULED:
        problems.require(
            False, "id", f"only a scheduled surgery moves; this one is {booking.status}"
        )
    entry = problems.build(
        SurgeryReschedule,
        {
            "previous_start_at": booking.start_at,
            "previous_end_at": booking.end_at,
            "start_at": start_at,
            "end_at": end_at,
            "reason": reason,
            "at": now,
        },
    )
    problems.raise_any()
    assert entry is not None
    _require_version(booking, version)
    require(
        (entry.start_at, entry.end_at) != (booking.start_at, booking.end_at),
        "startAt",
        "is the current time already",
    )
    theatre = await get_theatre(booking.theatre_id)
    until = entry.end_at + timedelta(minutes=theatre.turnover_minutes)
    held = {
        (ReservedResource(r["resource"]), r["resource_id"], r["slot"]): r["_id"]
        for r in await db.collection(Reservation).find({"appointment_id": id}).to_list(None)
    }
    wanted = reservation_keys(booking, entry.start_at, entry.end_at, until)
    taken = await reserve_all(booking, [keys - held.keys() for keys in wanted])
    stored = await _booking_cas(
        booking,
        {"status": SurgeryStatus.SCHEDULED.value, "version": booking.version},
        {"start_at": entry.start_at, "end_at": entry.end_at, "reserved_until": until},
        push={"reschedule_history": entry},
    )
    if stored is None:
        await scheduling.release_reservations(taken)
        raise Conflict("The surgery booking changed meanwhile; read it again and retry")
    keep = set().union(*wanted)
    await scheduling.release_reservations([rid for key, rid in held.items() if key not in keep])
    await changed(stored, "rescheduled")
    return stored


async def cancel(id: ObjectId, reason: str, version: int | None = None) -> SurgeryBooking:
    booking = await get_booking(id)
    cancellation = build(SurgeryCancellation, {"reason": reason, "at": utcnow()})
    _require_status(booking, SurgeryStatus.SCHEDULED, "be cancelled")
    _require_version(booking, version)
    stored = await _booking_cas(
        booking,
        {"status": SurgeryStatus.SCHEDULED.value},
        {"status": SurgeryStatus.CANCELLED.value, "cancellation": cancellation},
    )
    if stored is None:
        raise Conflict("The surgery booking changed meanwhile; read it again and retry")
    await scheduling.release_holder(id)  # inactive now: the theatre and people are free at once
    await changed(stored, "cancelled")
    return stored


# -- the operation ---------------------------------------------------------------------------


def _checks(items: Sequence[Any], by: ObjectId | None, at: datetime) -> list[ChecklistCheck]:
    if not items:
        return []
    require(by is not None, "checklist", "items are checked by a staff member with a record")
    assert by is not None
    return [
        ChecklistCheck(item=ChecklistItem(item), checked_by_id=by, checked_at=at)
        for item in dict.fromkeys(items)
    ]


def _merge_checks(old: list[ChecklistCheck], new: list[ChecklistCheck]) -> list[ChecklistCheck]:
    """An item once checked stays as first checked (who and when)."""
    have = {c.item for c in old}
    return [*old, *(c for c in new if c.item not in have)]


def checklist_complete(record: SurgicalRecord) -> bool:
    return {c.item for c in record.checklist} >= set(ChecklistItem)


def _record_problems(record: SurgicalRecord, now: datetime) -> None:
    """The rules a record must keep after every change, reported together."""
    problems = Problems()
    times = [(name, getattr(record, name)) for name in SURGICAL_TIMES]
    given = [(name, value) for name, value in times if value is not None]
    for (before, earlier), (after, later) in pairwise(given):
        problems.require(later >= earlier, _camel(after), f"must not be before {_camel(before)}")
    for name, value in given:
        problems.require(value <= now + SLOT, _camel(name), "must not be in the future")
    if record.incision_at is not None:
        missing = sorted(set(ChecklistItem) - {c.item for c in record.checklist})
        if problems.require(
            not missing,
            "incisionAt",
            f"the pre-op checklist is incomplete: {', '.join(m.value for m in missing)}",
        ):
            late = [c for c in record.checklist if c.checked_at > record.incision_at]
            problems.require(
                not late, "incisionAt", "the checklist must be complete before the incision"
            )
    if record.post_op_ward_id is not None:
        problems.require(
            record.post_op_destination == PostOpDestination.WARD,
            "postOpWardId",
            "is given only when the destination is a ward",
        )
    problems.raise_any()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def _check_ward(ward_id: Any) -> None:
    if ward_id is None:
        return
    declared = REGISTRY.get("Ward")
    if declared is None or declared.model is None:
        return  # wards are not recorded in this deployment: the id is kept as given
    found = await db.collection(declared.model).find_one({"_id": ward_id}, {"_id": 1})
    require(found is not None, "postOpWardId", "no such ward")


_RECORD_INPUT = frozenset(
    {
        *SURGICAL_TIMES,
        "anaesthesia_type",
        "procedure_codes",
        "complications",
        "post_op_destination",
        "post_op_ward_id",
        "notes",
    }
)


async def start(
    id: ObjectId, by: ObjectId | None, data: Mapping[str, Any] | None = None
) -> SurgicalRecord:
    """The case begins: its record is created (with any checklist items and times given) and
    the booking moves to in progress."""
    booking = await get_booking(id)
    _require_status(booking, SurgeryStatus.SCHEDULED, "start")
    data = dict(data or {})
    now = utcnow()
    unknown = set(data) - _RECORD_INPUT - {"checklist"}
    require(not unknown, "input", f"unknown fields: {', '.join(sorted(unknown))}")
    record = build(
        SurgicalRecord,
        {
            **{k: v for k, v in data.items() if k in _RECORD_INPUT},
            "booking_id": booking.id,
            "patient_id": booking.patient_id,
            "theatre_id": booking.theatre_id,
            "department_id": booking.department_id,
            "surgeon_id": booking.surgeon_id,
            "anaesthetist_id": booking.anaesthetist_id,
            "checklist": _checks(data.get("checklist") or [], by, now),
            "created_at": now,
            "updated_at": now,
        },
    )
    _record_problems(record, now)
    await _check_ward(record.post_op_ward_id)
    record.id = PydanticObjectId()
    mine = True
    try:
        await record.insert()
    except DuplicateKeyError:  # an interrupted or concurrent start's record: take it up
        found = await record_of(id)
        if found is None:
            raise Conflict("The surgery is being started; read it again") from None
        record, mine = found, False
    stored = await _booking_cas(
        booking,
        {"status": SurgeryStatus.SCHEDULED.value, "version": booking.version},
        {"status": SurgeryStatus.IN_PROGRESS.value, "record_id": record.id},
    )
    if stored is None:
        if mine:
            fresh = await get_booking(id)
            if fresh.record_id != record.id:
                await db.collection(SurgicalRecord).delete_one({"_id": record.id})
        raise Conflict("The surgery booking changed meanwhile (started or cancelled)")
    if mine:
        await changed(record, "created")
    await changed(stored, "started")
    return record


async def update_record(
    id: ObjectId, changes: Mapping[str, Any], by: ObjectId | None, version: int | None = None
) -> SurgicalRecord:
    """Record times, checklist items (added, never unchecked), anaesthesia and procedure."""
    record = await get_record(id)
    booking = await get_booking(record.booking_id)
    _require_status(booking, SurgeryStatus.IN_PROGRESS, "be recorded")
    if version is not None:
        require(version == record.version, "version", f"the record is at {record.version}")
    unknown = set(changes) - _RECORD_INPUT - {"checklist"}
    require(not unknown, "input", f"unknown fields: {', '.join(sorted(unknown))}")
    now = utcnow()
    sets = {k: v for k, v in changes.items() if k in _RECORD_INPUT}
    if "checklist" in changes:
        new = _checks(changes.get("checklist") or [], by, now)
        sets["checklist"] = _merge_checks(record.checklist, new)
    candidate = build(SurgicalRecord, {**record.model_dump(), **sets, "updated_at": now})
    _record_problems(candidate, now)
    if "post_op_ward_id" in sets:
        await _check_ward(candidate.post_op_ward_id)
    fields = {k: getattr(candidate, k) for k in sets}
    unset = {k: "" for k, v in fields.items() if v is None}
    update: dict[str, Any] = {
        "$set": {
            **{k: _enc(v) for k, v in fields.items() if v is not None},
            "updated_at": now,
        },
        "$inc": {"version": 1},
    }
    if unset:
        update["$unset"] = unset
    raw = await db.collection(SurgicalRecord).find_one_and_update(
        {"_id": id, "version": record.version, "completed_at": None},
        update,
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The surgical record changed meanwhile; read it again and retry")
    stored = SurgicalRecord.model_validate(raw)
    await changed(stored, "updated")
    return stored


def theatre_charge(theatre: OperatingTheatre, record: SurgicalRecord) -> int:
    """Theatre time, per started 15 minutes from in-theatre to out-of-theatre."""
    assert record.in_theatre_at is not None and record.out_of_theatre_at is not None
    spent = record.out_of_theatre_at - record.in_theatre_at
    blocks = max(1, -(-spent // CHARGE_BLOCK))
    return blocks * theatre.hourly_rate // 4


def procedure_fee(record: SurgicalRecord) -> int:
    return PROCEDURE_FEE + ADDITIONAL_PROCEDURE_FEE * max(0, len(record.procedure_codes) - 1)


async def complete(id: ObjectId) -> SurgeryBooking:
    """The patient has left the theatre: the booking completes, its time is freed and the
    patient is charged once. Repeating it on a completed, uncharged booking charges it."""
    booking = await get_booking(id)
    if booking.status == SurgeryStatus.COMPLETED and booking.charged_at is None:
        return await _settle(booking)
    _require_status(booking, SurgeryStatus.IN_PROGRESS, "complete")
    record = await record_of(id)
    require(record is not None, "id", "the surgery has no record")
    assert record is not None
    problems = Problems()
    problems.require(record.in_theatre_at is not None, "inTheatreAt", "is required to complete")
    problems.require(
        record.out_of_theatre_at is not None, "outOfTheatreAt", "is required to complete"
    )
    problems.require(
        record.post_op_destination is not None, "postOpDestination", "is required to complete"
    )
    if record.incision_at is not None:
        problems.require(record.closure_at is not None, "closureAt", "is required after incision")
    problems.raise_any()
    stored = await _booking_cas(
        booking,
        {"status": SurgeryStatus.IN_PROGRESS.value},
        {"status": SurgeryStatus.COMPLETED.value},
    )
    if stored is None:
        raise Conflict("The surgery booking changed meanwhile (completed already?)")
    await scheduling.release_holder(id)  # inactive now: the theatre's remaining time is free
    now = utcnow()
    raw = await db.collection(SurgicalRecord).find_one_and_update(
        {"_id": record.id, "completed_at": None},
        {"$set": {"completed_at": now, "updated_at": now}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is not None:
        await changed(SurgicalRecord.model_validate(raw), "completed")
    await changed(stored, "completed")
    return await _settle(stored)


async def _settle(booking: SurgeryBooking) -> SurgeryBooking:
    """Post the completed case's two charges (each at most once) and note them."""
    record = await record_of(booking.id)  # type: ignore[arg-type]
    assert record is not None and record.id is not None and booking.id is not None
    theatre = await get_theatre(booking.theatre_id)
    time_amount, fee = theatre_charge(theatre, record), procedure_fee(record)
    # The bill's lines name the theatre and the procedure codes, never the operation's
    # description: billing reads no clinical text, and the booking keeps it sealed.
    await _charge(booking, booking.id, f"Theatre time {theatre.code}", time_amount)
    codes = f" ({', '.join(record.procedure_codes)})" if record.procedure_codes else ""
    await _charge(booking, record.id, f"Surgical procedure{codes}", fee)
    charged = await _booking_cas(
        booking,
        {"charged_at": None},
        {"charged_at": utcnow(), "theatre_charge": time_amount, "procedure_fee": fee},
    )
    if charged is None:
        return await get_booking(booking.id)
    await changed(charged, "charged")
    return charged


async def _charge(booking: SurgeryBooking, source_id: ObjectId, text: str, amount: int) -> None:
    """One charge on the patient's account, at most once (billing's guard decides)."""
    account = await BillingAccount.find_one({"patient_id": booking.patient_id})
    if account is None:
        try:
            account = await billing.open_billing_account(booking.patient_id)
        except Conflict:  # opened by a concurrent request
            account = await BillingAccount.find_one({"patient_id": booking.patient_id})
    assert account is not None and account.id is not None
    if _charged(account, source_id):
        return
    charge = {
        "description": text[:200],
        "amount": amount,
        "currency": account.currency,
        "source": CHARGE_SOURCE,
        "source_id": source_id,
    }
    try:
        await billing.add_charge(account.id, charge)
    except Conflict:
        fresh = await BillingAccount.get(account.id)
        if fresh is None or not _charged(fresh, source_id):
            raise


def _charged(account: BillingAccount, source_id: ObjectId) -> bool:
    return any(c.source == CHARGE_SOURCE and c.source_id == source_id for c in account.charges)
