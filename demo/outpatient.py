"""Demo outpatient visits: one per checked-in or completed appointment, and a live queue.

Every completed demo appointment had its patient check in a few minutes before it started, get
called and seen at about its start, and leave when it ended (``completed_at`` is the
appointment's end, so the visit's care relationship is the appointment's). Queue numbers count
each clinic's arrivals per day in check-in order.

The demo doctor ``ids.doctor_id(1)`` has a live queue on the demo's "today" (``ANCHOR``'s
day, a morning without appointments for them): patients walked in (those the doctor saw
before first), one is in consultation, one called, the others wait (an emergency among them,
and one for the clinic at large rather than for this doctor). Everything derives from fixed
seeds and the demo clock.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

import db
from config import get_settings
from crypto.fields import open_document
from demo import ids
from demo.clock import ANCHOR, minutes
from models.outpatient import (
    PRIORITY_RANK,
    Arrival,
    OutpatientQueueNumber,
    OutpatientVisit,
    VisitPriority,
    VisitStatus,
    VisitStatusChange,
)
from models.patients import Patient, age_on
from models.scheduling import APPOINTMENT_SEALED, Appointment, AppointmentStatus
from models.staff import Doctor
from services import care
from services.outpatient import ELDERLY_AGE, queue_day

VISIT_KIND = 0x30
"""The collection byte of demo visit ids (``demo.ids`` layout: epoch, kind, sequence)."""
BATCH = 1000
LIVE_DOCTOR = ids.doctor_id(1)
_M = timedelta(minutes=1)
LIVE_QUEUE: tuple[tuple[timedelta, VisitPriority | None, VisitStatus, bool, str], ...] = (
    # (arrived after ANCHOR, priority (None: by age), status, the doctor's own?, reason)
    (7 * 60 * _M + 40 * _M, None, VisitStatus.IN_CONSULTATION, True, "Persistent cough"),
    (7 * 60 * _M + 48 * _M, None, VisitStatus.CALLED, True, "Follow-up question"),
    (8 * 60 * _M + 2 * _M, VisitPriority.EMERGENCY, VisitStatus.WAITING, True, "Chest pain"),
    (8 * 60 * _M + 5 * _M, None, VisitStatus.WAITING, True, "Blood pressure check"),
    (8 * 60 * _M + 9 * _M, None, VisitStatus.WAITING, False, "Rash"),
    (8 * 60 * _M + 14 * _M, None, VisitStatus.WAITING, True, "Repeat prescription"),
)
"""The demo doctor's morning: 07:40 to 08:14 UTC on the demo's "today"."""
LIVE_CALLS = (8 * 60 * _M, 8 * 60 * _M + 20 * _M)
"""When the first two were called (the second after the first consultation began)."""
DESK = "demo:front-desk"


def _id(kind: int, n: int) -> PydanticObjectId:
    prefix = int(ids.ID_EPOCH.timestamp()).to_bytes(4, "big")
    return PydanticObjectId(prefix + bytes([kind]) + n.to_bytes(7, "big"))


def _room(doctor_id: ObjectId) -> str:
    parsed = ids.parse_id(doctor_id)
    return f"Room {(parsed[1] - 1) % 24 + 1 if parsed else 1}"


def _priority(born: date | None, day: date) -> VisitPriority:
    if born is not None and age_on(born, day) >= ELDERLY_AGE:
        return VisitPriority.ELDERLY
    return VisitPriority.ROUTINE


class _Builder:
    """Visits with their numbers, built in check-in order."""

    def __init__(self) -> None:
        self.zone = get_settings().facility_timezone
        self.seq = 0
        self.numbers: dict[tuple[ObjectId, str], int] = defaultdict(int)
        self.visits: list[OutpatientVisit] = []
        self.open: dict[ObjectId, OutpatientVisit] = {}

    def add(
        self,
        *,
        patient_id: ObjectId,
        department_id: ObjectId,
        doctor_id: ObjectId | None,
        arrival: Arrival,
        priority: VisitPriority,
        status: VisitStatus,
        checked_in_at: datetime,
        appointment_id: ObjectId | None = None,
        called_at: datetime | None = None,
        seen_at: datetime | None = None,
        completed_at: datetime | None = None,
        reason: str | None = None,
    ) -> OutpatientVisit:
        day = queue_day(checked_in_at, self.zone)
        self.seq += 1
        room = _room(doctor_id) if doctor_id is not None and called_at is not None else None
        history = [VisitStatusChange(to_status=VisitStatus.WAITING, at=checked_in_at, by=DESK)]
        steps = (
            (VisitStatus.CALLED, called_at),
            (VisitStatus.IN_CONSULTATION, seen_at),
            (VisitStatus.COMPLETED, completed_at),
        )
        last, at = VisitStatus.WAITING, checked_in_at
        for step, when in steps:
            if when is not None:
                history.append(
                    VisitStatusChange(
                        from_status=last,
                        to_status=step,
                        at=when,
                        by=f"demo:doctor:{doctor_id}",
                        room=room if step == VisitStatus.CALLED else None,
                    )
                )
                last, at = step, when
        assert last == status, f"{status} visit built with the steps of a {last} one"
        ended = completed_at if status == VisitStatus.COMPLETED else None
        visit = OutpatientVisit(
            id=_id(VISIT_KIND, self.seq),
            patient_id=patient_id,
            appointment_id=appointment_id,
            doctor_id=doctor_id,
            department_id=department_id,
            arrival=arrival,
            priority=priority,
            priority_rank=PRIORITY_RANK[priority],
            status=status,
            queue_date=day,
            queue_number=1,  # numbered in check-in order by finish()
            reason=reason,
            checked_in_at=checked_in_at,
            called_at=called_at,
            called_to=room,
            seen_at=seen_at,
            completed_at=completed_at,
            ended_at=ended,
            status_at=at,
            open_patient_id=None if ended else patient_id,
            version=len(history) - 1,
            history=history,
            created_at=checked_in_at,
            updated_at=at,
        )
        if ended is None:
            earlier = self.open.get(patient_id)
            if earlier is not None:  # one open visit per patient: the earlier one was left
                self._left(earlier, checked_in_at)
            self.open[patient_id] = visit
        self.visits.append(visit)
        return visit

    @staticmethod
    def _left(visit: OutpatientVisit, at: datetime) -> None:
        visit.history.append(
            VisitStatusChange(from_status=visit.status, to_status=VisitStatus.LEFT, at=at, by=DESK)
        )
        visit.status, visit.status_at, visit.ended_at = VisitStatus.LEFT, at, at
        visit.open_patient_id, visit.updated_at = None, at
        visit.version += 1

    def finish(self) -> None:
        """Queue numbers: each clinic's arrivals of a day, counted in check-in order."""
        for visit in sorted(self.visits, key=lambda v: (v.checked_in_at, str(v.id))):
            key = (visit.department_id, visit.queue_date)
            self.numbers[key] += 1
            visit.queue_number = self.numbers[key]


