"""Admissions: a patient in a ward bed under an attending doctor, from admission to discharge.

An admission comes from an outpatient visit, the emergency department or an elective list
(``source`` and ``source_id``). Its ``bed_id`` is the truth clients see: a transfer claims the
target bed first, then moves ``bed_id`` by one compare-and-set on the admission (appending to
``stays``, the bed history), then releases the old bed into cleaning, so an admission always
names exactly one bed. ``open_patient_id`` is the patient while the admission is active and is
absent afterwards: its unique sparse index keeps a patient in one bed at a time, across
processes (``services/admissions.py`` has the whole protocol).

Discharge records a signed discharge note (author, instant, SHA-256 of its canonical content,
like notes and radiology reports), never changed afterwards.

Who reads what (the declarations below): the care team (the attending doctor, doctors treating
the patient, nurses of the ward, who get the care relation from it while it is active), the
admitting department, the front desk and billing (operational fields, not the clinical ones),
admin, and the patient their own; analysts nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

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
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow

ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]


class AdmissionSource(StrEnum):
    OUTPATIENT = "outpatient"
    EMERGENCY = "emergency"
    ELECTIVE = "elective"


class AdmissionStatus(StrEnum):
    ACTIVE = "active"
    DISCHARGED = "discharged"


class DischargeDisposition(StrEnum):
    HOME = "home"
    HOME_WITH_CARE = "home_with_care"
    TRANSFERRED = "transferred"
    CARE_FACILITY = "care_facility"
    AGAINST_ADVICE = "against_advice"
    DECEASED = "deceased"


class BedStay(BaseModel):
    """One bed of the admission, from when to when (``to_at`` open on the current one)."""

    bed_id: Ref
    ward_id: Ref
    department_id: Ref
    from_at: UtcDatetime
    to_at: UtcDatetime | None = None
    reason: ShortText | None = None
    by: str | None = Field(default=None, max_length=255, description="Token subject.")


class DischargeNote(BaseModel):
    """Signed at discharge and never changed: ``content_hash`` covers every clinical field."""

    summary: ClinicalText
    diagnosis: ClinicalText | None = None
    instructions: ClinicalText | None = None
    follow_up: ClinicalText | None = None
    disposition: DischargeDisposition
    author_id: Ref
    signed_at: UtcDatetime
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class Admission(Entity):
    patient_id: Ref
    open_patient_id: Ref | None = Field(
        default=None,
        description="The patient while active, absent afterwards: one active admission each.",
    )
    source: AdmissionSource
    source_id: Ref | None = Field(
        default=None, description="The outpatient visit or emergency visit admitted from."
    )
    attending_doctor_id: Ref
    department_id: Ref = Field(description="The current ward's department.")
    ward_id: Ref
    bed_id: Ref
    status: AdmissionStatus = AdmissionStatus.ACTIVE
    status_at: UtcDatetime = Field(default_factory=utcnow)
    admitted_at: UtcDatetime
    admitted_by: str | None = Field(default=None, max_length=255)
    reason: ClinicalText
    diagnosis: ClinicalText | None = None
    stays: list[BedStay] = Field(default_factory=list)
    discharged_at: UtcDatetime | None = None
    discharge: DischargeNote | None = None
    version: int = 0

    class Settings:
        name = "admissions"
        # Absent rather than null, so the sparse unique index skips discharged admissions.
        keep_nulls = False
        indexes = [
            pymongo.IndexModel(
                "open_patient_id", unique=True, sparse=True, name="one_active_admission"
            ),
            pymongo.IndexModel([("patient_id", 1), ("admitted_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("admitted_at", 1), ("_id", 1)]),
            pymongo.IndexModel(
                [("department_id", 1), ("status", 1), ("admitted_at", 1), ("_id", 1)]
            ),
            pymongo.IndexModel([("attending_doctor_id", 1), ("admitted_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("admitted_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("admitted_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("bed_id", 1), ("status", 1)]),
            pymongo.IndexModel("source_id", sparse=True),
        ]


# Why the patient is in, the diagnosis and the signed discharge note (one sealed sub-document,
# hashed as opened) are encrypted at rest: nothing queries, sorts or groups on them.
ADMISSION_SEALED = sealed(Admission, "admissions", ("reason", "diagnosis", "discharge"), {})


# -- the policy --------------------------------------------------------------------------------

_CARE_TEAM = {R.DOCTOR: grant(C, D), R.NURSE: grant(C, D), R.PATIENT: grant(S)}
# Operational fields: also the front desk (it admits electively, places patients) and billing
# (it charges the stay); admin everything; analysts nothing.
_SEEN = {**_CARE_TEAM, R.ADMIN: grant(A), R.ADMIN_STAFF: grant(A), R.BILLING: grant(A)}
_CLINICAL = {**_CARE_TEAM, R.ADMIN: grant(A)}
_MOVERS = {R.DOCTOR: grant(C, D), R.ADMIN: grant(A)}

ADMISSION = declare(
    "Admission",
    Admission,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "source",
            "sourceId",
            "status",
            "statusAt",
            "admittedAt",
            "dischargedAt",
            "attendingDoctorId",
            "attendingDoctor",
            "departmentId",
            "department",
            "wardId",
            "ward",
            "bedId",
            "bed",
            "stays",
            "version",
            "createdAt",
            "updatedAt",
        ),
        _SEEN,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _SEEN),
    group("clinical", Class.CLINICAL, ("reason", "diagnosis", "discharge"), _CLINICAL),
    actions={
        # Doctors admit whoever they treat or into their department; the front desk only
        # electively (``admitElectively``); admin anything.
        "admit": _MOVERS,
        "admitElectively": {**_MOVERS, R.ADMIN_STAFF: grant(A)},
        "transfer": _MOVERS,
        "discharge": _MOVERS,
    },
    creates=frozenset({"admit", "admitElectively"}),
    patient="patient_id",
    clinicians=("attending_doctor_id",),
    department="department_id",
    refs=("patient_id", "attending_doctor_id", "department_id", "ward_id", "bed_id", "source_id"),
    cached=True,
    # The attending doctor (and the ward's department) treat the patient for the whole stay
    # and for the configured days after discharge; nurses of the ward while it is active.
    care=CareSource(
        clinician="attending_doctor_id",
        department="department_id",
        lifetime={
            AdmissionStatus.ACTIVE: None,
            AdmissionStatus.DISCHARGED: CONFIGURED_CARE_DAYS,
        },
        ends="discharged_at",
        ward="ward_id",
        ward_statuses=frozenset({AdmissionStatus.ACTIVE.value}),
    ),
    order=(("admitted_at", 1), ("_id", 1)),
)
