"""GraphQL types and inputs for admissions, their bed history and discharge notes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import admissions as m
from schema.common import entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.patients import Patient
    from schema.staff import Doctor
    from schema.wards import Bed, Ward

strawberry.enum(m.AdmissionSource, description="Where the patient was admitted from.")
AdmissionSource = m.AdmissionSource
strawberry.enum(m.AdmissionStatus)
AdmissionStatus = m.AdmissionStatus
strawberry.enum(m.DischargeDisposition, description="Where the patient goes on discharge.")
DischargeDisposition = m.DischargeDisposition


@strawberry.type(description="One bed of an admission, from when to when (open: the current).")
class BedStay:
    from_at: datetime
    to_at: datetime | None
    reason: str | None

    @strawberry.field
    @staticmethod
    def bed_id(root: strawberry.Parent[m.BedStay]) -> strawberry.ID:
        return strawberry.ID(str(root.bed_id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.BedStay]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.BedStay]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))


@strawberry.type(description="Signed at discharge, never changed (contentHash: SHA-256).")
class DischargeNote:
    summary: str
    diagnosis: str | None
    instructions: str | None
    follow_up: str | None
    disposition: DischargeDisposition
    signed_at: datetime
    content_hash: str

    @strawberry.field
    @staticmethod
    def author_id(root: strawberry.Parent[m.DischargeNote]) -> strawberry.ID:
        return strawberry.ID(str(root.author_id))


@strawberry.type(description="A patient in a ward bed under an attending doctor.")
class Admission:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    source: AdmissionSource
    status: AdmissionStatus
    status_at: datetime
    admitted_at: datetime
    discharged_at: datetime | None
    reason: str | None
    diagnosis: str | None
    discharge: DischargeNote | None
    stays: list[BedStay] = strawberry.field(description="The bed history, oldest first.")
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The outpatient or emergency visit admitted from.")
    @staticmethod
    def source_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID | None:
        return ref_id(root.source_id)

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def attending_doctor_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID:
        return strawberry.ID(str(root.attending_doctor_id))

    @strawberry.field(description="The current ward's department.")
    @staticmethod
    def department_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field(description="The patient's bed: the one truth during a transfer.")
    @staticmethod
    def bed_id(root: strawberry.Parent[m.Admission]) -> strawberry.ID:
        return strawberry.ID(str(root.bed_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Admission], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def attending_doctor(
        root: strawberry.Parent[m.Admission], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.attending_doctor_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.Admission], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field
    @staticmethod
    async def ward(
        root: strawberry.Parent[m.Admission], info: Info
    ) -> Annotated[Ward, strawberry.lazy("schema.wards")] | None:
        return await info.context.loaders.ward_by_id.load(root.ward_id)

    @strawberry.field
    @staticmethod
    async def bed(
        root: strawberry.Parent[m.Admission], info: Info
    ) -> Annotated[Bed, strawberry.lazy("schema.wards")] | None:
        return await info.context.loaders.bed_by_id.load(root.bed_id)


@strawberry.input
class AdmitPatientInput:
    patient_id: strawberry.ID
    bed_id: strawberry.ID
    attending_doctor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the caller when a doctor; required otherwise."
    )
    source: AdmissionSource
    source_id: strawberry.ID | None = strawberry.field(
        default=None, description="The outpatient visit or emergency visit (none if elective)."
    )
    reason: str
    diagnosis: str | None = None


@strawberry.input(description="The discharge note, signed by the caller on discharge.")
class DischargeNoteInput:
    summary: str
    diagnosis: str | None = None
    instructions: str | None = None
    follow_up: str | None = None
