"""GraphQL types and inputs for operating theatres, surgery bookings and surgical records."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import strawberry
from bson import ObjectId

from models import theatre as m
from schema.common import Long, entity_id, ref_id
from schema.context import Info
from services import theatre as service

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.SurgeryStatus, description="scheduled -> in_progress -> completed; or cancelled.")
SurgeryStatus = m.SurgeryStatus
strawberry.enum(m.SurgeryPriority)
SurgeryPriority = m.SurgeryPriority
strawberry.enum(m.ChecklistItem, description="The pre-op checks, all required before incision.")
ChecklistItem = m.ChecklistItem
strawberry.enum(m.AnaesthesiaType)
AnaesthesiaType = m.AnaesthesiaType
strawberry.enum(m.PostOpDestination)
PostOpDestination = m.PostOpDestination


class TheatreBlockKind(StrEnum):
    CASE = "case"
    CLEANING = "cleaning"


strawberry.enum(TheatreBlockKind, description="A case, or the theatre's cleaning after it.")


@strawberry.type(description="An operating theatre: a bookable room with cleaning time.")
class OperatingTheatre:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    code: str
    active: bool
    turnover_minutes: int = strawberry.field(description="Cleaning time held after each case.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Minor units per hour, charged per started 15 minutes.")
    @staticmethod
    def hourly_rate(root: strawberry.Parent[m.OperatingTheatre]) -> Long | None:
        return Long(root.hourly_rate)

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.OperatingTheatre]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.OperatingTheatre], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)


@strawberry.type
class PlannedProcedure:
    description: str
    codes: list[str]


@strawberry.type
class SurgeryReschedule:
    previous_start_at: datetime
    previous_end_at: datetime
    start_at: datetime
    end_at: datetime
    reason: str | None
    at: datetime


@strawberry.type
class SurgeryCancellation:
    reason: str
    at: datetime


@strawberry.type(description="A case booked in a theatre with its surgeon and anaesthetist.")
class SurgeryBooking:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    start_at: datetime
    end_at: datetime
    reserved_until: datetime = strawberry.field(
        description="Until when the theatre is held: the end plus its cleaning time."
    )
    priority: SurgeryPriority
    status: SurgeryStatus
    status_at: datetime
    procedure: PlannedProcedure | None
    notes: str | None
    reschedule_history: list[SurgeryReschedule] | None
    cancellation: SurgeryCancellation | None
    version: int
    charged_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Theatre time charged on completion (minor units).")
    @staticmethod
    def theatre_charge(root: strawberry.Parent[m.SurgeryBooking]) -> Long | None:
        return None if root.theatre_charge is None else Long(root.theatre_charge)

    @strawberry.field(description="The procedure fee charged on completion (minor units).")
    @staticmethod
    def procedure_fee(root: strawberry.Parent[m.SurgeryBooking]) -> Long | None:
        return None if root.procedure_fee is None else Long(root.procedure_fee)

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field
    @staticmethod
    def theatre_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID:
        return strawberry.ID(str(root.theatre_id))

    @strawberry.field(description="The theatre's department.")
    @staticmethod
    def department_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def surgeon_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID:
        return strawberry.ID(str(root.surgeon_id))

    @strawberry.field
    @staticmethod
    def anaesthetist_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID:
        return strawberry.ID(str(root.anaesthetist_id))

    @strawberry.field
    @staticmethod
    def record_id(root: strawberry.Parent[m.SurgeryBooking]) -> strawberry.ID | None:
        return ref_id(root.record_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def theatre(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> OperatingTheatre | None:
        return await info.context.loaders.operating_theatre_by_id.load(root.theatre_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field
    @staticmethod
    async def surgeon(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.surgeon_id)

    @strawberry.field
    @staticmethod
    async def anaesthetist(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.anaesthetist_id)

    @strawberry.field(description="The record of the operation, once started.")
    @staticmethod
    async def record(
        root: strawberry.Parent[m.SurgeryBooking], info: Info
    ) -> SurgicalRecord | None:
        if root.record_id is None:
            return None
        return await info.context.loaders.surgical_record_by_id.load(root.record_id)


@strawberry.type(description="One pre-op check: who confirmed it, when.")
class ChecklistCheck:
    item: ChecklistItem
    checked_at: datetime

    @strawberry.field
    @staticmethod
    def checked_by_id(root: strawberry.Parent[m.ChecklistCheck]) -> strawberry.ID:
        return strawberry.ID(str(root.checked_by_id))


@strawberry.type(description="What happened in theatre: checklist, anaesthesia, times, codes.")
class SurgicalRecord:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    checklist: list[ChecklistCheck] | None
    anaesthesia_type: AnaesthesiaType | None
    in_theatre_at: datetime | None
    anaesthesia_start_at: datetime | None
    incision_at: datetime | None
    closure_at: datetime | None
    out_of_theatre_at: datetime | None
    procedure_codes: list[str] | None
    complications: str | None
    post_op_destination: PostOpDestination | None
    notes: str | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Every pre-op check is done (required before incision).")
    @staticmethod
    def checklist_complete(root: strawberry.Parent[m.SurgicalRecord]) -> bool | None:
        return service.checklist_complete(root)

    @strawberry.field
    @staticmethod
    def post_op_ward_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID | None:
        return ref_id(root.post_op_ward_id)

    @strawberry.field
    @staticmethod
    def booking_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID:
        return strawberry.ID(str(root.booking_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def theatre_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID:
        return strawberry.ID(str(root.theatre_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def surgeon_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID:
        return strawberry.ID(str(root.surgeon_id))

    @strawberry.field
    @staticmethod
    def anaesthetist_id(root: strawberry.Parent[m.SurgicalRecord]) -> strawberry.ID:
        return strawberry.ID(str(root.anaesthetist_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.SurgicalRecord], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def booking(
        root: strawberry.Parent[m.SurgicalRecord], info: Info
    ) -> SurgeryBooking | None:
        return await info.context.loaders.surgery_booking_by_id.load(root.booking_id)


@strawberry.type(description="A stretch of a theatre's day.")
class TheatreBlock:
    start_at: datetime
    end_at: datetime

    @strawberry.field
    @staticmethod
    def kind(root: strawberry.Parent[service.Block]) -> TheatreBlockKind:
        return TheatreBlockKind(root.kind)

    @strawberry.field(description="The case (only those the caller may see are listed).")
    @staticmethod
    def booking(root: strawberry.Parent[service.Block]) -> SurgeryBooking | None:
        return root.booking


@strawberry.type(description="A theatre's day: its cases and the cleaning after each.")
class TheatreSchedule:
    theatre_id: strawberry.ID
    day: date
    blocks: list[TheatreBlock]

    @strawberry.field
    async def theatre(self, info: Info) -> OperatingTheatre | None:
        return await info.context.loaders.operating_theatre_by_id.load(ObjectId(self.theatre_id))


# -- inputs ----------------------------------------------------------------------------------


@strawberry.input
class CreateOperatingTheatreInput:
    name: str
    code: str
    department_id: strawberry.ID
    turnover_minutes: int | None = None
    hourly_rate: Long | None = None
    active: bool | None = None


@strawberry.input
class PlannedProcedureInput:
    description: str
    codes: list[str] | None = None


@strawberry.input(description="A case: all four of theatre, surgeon, anaesthetist and patient.")
class BookSurgeryInput:
    patient_id: strawberry.ID
    theatre_id: strawberry.ID
    surgeon_id: strawberry.ID
    anaesthetist_id: strawberry.ID
    start_at: datetime
    end_at: datetime
    procedure: PlannedProcedureInput
    priority: SurgeryPriority | None = None
    admission_id: strawberry.ID | None = None
    notes: str | None = None


@strawberry.input
class RescheduleSurgeryInput:
    start_at: datetime
    end_at: datetime
    reason: str | None = None


@strawberry.input(description="Checklist items are checked by the caller, now.")
class SurgicalRecordInput:
    checklist: list[ChecklistItem] | None = strawberry.UNSET
    anaesthesia_type: AnaesthesiaType | None = strawberry.UNSET
    in_theatre_at: datetime | None = strawberry.UNSET
    anaesthesia_start_at: datetime | None = strawberry.UNSET
    incision_at: datetime | None = strawberry.UNSET
    closure_at: datetime | None = strawberry.UNSET
    out_of_theatre_at: datetime | None = strawberry.UNSET
    procedure_codes: list[str] | None = strawberry.UNSET
    complications: str | None = strawberry.UNSET
    post_op_destination: PostOpDestination | None = strawberry.UNSET
    post_op_ward_id: strawberry.ID | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET
