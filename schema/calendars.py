"""GraphQL types and inputs for calendars, appointment types, maintenance and availability."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from models import calendars as m
from schema.common import entity_id, ref_id
from services.availability import Slot as SlotRow
from services.calendars import format_clock

strawberry.enum(m.Weekday, description="Days of the week, Monday first.")
Weekday = m.Weekday


def _start(root: strawberry.Parent[m.TimeRange]) -> str:
    return format_clock(root.start)


def _end(root: strawberry.Parent[m.TimeRange]) -> str:
    return format_clock(root.end)


@strawberry.type(description="Local wall-clock times (facility time zone), `[start, end)`.")
class TimeRange:
    start: str = strawberry.field(resolver=_start, description="Like 09:00")
    end: str = strawberry.field(resolver=_end, description="Like 17:00; 24:00 ends the day")


@strawberry.type
class DayHours:
    weekday: Weekday
    ranges: list[TimeRange]


@strawberry.type(
    description="A doctor's weekly working hours in the facility's time zone; a weekday "
    "not listed is a day off."
)
class WorkingHours:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    days: list[DayHours]
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def doctor_id(root: strawberry.Parent[m.WorkingHours]) -> strawberry.ID:
        return strawberry.ID(str(root.doctor_id))


@strawberry.type(
    description="Leave of one doctor, or (no doctorId) a facility-wide holiday: the local days "
    "firstDay to lastDay, whole days or only start to end of each."
)
class CalendarException:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    first_day: date
    last_day: date
    reason: str
    created_at: datetime

    @strawberry.field
    @staticmethod
    def doctor_id(root: strawberry.Parent[m.CalendarException]) -> strawberry.ID | None:
        return ref_id(root.doctor_id)

    @strawberry.field(description="Local start time each day; null for whole days.")
    @staticmethod
    def start(root: strawberry.Parent[m.CalendarException]) -> str | None:
        return None if root.start is None else format_clock(root.start)

    @strawberry.field(description="Local end time each day; null for whole days.")
    @staticmethod
    def end(root: strawberry.Parent[m.CalendarException]) -> str | None:
        return None if root.end is None else format_clock(root.end)


@strawberry.type(description="A kind of visit: how long it takes and what device it needs.")
class AppointmentType:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    code: str
    name: str
    duration_minutes: int
    equipment_type: str | None
    created_at: datetime


@strawberry.type(description="A device is not bookable during `[startAt, endAt)`.")
class MaintenanceWindow:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    start_at: datetime
    end_at: datetime
    reason: str | None
    created_at: datetime

    @strawberry.field
    @staticmethod
    def equipment_id(root: strawberry.Parent[m.MaintenanceWindow]) -> strawberry.ID:
        return strawberry.ID(str(root.equipment_id))


@strawberry.type(description="A free time for one appointment of the asked type (UTC).")
class Slot:
    start_at: datetime
    end_at: datetime

    @strawberry.field(description="The device to book with it, when the type needs one.")
    @staticmethod
    def equipment_id(root: strawberry.Parent[SlotRow]) -> strawberry.ID | None:
        return ref_id(root.equipment_id)


@strawberry.input
class TimeRangeInput:
    start: str = strawberry.field(description="Local time like 09:00, on the 5-minute grid")
    end: str = strawberry.field(description="Local time like 17:00; 24:00 ends the day")


@strawberry.input
class DayHoursInput:
    weekday: Weekday
    ranges: list[TimeRangeInput]


@strawberry.input
class CalendarExceptionInput:
    doctor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Leave of this doctor; omit for a facility-wide holiday."
    )
    first_day: date
    last_day: date
    reason: str
    start: str | None = strawberry.field(
        default=None, description="Local start time for part of each day; omit for whole days"
    )
    end: str | None = None


@strawberry.input
class AppointmentTypeInput:
    code: str = strawberry.field(description="Upper-case letters, digits, _ or -; unique")
    name: str
    duration_minutes: int = strawberry.field(description="A multiple of 5, at most 720")
    equipment_type: str | None = None


@strawberry.input
class MaintenanceWindowInput:
    equipment_id: strawberry.ID
    start_at: datetime
    end_at: datetime
    reason: str | None = None
