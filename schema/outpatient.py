"""GraphQL types and inputs for outpatient visits, their queues and the waiting-room board."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from bson import ObjectId

from cache import queues
from models import outpatient as m
from schema.common import entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.patients import Patient
    from schema.scheduling import Appointment
    from schema.staff import Doctor

strawberry.enum(m.Arrival, name="OutpatientArrival", description="How the patient came.")
Arrival = m.Arrival
strawberry.enum(
    m.VisitPriority,
    name="OutpatientPriority",
    description="Queue class, most urgent first: emergency, elderly, routine.",
)
VisitPriority = m.VisitPriority
strawberry.enum(m.VisitStatus, name="OutpatientVisitStatus")
VisitStatus = m.VisitStatus

_POSITIONS = "_outpatient_queues"
_LISTED = "_outpatient_listed_positions"


async def _queue_of(info: Info, kind: queues.QueueKind, key: ObjectId) -> queues.Queue:
    """One queue per request, however many visits of it a page shows: one read, shared by
    every row that asks at the same time."""
    memo: dict[tuple[str, ObjectId], asyncio.Future[queues.Queue]]
    memo = info.context.__dict__.setdefault(_POSITIONS, {})
    found = memo.get((kind, key))
    if found is None:
        found = memo[(kind, key)] = asyncio.ensure_future(queues.queue(kind, key))
    return await found


def remember(info: Info, queue: queues.Queue) -> None:
    """The ``queue`` query's queue: its visits' positions are their places in it."""
    info.context.__dict__[_LISTED] = queue.positions()


@strawberry.type(description="One step of a visit: from which status to which, when, by whom.")
class OutpatientVisitStep:
    from_status: VisitStatus | None
    to_status: VisitStatus
    at: datetime
    by: str | None = strawberry.field(description="The subject of whoever took the step.")
    room: str | None


@strawberry.type(
    description="An outpatient visit: one arrival at a clinic, from check-in to its end."
)
class OutpatientVisit:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    arrival: Arrival
    priority: VisitPriority
    status: VisitStatus
    queue_date: str = strawberry.field(description="The facility's day the queue number is of.")
    queue_number: int = strawberry.field(description="Shown on the waiting-room screens.")
    checked_in_at: datetime
    called_at: datetime | None
    called_to: str | None = strawberry.field(description="The room the patient was called to.")
    seen_at: datetime | None = strawberry.field(description="When the consultation started.")
    completed_at: datetime | None
    ended_at: datetime | None = strawberry.field(description="When the visit left the queue.")
    version: int = strawberry.field(
        description="Grows with every change; pass it back as `expectedVersion` to act only "
        "on the visit as you saw it."
    )
    history: list[OutpatientVisitStep] | None = strawberry.field(
        description="Every step, oldest first (staff only)."
    )
    created_at: datetime
    updated_at: datetime
    reason: str | None = strawberry.field(description="Why the patient came (clinical).")

    @strawberry.field(
        description="Place among the waiting patients of the visit's queue (its doctor's, or "
        "its clinic's while it has no doctor; in `queue`, the queue asked for); null once "
        "called or ended. Read from Redis."
    )
    @staticmethod
    async def position(root: strawberry.Parent[m.OutpatientVisit], info: Info) -> int | None:
        if root.status != m.VisitStatus.WAITING:
            return None
        listed: dict[ObjectId, int] | None = info.context.__dict__.get(_LISTED)
        if listed is not None and root.id in listed:
            return listed[root.id]
        if root.doctor_id is not None:
            queue = await _queue_of(info, "doctor", root.doctor_id)
        else:
            queue = await _queue_of(info, "department", root.department_id)
        return queue.position(root.id)  # type: ignore[arg-type]

    @strawberry.field
    @staticmethod
    def allowed_transitions(root: strawberry.Parent[m.OutpatientVisit]) -> list[VisitStatus]:
        return sorted(m.VISIT_TRANSITIONS[root.status], key=lambda s: s.value)

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.OutpatientVisit]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.OutpatientVisit]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def doctor_id(root: strawberry.Parent[m.OutpatientVisit]) -> strawberry.ID | None:
        return ref_id(root.doctor_id)

    @strawberry.field
    @staticmethod
    def appointment_id(root: strawberry.Parent[m.OutpatientVisit]) -> strawberry.ID | None:
        return ref_id(root.appointment_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.OutpatientVisit], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The clinic.")
    @staticmethod
    async def department(
        root: strawberry.Parent[m.OutpatientVisit], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="The doctor who sees the patient; null while unassigned.")
    @staticmethod
    async def doctor(
        root: strawberry.Parent[m.OutpatientVisit], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        if root.doctor_id is None:
            return None
        return await info.context.loaders.doctor_by_id.load(root.doctor_id)

    @strawberry.field(description="The appointment checked in; null for walk-ins.")
    @staticmethod
    async def appointment(
        root: strawberry.Parent[m.OutpatientVisit], info: Info
    ) -> Annotated[Appointment, strawberry.lazy("schema.scheduling")] | None:
        if root.appointment_id is None:
            return None
        return await info.context.loaders.appointment_by_id.load(root.appointment_id)


@strawberry.type(description="One place on a waiting-room screen: a number, never a name.")
class OutpatientBoardEntry:
    queue_number: int
    queue_date: str
    priority: VisitPriority
    status: VisitStatus = strawberry.field(description="`waiting` or `called`.")
    position: int | None = strawberry.field(
        description="Place among the waiting patients of this board; null once called."
    )
    called_to: str | None = strawberry.field(description="The room a called patient goes to.")
    called_at: datetime | None


@strawberry.type(
    description="A waiting-room screen of one clinic or one doctor: queue numbers, priority "
    "classes and positions, with no names or patient ids."
)
class OutpatientBoard:
    department_id: strawberry.ID | None
    doctor_id: strawberry.ID | None
    entries: list[OutpatientBoardEntry] = strawberry.field(
        description="Called patients first (most recent call first), then the waiting ones."
    )
    updated_at: datetime = strawberry.field(description="When this board was read.")


def board(queue: queues.Queue, at: datetime) -> OutpatientBoard:
    positions = queue.positions()
    called = sorted(
        (e for e in queue.entries if e.status == m.VisitStatus.CALLED),
        key=lambda e: e.called_at or e.checked_in_at,
        reverse=True,
    )
    waiting = [e for e in queue.entries if e.status == m.VisitStatus.WAITING]
    return OutpatientBoard(
        department_id=strawberry.ID(str(queue.key)) if queue.kind == "department" else None,
        doctor_id=strawberry.ID(str(queue.key)) if queue.kind == "doctor" else None,
        entries=[
            OutpatientBoardEntry(
                queue_number=e.queue_number,
                queue_date=e.queue_date,
                priority=e.priority,
                status=e.status,
                position=positions.get(e.id),
                called_to=e.called_to,
                called_at=e.called_at,
            )
            for e in [*called, *waiting]
        ],
        updated_at=at,
    )


@strawberry.type(description="The waiting-room board changed (or its first state).")
class OutpatientBoardEvent:
    change: str = strawberry.field(
        description="`snapshot` for the first state, else the visit change: `checked_in`, "
        "`called`, `consultation_started`, `completed`, `no_show`, `left`, ..."
    )
    at: datetime
    board: OutpatientBoard | None


@strawberry.input
class OutpatientVisitFilter:
    patient_id: strawberry.ID | None = None
    doctor_id: strawberry.ID | None = None
    department_id: strawberry.ID | None = None
    appointment_id: strawberry.ID | None = None
    status: list[VisitStatus] | None = None
    arrival: Arrival | None = None
    checked_in_from: datetime | None = strawberry.field(
        default=None, name="from", description="Visits checked in at or after this instant"
    )
    checked_in_before: datetime | None = strawberry.field(
        default=None, name="to", description="Visits checked in before this instant"
    )


@strawberry.input(description="An appointment's patient arrived.")
class CheckInOutpatientInput:
    appointment_id: strawberry.ID
    priority: VisitPriority | None = strawberry.field(
        default=None, description="Default: `elderly` from 65 years, else `routine`."
    )
    reason: str | None = None


@strawberry.input(description="A patient arrived without an appointment.")
class WalkInInput:
    patient_id: strawberry.ID
    department_id: strawberry.ID = strawberry.field(description="The clinic they queue for.")
    doctor_id: strawberry.ID | None = strawberry.field(
        default=None, description="A doctor of that clinic; none: the clinic's next doctor."
    )
    priority: VisitPriority | None = strawberry.field(
        default=None, description="Default: `elderly` from 65 years, else `routine`."
    )
    reason: str | None = None
