"""GraphQL types and inputs for patients."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from auth.access import mask
from auth.policy import Access
from auth.policy import EntityKind as K
from models import patients as m
from schema.common import Connection, connection, entity_id, ref_id, requested, requested_nodes
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


def _guarded(group: str) -> Any:
    """A field shown only under ``group`` of the access policy; else null with FORBIDDEN."""

    async def check(root: m.Patient, info: Info) -> Access:
        return await info.context.access.field(K.PATIENT, group, root)

    return check


_contact, _clinical, _schedule, _billing = (
    _guarded(g) for g in ("contact", "clinical", "schedule", "billing")
)


@strawberry.type(description="A person registered for care at the facility.")
class Patient:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    first_name: str
    last_name: str
    date_of_birth: date
    sex: Sex
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Masked (last four characters) for most roles.")
    @staticmethod
    async def national_id(root: strawberry.Parent[m.Patient], info: Info) -> str | None:
        access = await info.context.access.field(K.PATIENT, "nationalId", root)
        return root.national_id if access == Access.FULL else mask(root.national_id)

    @strawberry.field
    @staticmethod
    async def contact(root: strawberry.Parent[m.Patient], info: Info) -> Contact | None:
        await _contact(root, info)
        return root.contact  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def emergency_contact(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> EmergencyContact | None:
        await _contact(root, info)
        return root.emergency_contact  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def allergies(root: strawberry.Parent[m.Patient], info: Info) -> list[Allergy] | None:
        await _clinical(root, info)
        return root.allergies  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def medical_history(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> list[MedicalHistoryEntry] | None:
        await _clinical(root, info)
        return root.medical_history  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def primary_doctor_id(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> strawberry.ID | None:
        await _schedule(root, info)
        return ref_id(root.primary_doctor_id)

    @strawberry.field
    @staticmethod
    async def primary_doctor(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        await _schedule(root, info)
        if root.primary_doctor_id is None:
            return None
        doctor = await info.context.loaders.doctor_by_id.load(root.primary_doctor_id)
        return await info.context.access.one(K.DOCTOR, doctor)

    appointments = appointments_field(
        "appointments_by_patient", "This patient's appointments", (K.PATIENT, "schedule")
    )

    @strawberry.field
    @staticmethod
    async def treatment_plans(
        root: strawberry.Parent[m.Patient],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[TreatmentPlan, strawberry.lazy("schema.clinical")]] | None:
        from schema.clinical import TreatmentPlan

        await _clinical(root, info)
        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.treatment_plans_by_patient.load(key)
        await info.context.access.page(K.TREATMENT_PLAN, page, requested_nodes(info))
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

        await _clinical(root, info)
        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.prescriptions_by_patient.load(key)
        await info.context.access.page(K.PRESCRIPTION, page, requested_nodes(info))
        return connection(Prescription, page)

    @strawberry.field
    @staticmethod
    async def billing_account(
        root: strawberry.Parent[m.Patient], info: Info
    ) -> Annotated[BillingAccount, strawberry.lazy("schema.billing")] | None:
        await _billing(root, info)
        account = await info.context.loaders.billing_account_by_patient.load(root.id)
        return await info.context.access.one(K.BILLING_ACCOUNT, account, requested(info))


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
