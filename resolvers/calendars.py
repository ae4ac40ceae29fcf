"""Calendars: working hours, leave and holidays, appointment types, maintenance, availability."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Annotated

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from resolvers.common import perform
from schema.calendars import (
    AppointmentType,
    AppointmentTypeInput,
    CalendarException,
    CalendarExceptionInput,
    DayHoursInput,
    MaintenanceWindow,
    MaintenanceWindowInput,
    Slot,
    WorkingHours,
)
from schema.common import create_data, oid, to_data, view
from schema.context import Info
from schema.enforce import acts
from services import availability as slots
from services import calendars


@strawberry.type
class CalendarQuery:
    @strawberry.field(description="A doctor's weekly working hours; null if none are set.")
    async def working_hours(self, info: Info, doctor_id: strawberry.ID) -> WorkingHours | None:
        await info.context.access.scope(K.CALENDAR)
        found = await calendars.working_hours(oid(doctor_id, "doctorId"))
        return None if found is None else view(WorkingHours, found)

    @strawberry.field(
        description="Leave and holidays touching the local days from..to (at most 366 days): "
        "the doctor's and the facility's, or only the facility's without doctorId."
    )
    async def calendar_exceptions(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        doctor_id: strawberry.ID | None = None,
    ) -> list[CalendarException]:
        await info.context.access.scope(K.CALENDAR)
        doctor = oid(doctor_id, "doctorId") if doctor_id else None
        found = await calendars.exceptions_between(doctor, from_, to)
        return [view(CalendarException, e) for e in found]

    @strawberry.field(description="Every appointment type, by code.")
    async def appointment_types(self, info: Info) -> list[AppointmentType]:
        await info.context.access.scope(K.APPOINTMENT_TYPE)
        return [view(AppointmentType, t) for t in await calendars.appointment_types()]

    @strawberry.field(description="A device's maintenance windows overlapping from..to.")
    async def maintenance_windows(
        self,
        info: Info,
        equipment_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> list[MaintenanceWindow]:
        await info.context.access.scope(K.MAINTENANCE_WINDOW)
        found = await calendars.maintenance_between([oid(equipment_id, "equipmentId")], from_, to)
        return [view(MaintenanceWindow, w) for w in found]

    @strawberry.field(
        description="Free slots with a doctor for one appointment type within from..to (at "
        "most 31 days), on the 5-minute grid: within working hours, outside leave, holidays "
        "and the doctor's bookings, and with a free device when the type needs one."
    )
    async def availability(
        self,
        info: Info,
        doctor_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        appointment_type: strawberry.ID,
    ) -> list[Slot]:
        await info.context.access.scope(K.AVAILABILITY)
        found = await slots.availability(
            oid(doctor_id, "doctorId"),
            from_,
            to,
            oid(appointment_type, "appointmentType"),
            info.context.settings.facility_timezone,
        )
        return [view(Slot, s) for s in found]


@strawberry.type
class CalendarMutation:
    @strawberry.mutation(
        description="Replace a doctor's weekly working hours (admin, or the doctor themself).",
        metadata=acts(K.CALENDAR, Action.UPDATE),
    )
    async def set_working_hours(
        self, info: Info, doctor_id: strawberry.ID, days: list[DayHoursInput]
    ) -> WorkingHours:
        doctor = await calendars.get_doctor(oid(doctor_id, "doctorId"))
        data = to_data(days, "days")
        run = partial(calendars.set_working_hours, doctor.id, data)  # type: ignore[arg-type]
        saved = await perform(info, K.CALENDAR, Action.UPDATE, run, ["days"], row=doctor)
        return view(WorkingHours, saved)

    @strawberry.mutation(
        description="Add leave for a doctor (admin, or the doctor themself) or, without "
        "doctorId, a facility-wide holiday (admin).",
        metadata=acts(K.CALENDAR, Action.UPDATE),
    )
    async def add_calendar_exception(
        self, info: Info, input: CalendarExceptionInput
    ) -> CalendarException:
        data = create_data(input)
        doctor = None
        if data.get("doctor_id") is not None:
            doctor = await calendars.get_doctor(data["doctor_id"])
        run = partial(calendars.add_exception, data)
        added = await perform(info, K.CALENDAR, Action.UPDATE, run, data, row=doctor)
        return view(CalendarException, added)

    @strawberry.mutation(
        description="Remove leave or a holiday; returns what was removed.",
        metadata=acts(K.CALENDAR, Action.UPDATE),
    )
    async def remove_calendar_exception(self, info: Info, id: strawberry.ID) -> CalendarException:
        exception = await calendars.get_exception(oid(id))
        doctor = None
        if exception.doctor_id is not None:
            doctor = await calendars.get_doctor(exception.doctor_id)
        run = partial(calendars.remove_exception, exception)
        removed = await perform(info, K.CALENDAR, Action.UPDATE, run, ["deleted"], row=doctor)
        return view(CalendarException, removed)

    @strawberry.mutation(
        description="Add an appointment type to the catalogue (admin).",
        metadata=acts(K.APPOINTMENT_TYPE, Action.CREATE),
    )
    async def create_appointment_type(
        self, info: Info, input: AppointmentTypeInput
    ) -> AppointmentType:
        data = create_data(input)
        run = partial(calendars.create_appointment_type, data)
        created = await perform(info, K.APPOINTMENT_TYPE, Action.CREATE, run, data)
        return view(AppointmentType, created)

    @strawberry.mutation(
        description="Take a device out of booking for a while (admin).",
        metadata=acts(K.MAINTENANCE_WINDOW, Action.SCHEDULE),
    )
    async def schedule_maintenance(
        self, info: Info, input: MaintenanceWindowInput
    ) -> MaintenanceWindow:
        data = create_data(input)
        run = partial(calendars.schedule_maintenance, data)
        window = await perform(info, K.MAINTENANCE_WINDOW, Action.SCHEDULE, run, data)
        return view(MaintenanceWindow, window)

    @strawberry.mutation(
        description="Cancel a maintenance window (admin).",
        metadata=acts(K.MAINTENANCE_WINDOW, Action.CANCEL),
    )
    async def cancel_maintenance(self, info: Info, id: strawberry.ID) -> MaintenanceWindow:
        window = await calendars.get_maintenance(oid(id))
        run = partial(calendars.cancel_maintenance, window)
        done = await perform(info, K.MAINTENANCE_WINDOW, Action.CANCEL, run, ["deleted"])
        return view(MaintenanceWindow, done)
