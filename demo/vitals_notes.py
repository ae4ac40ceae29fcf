"""Demo vital signs and signed consultation notes, one of each per completed visit.

Each completed appointment gets a set of vital signs taken by a nurse of its department just
before the doctor saw the patient, and the doctor's consultation note, signed when the visit
ended. The note agrees with the patient's treatment plan: at the visit that started the plan it
records the plan's diagnosis, at later visits it reviews it, and before (or without) a plan it
records no diagnosis; the readings it quotes are the set's, and conditions show in them (high
pressure with hypertension, fever with otitis, low saturation with COPD...). Sets and notes link
to the outpatient visit of the appointment when the visit module seeded one.

Everything is derived from the appointment (ids by hashing its id, an RNG seeded with it,
times from it), so every seed writes the same documents whatever the batch size.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

import db
from demo.clock import ANCHOR, minutes
from models.clinical import PerformerRole, TreatmentPlan
from models.notes import ClinicalNote, NoteStatus, NoteType
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient, Sex
from models.scheduling import Appointment, AppointmentStatus
from models.staff import Nurse
from models.vitals import VitalSigns
from services import notes, signing, vitals

BATCH = 1000
HYPERTENSIVE = frozenset({"I10", "I50.9", "I25.10"})
FEVER = frozenset({"H66.9", "J44.9"})
LOW_SATURATION = frozenset({"J44.9", "I50.9"})
PAINFUL = ("S", "M", "R07", "R10", "T78")


def _id(key: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(key.encode(), digest_size=12).digest())


@dataclass(frozen=True)
class _Context:
    appointment: Appointment
    visit: OutpatientVisit | None
    patient: Patient
    plan: TreatmentPlan | None
    nurses: Sequence[Nurse]


def _age(patient: Patient, at: datetime) -> float:
    return (at.date() - patient.date_of_birth).days / 365.25


def _diagnosis_now(c: _Context) -> str | None:
    """The plan's ICD-10 code once the plan exists at this visit (it starts when its visit
    ends), else None."""
    plan = c.plan
    if plan is None or plan.created_at > c.appointment.end_at:
        return None
    return plan.diagnosis.code


def _readings(c: _Context, rng: random.Random) -> dict[str, Any]:
    age = _age(c.patient, c.appointment.start_at)
    code = _diagnosis_now(c) or ""
    adult = age >= 16
    if adult:
        tall = rng.gauss(178 if c.patient.sex == Sex.MALE else 165, 7)
        height = round(min(max(tall, 145), 205), 1)
        bmi = rng.uniform(27, 34) if code == "E11.9" else rng.uniform(19.5, 30)
        systolic, diastolic = rng.randint(108, 138), rng.randint(66, 86)
        pulse, rate = rng.randint(58, 92), rng.randint(12, 18)
    else:
        height = round(min(55 + 6.5 * age + rng.uniform(-4, 4), 185), 1)
        bmi = rng.uniform(14.5, 19.5)
        systolic, diastolic = rng.randint(88, 112), rng.randint(50, 70)
        pulse, rate = rng.randint(80, 125), rng.randint(18, 28)
    if code in HYPERTENSIVE:
        systolic, diastolic = rng.randint(146, 172), rng.randint(90, 102)
    if code == "I48.91":
        pulse = rng.randint(96, 128)
    temperature = round(rng.uniform(36.2, 37.2), 1)
    if code in FEVER:
        temperature = round(rng.uniform(37.9, 38.7), 1)
    spo2 = float(rng.randint(96, 99))
    if code in LOW_SATURATION:
        spo2, rate = float(rng.randint(90, 94)), max(rate, rng.randint(19, 24))
    pain = rng.randint(4, 7) if code.startswith(PAINFUL) else rng.randint(0, 2)
    weight = round(bmi * (height / 100) ** 2, 1)
    return {
        "temperature": temperature,
        "pulse": pulse,
        "systolic": systolic,
        "diastolic": diastolic,
        "respiratory_rate": rate,
        "spo2": spo2,
        "height": height,
        "weight": weight,
        "bmi": vitals.bmi(height, weight),
        "pain_score": pain,
    }


def _times(c: _Context) -> tuple[datetime, datetime, datetime]:
    """(vital signs taken, note started, note signed): within the visit, never after the
    demo's "now"."""
    a, v = c.appointment, c.visit
    seen = (v.seen_at if v is not None else None) or a.start_at
    arrived = (v.checked_in_at if v is not None else None) or a.start_at - timedelta(minutes=10)
    ended = (v.completed_at if v is not None else None) or a.end_at
    taken = minutes(max(arrived, seen - timedelta(minutes=5)))
    return taken, minutes(seen), min(minutes(ended), ANCHOR)


