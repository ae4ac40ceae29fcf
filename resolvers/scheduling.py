"""Appointment lookups and the booking mutations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from models import Appointment as AppointmentDoc
from schema.common import (
    Connection,
    IdempotencyKey,
    connection,
    create_data,
    oid,
    view,
)
from schema.context import Info
from schema.enforce import acts
from schema.scheduling import (
    Appointment,
    AppointmentFilter,
    RescheduleAppointmentInput,
    ScheduleAppointmentInput,
)
from services import scheduling
from services.idempotency import idempotent
from services.pagination import both


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
        access = info.context.access
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
        scope = await access.scope(K.APPOINTMENT)
        args = info.context.page(first, after)
        page = await scheduling.list_appointments(both(query, scope), args)
        return connection(Appointment, page)


async def _own(info: Info, id: strawberry.ID | str, action: Action) -> AppointmentDoc:
    """The appointment a mutation acts on, if the caller may (their role was checked by the
    schema before any lookup, so a refusal cannot tell existing ids from unknown ones)."""
    appointment = await scheduling.get_appointment(oid(id))
    await info.context.access.require(K.APPOINTMENT, action, row=appointment)
    return appointment


async def _may_schedule_for(info: Info, patient_id: Any) -> None:
    access = info.context.access
    # Clinicians book for patients they treat: the relation comes from the patient record.
    patient = await info.context.loaders.patient_by_id.load(patient_id)
    if patient is not None:
        await access.require(K.APPOINTMENT, Action.SCHEDULE, patient=patient)
    else:  # the service answers BAD_USER_INPUT for an unknown patient, to those allowed
        await access.require(K.APPOINTMENT, Action.SCHEDULE, patient_id=patient_id)


async def _booked(
    info: Info, fields: Iterable[str], first: AppointmentDoc, note: str
) -> AppointmentDoc:
    """A retried booking's answer: the appointment as first booked, if the caller may still
    book for the patient; audited like the booking, noted as a replay."""
    await _may_schedule_for(info, first.patient_id)
    info.context.access.wrote(K.APPOINTMENT, first, Action.SCHEDULE, fields, note=note)
    return first


def _replayed(
    info: Info, action: Action, fields: Iterable[str]
) -> Callable[[AppointmentDoc, str], Awaitable[AppointmentDoc]]:
    """A retried move or cancel: the appointment as the first call returned it, if the caller
    may still do ``action`` on it as it is now (``_own``: it must still exist, and a revoked
    right is refused); audited like the first write, noted as a replay."""

    async def answer(first: AppointmentDoc, note: str) -> AppointmentDoc:
        await _own(info, str(first.id), action)
        info.context.access.wrote(K.APPOINTMENT, first, action, fields, note=note)
        return first

    return answer


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


@strawberry.type
class SchedulingMutation:
    @strawberry.mutation(
        description="Book an appointment.", metadata=acts(K.APPOINTMENT, Action.SCHEDULE)
    )
    async def schedule_appointment(
        self, info: Info, input: ScheduleAppointmentInput, idempotency_key: IdempotencyKey = None
    ) -> Appointment:
        data = create_data(input)

        async def run() -> AppointmentDoc:
            await _may_schedule_for(info, data.get("patient_id"))
            zone = info.context.settings.facility_timezone
            booked = await scheduling.schedule_appointment(data, zone)
            info.context.access.wrote(K.APPOINTMENT, booked, Action.SCHEDULE, data)
            return booked

        booked = await idempotent(
            _subject(info),
            "scheduleAppointment",
            idempotency_key,
            {"input": data},
            AppointmentDoc,
            run,
            partial(_booked, info, data),
        )
        return view(Appointment, booked)

    @strawberry.mutation(
        description="Move a scheduled appointment; the change is kept in history.",
        metadata=acts(K.APPOINTMENT, Action.RESCHEDULE),
    )
    async def reschedule_appointment(
        self,
        info: Info,
        id: strawberry.ID,
        input: RescheduleAppointmentInput,
        idempotency_key: IdempotencyKey = None,
    ) -> Appointment:
        async def run() -> AppointmentDoc:
            await _own(info, id, Action.RESCHEDULE)
            moved = await scheduling.reschedule_appointment(
                oid(id),
                input.start_at,
                input.end_at,
                input.reason,
                info.context.settings.facility_timezone,
            )
            fields = ["start_at", "end_at"]
            info.context.access.wrote(K.APPOINTMENT, moved, Action.RESCHEDULE, fields)
            return moved

        payload = {
            "id": str(id),
            "start_at": input.start_at,
            "end_at": input.end_at,
            "reason": input.reason,
        }
        moved = await idempotent(
            _subject(info),
            "rescheduleAppointment",
            idempotency_key,
            payload,
            AppointmentDoc,
            run,
            _replayed(info, Action.RESCHEDULE, ["start_at", "end_at"]),
        )
        return view(Appointment, moved)

    @strawberry.mutation(
        description="Cancel a scheduled appointment.", metadata=acts(K.APPOINTMENT, Action.CANCEL)
    )
    async def cancel_appointment(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Appointment:
        async def run() -> AppointmentDoc:
            await _own(info, id, Action.CANCEL)
            cancelled = await scheduling.cancel_appointment(oid(id), reason)
            info.context.access.wrote(K.APPOINTMENT, cancelled, Action.CANCEL, ["status"])
            return cancelled

        cancelled = await idempotent(
            _subject(info),
            "cancelAppointment",
            idempotency_key,
            {"id": str(id), "reason": reason},
            AppointmentDoc,
            run,
            _replayed(info, Action.CANCEL, ["status"]),
        )
        return view(Appointment, cancelled)

    @strawberry.mutation(
        description="Record that the patient arrived: scheduled -> checked_in.",
        metadata=acts(K.APPOINTMENT, Action.CHECK_IN),
    )
    async def check_in_appointment(self, info: Info, id: strawberry.ID) -> Appointment:
        await _own(info, id, Action.CHECK_IN)
        arrived = await scheduling.check_in_appointment(oid(id))
        info.context.access.wrote(K.APPOINTMENT, arrived, Action.CHECK_IN, ["status"])
        return view(Appointment, arrived)

    @strawberry.mutation(
        description="Close a checked-in visit: checked_in -> completed; frees its time.",
        metadata=acts(K.APPOINTMENT, Action.COMPLETE),
    )
    async def complete_appointment(
        self, info: Info, id: strawberry.ID, notes: str | None = None
    ) -> Appointment:
        await _own(info, id, Action.COMPLETE)
        done = await scheduling.complete_appointment(oid(id), notes)
        fields = ["status", "notes"] if notes is not None else ["status"]
        info.context.access.wrote(K.APPOINTMENT, done, Action.COMPLETE, fields)
        return view(Appointment, done)

    @strawberry.mutation(
        description="The patient never came: scheduled -> no_show, once the start has passed.",
        metadata=acts(K.APPOINTMENT, Action.MARK_NO_SHOW),
    )
    async def mark_no_show(self, info: Info, id: strawberry.ID) -> Appointment:
        await _own(info, id, Action.MARK_NO_SHOW)
        missed = await scheduling.mark_no_show(oid(id))
        info.context.access.wrote(K.APPOINTMENT, missed, Action.MARK_NO_SHOW, ["status"])
        return view(Appointment, missed)
