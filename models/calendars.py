"""Calendars: doctors' weekly working hours, leave and holidays, appointment types, and
equipment maintenance windows.

Working hours are local wall-clock times in the facility's time zone (``SHMS_FACILITY_TIMEZONE``)
and exceptions are local dates, so a 09:00 start stays 09:00 across daylight-saving changes;
``services/availability.py`` turns them into UTC instants with zoneinfo, day by day.
Times of day are stored as minutes after local midnight, on the 5-minute booking grid.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

import pymongo
from pydantic import BaseModel, Field, model_validator

from auth.policy import ADMIN_ONLY, SCHEDULERS, A, Action, R, S, declare, each, grant, row
from auth.policy import Classification as Class
from models.base import Entity, Name, Ref, ShortText, UtcDatetime

DAY_MINUTES = 24 * 60
GRID_MINUTES = 5

Minute = Annotated[int, Field(ge=0, le=DAY_MINUTES, multiple_of=GRID_MINUTES)]
"""Minutes after local midnight, on the 5-minute grid; 1440 is the end of the day."""


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Monday is 0, as ``date.weekday()`` counts."""
        return list(Weekday).index(self)


class TimeRange(BaseModel):
    """``[start, end)`` in local minutes after midnight."""

    start: Minute
    end: Minute

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class DayHours(BaseModel):
    weekday: Weekday
    ranges: list[TimeRange] = Field(default_factory=list, max_length=12)

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        self.ranges.sort(key=lambda r: r.start)
        for before, after in zip(self.ranges, self.ranges[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"ranges on {self.weekday.value} overlap")
        return self


class WorkingHours(Entity):
    """One doctor's weekly template: the local time ranges they work on each weekday."""

    doctor_id: Ref
    days: list[DayHours] = Field(default_factory=list, max_length=7)

    @model_validator(mode="after")
    def _one_entry_per_day(self) -> Self:
        seen = [d.weekday for d in self.days]
        if len(seen) != len(set(seen)):
            raise ValueError("each weekday may appear once")
        self.days.sort(key=lambda d: d.weekday.number)
        return self

    def ranges_on(self, weekday: int) -> list[TimeRange]:
        for day in self.days:
            if day.weekday.number == weekday:
                return day.ranges
        return []

    class Settings:
        name = "working_hours"
        indexes = [pymongo.IndexModel("doctor_id", unique=True, name="one_template_per_doctor")]


class CalendarException(Entity):
    """Time off: a doctor's leave, or (no ``doctor_id``) a facility-wide holiday.

    Covers the local days ``first_day`` to ``last_day`` (inclusive): whole days, or only
    ``[start, end)`` of each of them when those are given.
    """

    doctor_id: Ref | None = None
    first_day: date
    last_day: date
    start: Minute | None = None
    end: Minute | None = None
    reason: ShortText

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.last_day < self.first_day:
            raise ValueError("lastDay must not be before firstDay")
        if (self.last_day - self.first_day).days > 366:
            raise ValueError("an exception may span at most a year")
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end for part of a day, or neither")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    class Settings:
        name = "calendar_exceptions"
        indexes = [pymongo.IndexModel([("doctor_id", 1), ("first_day", 1)])]


class AppointmentType(Entity):
    code: Annotated[str, Field(pattern=r"^[A-Z0-9_-]{2,20}$")]
    name: Name
    duration_minutes: Annotated[int, Field(ge=GRID_MINUTES, le=12 * 60, multiple_of=GRID_MINUTES)]
    equipment_type: Name | None = Field(
        default=None, description="A device of this type must be free for the whole visit."
    )

    class Settings:
        name = "appointment_types"
        indexes = [pymongo.IndexModel("code", unique=True)]


class MaintenanceWindow(Entity):
    """A device is unavailable for booking during ``[start_at, end_at)``."""

    equipment_id: Ref
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_at <= self.start_at:
            raise ValueError("endAt must be after startAt")
        return self

    class Settings:
        name = "maintenance_windows"
        indexes = [pymongo.IndexModel([("equipment_id", 1), ("start_at", 1)])]


# A doctor keeps their own template and leave (the row of a write is the Doctor, so SELF is
# them); facility-wide holidays have no doctor row, so only admin may set them.
CALENDAR = declare(
    "Calendar",
    None,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "days",
            "createdAt",
            "updatedAt",
            "doctorId",
            "firstDay",
            "lastDay",
            "reason",
            "start",
            "end",
        ),
        each(SCHEDULERS, grant(A)),
    ),
    actions={Action.UPDATE: {R.ADMIN: grant(A), R.DOCTOR: grant(S)}},
    own=(("id", "staff_id"),),
    graphql_types=("WorkingHours", "CalendarException"),
)
APPOINTMENT_TYPE = declare(
    "AppointmentType",
    AppointmentType,
    row(
        Class.OPERATIONAL,
        ("id", "code", "name", "durationMinutes", "equipmentType", "createdAt"),
        each((*SCHEDULERS, R.PATIENT), grant(A)),
    ),
    actions={Action.CREATE: ADMIN_ONLY},
)
MAINTENANCE_WINDOW = declare(
    "MaintenanceWindow",
    MaintenanceWindow,
    row(
        Class.OPERATIONAL,
        ("id", "startAt", "endAt", "reason", "createdAt", "equipmentId"),
        each(SCHEDULERS, grant(A)),
    ),
    actions={Action.SCHEDULE: ADMIN_ONLY, Action.CANCEL: ADMIN_ONLY},
    refs=("equipment_id",),
)
# Free slots of a doctor, computed on request. Patients book their own visits, so they may look
# for free slots too.
AVAILABILITY = declare(
    "Availability",
    None,
    row(
        Class.OPERATIONAL,
        ("startAt", "endAt", "equipmentId"),
        each((*SCHEDULERS, R.PATIENT), grant(A)),
    ),
    graphql_types=("Slot",),
)
