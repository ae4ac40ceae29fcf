"""Operating theatres: booking cases, the theatre's day, performing and recording surgery."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Annotated, Any

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from models.theatre import SurgeryBooking as SurgeryBookingDoc
from models.theatre import SurgicalRecord as SurgicalRecordDoc
from resolvers.common import perform
from schema.common import (
    Connection,
    IdempotencyKey,
    connection,
    create_data,
    oid,
    to_data,
    update_data,
    view,
)
from schema.context import Info
from schema.enforce import acts, reads
from schema.theatre import (
    BookSurgeryInput,
    CreateOperatingTheatreInput,
    OperatingTheatre,
    RescheduleSurgeryInput,
    SurgeryBooking,
    SurgeryStatus,
    SurgicalRecord,
    SurgicalRecordInput,
    TheatreBlock,
    TheatreSchedule,
)
from services import theatre
from services.idempotency import idempotent


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _staff(info: Info) -> ObjectId | None:
    """Who checks checklist items: the caller's staff record (admins may have none)."""
    staff_id: ObjectId | None = info.context.access.principal.staff_id
    return staff_id


async def _may_book(info: Info, data: dict[str, Any]) -> None:
    """Booking is judged on the booking as it would be: the theatre's department (its admin
    staff book its lists), the patient, the surgeon and the anaesthetist."""
    theatre_id = data.get("theatre_id")
    room = await info.context.loaders.operating_theatre_by_id.load(theatre_id)
    planned = SurgeryBookingDoc.model_construct(
        patient_id=data.get("patient_id"),
        department_id=room.department_id if room is not None else None,
        surgeon_id=data.get("surgeon_id"),
        anaesthetist_id=data.get("anaesthetist_id"),
    )
    await info.context.access.require(K.SURGERY_BOOKING, Action.SCHEDULE, row=planned)


