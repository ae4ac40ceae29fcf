"""GraphQL types and inputs for appointments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from models import scheduling as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.equipment import MedicalEquipment
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.AppointmentStatus)
AppointmentStatus = m.AppointmentStatus


def status_filter(statuses: Sequence[m.AppointmentStatus] | None) -> tuple[tuple[str, Any], ...]:
    """A hashable loader filter for a status list argument."""
    if not statuses:
        return ()
    return (("status", tuple(sorted(s.value for s in statuses))),)


@strawberry.type
class Reschedule:
    previous_start_at: datetime
    previous_end_at: datetime
    start_at: datetime
    end_at: datetime
    reason: str | None
    at: datetime


@strawberry.type
class Cancellation:
    reason: str | None
    at: datetime


@strawberry.type(description="A booked visit of one patient with one doctor.")
class Appointment:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    start_at: datetime
    end_at: datetime
    status: AppointmentStatus
    reschedule_history: list[Reschedule] | None
    cancellation: Cancellation | None
    created_at: datetime
    updated_at: datetime

    reason: str | None
    notes: str | None

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Appointment]) -> strawberry.ID | None:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def doctor_id(root: strawberry.Parent[m.Appointment]) -> strawberry.ID:
        return strawberry.ID(str(root.doctor_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.Appointment]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def equipment_id(root: strawberry.Parent[m.Appointment]) -> strawberry.ID | None:
        return ref_id(root.equipment_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Appointment], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def doctor(
        root: strawberry.Parent[m.Appointment], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.doctor_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.Appointment], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field
    @staticmethod
    async def equipment(
        root: strawberry.Parent[m.Appointment], info: Info
    ) -> Annotated[MedicalEquipment, strawberry.lazy("schema.equipment")] | None:
        if root.equipment_id is None:
            return None
        return await info.context.loaders.equipment_by_id.load(root.equipment_id)


def appointments_field(loader: str, owner: str) -> Any:
    """The ``appointments`` list of a patient, doctor or device: one shape, one loader each
    (the owner's field group, and each row, are checked by ``schema.enforce``)."""

    async def appointments(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: list[AppointmentStatus] | None = None,
    ) -> Connection[Appointment] | None:
        key = (root.id, info.context.page(first, after), status_filter(status))
        page = await getattr(info.context.loaders, loader).load(key)
        return connection(Appointment, page)

    return strawberry.field(resolver=appointments, description=f"{owner} by start time.")


@strawberry.input
class ScheduleAppointmentInput:
    patient_id: strawberry.ID
    doctor_id: strawberry.ID
    start_at: datetime = strawberry.field(description="ISO-8601 with an offset, e.g. ...Z")
    end_at: datetime
    reason: str
    equipment_id: strawberry.ID | None = None
    notes: str | None = None


@strawberry.input
class RescheduleAppointmentInput:
    start_at: datetime
    end_at: datetime
    reason: str | None = None


@strawberry.input
class AppointmentFilter:
    doctor_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    department_id: strawberry.ID | None = None
    equipment_id: strawberry.ID | None = None
    status: list[AppointmentStatus] | None = None
    starts_from: datetime | None = strawberry.field(
        default=None, name="from", description="Appointments starting at or after this instant"
    )
    starts_before: datetime | None = strawberry.field(
        default=None, name="to", description="Appointments starting before this instant"
    )