def _text(c: _Context, r: dict[str, Any]) -> str:
    a, plan = c.appointment, c.plan
    lines = [f"Reason for visit: {a.reason}."]
    lines.append(
        f"Vital signs: temperature {r['temperature']:g} Cel, pulse {r['pulse']} /min, "
        f"blood pressure {r['systolic']}/{r['diastolic']} mm[Hg], SpO2 {r['spo2']:g} %, "
        f"BMI {r['bmi']:g} kg/m2, pain {r['pain_score']}/10."
    )
    if plan is not None and _diagnosis_now(c) is not None:
        d = plan.diagnosis
        if plan.created_at == a.end_at and plan.doctor_id == a.doctor_id:
            lines.append(f"Assessment: {d.description} ({d.code}).")
            goals = "; ".join(plan.goals) or "to be agreed"
            lines.append(f"Plan: treatment plan started. Goals: {goals}.")
        else:
            lines.append(f"Known diagnosis: {d.description} ({d.code}); treatment plan reviewed.")
    else:
        lines.append("Assessment: examined; no new diagnosis at this visit.")
    return "\n".join(lines)


def _build(c: _Context) -> tuple[VitalSigns, ClinicalNote]:
    a = c.appointment
    rng = random.Random(f"shms-demo/vitals-notes/{a.id}")
    readings = _readings(c, rng)
    taken, started, signed = _times(c)
    nurse = rng.choice(c.nurses) if c.nurses else None
    recorder = nurse.id if nurse is not None else a.doctor_id
    visit_id = c.visit.id if c.visit is not None else None
    doctor = (c.visit.doctor_id if c.visit is not None else None) or a.doctor_id
    vital = VitalSigns(
        id=_id(f"vital_signs:{a.id}"),
        patient_id=a.patient_id,
        visit_id=visit_id,
        recorded_by_id=recorder,
        recorded_by_role=PerformerRole.NURSE if nurse is not None else PerformerRole.DOCTOR,
        recorded_at=taken,
        **readings,
        created_at=taken,
    )
    note = ClinicalNote(
        id=_id(f"clinical_note:{a.id}"),
        patient_id=a.patient_id,
        chart_patient_id=a.patient_id,
        visit_id=visit_id,
        note_type=NoteType.CONSULTATION,
        title=f"Consultation: {a.reason}",
        text=_text(c, readings),
        author_id=doctor,
        author_role=PerformerRole.DOCTOR,
        status=NoteStatus.SIGNED,
        version=2,  # written, then signed
        signed_by_id=doctor,
        signed_at=signed,
        created_at=started,
        updated_at=signed,
    )
    note.content_hash = signing.digest(notes.canonical(note))
    return vital, note


async def _batch(appointments: list[Appointment], nurses: dict[Any, list[Nurse]]) -> int:
    ids = [a.id for a in appointments]
    patient_ids = sorted({a.patient_id for a in appointments})
    visits = {
        v.appointment_id: v
        for v in await OutpatientVisit.find({"appointment_id": {"$in": ids}}).to_list()
    }
    patients = {p.id: p for p in await Patient.find({"_id": {"$in": patient_ids}}).to_list()}
    plans: dict[Any, TreatmentPlan] = {}
    for plan in (
        await TreatmentPlan.find({"patient_id": {"$in": patient_ids}}).sort("+_id").to_list()
    ):
        plans.setdefault(plan.patient_id, plan)  # the demo gives a patient one plan at most
    sets, written = [], []
    for a in appointments:
        patient, visit = patients.get(a.patient_id), visits.get(a.id)
        if patient is None or (visit is not None and visit.status != VisitStatus.COMPLETED):
            continue
        context = _Context(
            a, visit, patient, plans.get(a.patient_id), nurses.get(a.department_id, [])
        )
        vital, note = _build(context)
        sets.append(vital)
        written.append(note)
    if sets:
        await VitalSigns.insert_many(sets)
        await ClinicalNote.insert_many(written)
    return len(sets)


async def seed_vitals_notes() -> int:
    """A set of vital signs and a signed consultation note per completed appointment (through
    its outpatient visit when there is one); returns how many of each."""
    nurses: dict[Any, list[Nurse]] = {}
    for nurse in await Nurse.find({}).sort("+_id").to_list():
        nurses.setdefault(nurse.department_id, []).append(nurse)
    total = 0
    pending: list[Appointment] = []
    cursor = db.collection(Appointment).find(
        {"status": AppointmentStatus.COMPLETED.value}, sort=[("_id", 1)]
    )
    async for raw in cursor:
        pending.append(Appointment.model_validate(raw))
        if len(pending) >= BATCH:
            total += await _batch(pending, nurses)
            pending = []
    if pending:
        total += await _batch(pending, nurses)
    return total
