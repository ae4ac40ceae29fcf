"""Appointment lookups and the booking mutations."""

from __future__ import annotations

import strawberry

from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.scheduling import (
    Appointment,
    AppointmentFilter,
    RescheduleAppointmentInput,
    ScheduleAppointmentInput,
)
from services import scheduling


@strawberry.type
class SchedulingQuery:
    @strawberry.field(description="One appointment by id; null if there is none.")
    async def appointment(self, info: Info, id: strawberry.ID) -> Appointment | None:
        return await info.context.loaders.appointment_by_id.load(oid(id))

    @strawberry.field(description="Appointments by start time, filtered.")
    async def appointments(
        self,
        info: Info,
        filter: AppointmentFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Appointment]:
        f = filter or AppointmentFilter()
        query = scheduling.appointment_filter(
            doctor_id=oid(f.doctor_id, "filter.doctorId") if f.doctor_id else None,
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            department_id=oid(f.department_id, "filter.departmentId") if f.department_id else None,
            equipment_id=oid(f.equipment_id, "filter.equipmentId") if f.equipment_id else None,
            statuses=f.status or (),
            starts_from=f.starts_from,
            starts_before=f.starts_before,
        )
        page = await scheduling.list_appointments(query, info.context.page(first, after))
        return connection(Appointment, page)


@strawberry.type
class SchedulingMutation:
    @strawberry.mutation(description="Book an appointment.")
    async def schedule_appointment(self, input: ScheduleAppointmentInput) -> Appointment:
        return view(Appointment, await scheduling.schedule_appointment(create_data(input)))

    @strawberry.mutation(description="Move a scheduled appointment; the change is kept in history.")
    async def reschedule_appointment(
        self, id: strawberry.ID, input: RescheduleAppointmentInput
    ) -> Appointment:
        moved = await scheduling.reschedule_appointment(
            oid(id), input.start_at, input.end_at, input.reason
        )
        return view(Appointment, moved)

    @strawberry.mutation(description="Cancel a scheduled appointment.")
    async def cancel_appointment(self, id: strawberry.ID, reason: str | None = None) -> Appointment:
        return view(Appointment, await scheduling.cancel_appointment(oid(id), reason))
