"""Appointments and their reschedule history."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

from models.base import Entity, LongText, Ref, ShortText, UtcDatetime


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


ACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.CHECKED_IN)


class Reschedule(BaseModel):
    previous_start_at: UtcDatetime
    previous_end_at: UtcDatetime
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText | None = None
    at: UtcDatetime


class Cancellation(BaseModel):
    reason: ShortText | None = None
    at: UtcDatetime


class Appointment(Entity):
    patient_id: Ref
    doctor_id: Ref
    department_id: Ref = Field(description="The doctor's department when booked, for filtering.")
    equipment_id: Ref | None = None
    start_at: UtcDatetime
    end_at: UtcDatetime
    reason: ShortText
    notes: LongText | None = None
    status: AppointmentStatus = AppointmentStatus.SCHEDULED
    reschedule_history: list[Reschedule] = Field(default_factory=list)
    cancellation: Cancellation | None = None

    class Settings:
        name = "appointments"
        indexes = [
            pymongo.IndexModel([("doctor_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("equipment_id", 1), ("start_at", 1)]),
            pymongo.IndexModel([("start_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("start_at", 1)]),
        ]
