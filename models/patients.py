"""Patients: demographics, contact, allergies, history and emergency contact."""

from __future__ import annotations

import unicodedata
from datetime import date
from enum import StrEnum

import pymongo
from pydantic import BaseModel, EmailStr, Field, field_validator

from models.base import Entity, LongText, Name, Ref, ShortText


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
    # Who treats this patient, kept by the services as appointments and plans are made, so access
    # checks read it from the row itself and list filters are one indexed query.
    care_team: list[Ref] = Field(default_factory=list)
    care_departments: list[Ref] = Field(default_factory=list)

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_the_past(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("must not be in the future")
        if value.year < 1900:
            raise ValueError("must be after 1900")
        return value

    def refresh_search_tokens(self) -> None:
        self.search_tokens = name_tokens(self.first_name, self.last_name)

    class Settings:
        name = "patients"
        keep_nulls = False
        indexes = [
            pymongo.IndexModel("search_tokens"),
            pymongo.IndexModel([("last_name", 1), ("first_name", 1)]),
            # Sparse, with nulls never stored: unique where present, on MongoDB and mongomock alike.
            pymongo.IndexModel("national_id", unique=True, sparse=True),
            pymongo.IndexModel("primary_doctor_id"),
            pymongo.IndexModel("care_team"),
            pymongo.IndexModel("care_departments"),
        ]
