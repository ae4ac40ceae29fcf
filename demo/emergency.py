"""Demo emergency department: two weeks of disposed visits and a live board on "today".

The demo's emergency room (code ``ER``) saw a few patients a day over the two weeks before
``ANCHOR``: each triaged by one of its nurses within minutes, seen by one of its doctors, and
discharged, transferred to the regional trauma centre, or gone before being seen, so the ED
analytics (time to triage, time to disposition) have history. On the demo's "today" the board
is live: one arrival awaits triage, one ESI 2 is in treatment, and ESI 3, 4 and 5 patients
wait. Admissions from the ED are left to the admissions demo (they need ward beds). Everything
derives from a fixed seed and the demo clock; patients are distinct from one another.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from beanie import PydanticObjectId
from bson import ObjectId

import db
from demo.clock import ANCHOR
from models.departments import Department
from models.emergency import (
    AWAITING_TRIAGE_RANK,
    ArrivalMode,
    Disposition,
    DispositionKind,
    EmergencyStatus,
    EmergencyStep,
    EmergencyVisit,
    Triage,
    TriageRole,
    TriageVitals,
)
from models.patients import Patient
from models.staff import Doctor, Nurse
from services import care

SEED = 15_005
PAST_DAYS = 14
COMPLAINTS: tuple[tuple[str, int], ...] = (
    ("Chest pain radiating to the left arm", 2),
    ("Fall from a ladder, painful wrist", 4),
    ("Shortness of breath, known asthma", 3),
    ("Head injury after a cycling accident", 3),
    ("Abdominal pain and vomiting since last night", 3),
    ("Laceration to the forearm", 4),
    ("High fever and confusion", 2),
    ("Sore throat for three days", 5),
    ("Twisted ankle playing football", 4),
    ("Sudden weakness of the right arm", 1),
)
TODAY: tuple[tuple[int, int | None, EmergencyStatus, ArrivalMode], ...] = (
    # (minutes after 08:00, ESI level, status, how they came)
    (0, 2, EmergencyStatus.IN_TREATMENT, ArrivalMode.AMBULANCE),
    (25, 5, EmergencyStatus.TRIAGED, ArrivalMode.WALK_IN),
    (50, 3, EmergencyStatus.TRIAGED, ArrivalMode.WALK_IN),
    (70, 4, EmergencyStatus.TRIAGED, ArrivalMode.POLICE),
    (95, None, EmergencyStatus.WAITING, ArrivalMode.AMBULANCE),
)


def _id(n: int) -> PydanticObjectId:
    """The n-th demo ED visit's id: the same on every seed."""
    return PydanticObjectId(hashlib.blake2b(f"ed:{n}".encode(), digest_size=12).digest())


def _vitals(rng: random.Random, level: int) -> TriageVitals:
    sick = level <= 2
    return TriageVitals(
        heart_rate=rng.randint(105, 135) if sick else rng.randint(62, 98),
        systolic=rng.randint(88, 105) if sick else rng.randint(112, 145),
        diastolic=rng.randint(50, 65) if sick else rng.randint(68, 90),
        respiratory_rate=rng.randint(22, 30) if sick else rng.randint(12, 18),
        spo2=float(rng.randint(88, 94) if sick else rng.randint(96, 100)),
        temperature=round(rng.uniform(36.2, 39.4), 1),
        pain_score=rng.randint(0, 9),
        gcs=rng.choice((13, 14, 15)) if sick else 15,
    )


def _triage(rng: random.Random, level: int, at: datetime, nurse: ObjectId) -> Triage:
    return Triage(
        level=level,
        triaged_at=at,
        triaged_by_id=nurse,
        triaged_by_role=TriageRole.NURSE,
        vitals=_vitals(rng, level),
    )