@strawberry.type
class TheatreQuery:
    @strawberry.field
    async def theatre(self, info: Info, id: strawberry.ID) -> OperatingTheatre | None:
        return await info.context.loaders.operating_theatre_by_id.load(oid(id))

    @strawberry.field(description="Operating theatres, filtered by department and use.")
    async def theatres(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        active: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[OperatingTheatre]:
        query = theatre.theatre_filter(
            department_id=oid(department_id, "departmentId") if department_id else None,
            active=active,
        )
        page = await theatre.list_theatres(
            query,
            info.context.page(first, after),
            await info.context.access.scope(K.OPERATING_THEATRE),
        )
        return connection(OperatingTheatre, page)

    @strawberry.field
    async def surgery_booking(self, info: Info, id: strawberry.ID) -> SurgeryBooking | None:
        return await info.context.loaders.surgery_booking_by_id.load(oid(id))

    @strawberry.field(
        description="Surgery bookings by start (from inclusive, to exclusive); surgeonId "
        "matches the operating surgeon, anaesthetistId the anaesthetist."
    )
    async def surgery_bookings(
        self,
        info: Info,
        theatre_id: strawberry.ID | None = None,
        surgeon_id: strawberry.ID | None = None,
        anaesthetist_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        status: list[SurgeryStatus] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SurgeryBooking]:
        query = theatre.booking_filter(
            theatre_id=oid(theatre_id, "theatreId") if theatre_id else None,
            surgeon_id=oid(surgeon_id, "surgeonId") if surgeon_id else None,
            anaesthetist_id=oid(anaesthetist_id, "anaesthetistId") if anaesthetist_id else None,
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            statuses=status or (),
            starts_from=from_,
            starts_before=to,
        )
        page = await theatre.list_bookings(
            query,
            info.context.page(first, after),
            await info.context.access.scope(K.SURGERY_BOOKING),
        )
        return connection(SurgeryBooking, page)

    @strawberry.field(
        description="A theatre's day in the facility's time zone: its cases and the cleaning "
        "after each, in order (only the cases the caller may see).",
        metadata=reads(K.SURGERY_BOOKING),
    )
    async def theatre_schedule(
        self, info: Info, theatre_id: strawberry.ID, day: date
    ) -> TheatreSchedule:
        blocks = await theatre.theatre_day(
            oid(theatre_id, "theatreId"),
            day,
            info.context.settings.facility_timezone,
            await info.context.access.scope(K.SURGERY_BOOKING),
        )
        shown: list[TheatreBlock] = [view(TheatreBlock, b) for b in blocks]
        return TheatreSchedule(theatre_id=theatre_id, day=day, blocks=shown)

    @strawberry.field(description="The record of a booking's operation, once started.")
    async def surgical_record(self, info: Info, booking_id: strawberry.ID) -> SurgicalRecord | None:
        return await theatre.record_of(oid(booking_id, "bookingId"))


@strawberry.type
class TheatreMutation:
    @strawberry.mutation(
        description="Add an operating theatre to a department.",
        metadata=acts(K.OPERATING_THEATRE, Action.CREATE),
    )
    async def create_operating_theatre(
        self, info: Info, input: CreateOperatingTheatreInput
    ) -> OperatingTheatre:
        data = create_data(input)
        run = partial(theatre.create_theatre, data)
        made = await perform(info, K.OPERATING_THEATRE, Action.CREATE, run, data)
        return view(OperatingTheatre, made)

    @strawberry.mutation(
        description="Book a case: the theatre (with its cleaning time), the surgeon, the "
        "anaesthetist and the patient together, or nothing. CONFLICT names what is taken.",
        metadata=acts(K.SURGERY_BOOKING, Action.SCHEDULE),
    )
    async def book_surgery(
        self, info: Info, input: BookSurgeryInput, idempotency_key: IdempotencyKey = None
    ) -> SurgeryBooking:
        data = create_data(input)

        async def run() -> SurgeryBookingDoc:
            await _may_book(info, data)
            booked = await theatre.book(data)
            info.context.access.wrote(K.SURGERY_BOOKING, booked, Action.SCHEDULE, data)
            return booked

        async def replay(first: SurgeryBookingDoc, note: str) -> SurgeryBookingDoc:
            await info.context.access.require(K.SURGERY_BOOKING, Action.SCHEDULE, row=first)
            info.context.access.wrote(K.SURGERY_BOOKING, first, Action.SCHEDULE, data, note=note)
            return first

        booked = await idempotent(
            _subject(info), "bookSurgery", idempotency_key, {"input": data},
            SurgeryBookingDoc, run, replay,
        )  # fmt: skip
        return view(SurgeryBooking, booked)

    @strawberry.mutation(
        description="Move a scheduled case; the new time is held before the old is released.",
        metadata=acts(K.SURGERY_BOOKING, Action.RESCHEDULE),
    )
    async def reschedule_surgery(
        self,
        info: Info,
        id: strawberry.ID,
        input: RescheduleSurgeryInput,
        version: int | None = None,
    ) -> SurgeryBooking:
        row = await theatre.get_booking(oid(id))
        run = partial(
            theatre.reschedule, oid(id), input.start_at, input.end_at, input.reason, version
        )
        fields = ["start_at", "end_at"]
        done = await perform(info, K.SURGERY_BOOKING, Action.RESCHEDULE, run, fields, row=row)
        return view(SurgeryBooking, done)

    @strawberry.mutation(
        description="Cancel a scheduled case (a reason is required); its time is freed at once.",
        metadata=acts(K.SURGERY_BOOKING, Action.CANCEL),
    )
    async def cancel_surgery(
        self, info: Info, id: strawberry.ID, reason: str, version: int | None = None
    ) -> SurgeryBooking:
        row = await theatre.get_booking(oid(id))
        run = partial(theatre.cancel, oid(id), reason, version)
        done = await perform(info, K.SURGERY_BOOKING, Action.CANCEL, run, ["status"], row=row)
        return view(SurgeryBooking, done)

    @strawberry.mutation(
        description="The case begins: creates its record, with any checklist items (checked "
        "by the caller) and times given.",
        metadata=acts(K.SURGERY_BOOKING, "start"),
    )
    async def start_surgery(
        self, info: Info, id: strawberry.ID, input: SurgicalRecordInput | None = None
    ) -> SurgicalRecord:
        row = await theatre.get_booking(oid(id))
        await info.context.access.require(K.SURGERY_BOOKING, "start", row=row)
        data = to_data(input) if input is not None else {}
        record = await theatre.start(oid(id), _staff(info), data)
        info.context.access.wrote(K.SURGICAL_RECORD, record, Action.CREATE, data)
        return view(SurgicalRecord, record)

    @strawberry.mutation(
        description="Record times, checklist items (checked by the caller), anaesthesia, "
        "procedure codes, complications; `version` (optional) guards a stale edit.",
        metadata=acts(K.SURGICAL_RECORD, Action.UPDATE),
    )
    async def update_surgical_record(
        self,
        info: Info,
        id: strawberry.ID,
        input: SurgicalRecordInput,
        version: int | None = None,
    ) -> SurgicalRecord:
        changes = update_data(input)
        row = await theatre.get_record(oid(id))
        await info.context.access.require_update(K.SURGICAL_RECORD, row, changes)
        done: SurgicalRecordDoc = await theatre.update_record(
            oid(id), changes, _staff(info), version
        )
        info.context.access.wrote(K.SURGICAL_RECORD, done, Action.UPDATE, changes)
        return view(SurgicalRecord, done)

    @strawberry.mutation(
        description="The patient has left the theatre: completes the case (times in and out "
        "and the post-op destination recorded), frees the theatre, charges the patient once.",
        metadata=acts(K.SURGERY_BOOKING, Action.COMPLETE),
    )
    async def complete_surgery(self, info: Info, id: strawberry.ID) -> SurgeryBooking:
        row = await theatre.get_booking(oid(id))
        run = partial(theatre.complete, oid(id))
        done = await perform(info, K.SURGERY_BOOKING, Action.COMPLETE, run, ["status"], row=row)
        return view(SurgeryBooking, done)
