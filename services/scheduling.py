"""Scheduling, rescheduling and cancelling appointments, with no double booking.

No two active appointments (scheduled or checked in) may overlap for one doctor, one patient or
one device. MongoDB enforces it, across requests and processes and without transactions: every
active appointment holds one ``Reservation`` per resource per 5-minute grid slot of its window,
and a unique index on (resource, resource_id, slot) refuses a second holder of any slot.

- Book: the appointment's id is chosen first; all its reservations go in with ONE ordered
  ``insert_many``. A duplicate key undoes this attempt's inserts and answers ``CONFLICT`` naming
  what clashed; only when every slot is held is the appointment inserted (its failure releases
  them). So booking is all or nothing, and no check-then-insert race exists.
- Reschedule: reserve the new slots the appointment does not hold yet (``CONFLICT`` changes
  nothing), then the compare-and-set update, then release the old slots outside the new window.
- Cancel: the update first, then the reservations go: the time is free at once.
- Visits: check-in (scheduled -> checked_in), completion (checked_in -> completed) and no-show
  (scheduled -> no_show, once the start has passed) are compare-and-sets on the status; the two
  final ones are inactive, so like a cancel they then release the appointment's reservations.
- Orphans: a crash between those steps can leave reservations nobody should hold. ``reserve``
  treats a clashing reservation as stale when its appointment is inactive, or (after
  ``STALE_AFTER``, so bookings and reschedules still in flight are never robbed) missing or no
  longer covering that resource and slot; it deletes such a reservation only if unchanged (by
  ``_id`` and ``appointment_id``) and retries once. A process stalled longer than ``STALE_AFTER``
  between its two writes is the one window this leaves; request timeouts are far shorter.
- Other holders: records of other modules hold slots the same way (an imaging study books its
  scanner: ``services.radiology``), each kind registered in ``RESERVATION_HOLDERS`` with the
  statuses that hold time and the fields that name its resources and window. A reservation
  records its holder's kind (none: an appointment), so orphans are judged by their own kind,
  and an appointment and a study can never share a device's slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pydantic import BaseModel
from pymongo.errors import BulkWriteError

import db
from errors import BadUserInput, Conflict
from models.base import LongText, utcnow
from models.equipment import EquipmentStatus, MedicalEquipment
from models.patients import Patient
from models.scheduling import (
    ACTIVE_APPOINTMENT_STATUSES,
    APPOINTMENT_HOLDER,
    RESERVATION_HOLDERS,
    SLOT,
    Appointment,
    AppointmentStatus,
    Cancellation,
    Reschedule,
    Reservation,
    ReservationHolder,
    ReservedResource,
    grid_slots,
    held_resources,
    on_grid,
)
from models.staff import Doctor
from services import common
from services.availability import calendar_refusal
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, paginate
from services.validation import Problems, build, instant, require

BY_START: Sort = (("start_at", ASC), ("_id", ASC))
MAX_DURATION = timedelta(hours=12)
STALE_AFTER = timedelta(minutes=5)
"""How old a reservation without a live appointment covering it must be to count as an orphan."""
_encoder = Encoder()


def appointment_filter(
    *,
    doctor_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    equipment_id: ObjectId | None = None,
    statuses: Sequence[AppointmentStatus] = (),
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
) -> Query:
    # Offset instants near the calendar's ends cannot be encoded: BAD_USER_INPUT, not INTERNAL.
    if starts_from is not None and starts_from.tzinfo is not None:
        starts_from = instant(starts_from, "filter.from")
    if starts_before is not None and starts_before.tzinfo is not None:
        starts_before = instant(starts_before, "filter.to")
    if starts_from and starts_before:
        require(starts_before > starts_from, "to", "must be after from")
    query: Query = {}
    for field, value in (
        ("doctor_id", doctor_id),
        ("patient_id", patient_id),
        ("department_id", department_id),
        ("equipment_id", equipment_id),
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


async def list_appointments(query: Query, args: PageArgs) -> Page[Appointment]:
    return await paginate(Appointment, query, BY_START, args)


async def get_appointment(id: ObjectId) -> Appointment:
    return await common.get_or_404(Appointment, id, "Appointment")


def _check_times(start_at: datetime, end_at: datetime, now: datetime, problems: Problems) -> None:
    """Every rule the times break, recorded together."""
    problems.require(end_at > start_at, "endAt", "must be after startAt")
    grid = f"must be on the {SLOT.seconds // 60}-minute grid (like 09:00, 09:05, 09:10)"
    problems.require(on_grid(start_at), "startAt", grid)
    problems.require(on_grid(end_at), "endAt", grid)
    longest = "an appointment may last at most 12 hours"
    problems.require(end_at - start_at <= MAX_DURATION, "endAt", longest)
    problems.require(start_at > now, "startAt", "must be in the future")


def _given_times(data: Mapping[str, Any], problems: Problems) -> tuple[datetime, datetime] | None:
    """The booking's times when the rest of it did not validate, so their rules are reported
    in the same answer; None when they are missing or already reported."""
    start_at, end_at = data.get("start_at"), data.get("end_at")
    if not isinstance(start_at, datetime) or not isinstance(end_at, datetime):
        return None
    if "startAt" in problems or "endAt" in problems:
        return None
    try:
        return instant(start_at, "startAt"), instant(end_at, "endAt")
    except BadUserInput:
        return None


# -- reservations ------------------------------------------------------------------------------

Key = tuple[ReservedResource, ObjectId, datetime]
"""One grid slot of one resource: the unique key of a reservation."""


def _keys(appointment: Appointment, start_at: datetime, end_at: datetime) -> set[Key]:
    return {
        (resource, resource_id, slot)
        for resource, resource_id in held_resources(appointment)
        for slot in grid_slots(start_at, end_at)
    }


def _key_of(raw: Mapping[str, Any]) -> Key:
    return ReservedResource(raw["resource"]), raw["resource_id"], raw["slot"]


def _reservations() -> Any:
    return db.collection(Reservation)


async def _held(appointment_id: ObjectId) -> dict[Key, ObjectId]:
    """The reservations ``appointment_id`` holds now, key -> reservation id."""
    cursor = _reservations().find({"appointment_id": appointment_id})
    return {_key_of(raw): raw["_id"] for raw in await cursor.to_list(None)}


async def _release(reservation_ids: Collection[ObjectId]) -> None:
    if reservation_ids:
        await _reservations().delete_many({"_id": {"$in": list(reservation_ids)}})


async def _release_appointment(appointment_id: ObjectId) -> None:
    await _reservations().delete_many({"appointment_id": appointment_id})


async def release_holder(holder_id: ObjectId) -> None:
    """Free every slot ``holder_id`` holds: for other holders' modules (an imaging study that
    completed or was cancelled), as appointments do when they become inactive."""
    await _release_appointment(holder_id)


async def release_reservations(reservation_ids: Collection[ObjectId]) -> None:
    """Undo reservations ``reserve`` just returned, when the holder's next step failed."""
    await _release(reservation_ids)


