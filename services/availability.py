"""Free slots of a doctor for an appointment type: one pass over sorted intervals.

1. The window's local days (facility zone) turn the weekly template into UTC working
   intervals, each local wall-clock time converted with zoneinfo on its own day, so a 09:00
   start is 08:00Z in CET and 07:00Z in CEST.
2. Leave and facility holidays, then the doctor's active appointments, are cut out of them.
3. Slot starts walk the 5-minute grid through what is left; a slot lasts the type's duration.
4. A type that needs equipment keeps a slot only if some device of that type in the doctor's
   department (not out of service) has no booking, reservation or maintenance in it; one
   pointer per device advances with the slot starts, so the devices are swept once too.

Every document is read with one query per kind for the whole window; nothing per slot or per day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId

import db
from errors import BadUserInput
from models.base import utcnow
from models.calendars import DAY_MINUTES, CalendarException, WorkingHours
from models.equipment import EquipmentStatus, MedicalEquipment
from models.scheduling import (
    ACTIVE_APPOINTMENT_STATUSES,
    SLOT,
    Appointment,
    Reservation,
    ReservedResource,
    on_grid,
)
from services import calendars
from services.validation import instant, require

MAX_WINDOW = timedelta(days=31)
Interval = tuple[datetime, datetime]
_ACTIVE = [s.value for s in ACTIVE_APPOINTMENT_STATUSES]


@dataclass(frozen=True)
class Slot:
    start_at: datetime
    end_at: datetime
    equipment_id: ObjectId | None = None


# -- interval arithmetic (all lists sorted by start) ----------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(base: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    """``base`` minus ``cuts``; both sorted and merged. One pass over each."""
    out: list[Interval] = []
    i = 0
    for start, end in base:
        while i < len(cuts) and cuts[i][1] <= start:
            i += 1
        j, cursor = i, start
        while j < len(cuts) and cuts[j][0] < end:
            if cuts[j][0] > cursor:
                out.append((cursor, cuts[j][0]))
            cursor = max(cursor, cuts[j][1])
            j += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def ceil_grid(moment: datetime) -> datetime:
    if on_grid(moment):
        return moment
    floor = moment - (moment - datetime(2000, 1, 1, tzinfo=UTC)) % SLOT
    return floor + SLOT


def local_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """``minutes`` of wall-clock time after local midnight of ``day``, as a UTC instant."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    # Aware + timedelta is wall-clock arithmetic in Python; the zone then gives that day's offset.
    return (midnight + timedelta(minutes=minutes)).astimezone(UTC)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def working_intervals(
    template: WorkingHours, first: date, last: date, zone: ZoneInfo
) -> list[Interval]:
    return merge(
        (local_instant(day, r.start, zone), local_instant(day, r.end, zone))
        for day in days(first, last)
        for r in template.ranges_on(day.weekday())
    )


def exception_intervals(
    exceptions: Iterable[CalendarException], first: date, last: date, zone: ZoneInfo
) -> list[Interval]:
    out: list[Interval] = []
    for exception in exceptions:
        start = 0 if exception.start is None else exception.start
        end = DAY_MINUTES if exception.end is None else exception.end
        for day in days(max(first, exception.first_day), min(last, exception.last_day)):
            out.append((local_instant(day, start, zone), local_instant(day, end, zone)))
    return merge(out)


async def calendar_refusal(
    doctor_id: ObjectId, start_at: datetime, end_at: datetime, zone: ZoneInfo
) -> str | None:
    """Why the doctor cannot be booked for ``[start_at, end_at)``, or None when they can.

    A doctor without a weekly template has no calendar to enforce (a facility that has not set
    calendars up keeps booking freely); with one, the visit must fit inside a working range
    and touch no leave or holiday.
    """
    template = await calendars.working_hours(doctor_id)
    if template is None:
        return None
    first, last = start_at.astimezone(zone).date(), end_at.astimezone(zone).date()
    hours = working_intervals(template, first, last, zone)
    if not any(s <= start_at and end_at <= e for s, e in hours):
        return "is outside the doctor's working hours"
    off = exception_intervals(
        await calendars.exceptions_between(doctor_id, first, last), first, last, zone
    )
    if any(s < end_at and start_at < e for s, e in off):
        return "falls on the doctor's leave or a holiday"
    return None


# -- the query -------------------------------------------------------------------------------------


def _check_window(start_at: datetime, end_at: datetime) -> None:
    require(end_at > start_at, "to", "must be after from")
    if end_at - start_at > MAX_WINDOW:
        reason = f"the window may span at most {MAX_WINDOW.days} days"
        raise BadUserInput(f"to: {reason}", {"to": reason})


