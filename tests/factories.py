"""Async factories with sensible defaults: tests name only what they are about."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models import (
    AccessGrant,
    Appointment,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Nurse,
    Patient,
    Prescription,
    TreatmentPlan,
)
from models.clinical import Diagnosis, Route
from services import care
from tests.conftest import TEST_CLINICIAN_SUBJECT

_seq = itertools.count(1)
FUTURE = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


def n() -> int:
    return next(_seq)


async def department(**fields: Any) -> Department:
    i = n()
    doc = Department(**{"name": f"Department {i}", "code": f"D{i}", **fields})
    return await doc.insert()


async def doctor(dept: Department | None = None, **fields: Any) -> Doctor:
    dept = dept or await department()
    i = n()
    base = {
        "first_name": "Ada",
        "last_name": f"Doctor{i}",
        "department_id": dept.id,
        "specialty": "Cardiology",
        "licence_number": f"LIC-{i}",
    }
    return await Doctor(**{**base, **fields}).insert()


async def nurse(dept: Department | None = None, **fields: Any) -> Nurse:
    dept = dept or await department()
    i = n()
    base = {"first_name": "Flo", "last_name": f"Nurse{i}", "department_id": dept.id}
    return await Nurse(**{**base, "licence_number": f"RN-{i}", **fields}).insert()


async def patient(*, clinician_access: bool = True, **fields: Any) -> Patient:
    """A patient; by default the domain tests' caller (``gql``) may open their chart, through a
    live grant (care relationships are computed from appointments and plans, which most domain
    tests do not want to create). Access tests pass ``clinician_access=False``."""
    i = n()
    base = {
        "first_name": "Pat",
        "last_name": f"Patient{i}",
        "date_of_birth": date(1980, 1, 1),
    }
    doc = Patient(**{**base, **fields})
    doc.refresh_search_tokens()
    await doc.insert()
    if clinician_access:
        await AccessGrant(
            subject=TEST_CLINICIAN_SUBJECT,
            patient_id=doc.id,
            reason="domain tests act as this patient's clinician",
            expires_at=FUTURE,
        ).insert()
    return doc


async def equipment(dept: Department | None = None, **fields: Any) -> MedicalEquipment:
    dept = dept or await department()
    i = n()
    base = {
        "name": f"Monitor {i}",
        "equipment_type": "ECG monitor",
        "serial_number": f"SN-{i}",
        "department_id": dept.id,
    }
    return await MedicalEquipment(**{**base, **fields}).insert()


async def appointment(
    pat: Patient | None = None,
    doc: Doctor | None = None,
    device: MedicalEquipment | None = None,
    start: datetime | None = None,
    **fields: Any,
) -> Appointment:
    pat = pat or await patient()
    doc = doc or await doctor()
    start = start or FUTURE + timedelta(hours=n())
    base = {
        "patient_id": pat.id,
        "doctor_id": doc.id,
        "department_id": doc.department_id,
        "equipment_id": device.id if device else None,
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "reason": "Check-up",
    }
    made = await Appointment(**{**base, **fields}).insert()
    await care.refresh(made.patient_id)  # as services.changes does after every booking
    return made


async def treatment_plan(
    pat: Patient | None = None, doc: Doctor | None = None, **fields: Any
) -> TreatmentPlan:
    pat = pat or await patient()
    doc = doc or await doctor()
    base = {
        "patient_id": pat.id,
        "doctor_id": doc.id,
        "diagnosis": Diagnosis(code="I10", description="Essential hypertension"),
        "goals": ["Blood pressure under 140/90"],
    }
    made = await TreatmentPlan(**{**base, **fields}).insert()
    await care.refresh(made.patient_id)  # as services.changes does after every plan write
    return made


async def prescription(
    pat: Patient | None = None, doc: Doctor | None = None, **fields: Any
) -> Prescription:
    pat = pat or await patient()
    doc = doc or await doctor()
    base = {
        "patient_id": pat.id,
        "prescriber_id": doc.id,
        "drug": "Amlodipine",
        "dose": "5 mg",
        "route": Route.ORAL,
        "frequency": "once daily",
        "duration_days": 30,
    }
    return await Prescription(**{**base, **fields}).insert()


async def billing_account(pat: Patient | None = None, **fields: Any) -> BillingAccount:
    pat = pat or await patient()
    return await BillingAccount(**{"patient_id": pat.id, **fields}).insert()