async def _holders(keys: Iterable[Key]) -> list[dict[str, Any]]:
    """The reservations currently holding any of ``keys``, whoever holds them."""
    slots: dict[tuple[ReservedResource, ObjectId], list[datetime]] = defaultdict(list)
    for resource, resource_id, slot in keys:
        slots[(resource, resource_id)].append(slot)
    clauses = [
        {"resource": resource.value, "resource_id": resource_id, "slot": {"$in": times}}
        for (resource, resource_id), times in slots.items()
    ]
    if not clauses:
        return []
    found: list[dict[str, Any]] = await _reservations().find({"$or": clauses}).to_list(None)
    return found


def _covers(holder: ReservationHolder, record: Mapping[str, Any], raw: Mapping[str, Any]) -> bool:
    """Does this stored record still occupy the resource and slot ``raw`` reserves?"""
    field = holder.resources.get(ReservedResource(raw["resource"]))
    return bool(
        field is not None
        and record.get(field) == raw["resource_id"]
        and record[holder.start] <= raw["slot"] < record[holder.end]
    )


def _holder_of(raw: Mapping[str, Any]) -> ReservationHolder | None:
    """The registered kind of a reservation's holder (appointments wrote none: theirs)."""
    return RESERVATION_HOLDERS.get(raw.get("holder") or APPOINTMENT_HOLDER.name)