def _history(builder: _Builder, raw: dict[str, Any], born: date | None) -> None:
    """The visit of one checked-in or completed appointment."""
    rng = random.Random(f"shms-demo/outpatient/{raw['_id']}")
    start, end = raw["start_at"], raw["end_at"]
    arrived = minutes(start - timedelta(minutes=rng.randint(4, 25)))
    common: dict[str, Any] = {
        "patient_id": raw["patient_id"],
        "department_id": raw["department_id"],
        "doctor_id": raw["doctor_id"],
        "arrival": Arrival.APPOINTMENT,
        "priority": _priority(born, start.date()),
        "checked_in_at": arrived,
        "appointment_id": raw["_id"],
        "reason": open_document(APPOINTMENT_SEALED, raw).get("reason"),  # stored sealed
    }
    if raw["status"] == AppointmentStatus.COMPLETED.value:
        called = minutes(start + timedelta(minutes=rng.randint(0, 6)))
        seen = min(called + timedelta(minutes=rng.randint(1, 3)), end)
        builder.add(
            **common,
            status=VisitStatus.COMPLETED,
            called_at=called,
            seen_at=seen,
            completed_at=end,
        )
    else:  # checked in and still waiting
        builder.add(**common, status=VisitStatus.WAITING)


async def _live_queue(builder: _Builder, born: dict[ObjectId, date]) -> list[ObjectId]:
    """The demo doctor's queue on the demo's "today"; the patients whose care it changes.

    Walk-ins only: the demo's appointments on and after ``ANCHOR`` are still to come, so none
    is checked in. The doctor has no appointment that morning, so the walk-ins fit their day.
    """
    doctor = await db.collection(Doctor).find_one({"_id": LIVE_DOCTOR}, {"department_id": 1})
    if doctor is None:
        return []
    department = doctor["department_id"]
    # Patients the doctor has seen before come first; then others, in id order.
    seen_before = await db.collection(Appointment).distinct(
        "patient_id", {"doctor_id": LIVE_DOCTOR, "status": AppointmentStatus.COMPLETED.value}
    )
    booked_today = set(
        await db.collection(Appointment).distinct(
            "patient_id",
            {
                "status": AppointmentStatus.SCHEDULED.value,
                "start_at": {"$gte": ANCHOR, "$lt": ANCHOR + timedelta(days=1)},
            },
        )
    )
    others = await (
        db.collection(Patient)
        .find({}, {"_id": 1})
        .sort([("_id", 1)])
        .limit(len(LIVE_QUEUE) * 4)
        .to_list(None)
    )
    patients: list[ObjectId] = []
    for candidate in [*sorted(seen_before), *(p["_id"] for p in others)]:
        if candidate not in booked_today and candidate not in patients:
            patients.append(candidate)
    patients = patients[: len(LIVE_QUEUE)]
    async for p in db.collection(Patient).find({"_id": {"$in": patients}}, {"date_of_birth": 1}):
        if isinstance(p.get("date_of_birth"), datetime):
            born[p["_id"]] = p["date_of_birth"].date()
    for n, (patient_id, (arrived, priority, status, own, reason)) in enumerate(
        zip(patients, LIVE_QUEUE, strict=False)
    ):
        at = ANCHOR + arrived
        called = ANCHOR + LIVE_CALLS[n] if status != VisitStatus.WAITING else None
        consulting = status == VisitStatus.IN_CONSULTATION
        builder.add(
            patient_id=patient_id,
            department_id=department,
            doctor_id=LIVE_DOCTOR if own else None,
            arrival=Arrival.WALK_IN,
            priority=priority or _priority(born.get(patient_id), at.date()),
            status=status,
            checked_in_at=at,
            called_at=called,
            seen_at=called + timedelta(minutes=2) if called is not None and consulting else None,
            reason=reason,
        )
    return patients


