"""Async factories with sensible defaults, and helpers to prove writes were all-or-nothing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from models.base import Entity, utcnow
from models.clinical import Diagnosis, PerformerRole, Treatment, TreatmentPlan
from models.departments import Department
from models.equipment import MedicalEquipment
from models.patients import Patient
from models.scheduling import Appointment
from models.staff import AdminStaff, Doctor, Nurse
from services import departments, equipment, patients, staff

_seq = itertools.count(1)


def _n() -> int:
    return next(_seq)


async def department(**overrides: Any) -> Department:
    n = _n()
    data = {"name": f"Department {n}", "code": f"D{n}", **overrides}
    return await departments.create_department(data)


async def doctor(department_id: ObjectId, **overrides: Any) -> Doctor:
    n = _n()
    data = {
        "first_name": "Ada",
        "last_name": f"Doctor{n}",
        "department_id": department_id,
        "specialty": "Cardiology",
        "licence_number": f"DOC-{n}",
        **overrides,
    }
    return await staff.create_doctor(data)


async def nurse(department_id: ObjectId, **overrides: Any) -> Nurse:
    n = _n()
    data = {
        "first_name": "Florence",
        "last_name": f"Nurse{n}",
        "department_id": department_id,
        "licence_number": f"NUR-{n}",
        **overrides,
    }
    return await staff.create_nurse(data)


async def admin(department_id: ObjectId, **overrides: Any) -> AdminStaff:
    n = _n()
    data = {"first_name": "Alan", "last_name": f"Admin{n}", "department_id": department_id}
    return await staff.create_admin_staff({**data, **overrides})


async def patient(**overrides: Any) -> Patient:
    data = {"first_name": "Pat", "last_name": f"Patient{_n()}", "date_of_birth": date(1980, 5, 17)}
    return await patients.register_patient({**data, **overrides})


async def device(department_id: ObjectId, **overrides: Any) -> MedicalEquipment:
    n = _n()
    data = {
        "name": f"Ventilator {n}",
        "equipment_type": "ventilator",
        "serial_number": f"SN-{n}",
        "department_id": department_id,
        **overrides,
    }
    return await equipment.register_equipment(data)


async def treatment(patient_id: ObjectId, doctor: Doctor) -> Treatment:
    """A treatment under a new plan of ``doctor``; the clinical service is not under test here."""
    plan = TreatmentPlan(
        patient_id=patient_id, doctor_id=doctor.id, diagnosis=Diagnosis(description="Arrhythmia")
    )
    await plan.insert()
    assert plan.id is not None and doctor.id is not None
    given = Treatment(
        plan_id=plan.id,
        patient_id=patient_id,
        performed_by_id=doctor.id,
        performed_by_role=PerformerRole.DOCTOR,
        performed_at=utcnow(),
        procedure="ECG",
    )
    return await given.insert()


async def appointment(
    patient_id: ObjectId, doctor: Doctor, equipment_id: ObjectId | None = None, **overrides: Any
) -> Appointment:
    """A booking of ``doctor``, optionally of a device (the scheduling service is not used)."""
    assert doctor.id is not None
    start = datetime(2030, 1, 7, 9, 0, tzinfo=UTC) + timedelta(hours=_n())
    data: dict[str, Any] = {
        "patient_id": patient_id,
        "doctor_id": doctor.id,
        "department_id": doctor.department_id,
        "equipment_id": equipment_id,
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "reason": "Check-up",
        **overrides,
    }
    return await Appointment(**data).insert()


async def stored(model: type[Entity], id: ObjectId | None) -> dict[str, Any] | None:
    """The raw stored document, straight from the collection (no Beanie defaults filled in)."""
    raw: dict[str, Any] | None = await model.get_motor_collection().find_one({"_id": id})
    return raw


async def all_stored(model: type[Entity]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await model.get_motor_collection().find({}).to_list(None)
    return rows


def read_together(
    monkeypatch: pytest.MonkeyPatch, module: Any, reader: str, parties: int = 2
) -> None:
    """Hold every concurrent caller after its read until all have read, then let them write.

    mongomock answers synchronously, so without this the first task would finish before the
    second one even read, and the race the compare-and-set guards against would never happen.
    """
    barrier = asyncio.Barrier(parties)
    original: Callable[..., Awaitable[Any]] = getattr(module, reader)

    async def read_then_wait(*args: Any, **kwargs: Any) -> Any:
        doc = await original(*args, **kwargs)
        await barrier.wait()
        return doc

    monkeypatch.setattr(module, reader, read_then_wait)


def id_of(doc: Entity) -> ObjectId:
    """The id of a stored document (Beanie types it optional until inserted)."""
    assert doc.id is not None
    return doc.id