def _visit(
    rng: random.Random,
    patient: ObjectId,
    department: ObjectId,
    arrived: datetime,
    complaint: tuple[str, int],
    nurse: ObjectId,
    doctor: ObjectId,
    status: EmergencyStatus,
    mode: ArrivalMode,
    level: int | None,
    kind: DispositionKind | None = None,
) -> EmergencyVisit:
    steps = [EmergencyStep(action="registered", to_status=EmergencyStatus.WAITING, at=arrived)]
    triage = None
    at = arrived
    if level is not None:
        at = arrived + timedelta(minutes=rng.randint(2, 5 if level <= 2 else 25))
        triage = _triage(rng, level, at, nurse)
        steps.append(
            EmergencyStep(
                action="triaged",
                from_status=EmergencyStatus.WAITING,
                to_status=EmergencyStatus.TRIAGED,
                at=at,
            )
        )
    seen = None
    left = kind == DispositionKind.LEFT_WITHOUT_BEING_SEEN
    if status == EmergencyStatus.IN_TREATMENT or (kind is not None and not left):
        seen = at + timedelta(minutes=rng.randint(5, 60))
        steps.append(
            EmergencyStep(
                action="treatment_started",
                from_status=steps[-1].to_status,
                to_status=EmergencyStatus.IN_TREATMENT,
                at=seen,
            )
        )
    disposition = None
    if kind is not None:
        ended = (seen or at) + timedelta(minutes=rng.randint(40, 300))
        disposition = Disposition(
            kind=kind,
            at=ended,
            by_id=None if left else doctor,
            destination="Regional Trauma Centre" if kind == DispositionKind.TRANSFERRED else None,
        )
        steps.append(
            EmergencyStep(
                action=f"disposed_{kind.value}",
                from_status=steps[-1].to_status,
                to_status=EmergencyStatus.DISPOSED,
                at=ended,
            )
        )
    last = steps[-1].at
    return EmergencyVisit(
        patient_id=patient,
        department_id=department,
        arrived_at=arrived,
        arrival_mode=mode,
        chief_complaint=complaint[0],
        status=status,
        status_at=last,
        triage=triage,
        triage_history=[triage] if triage is not None else [],
        acuity_rank=level if level is not None else AWAITING_TRIAGE_RANK,
        assigned_doctor_id=doctor if seen is not None else None,
        seen_at=seen,
        disposition=disposition,
        open_patient_id=patient if status != EmergencyStatus.DISPOSED else None,
        version=len(steps) - 1,
        history=steps,
        created_at=arrived,
        updated_at=last,
    )


async def seed_emergency() -> int:
    """The ER's past visits and today's board; returns how many visits were written."""
    department = await Department.find_one({"code": "ER"})
    if department is None or department.id is None:
        return 0
    nurses = [n.id for n in await Nurse.find({"department_id": department.id}).to_list() if n.id]
    doctors = [d.id for d in await Doctor.find({"department_id": department.id}).to_list() if d.id]
    if not nurses or not doctors:
        return 0
    rng = random.Random(SEED)
    wanted = PAST_DAYS * 3 + len(TODAY)
    raw = db.collection(Patient).find({}, {"_id": 1}).sort("_id", 1).limit(wanted)
    patients = [p["_id"] for p in await raw.to_list(None)]
    visits: list[EmergencyVisit] = []
    kinds = [DispositionKind.DISCHARGED] * 7 + [
        DispositionKind.TRANSFERRED,
        DispositionKind.LEFT_WITHOUT_BEING_SEEN,
    ]
    for n, patient in enumerate(patients[: PAST_DAYS * 3]):
        day = ANCHOR - timedelta(days=1 + n // 3)
        arrived = day + timedelta(hours=rng.randint(0, 22), minutes=rng.randint(0, 59))
        complaint = rng.choice(COMPLAINTS)
        kind = rng.choice(kinds)
        level = complaint[1] if kind != DispositionKind.LEFT_WITHOUT_BEING_SEEN else 5
        visits.append(
            _visit(
                rng,
                patient,
                department.id,
                arrived,
                complaint,
                rng.choice(nurses),
                rng.choice(doctors),
                EmergencyStatus.DISPOSED,
                ArrivalMode.WALK_IN,
                level,
                kind,
            )
        )
    for patient, (after, esi, status, mode) in zip(patients[PAST_DAYS * 3 :], TODAY, strict=False):
        arrived = ANCHOR + timedelta(hours=8, minutes=after)
        complaint = next((c for c in COMPLAINTS if c[1] == esi), COMPLAINTS[1])
        visits.append(
            _visit(
                rng,
                patient,
                department.id,
                arrived,
                complaint,
                nurses[0],
                doctors[0],
                status,
                mode,
                esi,
            )
        )
    if not visits:
        return 0
    for n, visit in enumerate(visits, start=1):
        visit.id = _id(n)
    await EmergencyVisit.insert_many(visits)
    for patient in {v.patient_id for v in visits}:
        await care.refresh(patient)  # ED visits are care sources, as services.changes does
    return len(visits)