async def _stale(holders: list[dict[str, Any]], mine: ObjectId) -> list[dict[str, Any]]:
    """The holders no live record needs (see the module notes on orphans).

    Each reservation is judged by its holder's kind (``RESERVATION_HOLDERS``); one of a kind
    this process does not know is never taken for stale.
    """
    others: dict[str, set[ObjectId]] = defaultdict(set)
    for raw in holders:
        kind = _holder_of(raw)
        if kind is not None and raw["appointment_id"] != mine:
            others[kind.name].add(raw["appointment_id"])
    records: dict[tuple[str, ObjectId], dict[str, Any]] = {}
    unclaimed: set[tuple[str, ObjectId]] = set()
    for name, record_ids in others.items():
        kind = RESERVATION_HOLDERS[name]
        cursor = db.collection(kind.model).find({"_id": {"$in": list(record_ids)}})
        found = {raw["_id"]: raw for raw in await cursor.to_list(None)}
        records.update({(name, id): raw for id, raw in found.items()})
        if kind.claimed_by is not None and found:
            field, parent_model, parent_field = kind.claimed_by
            wanted = {raw.get(field) for raw in found.values()}
            parents = db.collection(parent_model).find(
                {"_id": {"$in": list(wanted)}}, projection={parent_field: 1}
            )
            named = {raw.get(parent_field) for raw in await parents.to_list(None)}
            unclaimed |= {(name, id) for id in found if id not in named}
    settled = utcnow() - STALE_AFTER
    stale = []
    for raw in holders:
        if raw["appointment_id"] == mine:
            continue  # our own concurrent request (say, a second reschedule): never an orphan
        kind = _holder_of(raw)
        if kind is None:
            continue
        record = records.get((kind.name, raw["appointment_id"]))
        if record is not None and str(record.get("status")) not in kind.active:
            stale.append(raw)  # an inactive holder never becomes active again
        elif raw["created_at"] < settled and (
            record is None
            or not _covers(kind, record, raw)
            or (kind.name, raw["appointment_id"]) in unclaimed
        ):
            stale.append(raw)
    return stale


def _clash(holders: list[dict[str, Any]], fallback: Iterable[str]) -> Conflict:
    resources = sorted({raw["resource"] for raw in holders} or set(fallback))
    by_kind: dict[str, set[str]] = defaultdict(set)
    for raw in holders:
        kind = _holder_of(raw) or APPOINTMENT_HOLDER
        by_kind[kind.name].add(str(raw["appointment_id"]))
    named = {name: sorted(ids) for name, ids in sorted(by_kind.items())}
    message = f"Already booked at this time: {', '.join(resources)}"
    if named:
        parts = [f"{RESERVATION_HOLDERS[n].label} {', '.join(i)}" for n, i in named.items()]
        message += f" ({'; '.join(parts)})"
    others: dict[str, Any] = {
        RESERVATION_HOLDERS[n].extension: i
        for n, i in named.items()
        if n != APPOINTMENT_HOLDER.name
    }
    appointment_ids = named.get(APPOINTMENT_HOLDER.name, [])
    return Conflict(message, conflicts=resources, appointmentIds=appointment_ids, **others)


async def reserve(
    appointment_id: ObjectId,
    keys: Collection[Key],
    holder: ReservationHolder = APPOINTMENT_HOLDER,
) -> list[ObjectId]:
    """Hold every one of ``keys`` for ``appointment_id``, or none of them and ``CONFLICT``.

    ``holder`` is the kind of record ``appointment_id`` names (an appointment unless said
    otherwise: an imaging study books its scanner here too). One ordered ``insert_many`` in a
    global key order; the unique index is the judge. Returns the ids of the reservations
    inserted, for the caller to release if its next step fails.
    """
    ordered = sorted(keys, key=lambda k: (k[2], k[0].value, k[1]))
    for attempt in range(2):
        now = utcnow()
        docs: list[dict[str, Any]] = [
            {
                "_id": ObjectId(),
                "resource": resource.value,
                "resource_id": resource_id,
                "slot": slot,
                "appointment_id": appointment_id,
                "holder": holder.name,
                "created_at": now,
            }
            for resource, resource_id, slot in ordered
        ]
        if not docs:
            return []
        try:
            await _reservations().insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            ids = [doc["_id"] for doc in docs]
            await _release(ids)  # undo this attempt: only its own, freshly made ids
            errors = (exc.details or {}).get("writeErrors") or []
            if any(error.get("code") != 11000 for error in errors):
                raise
            failed = {str(error.get("op", {}).get("resource", "")) for error in errors} - {""}
            holders = await _holders(ordered)
            stale = await _stale(holders, appointment_id)
            live = [raw for raw in holders if raw not in stale]
            if live or attempt == 1:
                raise _clash(live or holders, failed) from None
            for raw in stale:  # only if nobody changed it since we looked
                await _reservations().delete_one(
                    {"_id": raw["_id"], "appointment_id": raw["appointment_id"]}
                )
            continue
        return [doc["_id"] for doc in docs]
    raise AssertionError("unreachable")  # pragma: no cover


