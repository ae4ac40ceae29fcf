"""Emergency department: one visit per arrival, its triage, treatment and disposition.

A visit is registered at arrival (by the ED front desk or its clinicians), triaged on the
five-level Emergency Severity Index with the triage vital signs (re-triage keeps every earlier
triage), seen by an ED doctor, and ends in one disposition: discharged, admitted (through
``services.admissions``, the one way into a bed), transferred to another facility, or left
without being seen. Every step is a compare-and-set on ``version`` (``services/emergency.py``);
``open_patient_id`` (present only while the visit is open) and its unique index keep a patient
in one ED visit at a time, across processes.

Who reads what (the declarations below):
- the ED team: its doctors and nurses read every visit of their department (DEPARTMENT), and
  any clinician treating the patient reads it (CARE). An open visit is itself a care source:
  its assigned doctor treats the patient and the ED sees them, as long as the visit is open, and
  for the configured days after its disposition;
- the ED front desk (admin staff of the department): the operational row and who the patient
  is, never the complaint, the triage or the disposition note;
- billing: the operational row and identity (acuity and disposition kind drive ED charges);
- the patient: their own visits, clinical fields included, but not who on the staff took each
  step;
- analysts: nothing (aggregates only, through analytics).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import pymongo
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import (
    CONFIGURED_CARE_DAYS,
    A,
    C,
    CareSource,
    D,
    R,
    S,
    declare,
    each,
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime
from models.vitals import MEASUREMENTS, VitalMeasurement

EMERGENCY_DEPARTMENT_CODES = frozenset({"ER", "ED"})
"""Department codes of emergency departments (a hospital with several EDs codes them
``ER_<unit>`` or ``ED_<unit>``, e.g. ``ER_PAED``); the demo's is ``ER``."""


def is_emergency_code(code: str) -> bool:
    return code in EMERGENCY_DEPARTMENT_CODES or code.split("_", 1)[0] in EMERGENCY_DEPARTMENT_CODES


ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class EsiLevel:
    """The Emergency Severity Index (v4): 1 is the most acute. The meanings are the
    algorithm's decision points, shown beside the number so nobody reads 5 as "worst"."""

    MEANINGS: dict[int, str] = {
        1: "resuscitation: needs an immediate life-saving intervention",
        2: "emergent: high-risk situation, new confusion or lethargy, or severe pain/distress",
        3: "urgent: stable, needs two or more resources",
        4: "less urgent: needs one resource",
        5: "non-urgent: needs no resources",
    }
    LOWEST = 1
    HIGHEST = 5


AWAITING_TRIAGE_RANK = 0
"""The board rank of an arrival not yet triaged: at the top, where triage nurses look."""


class ArrivalMode(StrEnum):
    WALK_IN = "walk_in"
    AMBULANCE = "ambulance"
    POLICE = "police"
    TRANSFER = "transfer"


class EmergencyStatus(StrEnum):
    WAITING = "waiting"  # arrived, not triaged yet
    TRIAGED = "triaged"
    IN_TREATMENT = "in_treatment"
    DISPOSED = "disposed"


OPEN_STATUSES = (EmergencyStatus.WAITING, EmergencyStatus.TRIAGED, EmergencyStatus.IN_TREATMENT)
"""A visit is on the board, and holds its patient's one open ED visit, in these."""


class DispositionKind(StrEnum):
    DISCHARGED = "discharged"
    ADMITTED = "admitted"
    TRANSFERRED = "transferred"
    LEFT_WITHOUT_BEING_SEEN = "left_without_being_seen"


DISPOSABLE_FROM: dict[DispositionKind, frozenset[EmergencyStatus]] = {
    DispositionKind.DISCHARGED: frozenset({EmergencyStatus.TRIAGED, EmergencyStatus.IN_TREATMENT}),
    DispositionKind.ADMITTED: frozenset({EmergencyStatus.TRIAGED, EmergencyStatus.IN_TREATMENT}),
    DispositionKind.TRANSFERRED: frozenset({EmergencyStatus.TRIAGED, EmergencyStatus.IN_TREATMENT}),
    # Seen means treatment started: after that a patient who leaves is discharged against advice.
    DispositionKind.LEFT_WITHOUT_BEING_SEEN: frozenset(
        {EmergencyStatus.WAITING, EmergencyStatus.TRIAGED}
    ),
}


class TriageRole(StrEnum):
    NURSE = "nurse"
    DOCTOR = "doctor"


GCS_LOW, GCS_HIGH = 3, 15
"""Glasgow Coma Scale total: 3 (no response) to 15 (fully alert)."""

