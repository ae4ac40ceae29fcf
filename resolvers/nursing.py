"""Nursing care over GraphQL: care plans, recording tasks, and the ward's overdue tasks, live.

The live list (``nursingTasksChanged(wardId)``) sends the ward's overdue tasks (as the caller
may see them) when it opens, after every change of one of the ward's tasks, and when a due task
of the ward becomes overdue: a task turns overdue by the clock alone, with no write and so no
event, so the subscription keeps one timer, set to the ward's next due time (re-read after
every emission), and emits ``overdue`` when it fires. Each emission re-reads the list, so a
late or early timer, or several processes, cannot make it wrong, only send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import REGISTRY, ROW, Access, Action, Rel, best
from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden, NotFound
from events.types import DomainEvent
from models.audit import AuditAction
from models.base import utcnow
from models.nursing import NursingTask as NursingTaskDoc
from models.staff import Nurse
from models.wards import Ward
from resolvers.common import perform
from resolvers.orders import patient_of_admission
from resolvers.subscriptions import live
from schema.common import Connection, connection, create_data, oid, view
from schema.context import Context, Info
from schema.enforce import acts, reads
from schema.nursing import (
    NursingCarePlan,
    NursingCarePlanInput,
    NursingTask,
    NursingTaskFilter,
    NursingTasksEvent,
)
from services import nursing

FIELD = "nursingTasksChanged"
TASKS = str(NursingTaskDoc.Settings.name)


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


async def _recorder(info: Info, given: ObjectId | None) -> tuple[ObjectId, str | None]:
    """Nurses record in their own name; an admin records for a named nurse (audited)."""
    principal = info.context.access.principal
    nurse = principal.staff_id is not None and principal.has(Role.NURSE)
    if nurse and given in (None, principal.staff_id):
        assert principal.staff_id is not None
        return principal.staff_id, None
    if not principal.has(Role.ADMIN):
        raise Forbidden("Nurses record in their own name: leave out doneById", field="doneById")
    if given is None:
        raise BadUserInput("doneById: name the nurse who did it", {"doneById": "required"})
    if await Nurse.find({"_id": given}).count() == 0:
        raise BadUserInput("doneById: no such nurse", {"doneById": "no such nurse"})
    return given, f"recorded by an administrator for doneById {given}"


async def _ward(info: Info, ward_id: strawberry.ID) -> Ward:
    id = oid(ward_id, "wardId")
    ward = await Ward.get(id)
    if ward is None:
        raise NotFound("Ward", str(id))
    return ward


def _refuse_other_ward(info: Info, ward: Ward) -> None:
    """A ward's list is followed by whoever could see some task there: its nurses (the care
    relation comes with its admissions), doctors (they may treat someone there), the ward's
    department under a department grant, admin. A nurse of another ward is refused, audited."""
    access = info.context.access
    p = access.principal
    rels = {Rel.ANY}
    if p.has(Role.DOCTOR) or (p.ward_id is not None and p.ward_id == ward.id):
        rels.add(Rel.CARE)
    if p.department_id is not None and p.department_id == ward.department_id:
        rels.add(Rel.DEPARTMENT)
    if p.patient_id is not None:
        rels = {Rel.ANY, Rel.SELF}
    if best(REGISTRY[K.NURSING_TASK].read[ROW], p.roles, rels) == Access.NONE:
        access.audit.denied(K.NURSING_TASK, None, None, AuditAction.READ, "not of this ward")
        raise Forbidden("Not allowed to follow the nursing tasks of this ward")


@strawberry.type
class NursingQuery:
    @strawberry.field
    async def nursing_task(self, info: Info, id: strawberry.ID) -> NursingTask | None:
        return await info.context.loaders.nursing_task_by_id.load(oid(id))

    @strawberry.field(description="Nursing tasks by due time, filtered.")
    async def nursing_tasks(
        self,
        info: Info,
        filter: NursingTaskFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[NursingTask]:
        f = filter or NursingTaskFilter()
        query = nursing.task_filter(
            ward_id=oid(f.ward_id, "filter.wardId") if f.ward_id else None,
            admission_id=oid(f.admission_id, "filter.admissionId") if f.admission_id else None,
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            statuses=f.status or (),
            due_before=f.due_before,
            overdue=f.overdue,
        )
        scope = await info.context.access.scope(K.NURSING_TASK)
        page = await nursing.list_tasks(query, info.context.page(first, after), scope)
        return connection(NursingTask, page)

    @strawberry.field(description="The ward's overdue tasks, longest overdue first (at most 500).")
    async def overdue_nursing_tasks(self, info: Info, ward_id: strawberry.ID) -> list[NursingTask]:
        ward = await _ward(info, ward_id)
        scope = await info.context.access.scope(K.NURSING_TASK)
        return [view(NursingTask, t) for t in await nursing.overdue_in_ward(ward.id, scope)]  # type: ignore[arg-type]

    @strawberry.field
    async def nursing_care_plan(self, info: Info, id: strawberry.ID) -> NursingCarePlan | None:
        return await info.context.loaders.nursing_care_plan_by_id.load(oid(id))


@strawberry.type
class NursingMutation:
    @strawberry.mutation(
        description="A nursing care plan for an active admission; its tasks are generated.",
        metadata=acts(K.NURSING_CARE_PLAN, Action.CREATE),
    )
    async def create_nursing_care_plan(
        self, info: Info, input: NursingCarePlanInput
    ) -> NursingCarePlan:
        data = create_data(input)
        patient = await patient_of_admission(info, data["admission_id"])
        staff_id = info.context.access.principal.staff_id
        if staff_id is None:
            raise Forbidden("Only a staff member with a staff record writes care plans")
        create = partial(nursing.create_care_plan, data, staff_id)
        plan = await perform(
            info, K.NURSING_CARE_PLAN, Action.CREATE, create, data, patient=patient
        )
        return view(NursingCarePlan, plan)

    @strawberry.mutation(
        description="Record a due task done, at doneAt (default now; not in the future, not "
        "before the admission). CONFLICT when it was recorded or cancelled meanwhile.",
        metadata=acts(K.NURSING_TASK, Action.COMPLETE),
    )
    async def complete_nursing_task(
        self,
        info: Info,
        id: strawberry.ID,
        done_at: datetime | None = None,
        note: str | None = None,
        done_by_id: strawberry.ID | None = None,
    ) -> NursingTask:
        row = await nursing.get_task(oid(id))
        await info.context.access.require(K.NURSING_TASK, Action.COMPLETE, row=row)
        nurse, audit_note = await _recorder(
            info, oid(done_by_id, "doneById") if done_by_id else None
        )
        run = partial(nursing.complete_task, row.id, nurse, done_at, note, _subject(info))  # type: ignore[arg-type]
        done = await perform(
            info, K.NURSING_TASK, Action.COMPLETE, run, ["status", "done_at", "note"],
            note=audit_note, row=row,
        )  # fmt: skip
        return view(NursingTask, done)

    @strawberry.mutation(
        description="Record a due task not done, with the reason. CONFLICT when it was "
        "recorded or cancelled meanwhile.",
        metadata=acts(K.NURSING_TASK, "skip"),
    )
    async def skip_nursing_task(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str,
        done_by_id: strawberry.ID | None = None,
    ) -> NursingTask:
        row = await nursing.get_task(oid(id))
        await info.context.access.require(K.NURSING_TASK, "skip", row=row)
        nurse, audit_note = await _recorder(
            info, oid(done_by_id, "doneById") if done_by_id else None
        )
        run = partial(nursing.skip_task, row.id, nurse, reason, _subject(info))  # type: ignore[arg-type]
        done = await perform(
            info, K.NURSING_TASK, "skip", run, ["status", "reason"], note=audit_note, row=row
        )
        return view(NursingTask, done)


async def _event(
    info: Info, change: str, at: datetime, ward: ObjectId, task_id: str | None = None
) -> NursingTasksEvent:
    """An emission, read on a fresh context (so the list follows the caller's access now);
    the changed task is shown only if the caller may see it."""
    context: Context = info.context.for_event(FIELD)
    shown = None
    if task_id is not None:
        task = await context.loaders.nursing_task_by_id.load(ObjectId(task_id))
        if task is not None and await context.access.can_see(K.NURSING_TASK, task):
            shown = task
    scope = await context.access.scope(K.NURSING_TASK)
    overdue = await nursing.overdue_in_ward(ward, scope)
    return NursingTasksEvent(
        change=change,
        at=at,
        task_id=strawberry.ID(task_id) if task_id is not None else None,
        task=view(NursingTask, shown) if shown is not None else None,
        overdue=[view(NursingTask, t) for t in overdue],
        context=context,
    )


async def _pump(events: AsyncIterator[DomainEvent], into: asyncio.Queue[Any]) -> None:
    """The bus's events into a queue the subscription can wait on with a timeout; the end (or
    its error) goes in last."""
    try:
        async for event in events:
            await into.put(event)
        await into.put(None)
    except Exception as exc:
        await into.put(exc)


@strawberry.type
class NursingSubscription:
    @strawberry.subscription(
        description="A ward's overdue nursing tasks, live: at once, after every change of a "
        "task of the ward (with that task), and when a due task becomes overdue.",
        metadata=reads(K.NURSING_TASK),
    )
    async def nursing_tasks_changed(
        self, info: Info, ward_id: strawberry.ID
    ) -> AsyncGenerator[NursingTasksEvent, None]:
        await info.context.access.scope(K.NURSING_TASK)  # no grant at all: FORBIDDEN now
        ward = await _ward(info, ward_id)
        assert ward.id is not None
        _refuse_other_ward(info, ward)
        key = str(ward.id)
        async with live(info, FIELD, [TASKS]) as events:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            pump = asyncio.create_task(_pump(events, queue))
            try:
                yield await _event(info, "snapshot", utcnow(), ward.id)
                while True:
                    now = utcnow()
                    wake = await nursing.next_due(ward.id, now)
                    timeout = (wake - now).total_seconds() + 0.001 if wake else None
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        yield await _event(info, "overdue", utcnow(), ward.id)
                        continue
                    if item is None:
                        break
                    if isinstance(item, Exception):
                        raise item
                    if item.refs.get("ward_id") != key:
                        continue
                    yield await _event(info, item.change, item.happened_at, ward.id, item.id)
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
