"""Patients: demographics, contact, allergies, history and emergency contact."""

from __future__ import annotations

import unicodedata
from datetime import date
from enum import StrEnum
from typing import Literal

import pymongo
from pydantic import BaseModel, EmailStr, Field, field_validator

from auth.policy import (
    CLINICAL_ROW,
    A,
    Access,
    Action,
    C,
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
from crypto.fields import blind, sealed
from models.base import Entity, LongText, Name, Ref, ShortText, UtcDatetime


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AllergySeverity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    LIFE_THREATENING = "life_threatening"


class Address(BaseModel):
    line1: ShortText
    line2: ShortText | None = None
    city: Name
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class Contact(BaseModel):
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()\-]{5,25}$")
    email: EmailStr | None = None
    address: Address | None = None


class Allergy(BaseModel):
    substance: ShortText
    reaction: ShortText | None = None
    severity: AllergySeverity = AllergySeverity.MODERATE


class MedicalHistoryEntry(BaseModel):
    condition: ShortText
    diagnosed_on: date | None = None
    resolved: bool = False
    notes: LongText | None = None


class EmergencyContact(BaseModel):
    name: Name
    relationship: Name
    phone: str = Field(pattern=r"^\+?[0-9 ()\-]{5,25}$")


def fold(text: str) -> str:
    """Lower-case and strip accents so 'Zoë' is found by 'zoe'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_tokens(*names: str) -> list[str]:
    """Every prefix of every name word: prefix search on an indexed array, no ``$text``."""
    tokens: set[str] = set()
    for name in names:
        for word in fold(name).replace("-", " ").replace("'", " ").split():
            tokens.update(word[:i] for i in range(1, len(word) + 1))
    return sorted(tokens)


COLLECTION = "patients"
TOKENS = "search_tokens"


def sealed_tokens(*names: str) -> list[str]:
    """``name_tokens`` as keyed hashes: the index matches prefixes without holding a name."""
    return sorted({blind(COLLECTION, TOKENS, t) for t in name_tokens(*names)})


def sealed_words(words: list[str]) -> list[str]:
    """Query words hashed as ``sealed_tokens`` hashes each prefix."""
    return [blind(COLLECTION, TOKENS, w) for w in words]


def national_id_text(value: object) -> str | None:
    return value.strip().casefold() if isinstance(value, str) and value.strip() else None


class CareLink(BaseModel):
    """One relation of a clinician or a department to the patient, and when it lapses."""

    clinician_id: Ref | None = None
    department_id: Ref | None = None
    ward_id: Ref | None = Field(
        default=None, description="A ward whose assigned nurses treat the patient (admissions)."
    )
    until: UtcDatetime | None = None


def age_on(born: date, day: date) -> int:
    """Completed years on ``day`` (a birthday counts from that day)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class Patient(Entity):
    first_name: Name
    last_name: Name
    date_of_birth: date
    sex: Sex = Sex.UNKNOWN
    national_id: str | None = Field(default=None, min_length=4, max_length=32)
    contact: Contact = Field(default_factory=Contact)
    allergies: list[Allergy] = Field(default_factory=list, max_length=100)
    medical_history: list[MedicalHistoryEntry] = Field(default_factory=list, max_length=500)
    emergency_contact: EmergencyContact | None = None
    primary_doctor_id: Ref | None = None
    search_tokens: list[str] = Field(default_factory=list)
    # Derived by services.care from the clinical facts that relate clinicians and departments to
    # this patient, each with the instant it lapses; recomputed (never accumulated) on every
    # write of such a fact, under ``care_revision`` so concurrent recomputations cannot lose one.
    care: list[CareLink] = Field(default_factory=list)
    care_revision: int = 0
    # Set by services.erasure (GDPR Art. 17): ``in_progress`` from the write that replaced the
    # identity with a pseudonym until every other collection is done, then ``done``.
    erasure: Literal["in_progress", "done"] | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_the_past(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("must not be in the future")
        if value.year < 1900:
            raise ValueError("must be after 1900")
        return value

    def refresh_search_tokens(self) -> None:
        self.search_tokens = sealed_tokens(self.first_name, self.last_name)

    class Settings:
        name = COLLECTION
        keep_nulls = False
        indexes = [
            pymongo.IndexModel("search_tokens"),
            # The national id's blind index (set on every write of it by ``db``): sparse, with
            # nulls never stored, so unique where present, on MongoDB and mongomock alike.
            pymongo.IndexModel("national_id_index", unique=True, sparse=True),
            pymongo.IndexModel("primary_doctor_id"),
            pymongo.IndexModel([("care.clinician_id", 1), ("care.until", 1)]),
            pymongo.IndexModel([("care.department_id", 1), ("care.until", 1)]),
            pymongo.IndexModel([("care.ward_id", 1), ("care.until", 1)]),
        ]


# Encrypted at rest: every field the declaration below classifies identity, contact or clinical,
# except the date of birth and sex, which age and sex analytics, triage priority and reference
# ranges read in queries (tests/encryption checks the list against the declaration).
SEALED = sealed(
    Patient,
    COLLECTION,
    (
        "first_name",
        "last_name",
        "national_id",
        "contact",
        "emergency_contact",
        "allergies",
        "medical_history",
    ),
    {"national_id_index": ("national_id", national_id_text)},
)
UNSEALED_PHI = ("date_of_birth", "sex")

_FRONT = each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A))
# Radiologists are doctors' accounts (a Doctor of Radiology): they read what a doctor reads,
# under the same relations (care, or the patient being seen in their department: an open
# imaging order makes Radiology see the patient), never more.
_SEEN = {
    **_FRONT,
    R.DOCTOR: grant(C, D),
    R.RADIOLOGIST: grant(C, D),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
# Lab technicians label and identify samples: the identity row (names, date of birth, sex) and
# nothing else (no contact, national id, clinical, schedule or billing group). Ideally only for
# patients with an open lab order, but the policy cannot say so: they have no staff record and no
# department (no CARE or DEPARTMENT relation can hold for them), and lab orders are not a care
# source (``models/laboratory.py`` declares none, and a lab order names no department to relate
# the lab by). ANY on the identity row is the narrowest grant that lets them read the patient of
# the orders they work on (lab orders and samples are already ANY for them); it also lets them
# look patients up by name, as the front desk does. Narrowing it needs a Laboratory department
# on lab orders, declared as a care source, and lab accounts attached to that department: then
# ``grant(D)`` here.
_IDENTITY = {**_SEEN, R.LAB_TECHNICIAN: grant(A)}

PATIENT = declare(
    "Patient",
    Patient,
    row(
        Class.IDENTITY,
        ("id", "firstName", "lastName", "dateOfBirth", "sex", "createdAt", "updatedAt"),
        _IDENTITY,
    ),
    group(
        "contact",
        Class.CONTACT,
        ("contact", "emergencyContact"),
        {
            **_FRONT,
            R.DOCTOR: grant(C),
            R.RADIOLOGIST: grant(C),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
    ),
    group(
        "nationalId",
        Class.IDENTITY,
        ("nationalId",),
        {
            R.ADMIN: grant(A),
            R.ADMIN_STAFF: grant(A, access=Access.MASKED),
            R.BILLING: grant(A, access=Access.MASKED),
            R.DOCTOR: grant(C, access=Access.MASKED),
            R.RADIOLOGIST: grant(C, access=Access.MASKED),
            R.NURSE: grant(C, D, access=Access.MASKED),
            R.PATIENT: grant(S),
        },
    ),
    group(
        "clinical",
        Class.CLINICAL,
        ("allergies", "medicalHistory", "treatmentPlans", "prescriptions"),
        {**CLINICAL_ROW, R.RADIOLOGIST: grant(C)},
    ),
    group(
        "schedule",
        Class.OPERATIONAL,
        ("appointments", "primaryDoctor", "primaryDoctorId"),
        _SEEN,
    ),
    group(
        "billing", Class.FINANCIAL, ("billingAccount",), {R.BILLING: grant(A), R.PATIENT: grant(S)}
    ),
    actions={
        Action.CREATE: each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
        Action.BREAK_GLASS: each((R.DOCTOR, R.NURSE), grant(A)),
    },
    updates={
        "identity": (
            ("first_name", "last_name", "date_of_birth", "sex", "national_id", "primary_doctor_id"),
            each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
        ),
        "contact": (
            ("contact", "emergency_contact"),
            {**each((R.ADMIN, R.ADMIN_STAFF), grant(A)), R.PATIENT: grant(S)},
        ),
        "clinical": (("allergies", "medical_history"), {R.DOCTOR: grant(C), R.NURSE: grant(C, D)}),
    },
    patient="id",
    cached=True,
)
