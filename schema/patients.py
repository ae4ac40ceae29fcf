"""GraphQL types and inputs for patients."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import patients as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Info
from schema.scheduling import appointments_field

if TYPE_CHECKING:
    from schema.billing import BillingAccount
    from schema.clinical import Prescription, TreatmentPlan
    from schema.staff import Doctor

strawberry.enum(m.Sex, description="Administrative sex as recorded at registration.")
Sex = m.Sex
strawberry.enum(m.AllergySeverity)
AllergySeverity = m.AllergySeverity


@strawberry.type
class Address:
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code")


@strawberry.type
class Contact:
    phone: str | None
    email: str | None
    address: Address | None


@strawberry.type
class Allergy:
    substance: str
    reaction: str | None
    severity: AllergySeverity


@strawberry.type
class MedicalHistoryEntry:
    condition: str
    diagnosed_on: date | None
    resolved: bool
    notes: str | None


@strawberry.type
class EmergencyContact:
    name: str
    relationship: str
    phone: str


@strawberry.type(description="A person registered for care at the facility.")
class Patient:
    """Field access comes from ``models.patients.PATIENT`` (``schema.enforce`` applies it)."""

    id: strawberry.ID = strawberry.field(resolver=entity_id)
    first_name: str
    last_name: str
    date_of_birth: date
    sex: Sex
    created_at: datetime
    updated_at: datetime
    national_id: str | None = strawberry.field(
        description="Masked (last four characters) for most roles."
    )
    contact: Contact | None
    emergency_contact: EmergencyContact | None
    allergies: list[Allergy] | None
    medical_history: list[MedicalHistoryEntry] | None

    @strawberry.field
    @staticmethod
    def primary_doctor_id(root: strawberry.Parent[m.Patient]) -> strawberry.ID | None:
        return ref_id(root.primary_doctor_id)

    @strawberry.field
    @staticmethod
    async def primary_doctor(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        if root.primary_doctor_id is None:
            return None
        return await info.context.loaders.doctor_by_id.load(root.primary_doctor_id)

    appointments = appointments_field("appointments_by_patient", "This patient's appointments")

    @strawberry.field
    @staticmethod
    async def treatment_plans(
        root: strawberry.Parent[m.Patient],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[TreatmentPlan, strawberry.lazy("schema.clinical")]] | None:
        from schema.clinical import TreatmentPlan

        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.treatment_plans_by_patient.load(key)
        return connection(TreatmentPlan, page)

    @strawberry.field
    @staticmethod
    async def prescriptions(
        root: strawberry.Parent[m.Patient],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Prescription, strawberry.lazy("schema.clinical")]] | None:
        from schema.clinical import Prescription

        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.prescriptions_by_patient.load(key)
        return connection(Prescription, page)

    @strawberry.field
    @staticmethod
    async def billing_account(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> Annotated[BillingAccount, strawberry.lazy("schema.billing")] | None:
        return await info.context.loaders.billing_account_by_patient.load(root.id)


@strawberry.input
class AddressInput:
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


@strawberry.input
class ContactInput:
    phone: str | None = None
    email: str | None = None
    address: AddressInput | None = None


@strawberry.input
class AllergyInput:
    substance: str
    reaction: str | None = None
    severity: AllergySeverity = AllergySeverity.MODERATE


@strawberry.input
class MedicalHistoryEntryInput:
    condition: str
    diagnosed_on: date | None = None
    resolved: bool = False
    notes: str | None = None


@strawberry.input
class EmergencyContactInput:
    name: str
    relationship: str
    phone: str


@strawberry.input
class RegisterPatientInput:
    first_name: str
    last_name: str
    date_of_birth: date
    sex: Sex = Sex.UNKNOWN
    national_id: str | None = None
    contact: ContactInput | None = None
    allergies: list[AllergyInput] | None = None
    medical_history: list[MedicalHistoryEntryInput] | None = None
    emergency_contact: EmergencyContactInput | None = None
    primary_doctor_id: strawberry.ID | None = None


@strawberry.input(description="Only the fields given change; lists are replaced whole.")
class UpdatePatientInput:
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    date_of_birth: date | None = strawberry.UNSET
    sex: Sex | None = strawberry.UNSET
    national_id: str | None = strawberry.UNSET
    contact: ContactInput | None = strawberry.UNSET
    allergies: list[AllergyInput] | None = strawberry.UNSET
    medical_history: list[MedicalHistoryEntryInput] | None = strawberry.UNSET
    emergency_contact: EmergencyContactInput | None = strawberry.UNSET
    primary_doctor_id: strawberry.ID | None = strawberry.UNSET