# -- bookings ------------------------------------------------------------------------------------


async def _fits_calendar(appointment: Appointment, zone: ZoneInfo | None) -> None:
    if zone is None:
        return
    refusal = await calendar_refusal(
        appointment.doctor_id, appointment.start_at, appointment.end_at, zone
    )
    if refusal is not None:
        raise BadUserInput(f"startAt: the time {refusal}", {"startAt": refusal})


async def schedule_appointment(
    data: Mapping[str, Any], zone: ZoneInfo | None = None
) -> Appointment:
    """Book; given the facility's ``zone``, the doctor's calendar (if any) must allow it.

    Every problem of the booking (its fields, its references, its times) is reported at once.
    """
    problems = Problems()
    doctor_id, equipment_id = data.get("doctor_id"), data.get("equipment_id")
    doctor = await Doctor.get(doctor_id) if isinstance(doctor_id, ObjectId) else None
    # department_id comes from the doctor, not the client: it is what department filters rely on.
    fields = dict(data, department_id=doctor.department_id if doctor else ObjectId())
    appointment = problems.build(Appointment, fields)
    if "doctorId" not in problems and problems.require(
        doctor is not None, "doctorId", "no such doctor"
    ):
        assert doctor is not None
        problems.require(doctor.active, "doctorId", "doctor is not active")
    if "patientId" not in problems:
        patient_id = data.get("patient_id")
        await problems.check(common.ensure_exists(Patient, patient_id, "patientId", "patient"))
    if isinstance(equipment_id, ObjectId) and "equipmentId" not in problems:
        equipment = await MedicalEquipment.get(equipment_id)
        if problems.require(equipment is not None, "equipmentId", "no such equipment"):
            assert equipment is not None
            problems.require(
                equipment.status != EquipmentStatus.OUT_OF_SERVICE,
                "equipmentId",
                "equipment is out of service",
            )
    times = (
        (appointment.start_at, appointment.end_at)
        if appointment is not None
        else _given_times(data, problems)
    )
    if times is not None:
        _check_times(*times, utcnow(), problems)
    if appointment is not None and not problems:  # the calendar needs a valid booking to judge
        await problems.check(_fits_calendar(appointment, zone))
    problems.raise_any()
    assert appointment is not None  # built, or raise_any raised
    appointment.status = AppointmentStatus.SCHEDULED
    appointment.id = PydanticObjectId()  # chosen now: the reservations name it before it exists
    await reserve(appointment.id, _keys(appointment, appointment.start_at, appointment.end_at))
    try:
        await appointment.insert()
    except Exception:
        await _release_appointment(appointment.id)
        raise
    await changed(appointment, "created")  # its care relationship follows (services.care)
    return appointment


async def _compare_and_set(
    appointment: Appointment,
    expected: Query,
    changes: Query,
    push: Query | None = None,
) -> Appointment:
    """Apply ``changes`` only if the appointment still matches ``expected``; CONFLICT if not.

    The caller publishes the change (``changed``) once its reservations are settled.
    """
    operation: Query = {"$set": {k: _encoder.encode(v) for k, v in changes.items()}}
    if push:
        operation["$push"] = {k: _encoder.encode(v) for k, v in push.items()}
    result = await db.collection(Appointment).update_one(
        {"_id": appointment.id, **expected}, operation
    )
    if result.matched_count == 0:
        raise Conflict("The appointment changed meanwhile; read it again and retry")
    return await get_appointment(appointment.id)  # type: ignore[arg-type]