TRIAGE_MEASUREMENTS: dict[str, VitalMeasurement] = {
    "heart_rate": VitalMeasurement.PULSE,
    "systolic": VitalMeasurement.SYSTOLIC,
    "diastolic": VitalMeasurement.DIASTOLIC,
    "respiratory_rate": VitalMeasurement.RESPIRATORY_RATE,
    "spo2": VitalMeasurement.SPO2,
    "temperature": VitalMeasurement.TEMPERATURE,
    "pain_score": VitalMeasurement.PAIN_SCORE,
}
"""Triage vital sign -> the vital-signs measurement whose unit and range it uses."""


def _measured(name: str) -> Any:
    spec = MEASUREMENTS[TRIAGE_MEASUREMENTS[name]]
    return Field(default=None, ge=spec.low, le=spec.high, description=f"{spec.label}, {spec.unit}")


class TriageVitals(BaseModel):
    """The vital signs taken at triage, in the units and ranges of ``models.vitals``."""

    heart_rate: int | None = _measured("heart_rate")
    systolic: int | None = _measured("systolic")
    diastolic: int | None = _measured("diastolic")
    respiratory_rate: int | None = _measured("respiratory_rate")
    spo2: float | None = _measured("spo2")
    temperature: float | None = _measured("temperature")
    pain_score: int | None = _measured("pain_score")
    gcs: int | None = Field(
        default=None, ge=GCS_LOW, le=GCS_HIGH, description="Glasgow Coma Scale total, 3-15"
    )


class Triage(BaseModel):
    level: int = Field(ge=EsiLevel.LOWEST, le=EsiLevel.HIGHEST, description="ESI level, 1-5")
    triaged_at: UtcDatetime
    triaged_by_id: Ref = Field(description="The nurse or doctor who triaged (the caller).")
    triaged_by_role: TriageRole
    vitals: TriageVitals | None = None
    note: ClinicalText | None = None


class Disposition(BaseModel):
    kind: DispositionKind
    at: UtcDatetime
    by_id: Ref | None = Field(default=None, description="The clinician who decided it.")
    admission_id: Ref | None = None
    destination: ShortText | None = Field(
        default=None, description="The receiving facility of a transfer."
    )
    note: ClinicalText | None = None


class EmergencyStep(BaseModel):
    action: str = Field(max_length=64)
    from_status: EmergencyStatus | None = None
    to_status: EmergencyStatus
    at: UtcDatetime
    by: str | None = Field(
        default=None, max_length=255, description="Who took the step: their token's subject."
    )


