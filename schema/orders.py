"""GraphQL types and inputs for doctor orders of an admission."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import orders as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Info
from schema.radiology import ImagingLaterality, ImagingModality

if TYPE_CHECKING:
    from schema.admissions import Admission
    from schema.laboratory import LabOrder
    from schema.nursing import NursingTask
    from schema.patients import Patient
    from schema.radiology import ImagingOrder
    from schema.staff import Doctor

strawberry.enum(m.OrderKind)
OrderKind = m.OrderKind
strawberry.enum(
    m.OrderStatus,
    description="active <-> held; active or held -> completed or cancelled (final).",
)
OrderStatus = m.OrderStatus
strawberry.enum(m.MedicationRoute)
MedicationRoute = m.MedicationRoute
strawberry.enum(
    m.SchedulePattern,
    description="once (at startAt), every_hours (from startAt), times_of_day (the facility's "
    "local times each day), prn (as needed: no tasks).",
)
SchedulePattern = m.SchedulePattern


@strawberry.type(description="When an order's (or intervention's) tasks fall due.")
class Schedule:
    pattern: SchedulePattern
    start_at: datetime
    end_at: datetime | None
    every_hours: int | None
    times_of_day: list[time] = strawberry.field(
        description="Wall-clock times in the facility's time zone."
    )


@strawberry.type
class MedicationDetails:
    drug: str
    dose: float
    unit: str
    route: MedicationRoute
    frequency: str | None


@strawberry.type
class LaboratoryDetails:
    test_codes: list[str]


@strawberry.type
class ImagingDetails:
    modality: ImagingModality
    body_part: str
    laterality: ImagingLaterality
    clinical_question: str


@strawberry.type
class OrderStatusChange:
    status: OrderStatus
    at: datetime
    by: str | None
    reason: str | None


@strawberry.type(description="A doctor's order for an admitted patient, with its schedule.")
class DoctorOrder:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: OrderKind
    medication: MedicationDetails | None
    laboratory: LaboratoryDetails | None
    imaging: ImagingDetails | None
    instruction: str | None
    schedule: Schedule
    status: OrderStatus
    status_at: datetime
    reason: str | None = strawberry.field(description="Why it was last held or cancelled.")
    history: list[OrderStatusChange]
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.admission_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def ordered_by_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.ordered_by_id))

    @strawberry.field
    @staticmethod
    def lab_order_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID | None:
        return ref_id(root.lab_order_id)

    @strawberry.field
    @staticmethod
    def imaging_order_id(root: strawberry.Parent[m.DoctorOrder]) -> strawberry.ID | None:
        return ref_id(root.imaging_order_id)

    @strawberry.field
    @staticmethod
    async def admission(
        root: strawberry.Parent[m.DoctorOrder], info: Info
    ) -> Annotated[Admission, strawberry.lazy("schema.admissions")] | None:
        return await info.context.loaders.admission_by_id.load(root.admission_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.DoctorOrder], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def ordered_by(
        root: strawberry.Parent[m.DoctorOrder], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.ordered_by_id)

    @strawberry.field(description="The laboratory order placed for a laboratory order.")
    @staticmethod
    async def lab_order(
        root: strawberry.Parent[m.DoctorOrder], info: Info
    ) -> Annotated[LabOrder, strawberry.lazy("schema.laboratory")] | None:
        if root.lab_order_id is None:
            return None
        return await info.context.loaders.lab_order_by_id.load(root.lab_order_id)

    @strawberry.field(description="The imaging order placed for an imaging order.")
    @staticmethod
    async def imaging_order(
        root: strawberry.Parent[m.DoctorOrder], info: Info
    ) -> Annotated[ImagingOrder, strawberry.lazy("schema.radiology")] | None:
        if root.imaging_order_id is None:
            return None
        return await info.context.loaders.imaging_order_by_id.load(root.imaging_order_id)

    @strawberry.field(description="The nursing tasks generated from it, by due time.")
    @staticmethod
    async def tasks(
        root: strawberry.Parent[m.DoctorOrder],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[NursingTask, strawberry.lazy("schema.nursing")]]:
        from schema.nursing import NursingTask

        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.nursing_tasks_by_order.load(key)
        return connection(NursingTask, page)


@strawberry.input(description="Exactly the pattern's own fields: everyHours or timesOfDay.")
class ScheduleInput:
    pattern: SchedulePattern
    start_at: datetime | None = strawberry.field(default=None, description="Default: now.")
    end_at: datetime | None = None
    every_hours: int | None = None
    times_of_day: list[time] | None = None


@strawberry.input
class MedicationInput:
    drug: str
    dose: float
    unit: str
    route: MedicationRoute
    frequency: str | None = None


@strawberry.input(description="Codes of the laboratory catalogue (labTests).")
class LaboratoryInput:
    test_codes: list[str]


@strawberry.input
class ImagingInput:
    modality: ImagingModality
    body_part: str
    laterality: ImagingLaterality = ImagingLaterality.NOT_APPLICABLE
    clinical_question: str


@strawberry.input(
    description="The details of its kind only: medication, laboratory or imaging; an "
    "instruction for diet, activity and nursing orders (a note on the others)."
)
class DoctorOrderInput:
    admission_id: strawberry.ID
    kind: OrderKind
    ordered_by_id: strawberry.ID | None = strawberry.field(
        default=None, description="The caller; only an admin may name another doctor."
    )
    medication: MedicationInput | None = None
    laboratory: LaboratoryInput | None = None
    imaging: ImagingInput | None = None
    instruction: str | None = None
    schedule: ScheduleInput
