"""A small clinic for the vital-signs and notes tests: a patient, two doctors who treat them (by
upcoming appointments), a doctor who does not, a completed visit, and callers of every kind.

Everything is arranged before the first request: the factories write behind the services'
back, so the document cache would not see later care changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models import Department, Doctor, Patient
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from tests import factories

HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


async def visit(patient: Patient, doctor: Doctor, **fields: Any) -> OutpatientVisit:
    """A completed outpatient visit (written directly: the visit module is not under test)."""
    at = HOUR_AGO - timedelta(minutes=30)
    base: dict[str, Any] = {
        "patient_id": patient.id,
        "doctor_id": doctor.id,
        "department_id": doctor.department_id,
        "arrival": Arrival.WALK_IN,
        "status": VisitStatus.COMPLETED,
        "queue_date": at.date().isoformat(),
        "queue_number": factories.n(),
        "checked_in_at": at,
        "status_at": at,
    }
    return await OutpatientVisit(**{**base, **fields}).insert()


@dataclass
class Clinic:
    department: Department
    doctor: Doctor
    peer: Doctor
    stranger: Doctor
    patient: Patient
    other_patient: Patient
    visit: OutpatientVisit
    me: Any
    peer_client: Any
    colleague: Any
    patient_client: Any
    other_patient_client: Any
    billing: Any
    analyst: Any


async def clinic(client_as: Any) -> Clinic:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    peer = await factories.doctor(dept)
    stranger = await factories.doctor(await factories.department())
    patient = await factories.patient(clinician_access=False)
    other = await factories.patient(clinician_access=False)
    await factories.appointment(patient, doctor)  # upcoming: the doctor treats the patient
    await factories.appointment(patient, peer)  # a second doctor of the care team
    await factories.appointment(other, doctor)
    seen = await visit(patient, doctor)
    return Clinic(
        department=dept,
        doctor=doctor,
        peer=peer,
        stranger=stranger,
        patient=patient,
        other_patient=other,
        visit=seen,
        me=client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id)),
        peer_client=client_as(roles=["doctor"], sid=str(peer.id), did=str(dept.id)),
        colleague=client_as(
            roles=["doctor"], sid=str(stranger.id), did=str(stranger.department_id)
        ),
        patient_client=client_as(roles=["patient"], pid=str(patient.id)),
        other_patient_client=client_as(roles=["patient"], pid=str(other.id)),
        billing=client_as(roles=["billing"]),
        analyst=client_as(roles=["analyst"]),
    )
