"""Scheduling, rescheduling and cancelling appointments.

Overlap prevention (no double booking across processes) belongs to the scheduling issue and
needs reservations enforced by MongoDB itself; nothing here pretends to check it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId

from errors import BadUserInput, Conflict
from models.base import utcnow
from models.equipment import EquipmentStatus, MedicalEquipment
from models.patients import Patient
from models.scheduling import Appointment, AppointmentStatus, Cancellation, Reschedule
from models.staff import Doctor
from services import care, common
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, paginate
from services.validation import build, require

BY_START: Sort = (("start_at", ASC), ("_id", ASC))
MAX_DURATION = timedelta(hours=12)
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


def _check_times(start_at: datetime, end_at: datetime, now: datetime) -> None:
    require(end_at > start_at, "endAt", "must be after startAt")
    require(end_at - start_at <= MAX_DURATION, "endAt", "an appointment may last at most 12 hours")
    require(start_at > now, "startAt", "must be in the future")


async def schedule_appointment(data: Mapping[str, Any]) -> Appointment:
    doctor = await Doctor.get(data.get("doctor_id")) if data.get("doctor_id") else None
    # department_id comes from the doctor, not the client: it is what department filters rely on.
    fields = dict(data, department_id=doctor.department_id if doctor else ObjectId())
    appointment = build(Appointment, fields)
    if doctor is None:
        raise BadUserInput("doctorId: no such doctor", {"doctorId": "no such doctor"})
    require(doctor.active, "doctorId", "doctor is not active")
    await common.ensure_exists(Patient, appointment.patient_id, "patientId", "patient")
    if appointment.equipment_id is not None:
        equipment = await MedicalEquipment.get(appointment.equipment_id)
        require(equipment is not None, "equipmentId", "no such equipment")
        assert equipment is not None
        require(
            equipment.status != EquipmentStatus.OUT_OF_SERVICE,
            "equipmentId",
            "equipment is out of service",
        )
    _check_times(appointment.start_at, appointment.end_at, utcnow())
    appointment.status = AppointmentStatus.SCHEDULED
    await common.insert(appointment, "appointment")
    await care.record(appointment.patient_id, doctor.id, doctor.department_id)  # type: ignore[arg-type]
    return appointment


async def _compare_and_set(
    appointment: Appointment,
    expected: Query,
    changes: Query,
    change: str,
    push: Query | None = None,
) -> Appointment:
    """Apply ``changes`` only if the appointment still matches ``expected``; CONFLICT if not."""
    operation: Query = {"$set": {k: _encoder.encode(v) for k, v in changes.items()}}
    if push:
        operation["$push"] = {k: _encoder.encode(v) for k, v in push.items()}
    result = await Appointment.get_motor_collection().update_one(
        {"_id": appointment.id, **expected}, operation
    )
    if result.matched_count == 0:
        raise Conflict("The appointment changed meanwhile; read it again and retry")
    stored = await get_appointment(appointment.id)  # type: ignore[arg-type]
    await changed(stored, change)
    return stored


async def reschedule_appointment(
    id: ObjectId, start_at: datetime, end_at: datetime, reason: str | None
) -> Appointment:
    appointment = await get_appointment(id)
    now = utcnow()
    entry = build(
        Reschedule,
        {
            "previous_start_at": appointment.start_at,
            "previous_end_at": appointment.end_at,
            "start_at": start_at,
            "end_at": end_at,
            "reason": reason,
            "at": now,
        },
    )
    _check_times(entry.start_at, entry.end_at, now)
    if appointment.status != AppointmentStatus.SCHEDULED:
        status = appointment.status.value
        raise BadUserInput(
            f"Only scheduled appointments can be rescheduled; this one is {status}",
            {"id": f"appointment is {status}"},
        )
    require(
        (entry.start_at, entry.end_at) != (appointment.start_at, appointment.end_at),
        "startAt",
        "is the current time already",
    )
    return await _compare_and_set(
        appointment,
        {"status": AppointmentStatus.SCHEDULED.value, "start_at": appointment.start_at},
        {"start_at": entry.start_at, "end_at": entry.end_at, "updated_at": now},
        "rescheduled",
        push={"reschedule_history": entry},
    )


async def cancel_appointment(id: ObjectId, reason: str | None) -> Appointment:
    appointment = await get_appointment(id)
    now = utcnow()
    cancellation = build(Cancellation, {"reason": reason, "at": now})
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise BadUserInput(
            f"Only scheduled appointments can be cancelled; this one is {appointment.status.value}",
            {"id": f"appointment is {appointment.status.value}"},
        )
    return await _compare_and_set(
        appointment,
        {"status": AppointmentStatus.SCHEDULED.value},
        {
            "status": AppointmentStatus.CANCELLED.value,
            "cancellation": cancellation,
            "updated_at": now,
        },
        "cancelled",
    )