async def seed_outpatient() -> int:
    """Write the demo visits and queue counters; returns how many visits."""
    appointments = db.collection(Appointment)
    query = {
        "status": {"$in": [AppointmentStatus.COMPLETED.value, AppointmentStatus.CHECKED_IN.value]}
    }
    fields = {
        "patient_id": 1,
        "doctor_id": 1,
        "department_id": 1,
        "start_at": 1,
        "end_at": 1,
        "status": 1,
        "reason": 1,
    }
    raws = await appointments.find(query, fields).sort([("start_at", 1), ("_id", 1)]).to_list(None)
    patient_ids = sorted({r["patient_id"] for r in raws})
    born: dict[ObjectId, date] = {}
    for start in range(0, len(patient_ids), BATCH):
        chunk = patient_ids[start : start + BATCH]
        async for p in db.collection(Patient).find({"_id": {"$in": chunk}}, {"date_of_birth": 1}):
            value = p.get("date_of_birth")
            if isinstance(value, datetime):
                born[p["_id"]] = value.date()
            elif isinstance(value, date):
                born[p["_id"]] = value
    builder = _Builder()
    for raw in raws:
        _history(builder, raw, born.get(raw["patient_id"]))
    touched = await _live_queue(builder, born)  # appointments stay as the population made them
    builder.finish()
    visits = builder.visits
    # A reseed (``shms seed --reset``) replaces the earlier demo visits, which carry our ids.
    await db.collection(OutpatientVisit).delete_many(
        {"_id": {"$gte": _id(VISIT_KIND, 1), "$lte": _id(VISIT_KIND, 2**56 - 1)}}
    )
    for start in range(0, len(visits), BATCH):
        await OutpatientVisit.insert_many(visits[start : start + BATCH])
    # Counters may exist already for a day the app has run on: raise them, never lower them.
    numbers = db.collection(OutpatientQueueNumber)
    for (department, day), last in sorted(builder.numbers.items(), key=str):
        await numbers.update_one(
            {"department_id": department, "queue_date": day},
            {"$max": {"last": last}, "$setOnInsert": {"updated_at": ANCHOR}},
            upsert=True,
        )
    for patient_id in sorted(set(touched), key=str):
        await care.refresh(patient_id)  # as services.changes does after every check-in
    return len(visits)