class EmergencyVisit(Entity):
    patient_id: Ref
    department_id: Ref = Field(description="The emergency department the patient came to.")
    arrived_at: UtcDatetime
    arrival_mode: ArrivalMode
    chief_complaint: ClinicalText
    unidentified: bool = Field(
        default=False,
        description="Registered under a placeholder identity (unknown patient): the front "
        "desk replaces it on the patient record when the patient is identified.",
    )
    status: EmergencyStatus = EmergencyStatus.WAITING
    status_at: UtcDatetime = Field(description="When the current status began: care runs from it.")
    triage: Triage | None = Field(default=None, description="The current (latest) triage.")
    triage_history: list[Triage] = Field(default_factory=list, description="Oldest first.")
    acuity_rank: int = Field(
        default=AWAITING_TRIAGE_RANK,
        ge=AWAITING_TRIAGE_RANK,
        le=EsiLevel.HIGHEST,
        description="The board's order: 0 awaiting triage, else the ESI level (stored for the "
        "index).",
    )
    assigned_doctor_id: Ref | None = None
    seen_at: UtcDatetime | None = Field(default=None, description="When treatment started.")
    disposition: Disposition | None = None
    open_patient_id: Ref | None = Field(
        default=None,
        description="The patient while the visit is open, absent once disposed: its unique "
        "index keeps a patient in one open ED visit.",
    )
    version: int = 0
    history: list[EmergencyStep] = Field(default_factory=list)

    class Settings:
        name = "emergency_visits"
        keep_nulls = False  # absent, not null: the sparse unique index skips disposed visits
        indexes = [
            pymongo.IndexModel(
                "open_patient_id", unique=True, sparse=True, name="one_open_ed_visit_per_patient"
            ),
            # The board: a department's open visits by acuity, then arrival.
            pymongo.IndexModel(
                [
                    ("department_id", 1),
                    ("status", 1),
                    ("acuity_rank", 1),
                    ("arrived_at", 1),
                    ("_id", 1),
                ]
            ),
            pymongo.IndexModel([("department_id", 1), ("arrived_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("arrived_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("assigned_doctor_id", 1), ("arrived_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("arrived_at", 1), ("_id", 1)]),
        ]


# The chief complaint is encrypted at rest (never queried); triage and disposition stay clear:
# their level and kind are filtered, grouped and charged on in the database.
EMERGENCY_VISIT_SEALED = sealed(EmergencyVisit, "emergency_visits", ("chief_complaint",), {})


# -- the policy --------------------------------------------------------------------------------

_STAFF_OF_THE_ED = {R.DOCTOR: grant(C, D), R.NURSE: grant(C, D)}
_SEEN = {
    **_STAFF_OF_THE_ED,
    R.ADMIN: grant(A),
    R.ADMIN_STAFF: grant(D),
    R.BILLING: grant(A),
    R.PATIENT: grant(S),
}
_CLINICAL = {**_STAFF_OF_THE_ED, R.PATIENT: grant(S)}
_ED_DOCTORS = {R.DOCTOR: grant(C, D), R.ADMIN: grant(A)}

EMERGENCY_VISIT = declare(
    "EmergencyVisit",
    EmergencyVisit,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "arrivedAt",
            "arrivalMode",
            "unidentified",
            "status",
            "statusAt",
            "seenAt",
            "waitingMinutes",
            "version",
            "departmentId",
            "department",
            "assignedDoctorId",
            "assignedDoctor",
            "dispositionKind",
            "disposedAt",
            "admissionId",
            "createdAt",
            "updatedAt",
        ),
        _SEEN,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _SEEN),
    # The acuity class orders the board and drives ED charges; it tells no diagnosis.
    group("acuity", Class.OPERATIONAL, ("triageLevel", "triageLevelMeaning"), _SEEN),
    # Why they came, what triage found, the vital signs and the disposition's details.
    group(
        "clinical",
        Class.CLINICAL,
        ("chiefComplaint", "triage", "triageHistory", "disposition"),
        _CLINICAL,
    ),
    # Who took each step (staff sign-ins) is for the hospital, not for the patient.
    group(
        "history",
        Class.OPERATIONAL,
        ("history",),
        {**_STAFF_OF_THE_ED, R.ADMIN: grant(A), R.ADMIN_STAFF: grant(D)},
    ),
    actions={
        # The front desk (or the team) registers arrivals of its own ED.
        "register": {
            **each((R.ADMIN_STAFF, R.NURSE, R.DOCTOR), grant(D)),
            R.ADMIN: grant(A),
        },
        # Triage is by the ED's nurses (or doctors), in their own name.
        "triage": {R.NURSE: grant(D), R.DOCTOR: grant(D)},
        "assignDoctor": _ED_DOCTORS,
        "startTreatment": _ED_DOCTORS,
        "dispose": _ED_DOCTORS,
        "admit": _ED_DOCTORS,
        "leftWithoutBeingSeen": {
            **each((R.ADMIN_STAFF, R.NURSE, R.DOCTOR), grant(D)),
            R.ADMIN: grant(A),
        },
    },
    creates=frozenset({"register"}),
    patient="patient_id",
    clinicians=("assigned_doctor_id",),
    department="department_id",
    refs=("patient_id", "department_id", "assigned_doctor_id"),
    cached=True,
    # While open, the ED sees the patient and the assigned doctor treats them; after the
    # disposition, for the configured days (results come back, follow-up calls are made).
    care=CareSource(
        clinician="assigned_doctor_id",
        department="department_id",
        ends="status_at",
        lifetime={
            EmergencyStatus.WAITING: None,
            EmergencyStatus.TRIAGED: None,
            EmergencyStatus.IN_TREATMENT: None,
            EmergencyStatus.DISPOSED: CONFIGURED_CARE_DAYS,
        },
    ),
    order=(("arrived_at", 1), ("_id", 1)),
)

# The ED tracking board: acuity, status and waiting times per visit; who the patient is goes
# through each entry's ``visit`` (the visit's own policy), never on the board itself.
EMERGENCY_BOARD = declare(
    "EmergencyBoard",
    None,
    row(
        Class.OPERATIONAL,
        (
            "departmentId",
            "entries",
            "counts",
            "awaitingTriage",
            "open",
            "updatedAt",
            "visitId",
            "visit",
            "level",
            "levelMeaning",
            "status",
            "arrivalMode",
            "arrivedAt",
            "triagedAt",
            "seenAt",
            "waitingMinutes",
            "assignedDoctorId",
            "position",
        ),
        {
            **each((R.ADMIN_STAFF, R.NURSE, R.DOCTOR), grant(D)),
            R.ADMIN: grant(A),
        },
    ),
    graphql_types=("EmergencyBoard", "EmergencyBoardEntry"),
    department="ed_department_id",
    inputs=("emergency_visits",),
)
