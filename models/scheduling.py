"""Appointments and their reschedule history."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import pymongo
from pydantic import BaseModel, Field

from models.base import Entity, LongText, Ref, ShortText


class AppointmentStatus(str, Enum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


ACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.CHECKED_IN)


class Reschedule(BaseModel):
    previous_start_at: datetime
    previous_end_at: datetime
    start_at: datetime
    end_at: datetime
    reason: ShortText | None = None
    at: datetime


class Cancellation(BaseModel):
    reason: ShortText | None = None
    at: datetime


class Appointment(Entity):
    patient_id: Ref
    doctor_id: Ref
    department_id: Ref = Field(description="The doctor's department when booked, for filtering.")
    equipment_id: Ref | None = None
    start_at: datetime
    end_at: datetime
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
