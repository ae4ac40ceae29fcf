"""Outpatient visits: check-in, the queue, calls to the room, consultation, the visit's end.

Every step is a compare-and-set on the visit's ``status`` and ``version`` (no transactions), so
two processes acting on one visit never both succeed. Three unique indexes carry the rest:

- ``one_visit_per_appointment``: checking an appointment in twice yields its one visit;
- ``one_open_visit_per_patient`` (``open_patient_id``, present only while the visit is open):
  a patient waits in one queue at a time;
- ``one_number_per_clinic_day``: queue numbers come from an atomic ``$inc`` per clinic and
  day, and the index makes a number handed out twice impossible.

``call_next`` takes the queue's head with a conditional update ``waiting -> called``; when a
racing caller took it first, it moves on to the next candidate, so two callers never get the
same patient. Every write ends in ``services.changes.changed``, whose publish hook keeps the
Redis queues (``cache.queues``) in step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import utcnow
from models.departments import Department
from models.outpatient import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    QUEUED_STATUSES,
    VISIT_TRANSITIONS,
    Arrival,
    OutpatientQueueNumber,
    OutpatientVisit,
    VisitPriority,
    VisitStatus,
    VisitStatusChange,
)
from models.patients import Patient, age_on
from models.scheduling import Appointment, AppointmentStatus
from models.staff import Doctor
from services import common, scheduling
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, paginate
from services.validation import Problems, build, instant, require

BY_CHECK_IN: Sort = (("checked_in_at", ASC), ("_id", ASC))
QUEUE_ORDER: Sort = (("priority_rank", ASC), ("checked_in_at", ASC), ("_id", ASC))
"""The queue: most urgent class first, then first come, first served."""
ELDERLY_AGE = 65
"""Patients this old or older queue as ``elderly`` unless the desk says otherwise."""
CANDIDATES = 5
"""Queue heads read per attempt of ``call_next``; racing callers take one each."""
ATTEMPTS = 10
ENTITY = "outpatient visit"
_encoder = Encoder()


# -- reading ---------------------------------------------------------------------------------


def visit_filter(
    *,
    patient_id: ObjectId | None = None,
    doctor_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    appointment_id: ObjectId | None = None,
    statuses: Sequence[VisitStatus] = (),
    arrival: Arrival | None = None,
    checked_in_from: datetime | None = None,
    checked_in_before: datetime | None = None,
) -> Query:
    """The filter of ``visits``; every combination is served by an index on its first field."""
    if checked_in_from is not None:
        checked_in_from = instant(checked_in_from, "filter.checkedInFrom")
    if checked_in_before is not None:
        checked_in_before = instant(checked_in_before, "filter.checkedInBefore")
    if checked_in_from and checked_in_before:
        require(
            checked_in_before > checked_in_from,
            "filter.checkedInBefore",
            "must be after checkedInFrom",
        )
    query: Query = {}
    for name, value in (
        ("patient_id", patient_id),
        ("doctor_id", doctor_id),
        ("department_id", department_id),
        ("appointment_id", appointment_id),
    ):
        if value is not None:
            query[name] = value
    if statuses:
        query["status"] = {"$in": sorted({s.value for s in statuses})}
    if arrival is not None:
        query["arrival"] = arrival.value
    window: dict[str, datetime] = {}
    if checked_in_from:
        window["$gte"] = checked_in_from
    if checked_in_before:
        window["$lt"] = checked_in_before
    if window:
        query["checked_in_at"] = window
    return query


async def list_visits(query: Query, args: PageArgs) -> Page[OutpatientVisit]:
    return await paginate(OutpatientVisit, query, BY_CHECK_IN, args)


async def get_visit(id: ObjectId) -> OutpatientVisit:
    return await common.get_or_404(OutpatientVisit, id, "OutpatientVisit")


def queue_query(
    *, department_id: ObjectId | None = None, doctor_id: ObjectId | None = None
) -> Query:
    """The open, queued visits of one clinic or one doctor (index: status, key, order)."""
    query: Query = {"status": {"$in": [s.value for s in QUEUED_STATUSES]}}
    if doctor_id is not None:
        query["doctor_id"] = doctor_id
    else:
        query["department_id"] = department_id
    return query


async def queued(
    *, department_id: ObjectId | None = None, doctor_id: ObjectId | None = None
) -> list[OutpatientVisit]:
    """One queue straight from MongoDB, in queue order (the Redis queue's source of truth)."""
    query = queue_query(department_id=department_id, doctor_id=doctor_id)
    return await OutpatientVisit.find(query).sort(list(QUEUE_ORDER)).to_list()  # type: ignore[arg-type]


# -- check-in --------------------------------------------------------------------------------


def queue_day(moment: datetime, zone: ZoneInfo | None) -> str:
    """The facility's calendar day of ``moment``: queue numbers restart every day."""
    return (moment.astimezone(zone) if zone is not None else moment).date().isoformat()


def default_priority(patient: Patient, now: datetime) -> VisitPriority:
    elderly = age_on(patient.date_of_birth, now.date()) >= ELDERLY_AGE
    return VisitPriority.ELDERLY if elderly else VisitPriority.ROUTINE


async def _next_number(department_id: ObjectId, day: str) -> int:
    """The next queue number of a clinic's day: one atomic ``$inc``, whichever process asks."""
    counters = db.collection(OutpatientQueueNumber)
    for _ in range(2):  # two first check-ins of a day may race to create the counter
        try:
            raw = await counters.find_one_and_update(
                {"department_id": department_id, "queue_date": day},
                {"$inc": {"last": 1}, "$set": {"updated_at": utcnow()}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            return int(raw["last"])
        except DuplicateKeyError:
            continue
    raise Conflict("Queue numbers are being handed out too fast; retry")


async def _open_visit_of(patient_id: ObjectId) -> OutpatientVisit | None:
    return await OutpatientVisit.find_one({"open_patient_id": patient_id})


async def _insert(visit: OutpatientVisit, zone: ZoneInfo | None) -> OutpatientVisit:
    """Number and insert a new visit; the unique indexes decide races (see the module)."""
    for _ in range(ATTEMPTS):
        visit.queue_number = await _next_number(visit.department_id, visit.queue_date)
        try:
            await visit.insert()
        except DuplicateKeyError as exc:
            details: Mapping[str, Any] = exc.details or {}
            keys = set(details.get("keyPattern") or details.get("keyValue") or {})
            if "queue_number" in keys:
                visit.id = None
                continue  # a counter behind its visits (restored data): take the next number
            if "appointment_id" in keys and visit.appointment_id is not None:
                existing = await OutpatientVisit.find_one({"appointment_id": visit.appointment_id})
                if existing is not None:
                    return existing  # checked in concurrently: the one visit of the appointment
            if "open_patient_id" in keys:
                open_visit = await _open_visit_of(visit.patient_id)
                if (
                    open_visit is not None
                    and visit.appointment_id is not None
                    and open_visit.appointment_id == visit.appointment_id
                ):
                    return open_visit
                raise _already_open(open_visit) from None
            raise Conflict("Another outpatient visit conflicts with this one") from None
        await changed(visit, "checked_in")  # care, caches, the queue and the event follow
        return visit
    raise Conflict("Could not hand out a queue number; retry")


def _already_open(open_visit: OutpatientVisit | None) -> Conflict:
    where = f" (visit {open_visit.id}, {open_visit.status.value})" if open_visit else ""
    return Conflict(
        f"The patient already has an open outpatient visit{where}; end it first",
        fields=["patientId"],
    )


def _new_visit(
    data: Mapping[str, Any],
    patient: Patient,
    now: datetime,
    zone: ZoneInfo | None,
    by: str | None,
) -> OutpatientVisit:
    priority = data.get("priority") or default_priority(patient, now)
    return build(
        OutpatientVisit,
        {
            **data,
            "priority": priority,
            "priority_rank": PRIORITY_RANK[VisitPriority(priority)],
            "status": VisitStatus.WAITING,
            "status_at": now,
            "checked_in_at": now,
            "queue_date": queue_day(now, zone),
            "queue_number": 1,  # replaced by the clinic's next number on insert
            "open_patient_id": patient.id,
            "created_at": now,
            "history": [
                VisitStatusChange(
                    from_status=None,
                    to_status=VisitStatus.WAITING,
                    at=now,
                    by=by,
                )
            ],
        },
    )


async def visit_of_appointment(appointment_id: ObjectId) -> OutpatientVisit | None:
    return await OutpatientVisit.find_one({"appointment_id": appointment_id})


async def check_in_appointment(
    appointment_id: ObjectId,
    data: Mapping[str, Any],
    zone: ZoneInfo | None = None,
    by: str | None = None,
) -> OutpatientVisit:
    """The visit of an appointment's arrival: created once, whoever checks in and how often.

    The appointment moves ``scheduled -> checked_in`` first (its own compare-and-set); one
    already checked in (say, through ``checkInAppointment``) is accepted. The visit's unique
    index then makes a second check-in return the first visit.
    """
    existing = await visit_of_appointment(appointment_id)
    if existing is not None:
        return existing
    appointment = await scheduling.get_appointment(appointment_id)
    allowed = (AppointmentStatus.SCHEDULED, AppointmentStatus.CHECKED_IN)
    if appointment.status not in allowed:
        raise BadUserInput(
            f"A {appointment.status.value} appointment cannot be checked in",
            {"appointmentId": f"appointment is {appointment.status.value}"},
        )
    patient = await Patient.get(appointment.patient_id)
    require(patient is not None, "appointmentId", "the appointment's patient no longer exists")
    assert patient is not None
    now = utcnow()
    visit = _new_visit(
        {
            **data,
            "patient_id": appointment.patient_id,
            "appointment_id": appointment.id,
            "doctor_id": appointment.doctor_id,
            "department_id": appointment.department_id,
            "arrival": Arrival.APPOINTMENT,
        },
        patient,
        now,
        zone,
        by,
    )
    open_visit = await _open_visit_of(patient.id)  # type: ignore[arg-type]
    if open_visit is not None:
        raise _already_open(open_visit)
    if appointment.status == AppointmentStatus.SCHEDULED:
        try:
            await scheduling.check_in_appointment(appointment_id)
        except BadUserInput:
            # Moved meanwhile: checked in by a racing call is fine; anything else is not.
            again = await scheduling.get_appointment(appointment_id)
            if again.status != AppointmentStatus.CHECKED_IN:
                raise
    return await _insert(visit, zone)


async def check_in_walk_in(
    data: Mapping[str, Any], zone: ZoneInfo | None = None, by: str | None = None
) -> OutpatientVisit:
    """A patient who came without an appointment joins a clinic's (or a doctor's) queue."""
    problems = Problems()
    patient_id = data.get("patient_id")
    department_id = data.get("department_id")
    doctor_id = data.get("doctor_id")
    patient = await Patient.get(patient_id) if patient_id is not None else None
    problems.require(patient is not None, "patientId", "no such patient")
    department = await Department.get(department_id) if department_id is not None else None
    problems.require(department is not None, "departmentId", "no such department")
    if doctor_id is not None:
        doctor = await Doctor.get(doctor_id)
        if problems.require(doctor is not None and doctor.active, "doctorId", "no such doctor"):
            assert doctor is not None
            problems.require(
                doctor.department_id == department_id,
                "doctorId",
                "the doctor does not work in this department",
            )
    problems.raise_any()
    assert patient is not None
    now = utcnow()
    visit = _new_visit({**data, "arrival": Arrival.WALK_IN}, patient, now, zone, by)
    open_visit = await _open_visit_of(patient.id)  # type: ignore[arg-type]
    if open_visit is not None:
        raise _already_open(open_visit)
    return await _insert(visit, zone)


# -- moving through the queue ---------------------------------------------------------------


async def _move(
    visit: OutpatientVisit,
    to: VisitStatus,
    change: str,
    *,
    by: str | None = None,
    sets: Mapping[str, Any] | None = None,
    room: str | None = None,
    expected_version: int | None = None,
) -> OutpatientVisit:
    """``visit`` to ``to`` by compare-and-set on status and version; CONFLICT if it moved."""
    if expected_version is not None and expected_version != visit.version:
        raise Conflict(
            f"The visit is at version {visit.version}, not {expected_version}; read it again",
            fields=["version"],
        )
    allowed = VISIT_TRANSITIONS[visit.status]
    if to not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none"
        raise BadUserInput(
            f"A {visit.status.value} visit cannot become {to.value} (allowed: {names})",
            {"id": f"visit is {visit.status.value}; cannot become {to.value}"},
        )
    now = utcnow()
    step = VisitStatusChange(from_status=visit.status, to_status=to, at=now, by=by, room=room)
    update: dict[str, Any] = {
        "$set": {"status": to.value, "status_at": now, "updated_at": now, **(sets or {})},
        "$inc": {"version": 1},
        "$push": {"history": _encoder.encode(step)},
    }
    if to not in OPEN_STATUSES:
        update["$set"]["ended_at"] = now
        update["$unset"] = {"open_patient_id": ""}  # the patient may queue again
    raw = await db.collection(OutpatientVisit).find_one_and_update(
        {"_id": visit.id, "status": visit.status.value, "version": visit.version},
        update,
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        if await OutpatientVisit.find({"_id": visit.id}).count():
            raise Conflict("The visit changed meanwhile; read it again and retry")
        raise NotFound("OutpatientVisit", str(visit.id))
    stored = OutpatientVisit.model_validate(raw)
    await changed(stored, change)
    return stored


def _room(room: str | None) -> str:
    cleaned = (room or "").strip()
    require(bool(cleaned), "room", "name the room the patient is called to")
    require(len(cleaned) <= 100, "room", "at most 100 characters")
    return cleaned


async def call(
    id: ObjectId, room: str, by: str | None = None, expected_version: int | None = None
) -> OutpatientVisit:
    """Call one waiting patient (or call a called one again, maybe to another room)."""
    where = _room(room)
    visit = await get_visit(id)
    now = utcnow()
    return await _move(
        visit,
        VisitStatus.CALLED,
        "called",
        by=by,
        room=where,
        sets={"called_at": now, "called_to": where},
        expected_version=expected_version,
    )


async def call_next(
    *,
    room: str,
    department_id: ObjectId | None = None,
    doctor_id: ObjectId | None = None,
    caller_doctor_id: ObjectId | None = None,
    by: str | None = None,
) -> OutpatientVisit | None:
    """Take the head of a queue: the most urgent, longest-waiting patient; None when empty.

    From a clinic's queue a doctor takes the next patient waiting for them or for anyone (and
    becomes the visit's doctor); anyone else takes the clinic's next patient. Each candidate is
    taken with a conditional update ``waiting -> called``; losing it to a racing caller moves on
    to the next one, so two callers never get the same patient.
    """
    where = _room(room)
    require(
        (department_id is None) != (doctor_id is None),
        "departmentId",
        "name exactly one queue: departmentId or doctorId",
    )
    query: Query = {"status": VisitStatus.WAITING.value}
    assign: ObjectId | None = None
    if doctor_id is not None:
        query["doctor_id"] = doctor_id
    else:
        query["department_id"] = department_id
        if caller_doctor_id is not None:
            query["doctor_id"] = {"$in": [None, caller_doctor_id]}
            assign = caller_doctor_id
    collection = db.collection(OutpatientVisit)
    for _ in range(ATTEMPTS):
        heads = await (
            collection.find(query, {"_id": 1, "doctor_id": 1, "version": 1})
            .sort(list(QUEUE_ORDER))
            .limit(CANDIDATES)
            .to_list(None)
        )
        if not heads:
            return None
        for head in heads:
            now = utcnow()
            step = VisitStatusChange(
                from_status=VisitStatus.WAITING,
                to_status=VisitStatus.CALLED,
                at=now,
                by=by,
                room=where,
            )
            sets: dict[str, Any] = {
                "status": VisitStatus.CALLED.value,
                "status_at": now,
                "updated_at": now,
                "called_at": now,
                "called_to": where,
            }
            if assign is not None and head.get("doctor_id") is None:
                sets["doctor_id"] = assign
            raw = await collection.find_one_and_update(
                {"_id": head["_id"], "status": VisitStatus.WAITING.value},
                {"$set": sets, "$inc": {"version": 1}, "$push": {"history": _encoder.encode(step)}},
                return_document=ReturnDocument.AFTER,
            )
            if raw is None:
                continue  # a racing caller took this one: try the next
            stored = OutpatientVisit.model_validate(raw)
            await changed(stored, "called")
            return stored
    raise Conflict("The queue is too busy right now; retry")


async def start_consultation(
    id: ObjectId,
    doctor_id: ObjectId | None,
    by: str | None = None,
    expected_version: int | None = None,
) -> OutpatientVisit:
    """The patient is with the doctor; a visit without a doctor gets the one who sees them."""
    visit = await get_visit(id)
    sets: dict[str, Any] = {"seen_at": utcnow()}
    if visit.doctor_id is None:
        require(doctor_id is not None, "doctorId", "name the doctor who sees the patient")
        sets["doctor_id"] = doctor_id
    elif doctor_id is not None and doctor_id != visit.doctor_id:
        raise BadUserInput(
            "The visit is another doctor's", {"doctorId": "the visit has another doctor"}
        )
    if doctor_id is not None:
        doctor = await Doctor.get(doctor_id)
        require(doctor is not None and doctor.active, "doctorId", "no such doctor")
    return await _move(
        visit, VisitStatus.IN_CONSULTATION, "consultation_started", by=by, sets=sets,
        expected_version=expected_version,
    )  # fmt: skip


async def complete(
    id: ObjectId, by: str | None = None, expected_version: int | None = None
) -> OutpatientVisit:
    """The consultation ended: the visit leaves the queue; its appointment is completed too."""
    visit = await get_visit(id)
    done = await _move(
        visit, VisitStatus.COMPLETED, "completed", by=by, sets={"completed_at": utcnow()},
        expected_version=expected_version,
    )  # fmt: skip
    if done.appointment_id is not None:
        appointment = await Appointment.get(done.appointment_id)
        if appointment is not None and appointment.status == AppointmentStatus.CHECKED_IN:
            # Completed (or changed) meanwhile through the appointment itself: nothing to do.
            with contextlib.suppress(BadUserInput, Conflict):
                await scheduling.complete_appointment(done.appointment_id, None)
    return done


async def mark_no_show(
    id: ObjectId, by: str | None = None, expected_version: int | None = None
) -> OutpatientVisit:
    """Called and never came: the visit ends without a consultation."""
    visit = await get_visit(id)
    return await _move(
        visit, VisitStatus.NO_SHOW, "no_show", by=by, expected_version=expected_version
    )


async def leave(
    id: ObjectId, by: str | None = None, expected_version: int | None = None
) -> OutpatientVisit:
    """The patient left before (or during) the consultation."""
    visit = await get_visit(id)
    return await _move(visit, VisitStatus.LEFT, "left", by=by, expected_version=expected_version)


async def change_priority(
    id: ObjectId, priority: VisitPriority, expected_version: int | None = None
) -> OutpatientVisit:
    """Triage: move a waiting patient to another priority class (their arrival time stays)."""
    visit = await get_visit(id)
    if expected_version is not None and expected_version != visit.version:
        raise Conflict(f"The visit is at version {visit.version}, not {expected_version}")
    if visit.status != VisitStatus.WAITING:
        raise BadUserInput(
            f"Only a waiting visit changes priority; this one is {visit.status.value}",
            {"id": f"visit is {visit.status.value}"},
        )
    now = utcnow()
    raw = await db.collection(OutpatientVisit).find_one_and_update(
        {"_id": visit.id, "status": VisitStatus.WAITING.value, "version": visit.version},
        {
            "$set": {
                "priority": priority.value,
                "priority_rank": PRIORITY_RANK[priority],
                "updated_at": now,
            },
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The visit changed meanwhile; read it again and retry")
    stored = OutpatientVisit.model_validate(raw)
    await changed(stored, "priority_changed")
    return stored