async def _busy(query: dict[str, object], start_at: datetime, end_at: datetime) -> list[Interval]:
    """[start, end) of the active appointments matching ``query`` that overlap the window."""
    cursor = db.collection(Appointment).find(
        {
            **query,
            "status": {"$in": _ACTIVE},
            "start_at": {"$lt": end_at},
            "end_at": {"$gt": start_at},
        },
        projection={"start_at": 1, "end_at": 1, "equipment_id": 1},
    )
    return [
        (raw["start_at"].replace(tzinfo=UTC), raw["end_at"].replace(tzinfo=UTC))
        for raw in await cursor.to_list(None)
    ]


async def _device_busy(
    devices: Sequence[ObjectId], start_at: datetime, end_at: datetime
) -> dict[ObjectId, list[Interval]]:
    """Per device, merged: its active appointments, its reservations (bookings in flight
    included) and its maintenance windows, in three queries."""
    busy: dict[ObjectId, list[Interval]] = {d: [] for d in devices}
    appointments = db.collection(Appointment).find(
        {
            "equipment_id": {"$in": list(devices)},
            "status": {"$in": _ACTIVE},
            "start_at": {"$lt": end_at},
            "end_at": {"$gt": start_at},
        },
        projection={"start_at": 1, "end_at": 1, "equipment_id": 1},
    )
    for raw in await appointments.to_list(None):
        busy[raw["equipment_id"]].append(
            (raw["start_at"].replace(tzinfo=UTC), raw["end_at"].replace(tzinfo=UTC))
        )
    reservations = db.collection(Reservation).find(
        {
            "resource": ReservedResource.EQUIPMENT.value,
            "resource_id": {"$in": list(devices)},
            "slot": {"$gte": start_at - SLOT, "$lt": end_at},
        },
        projection={"resource_id": 1, "slot": 1},
    )
    for raw in await reservations.to_list(None):
        slot = raw["slot"].replace(tzinfo=UTC)
        busy[raw["resource_id"]].append((slot, slot + SLOT))
    for window in await calendars.maintenance_between(devices, start_at, end_at, limit=None):
        busy[window.equipment_id].append((window.start_at, window.end_at))
    return {device: merge(intervals) for device, intervals in busy.items()}


def _slots(
    free: Sequence[Interval],
    duration: timedelta,
    devices: Sequence[ObjectId] | None,
    device_busy: dict[ObjectId, list[Interval]],
) -> list[Slot]:
    """Walk the grid through ``free``; with ``devices``, keep a slot only if one is free."""
    pointers = dict.fromkeys(devices or (), 0)
    out: list[Slot] = []
    for start, end in free:
        slot = ceil_grid(start)
        while slot + duration <= end:
            finish = slot + duration
            if devices is None:
                out.append(Slot(slot, finish))
            else:
                for device in devices:
                    busy, i = device_busy[device], pointers[device]
                    while i < len(busy) and busy[i][1] <= slot:
                        i += 1
                    pointers[device] = i
                    if i == len(busy) or busy[i][0] >= finish:
                        out.append(Slot(slot, finish, device))
                        break
            slot += SLOT
    return out


async def availability(
    doctor_id: ObjectId,
    start_at: datetime,
    end_at: datetime,
    appointment_type_id: ObjectId,
    zone: ZoneInfo,
) -> list[Slot]:
    """Bookable slots of ``appointment_type_id`` with the doctor within ``[start_at, end_at)``,
    starting no earlier than the next grid slot from now."""
    start_at, end_at = instant(start_at, "from"), instant(end_at, "to")
    _check_window(start_at, end_at)
    doctor = await calendars.get_doctor(doctor_id)
    kind = await calendars.get_appointment_type(appointment_type_id)
    require(doctor.active, "doctorId", "doctor is not active")
    earliest = ceil_grid(utcnow())
    if earliest <= utcnow():
        earliest += SLOT
    start_at = max(start_at, earliest)
    template = await calendars.working_hours(doctor_id)
    if template is None or start_at >= end_at:
        return []
    first, last = start_at.astimezone(zone).date(), end_at.astimezone(zone).date()
    hours = [
        (max(s, start_at), min(e, end_at))
        for s, e in working_intervals(template, first, last, zone)
        if s < end_at and e > start_at
    ]
    exceptions = await CalendarException.find(
        {"doctor_id": {"$in": [doctor_id, None]}},
        CalendarException.first_day <= last,
        CalendarException.last_day >= first,
    ).to_list()
    free = subtract(hours, exception_intervals(exceptions, first, last, zone))
    if not free:
        return []
    free = subtract(free, merge(await _busy({"doctor_id": doctor_id}, start_at, end_at)))
    duration = timedelta(minutes=kind.duration_minutes)
    if kind.equipment_type is None:
        return _slots(free, duration, None, {})
    devices = await db.collection(MedicalEquipment).distinct(
        "_id",
        {
            "department_id": doctor.department_id,
            "equipment_type": kind.equipment_type,
            "status": {"$ne": EquipmentStatus.OUT_OF_SERVICE.value},
        },
    )
    if not devices:
        return []
    devices = sorted(devices)
    return _slots(free, duration, devices, await _device_busy(devices, start_at, end_at))
