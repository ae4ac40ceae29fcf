"""Calendars: doctors' weekly templates, leave and holidays, appointment types, maintenance.

Times of day arrive as local ``HH:MM`` strings (facility time) on the 5-minute grid and are
stored as minutes after midnight; days are local dates. Instants (maintenance) are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from beanie.odm.enums import SortDirection
from bson import ObjectId

import db
from errors import BadUserInput
from models.base import utcnow
from models.calendars import (
    DAY_MINUTES,
    GRID_MINUTES,
    AppointmentType,
    CalendarException,
    MaintenanceWindow,
    WorkingHours,
)
from models.equipment import MedicalEquipment
from models.scheduling import on_grid
from models.staff import Doctor
from services import common
from services.changes import changed
from services.validation import build, require

MAX_LISTED = 500
"""Calendar lists are small by nature (a year of leave, a catalogue); longer ones are cut."""
MAX_LIST_SPAN_DAYS = 366

_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


def parse_clock(value: str, field: str) -> int:
    """``"09:30"`` -> 570 minutes after midnight; ``"24:00"`` is the end of the day."""
    match = _CLOCK.match(value.strip())
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minutes > DAY_MINUTES:
        raise BadUserInput(f"{field}: must be a time like 09:00", {field: "must be HH:MM"})
    if minutes % GRID_MINUTES:
        reason = f"must be on the {GRID_MINUTES}-minute grid (like 09:00, 09:05)"
        raise BadUserInput(f"{field}: {reason}", {field: reason})
    return minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


async def get_doctor(id: ObjectId) -> Doctor:
    return await common.get_or_404(Doctor, id, "Doctor")


# -- weekly templates ----------------------------------------------------------------------------


async def working_hours(doctor_id: ObjectId) -> WorkingHours | None:
    return await WorkingHours.find_one({"doctor_id": doctor_id})


async def set_working_hours(doctor_id: ObjectId, days: Sequence[Mapping[str, Any]]) -> WorkingHours:
    """Replace the doctor's weekly template with ``days`` (``weekday``, ``ranges`` of
    ``start``/``end`` clock strings). A weekday left out is a day off."""
    await get_doctor(doctor_id)
    parsed = [
        {
            "weekday": day["weekday"],
            "ranges": [
                {
                    "start": parse_clock(r["start"], f"days.{i}.ranges.{j}.start"),
                    "end": parse_clock(r["end"], f"days.{i}.ranges.{j}.end"),
                }
                for j, r in enumerate(day.get("ranges") or [])
            ],
        }
        for i, day in enumerate(days)
    ]
    existing = await working_hours(doctor_id)
    now = utcnow()
    template = build(
        WorkingHours,
        {
            "doctor_id": doctor_id,
            "days": parsed,
            "created_at": existing.created_at if existing else now,
            "updated_at": now,
        },
    )
    if existing is None:
        return await common.insert(template, "working hours")
    template.id = existing.id
    await template.replace()
    await changed(template, "updated")
    return template


# -- exceptions ------------------------------------------------------------------------------------


async def add_exception(data: Mapping[str, Any]) -> CalendarException:
    fields = dict(data)
    if fields.get("doctor_id") is not None:
        await common.ensure_exists(Doctor, fields["doctor_id"], "doctorId", "doctor")
    for name in ("start", "end"):
        if fields.get(name) is not None:
            fields[name] = parse_clock(fields[name], name)
    exception = build(CalendarException, fields)
    return await common.insert(exception, "calendar exception")


async def get_exception(id: ObjectId) -> CalendarException:
    return await common.get_or_404(CalendarException, id, "CalendarException")


async def remove_exception(exception: CalendarException) -> CalendarException:
    await db.collection(CalendarException).delete_one({"_id": exception.id})
    await changed(exception, "deleted")
    return exception


def _check_days(first_day: date, last_day: date) -> None:
    require(last_day >= first_day, "to", "must not be before from")
    require((last_day - first_day).days <= MAX_LIST_SPAN_DAYS, "to", "may span at most 366 days")


async def exceptions_between(
    doctor_id: ObjectId | None, first_day: date, last_day: date
) -> list[CalendarException]:
    """Exceptions touching ``[first_day, last_day]``: the doctor's and the facility's holidays
    (only the holidays when ``doctor_id`` is None), by first day."""
    _check_days(first_day, last_day)
    owners: list[ObjectId | None] = [None] if doctor_id is None else [doctor_id, None]
    return (
        await CalendarException.find(
            {"doctor_id": {"$in": owners}},
            CalendarException.first_day <= last_day,
            CalendarException.last_day >= first_day,
        )
        .sort([("first_day", SortDirection.ASCENDING), ("_id", SortDirection.ASCENDING)])
        .limit(MAX_LISTED)
        .to_list()
    )


# -- appointment types ---------------------------------------------------------------------------


async def create_appointment_type(data: Mapping[str, Any]) -> AppointmentType:
    return await common.insert(build(AppointmentType, data), "appointment type")


async def appointment_types() -> list[AppointmentType]:
    return (
        await AppointmentType.find_all()
        .sort([("code", SortDirection.ASCENDING)])
        .limit(MAX_LISTED)
        .to_list()
    )


async def get_appointment_type(id: ObjectId, field: str = "appointmentType") -> AppointmentType:
    found = await AppointmentType.get(id)
    if found is None:
        raise BadUserInput(f"{field}: no such appointment type", {field: "no such type"})
    return found


# -- maintenance windows ---------------------------------------------------------------------------


async def schedule_maintenance(data: Mapping[str, Any]) -> MaintenanceWindow:
    window = build(MaintenanceWindow, data)
    await common.ensure_exists(MedicalEquipment, window.equipment_id, "equipmentId", "equipment")
    grid = "must be on the 5-minute grid"
    require(on_grid(window.start_at), "startAt", grid)
    require(on_grid(window.end_at), "endAt", grid)
    return await common.insert(window, "maintenance window")


async def get_maintenance(id: ObjectId) -> MaintenanceWindow:
    return await common.get_or_404(MaintenanceWindow, id, "MaintenanceWindow")


async def cancel_maintenance(window: MaintenanceWindow) -> MaintenanceWindow:
    await db.collection(MaintenanceWindow).delete_one({"_id": window.id})
    await changed(window, "deleted")
    return window


async def maintenance_between(
    equipment_ids: Sequence[ObjectId],
    start_at: datetime,
    end_at: datetime,
    limit: int | None = MAX_LISTED,
) -> list[MaintenanceWindow]:
    """Windows of these devices overlapping ``[start_at, end_at)``, by start: one query."""
    if not equipment_ids:
        return []
    require(end_at > start_at, "to", "must be after from")
    query = MaintenanceWindow.find(
        {
            "equipment_id": {"$in": list(equipment_ids)},
            "start_at": {"$lt": end_at},
            "end_at": {"$gt": start_at},
        }
    ).sort([("start_at", SortDirection.ASCENDING), ("_id", SortDirection.ASCENDING)])
    return await (query.limit(limit) if limit else query).to_list()
