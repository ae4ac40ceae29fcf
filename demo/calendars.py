"""The demo's calendars: every doctor works Mon-Fri 08:00-17:00 facility time, and a few
appointment types (some needing a device the demo departments own)."""

from __future__ import annotations

from collections.abc import Sequence

from demo import ids
from demo.facility import OPENED_AT
from models.calendars import AppointmentType, DayHours, TimeRange, Weekday, WorkingHours
from models.staff import Doctor

WORKDAYS = (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)
DAY = TimeRange(start=8 * 60, end=17 * 60)

APPOINTMENT_TYPES: tuple[tuple[str, str, int, str | None], ...] = (
    ("CONSULT", "Consultation", 30, None),
    ("FOLLOWUP", "Follow-up visit", 15, None),
    ("ECG", "12-lead ECG", 20, "Electrocardiograph"),
    ("ECHO", "Echocardiogram", 45, "Ultrasound"),
)
"""(code, name, minutes, equipment type) of the demo catalogue."""


def working_hours(doctors: Sequence[Doctor]) -> list[WorkingHours]:
    return [
        WorkingHours(
            id=ids.working_hours_id(n),
            doctor_id=doctor.id,
            days=[DayHours(weekday=day, ranges=[DAY]) for day in WORKDAYS],
            created_at=OPENED_AT,
            updated_at=OPENED_AT,
        )
        for n, doctor in enumerate(doctors, start=1)
    ]


def appointment_types() -> list[AppointmentType]:
    return [
        AppointmentType(
            id=ids.appointment_type_id(n),
            code=code,
            name=name,
            duration_minutes=minutes,
            equipment_type=equipment,
            created_at=OPENED_AT,
            updated_at=OPENED_AT,
        )
        for n, (code, name, minutes, equipment) in enumerate(APPOINTMENT_TYPES, start=1)
    ]