async def reschedule_appointment(
    id: ObjectId,
    start_at: datetime,
    end_at: datetime,
    reason: str | None,
    zone: ZoneInfo | None = None,
) -> Appointment:
    appointment = await get_appointment(id)
    now = utcnow()
    problems = Problems()  # the new times' problems and the appointment's state, together
    entry = problems.build(
        Reschedule,
        {
            "id": ObjectId(),  # this write's own: its confirmation is keyed on it
            "previous_start_at": appointment.start_at,
            "previous_end_at": appointment.end_at,
            "start_at": start_at,
            "end_at": end_at,
            "reason": reason,
            "at": now,
        },
    )
    if entry is not None:
        _check_times(entry.start_at, entry.end_at, now, problems)
    if appointment.status != AppointmentStatus.SCHEDULED:
        status = appointment.status.value
        problems.add(
            BadUserInput(
                f"Only scheduled appointments can be rescheduled; this one is {status}",
                {"id": f"appointment is {status}"},
            )
        )
    if entry is not None and "startAt" not in problems:
        problems.require(
            (entry.start_at, entry.end_at) != (appointment.start_at, appointment.end_at),
            "startAt",
            "is the current time already",
        )
    if entry is not None and not problems:  # the calendar needs valid times to judge
        moved = appointment.model_copy(update={"start_at": entry.start_at, "end_at": entry.end_at})
        await problems.check(_fits_calendar(moved, zone))
    problems.raise_any()
    assert entry is not None  # built, or raise_any raised
    # Hold the new time first (only the slots not held already), move, then let the old go.
    held = await _held(id)
    wanted = _keys(appointment, entry.start_at, entry.end_at)
    taken = await reserve(id, wanted - held.keys())
    try:
        stored = await _compare_and_set(
            appointment,
            {
                "status": AppointmentStatus.SCHEDULED.value,
                "start_at": appointment.start_at,
                "end_at": appointment.end_at,
            },
            {"start_at": entry.start_at, "end_at": entry.end_at, "updated_at": now},
            push={"reschedule_history": entry},
        )
    except Exception:
        await _release(taken)
        raise
    await _release([rid for key, rid in held.items() if key not in wanted])
    await changed(stored, "rescheduled")
    return stored


async def cancel_appointment(id: ObjectId, reason: str | None) -> Appointment:
    appointment = await get_appointment(id)
    now = utcnow()
    cancellation = build(Cancellation, {"reason": reason, "at": now})
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise BadUserInput(
            f"Only scheduled appointments can be cancelled; this one is {appointment.status.value}",
            {"id": f"appointment is {appointment.status.value}"},
        )
    stored = await _compare_and_set(
        appointment,
        {"status": AppointmentStatus.SCHEDULED.value},
        {
            "status": AppointmentStatus.CANCELLED.value,
            "cancellation": cancellation,
            "updated_at": now,
        },
    )
    await _release_appointment(id)  # inactive now: its time is free at once
    await changed(stored, "cancelled")
    return stored


# -- visits: check-in, completion, no-show ---------------------------------------------------

_FROM: dict[AppointmentStatus, AppointmentStatus] = {
    AppointmentStatus.CHECKED_IN: AppointmentStatus.SCHEDULED,
    AppointmentStatus.COMPLETED: AppointmentStatus.CHECKED_IN,
    AppointmentStatus.NO_SHOW: AppointmentStatus.SCHEDULED,
}
"""The one status each visit transition starts from: scheduled -> checked_in -> completed, and
scheduled -> no_show. Completed and no-show are final (and inactive)."""


class _Notes(BaseModel):
    notes: LongText


async def _transition(
    id: ObjectId,
    to: AppointmentStatus,
    change: str,
    extra: Mapping[str, Any] | None = None,
    started_only: bool = False,
) -> Appointment:
    """Move ``id`` to ``to`` by compare-and-set on its status; release its time once inactive."""
    appointment = await get_appointment(id)
    now = utcnow()
    source = _FROM[to]
    if appointment.status != source:
        current = appointment.status.value
        raise BadUserInput(
            f"Cannot move an appointment from {current} to {to.value}"
            f" (only a {source.value} one can become {to.value})",
            {"id": f"appointment is {current}; cannot become {to.value}"},
        )
    if started_only:
        require(appointment.start_at <= now, "id", f"appointment has not started yet ({to.value})")
    stored = await _compare_and_set(
        appointment,
        {"status": source.value},
        {"status": to.value, "updated_at": now, **(extra or {})},
    )
    if to not in ACTIVE_APPOINTMENT_STATUSES:
        await _release_appointment(id)  # inactive now: its time is free at once
    await changed(stored, change)
    return stored


async def check_in_appointment(id: ObjectId) -> Appointment:
    return await _transition(id, AppointmentStatus.CHECKED_IN, "checked_in")


async def complete_appointment(id: ObjectId, notes: str | None) -> Appointment:
    extra: dict[str, Any] = {}
    if notes is not None:
        extra["notes"] = build(_Notes, {"notes": notes}).notes
    return await _transition(id, AppointmentStatus.COMPLETED, "completed", extra)


async def mark_no_show(id: ObjectId) -> Appointment:
    return await _transition(id, AppointmentStatus.NO_SHOW, "no_show", started_only=True)
