"""Outpatient visits: check-in, the queue, calls, consultation, the end; the waiting-room board.

Who may act on a visit comes from the declaration (``models/outpatient.py``). A check-in from an
appointment relates the caller through the appointment (its doctor, its clinic); a walk-in
through the patient, as booking does, so naming one's own clinic never opens a stranger's chart.
Calling the next patient is judged on the queue itself (its clinic, its doctor) before any
patient is taken from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from auth.roles import Role
from cache import queues
from errors import BadUserInput, Forbidden, NotFound
from events.types import DomainEvent
from models.base import utcnow
from models.outpatient import OutpatientVisit as VisitDoc
from models.outpatient import VisitPriority
from resolvers.common import perform
from resolvers.subscriptions import live
from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.outpatient import (
    CheckInOutpatientInput,
    OutpatientBoard,
    OutpatientBoardEvent,
    OutpatientVisit,
    OutpatientVisitFilter,
    WalkInInput,
    board,
    remember,
)
from services import outpatient
from services.pagination import both

CALL = "call"
START_CONSULTATION = "startConsultation"
LEAVE = "leave"
VISITS = str(VisitDoc.Settings.name)
FIELD = "outpatientBoardChanged"


def _one_queue(
    department_id: strawberry.ID | None, doctor_id: strawberry.ID | None
) -> tuple[queues.QueueKind, ObjectId]:
    if (department_id is None) == (doctor_id is None):
        raise BadUserInput(
            "Name exactly one queue: departmentId or doctorId",
            {"departmentId": "give departmentId or doctorId, not both or neither"},
        )
    if doctor_id is not None:
        return "doctor", oid(doctor_id, "doctorId")
    assert department_id is not None
    return "department", oid(department_id, "departmentId")


async def _queue_row(info: Info, kind: queues.QueueKind, key: ObjectId) -> dict[str, Any]:
    """What a queue is, as a visit row without a patient: its clinic and doctor. The policy's
    relations to it (DEPARTMENT, or CARE for the doctor's own queue) decide who may call it."""
    loaders = info.context.loaders
    if kind == "doctor":
        doctor = await loaders.doctor_by_id.load(key)
        if doctor is None:
            raise NotFound("Doctor", str(key))
        return {"patient_id": None, "doctor_id": key, "department_id": doctor.department_id}
    if await loaders.department_by_id.load(key) is None:
        raise NotFound("Department", str(key))
    return {"patient_id": None, "doctor_id": None, "department_id": key}


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


async def _visit(info: Info, id: strawberry.ID, action: str) -> VisitDoc:
    """The visit a mutation acts on, if the caller may (their role was checked before)."""
    visit = await outpatient.get_visit(oid(id))
    await info.context.access.require(K.OUTPATIENT_VISIT, action, row=visit)
    return visit


async def _step(
    info: Info, id: strawberry.ID, action: str, run: Any, fields: list[str]
) -> VisitDoc:
    visit = await _visit(info, id, action)
    done: VisitDoc = await run()
    info.context.access.wrote(K.OUTPATIENT_VISIT, done, action, fields)
    assert done.id == visit.id
    return done


@strawberry.type
class OutpatientQuery:
    @strawberry.field(description="One outpatient visit by id; null if there is none.")
    async def visit(self, info: Info, id: strawberry.ID) -> OutpatientVisit | None:
        return await info.context.loaders.outpatient_visit_by_id.load(oid(id))

    @strawberry.field(description="Outpatient visits by check-in time, filtered.")
    async def visits(
        self,
        info: Info,
        filter: OutpatientVisitFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[OutpatientVisit]:
        f = filter or OutpatientVisitFilter()
        query = outpatient.visit_filter(
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            doctor_id=oid(f.doctor_id, "filter.doctorId") if f.doctor_id else None,
            department_id=oid(f.department_id, "filter.departmentId") if f.department_id else None,
            appointment_id=(
                oid(f.appointment_id, "filter.appointmentId") if f.appointment_id else None
            ),
            statuses=f.status or (),
            arrival=f.arrival,
            checked_in_from=f.checked_in_from,
            checked_in_before=f.checked_in_before,
        )
        scope = await info.context.access.scope(K.OUTPATIENT_VISIT)
        args = info.context.page(first, after)
        page = await outpatient.list_visits(both(query, scope), args)
        return connection(OutpatientVisit, page)

    @strawberry.field(
        description="A clinic's or a doctor's queue (waiting and called visits), most urgent "
        "class first, then by check-in; each visit's `position` is its place. Served from "
        "Redis; only the visits the caller may see are listed (positions count everyone)."
    )
    async def queue(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
    ) -> list[OutpatientVisit]:
        kind, key = _one_queue(department_id, doctor_id)
        await _queue_row(info, kind, key)  # NOT_FOUND for an unknown clinic or doctor
        current = await queues.queue(kind, key)
        remember(info, current)
        loaded = await info.context.loaders.outpatient_visit_by_id.load_many(
            [e.id for e in current.entries]
        )
        rows = [row for row in loaded if row is not None]
        access = info.context.access
        shown = [
            row
            for row, ok in zip(rows, await access.visible(K.OUTPATIENT_VISIT, rows), strict=True)
            if ok
        ]
        return [view(OutpatientVisit, row) for row in shown]

    @strawberry.field(
        description="The waiting-room screen of a clinic or a doctor: numbers, priority "
        "classes and positions, no names. Served from Redis."
    )
    async def outpatient_board(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
    ) -> OutpatientBoard:
        kind, key = _one_queue(department_id, doctor_id)
        await _queue_row(info, kind, key)
        return board(await queues.queue(kind, key), utcnow())


@strawberry.type
class OutpatientMutation:
    @strawberry.mutation(
        description="An appointment's patient arrived: creates their visit (once: checking in "
        "again returns the same visit) and moves the appointment to checked_in.",
        metadata=acts(K.OUTPATIENT_VISIT, Action.CHECK_IN),
    )
    async def check_in_outpatient(
        self, info: Info, input: CheckInOutpatientInput
    ) -> OutpatientVisit:
        data = create_data(input)
        appointment_id = data.pop("appointment_id")
        appointment = await info.context.loaders.appointment_by_id.load(appointment_id)
        if appointment is None:
            raise NotFound("Appointment", str(appointment_id))
        zone = info.context.settings.facility_timezone
        run = partial(outpatient.check_in_appointment, appointment_id, data, zone, _subject(info))
        visit = await perform(
            info, K.OUTPATIENT_VISIT, Action.CHECK_IN, run, ["appointment_id", *data],
            row=appointment,
        )  # fmt: skip
        return view(OutpatientVisit, visit)

    @strawberry.mutation(
        description="A patient without an appointment joins a clinic's queue (or a doctor's).",
        metadata=acts(K.OUTPATIENT_VISIT, Action.CHECK_IN),
    )
    async def walk_in_outpatient(self, info: Info, input: WalkInInput) -> OutpatientVisit:
        data = create_data(input)
        access = info.context.access
        patient = await info.context.loaders.patient_by_id.load(data.get("patient_id"))
        zone = info.context.settings.facility_timezone
        run = partial(outpatient.check_in_walk_in, data, zone, _subject(info))
        if patient is not None:
            visit = await perform(
                info, K.OUTPATIENT_VISIT, Action.CHECK_IN, run, data, patient=patient
            )
        else:  # the service answers BAD_USER_INPUT for an unknown patient, to those allowed
            await access.require(
                K.OUTPATIENT_VISIT, Action.CHECK_IN, patient_id=data.get("patient_id")
            )
            visit = await run()
        return view(OutpatientVisit, visit)

    @strawberry.mutation(
        description="Call the next patient of a queue to a room: the most urgent, longest "
        "waiting one. From a clinic's queue a doctor gets the next patient waiting for them or "
        "for anyone (and becomes their doctor). Null when nobody is waiting. Two callers never "
        "get the same patient.",
        metadata=acts(K.OUTPATIENT_VISIT, CALL),
    )
    async def call_next_outpatient(
        self,
        info: Info,
        room: str,
        department_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
    ) -> OutpatientVisit | None:
        kind, key = _one_queue(department_id, doctor_id)
        access = info.context.access
        await access.require(K.OUTPATIENT_VISIT, CALL, row=await _queue_row(info, kind, key))
        principal = access.principal
        # A doctor of the clinic takes patients waiting for them or for anyone, and becomes
        # their doctor; anyone else (a nurse, the desk, a doctor of another clinic allowed by
        # care) takes the clinic's next patient as it is.
        own_clinic = kind == "department" and principal.department_id == key
        caller_doctor = principal.staff_id if own_clinic and principal.has(Role.DOCTOR) else None
        called = await outpatient.call_next(
            room=room,
            department_id=key if kind == "department" else None,
            doctor_id=key if kind == "doctor" else None,
            caller_doctor_id=caller_doctor,
            by=_subject(info),
        )
        if called is None:
            return None
        access.wrote(K.OUTPATIENT_VISIT, called, CALL, ["status", "called_to"])
        return view(OutpatientVisit, called)

    @strawberry.mutation(
        description="Call one patient to a room (again, if already called).",
        metadata=acts(K.OUTPATIENT_VISIT, CALL),
    )
    async def call_outpatient(
        self, info: Info, id: strawberry.ID, room: str, expected_version: int | None = None
    ) -> OutpatientVisit:
        run = partial(outpatient.call, oid(id), room, _subject(info), expected_version)
        return view(OutpatientVisit, await _step(info, id, CALL, run, ["status", "called_to"]))

    @strawberry.mutation(
        description="The patient is with the doctor (called -> in_consultation). A doctor sees "
        "them in their own name; only an admin names another doctor.",
        metadata=acts(K.OUTPATIENT_VISIT, START_CONSULTATION),
    )
    async def start_outpatient_consultation(
        self,
        info: Info,
        id: strawberry.ID,
        doctor_id: strawberry.ID | None = None,
        expected_version: int | None = None,
    ) -> OutpatientVisit:
        principal = info.context.access.principal
        named = oid(doctor_id, "doctorId") if doctor_id is not None else None
        doctor: ObjectId | None = named
        if not principal.has(Role.ADMIN):
            # A doctor sees the patient in their own name (no one else is named).
            if named not in (None, principal.staff_id):
                raise Forbidden(
                    "Doctors see patients in their own name: leave out doctorId",
                    field="doctorId",
                )
            doctor = principal.staff_id
        run = partial(
            outpatient.start_consultation, oid(id), doctor, _subject(info), expected_version
        )
        visit = await _step(info, id, START_CONSULTATION, run, ["status", "doctor_id"])
        return view(OutpatientVisit, visit)

    @strawberry.mutation(
        description="The consultation ended: the visit leaves the queue (and its appointment "
        "is completed).",
        metadata=acts(K.OUTPATIENT_VISIT, Action.COMPLETE),
    )
    async def complete_outpatient_visit(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> OutpatientVisit:
        run = partial(outpatient.complete, oid(id), _subject(info), expected_version)
        return view(OutpatientVisit, await _step(info, id, Action.COMPLETE, run, ["status"]))

    @strawberry.mutation(
        description="The patient did not answer the call: the visit ends as no_show.",
        metadata=acts(K.OUTPATIENT_VISIT, Action.MARK_NO_SHOW),
    )
    async def mark_outpatient_no_show(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> OutpatientVisit:
        run = partial(outpatient.mark_no_show, oid(id), _subject(info), expected_version)
        visit = await _step(info, id, Action.MARK_NO_SHOW, run, ["status"])
        return view(OutpatientVisit, visit)

    @strawberry.mutation(
        description="The patient left before the visit ended.",
        metadata=acts(K.OUTPATIENT_VISIT, LEAVE),
    )
    async def mark_outpatient_left(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> OutpatientVisit:
        run = partial(outpatient.leave, oid(id), _subject(info), expected_version)
        return view(OutpatientVisit, await _step(info, id, LEAVE, run, ["status"]))

    @strawberry.mutation(
        description="Triage: move a waiting patient to another priority class.",
        metadata=acts(K.OUTPATIENT_VISIT, Action.UPDATE),
    )
    async def change_outpatient_priority(
        self,
        info: Info,
        id: strawberry.ID,
        priority: VisitPriority,
        expected_version: int | None = None,
    ) -> OutpatientVisit:
        run = partial(outpatient.change_priority, oid(id), priority, expected_version)
        visit = await _step(info, id, Action.UPDATE, run, ["priority"])
        return view(OutpatientVisit, visit)


async def _queue_of(event: DomainEvent, kind: Any, key: ObjectId) -> Any:
    """The queue after ``event``, read once for every screen showing it (the board holds no
    patient data, so every viewer sees the same one); the event object carries the read."""
    reads: dict[Any, asyncio.Future[Any]] = event.__dict__.setdefault("_shms_queues", {})
    read = reads.get((kind, key))
    if read is None:
        read = asyncio.ensure_future(queues.queue(kind, key))
        reads[(kind, key)] = read
    if read.done():
        return read.result()
    return await asyncio.shield(read)


@strawberry.type
class OutpatientSubscription:
    @strawberry.subscription(
        description="A waiting-room screen: the board of a clinic or a doctor at once, then "
        "again after every change of its queue. Numbers and positions, never names.",
        metadata=reads(K.OUTPATIENT_BOARD),
    )
    async def outpatient_board_changed(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[OutpatientBoardEvent, None]:
        kind, key = _one_queue(department_id, doctor_id)
        await _queue_row(info, kind, key)  # NOT_FOUND for an unknown clinic or doctor
        ref = "department_id" if kind == "department" else "doctor_id"
        async with live(info, FIELD, [VISITS]) as events:
            now = utcnow()
            yield OutpatientBoardEvent(
                change="snapshot", at=now, board=board(await queues.queue(kind, key), now)
            )
            async for event in events:
                if event.refs.get(ref) != str(key):
                    continue
                # Decided afresh per event: a caller disabled meanwhile is refused here.
                await info.context.for_event(FIELD).access.scope(K.OUTPATIENT_BOARD)
                current = await _queue_of(event, kind, key)
                yield OutpatientBoardEvent(
                    change=event.change, at=event.happened_at, board=board(current, utcnow())
                )
