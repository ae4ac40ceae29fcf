"""Nursing tasks: generated from orders and care plans, recorded by nurses, listed when overdue.

Generation is idempotent: a source's tasks for the due times in ``[since, horizon)`` are
inserted one by one under the unique index ``(source_id, due_at)``, so running it twice (two
processes, a retry, the horizon job racing a resume) never makes a second task for one due
time. The source remembers how far it was generated (``tasks_until``, moved forward only after
the inserts), so a crash midway is covered by the next run. Tasks exist ``HORIZON`` ahead;
``extend_horizon`` (run periodically) moves every open source's horizon on.

A source that stops (held, completed, cancelled, discharged) cancels its due tasks, each by a
compare-and-set from ``due``, so a nurse recording the same task at the same instant either
wins (the task stays done) or finds it cancelled (``CONFLICT``). A task cancelled because its
order was held goes back to ``due`` when the order resumes, if its due time is still ahead.
Generation that finds its source stopped meanwhile cancels what it inserted (compensation).
A medication order's tasks each get their dose (``services.medication``), which follows its task
when cancelled or reopened; such a task is recorded through its dose only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from config import get_settings
from errors import BadUserInput, Conflict
from models.admissions import Admission, AdmissionStatus
from models.base import utcnow
from models.nursing import (
    CarePlanStatus,
    NursingCarePlan,
    NursingTask,
    TaskSource,
    TaskStatus,
)
from models.orders import (
    OPEN_ORDER_STATUSES,
    DoctorOrder,
    OrderKind,
    OrderStatus,
    OrderStatusChange,
    Schedule,
    SchedulePattern,
)
from services import common, medication
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, instant

HORIZON = timedelta(hours=24)
"""How far ahead tasks exist."""
EXTEND_EVERY = timedelta(hours=1)
"""``extend_horizon`` moves a source on once its horizon is this much short of ``HORIZON``."""
CLOCK_SLACK = timedelta(minutes=1)
"""A recorded ``doneAt`` may be this far ahead of the server clock (devices drift)."""
HELD = "order held"
OVERDUE_LIMIT = 500
"""The most overdue tasks one ward list returns (oldest first)."""
BY_DUE: Sort = (("due_at", ASC), ("_id", ASC))
_encoder = Encoder()


# -- due times ---------------------------------------------------------------------------------


def due_times(
    schedule: Schedule, since: datetime, until: datetime, placed: datetime | None = None
) -> list[datetime]:
    """The schedule's due instants in ``[since, until)``, within its start and end.

    ``placed``: when the source was placed or resumed; a one-off due before that falls due
    then (a one-off order with a start a little in the past is still to be done)."""
    start = schedule.start_at
    end = schedule.end_at
    lower = max(since, start)
    upper = min(until, end) if end is not None else until
    if lower >= upper:
        return []
    if schedule.pattern == SchedulePattern.ONCE:
        at = max(start, placed) if placed is not None else start
        return [at] if since <= at < upper else []
    if schedule.pattern == SchedulePattern.EVERY_HOURS:
        step = timedelta(hours=schedule.every_hours or 24)
        skipped = max(0, -(-(lower - start) // step))  # ceil: the first step at or after lower
        out, at = [], start + skipped * step
        while at < upper:
            out.append(at)
            at += step
        return out
    if schedule.pattern == SchedulePattern.TIMES_OF_DAY:
        zone = get_settings().facility_timezone
        day = lower.astimezone(zone).date() - timedelta(days=1)
        last = upper.astimezone(zone).date()
        out = []
        while day <= last:
            for moment in sorted(schedule.times_of_day):
                local = datetime.combine(day, moment.replace(tzinfo=None), tzinfo=zone)
                at = local.astimezone(UTC)
                if lower <= at < upper:
                    out.append(at)
            day += timedelta(days=1)
        return sorted(set(out))
    return []  # PRN: given as needed, never scheduled


def order_description(order: DoctorOrder) -> str:
    """What a nurse does for one due time of the order."""
    if order.kind == OrderKind.MEDICATION and order.medication is not None:
        m = order.medication
        text = f"Give {m.drug} {m.dose:g} {m.unit} {m.route.value}"
    elif order.kind == OrderKind.LABORATORY and order.laboratory is not None:
        text = "Collect samples: " + ", ".join(order.laboratory.test_codes)
    elif order.kind == OrderKind.IMAGING and order.imaging is not None:
        i = order.imaging
        text = f"Prepare for imaging: {i.modality.value} {i.body_part}"
    else:
        text = f"{order.kind.value.capitalize()}: {order.instruction or ''}"
    return text[:200]


# -- generation --------------------------------------------------------------------------------


async def _insert(task: NursingTask) -> NursingTask | None:
    """Insert one task; None when its source already has one at that due time."""
    try:
        await task.insert()
    except DuplicateKeyError:
        return None
    await changed(task, "created")
    return task


def _task(origin: DoctorOrder | NursingCarePlan, **fields: Any) -> NursingTask:
    now = utcnow()
    return NursingTask(
        admission_id=origin.admission_id,
        patient_id=origin.patient_id,
        ward_id=origin.ward_id,
        department_id=origin.department_id,
        status=TaskStatus.DUE,
        status_at=now,
        created_at=now,
        updated_at=now,
        **fields,
    )


async def generate_for_order(order: DoctorOrder, now: datetime | None = None) -> int:
    """Tasks of an active order up to ``now + HORIZON``; how many were new."""
    if order.status != OrderStatus.ACTIVE:
        return 0
    now = now or utcnow()
    until = now + HORIZON
    since = max(order.tasks_from, order.tasks_until or order.tasks_from)
    made: list[NursingTask] = []
    times = due_times(order.schedule, since, until, order.tasks_from)
    for at in times:
        task = _task(
            order,
            source=TaskSource.ORDER,
            source_id=order.id,
            order_id=order.id,
            description=order_description(order),
            due_at=at,
        )
        if (inserted := await _insert(task)) is not None:
            made.append(inserted)
    await medication.schedule_doses(order, times)  # a medication order's doses, one per task
    await _advance(DoctorOrder, order.id, until, {"status": OrderStatus.ACTIVE.value}, made)
    return len(made)


async def generate_for_plan(plan: NursingCarePlan, now: datetime | None = None) -> int:
    """Tasks of every intervention of an active care plan up to ``now + HORIZON``."""
    if plan.status != CarePlanStatus.ACTIVE:
        return 0
    now = now or utcnow()
    until = now + HORIZON
    since = max(plan.tasks_from, plan.tasks_until or plan.tasks_from)
    made: list[NursingTask] = []
    for intervention in plan.interventions:
        for at in due_times(intervention.schedule, since, until, plan.tasks_from):
            task = _task(
                plan,
                source=TaskSource.CARE_PLAN,
                source_id=intervention.id,
                care_plan_id=plan.id,
                description=intervention.description,
                due_at=at,
            )
            if (inserted := await _insert(task)) is not None:
                made.append(inserted)
    await _advance(NursingCarePlan, plan.id, until, {"status": CarePlanStatus.ACTIVE.value}, made)
    return len(made)


async def _advance(
    model: type[DoctorOrder] | type[NursingCarePlan],
    id: ObjectId | None,
    until: datetime,
    open_: Query,
    made: Sequence[NursingTask],
) -> None:
    """Move the source's horizon forward (never back); if it stopped meanwhile, cancel the
    tasks just made, since the stop may have run before they existed."""
    raw = await db.collection(model).find_one_and_update(
        {
            "_id": id,
            **open_,
            "$or": [{"tasks_until": None}, {"tasks_until": {"$lt": until}}],
        },
        {"$set": {"tasks_until": until}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is not None:
        await changed(model.model_validate(raw), "tasks_generated")
        return
    if await db.collection(model).count_documents({"_id": id, **open_}) == 0:
        await cancel_tasks({"_id": {"$in": [t.id for t in made]}}, "source stopped")


async def extend_horizon(now: datetime | None = None) -> int:
    """Generate ahead for every active order and care plan whose horizon is running short
    (the periodic job); idempotent. How many tasks were new."""
    now = now or utcnow()
    short: Query = {
        "$or": [{"tasks_until": None}, {"tasks_until": {"$lt": now + HORIZON - EXTEND_EVERY}}]
    }
    made = 0
    async for order in DoctorOrder.find({"status": OrderStatus.ACTIVE.value, **short}):
        made += await generate_for_order(order, now)
    async for plan in NursingCarePlan.find({"status": CarePlanStatus.ACTIVE.value, **short}):
        made += await generate_for_plan(plan, now)
    return made


# -- stopping and resuming -----------------------------------------------------------------------


async def _task_cas(task_id: Any, expected: Query, sets: Mapping[str, Any]) -> NursingTask | None:
    now = utcnow()
    raw = await db.collection(NursingTask).find_one_and_update(
        {"_id": task_id, **expected},
        {
            "$set": {
                **{k: _encoder.encode(v) for k, v in sets.items()},
                "status_at": now,
                "updated_at": now,
            },
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else NursingTask.model_validate(raw)


async def cancel_tasks(query: Query, reason: str) -> int:
    """Cancel the due tasks matching ``query``, each from ``due`` (one recorded meanwhile
    stays recorded); how many were cancelled."""
    cancelled = 0
    async for raw in db.collection(NursingTask).find(
        {**query, "status": TaskStatus.DUE.value}, {"_id": 1}
    ):
        sets = {"status": TaskStatus.CANCELLED, "reason": reason}
        done = await _task_cas(raw["_id"], {"status": TaskStatus.DUE.value}, sets)
        if done is not None:
            await changed(done, "cancelled")
            await medication.follow_task(done)
            cancelled += 1
    return cancelled


async def reopen_held(order_id: ObjectId, now: datetime) -> int:
    """Back to ``due``: the order's tasks its hold cancelled that are still ahead."""
    reopened = 0
    query = {
        "source_id": order_id,
        "status": TaskStatus.CANCELLED.value,
        "reason": HELD,
        "due_at": {"$gte": now},
    }
    async for raw in db.collection(NursingTask).find(query, {"_id": 1}):
        expected = {"status": TaskStatus.CANCELLED.value, "reason": HELD}
        sets = {"status": TaskStatus.DUE, "reason": None}
        done = await _task_cas(raw["_id"], expected, sets)
        if done is not None:
            await changed(done, "reopened")
            await medication.follow_task(done)
            reopened += 1
    return reopened


async def close_for_admission(admission_id: ObjectId) -> None:
    """A discharged admission's nursing care ends: its open orders complete, its care plans
    close and every task still due is cancelled. Safe to repeat (each step from the open
    state only); ``services.admissions`` calls it after discharge."""
    now = utcnow()
    async for order in DoctorOrder.find(
        {"admission_id": admission_id, "status": {"$in": [s.value for s in OPEN_ORDER_STATUSES]}}
    ):
        change = OrderStatusChange(status=OrderStatus.COMPLETED, at=now, reason="discharged")
        raw = await db.collection(DoctorOrder).find_one_and_update(
            {"_id": order.id, "status": order.status.value, "version": order.version},
            {
                "$set": {
                    "status": OrderStatus.COMPLETED.value,
                    "status_at": now,
                    "updated_at": now,
                    "reason": "discharged",
                },
                "$push": {"history": _encoder.encode(change)},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if raw is not None:
            await changed(DoctorOrder.model_validate(raw), "completed")
    async for plan in NursingCarePlan.find(
        {"admission_id": admission_id, "status": CarePlanStatus.ACTIVE.value}
    ):
        raw = await db.collection(NursingCarePlan).find_one_and_update(
            {"_id": plan.id, "status": CarePlanStatus.ACTIVE.value},
            {
                "$set": {
                    "status": CarePlanStatus.CLOSED.value,
                    "status_at": now,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if raw is not None:
            await changed(NursingCarePlan.model_validate(raw), "closed")
    await cancel_tasks({"admission_id": admission_id}, "discharged")


async def move_with_admission(admission_id: ObjectId) -> None:
    """After a transfer: the admission's open orders, active plans and due tasks follow it to
    its new ward (so they are listed there). Safe to repeat."""
    admission = await Admission.get(admission_id)
    if admission is None:
        return
    target = {"ward_id": admission.ward_id, "department_id": admission.department_id}
    elsewhere = {"$or": [{"ward_id": {"$ne": admission.ward_id}},
                         {"department_id": {"$ne": admission.department_id}}]}  # fmt: skip
    for model, open_ in (
        (DoctorOrder, {"status": {"$in": [s.value for s in OPEN_ORDER_STATUSES]}}),
        (NursingCarePlan, {"status": CarePlanStatus.ACTIVE.value}),
        (NursingTask, {"status": TaskStatus.DUE.value}),
    ):
        async for raw in db.collection(model).find(
            {"admission_id": admission_id, **open_, **elsewhere}, {"_id": 1}
        ):
            moved = await db.collection(model).find_one_and_update(
                {"_id": raw["_id"], **open_},
                {"$set": {**target, "updated_at": utcnow()}},
                return_document=ReturnDocument.AFTER,
            )
            if moved is not None:
                await changed(model.model_validate(moved), "moved")
    await medication.move_with_admission(admission)


# -- care plans --------------------------------------------------------------------------------


async def active_admission(problems: Problems, admission_id: Any) -> Admission | None:
    """The admission an order or plan is for: it must exist and be active."""
    admission = await Admission.get(admission_id) if isinstance(admission_id, ObjectId) else None
    if problems.require(admission is not None, "admissionId", "no such admission"):
        assert admission is not None
        if problems.require(
            admission.status == AdmissionStatus.ACTIVE,
            "admissionId",
            f"the admission is {admission.status.value}",
        ):
            return admission
    return None


def schedule_problems(
    problems: Problems, raw: Mapping[str, Any] | None, now: datetime, field: str
) -> Schedule | None:
    """A schedule from input: the fields its pattern needs and no others; start defaults to
    now."""
    if raw is None:
        problems.require(False, field, "give a schedule")
        return None
    data = {"start_at": now, **raw}
    schedule = problems.build(Schedule, data)
    if schedule is None:
        return None
    pattern = schedule.pattern
    problems.require(
        (schedule.every_hours is not None) == (pattern == SchedulePattern.EVERY_HOURS),
        f"{field}.everyHours",
        "give everyHours with the every_hours pattern, and only with it",
    )
    problems.require(
        bool(schedule.times_of_day) == (pattern == SchedulePattern.TIMES_OF_DAY),
        f"{field}.timesOfDay",
        "give timesOfDay with the times_of_day pattern, and only with it",
    )
    problems.require(
        len(set(schedule.times_of_day)) == len(schedule.times_of_day),
        f"{field}.timesOfDay",
        "a time is given once",
    )
    if schedule.end_at is not None:
        problems.require(
            schedule.end_at > schedule.start_at, f"{field}.endAt", "must be after startAt"
        )
        problems.require(schedule.end_at > now, f"{field}.endAt", "is already past")
    return schedule


async def create_care_plan(data: Mapping[str, Any], created_by_id: ObjectId) -> NursingCarePlan:
    """A care plan for an active admission; its tasks are generated at once."""
    problems = Problems()
    now = utcnow()
    admission = await active_admission(problems, data.get("admission_id"))
    interventions = []
    for i, item in enumerate(data.get("interventions") or []):
        schedule = schedule_problems(
            problems, item.get("schedule"), now, f"interventions.{i}.schedule"
        )
        if schedule is not None:
            interventions.append(
                {"id": ObjectId(), "description": item.get("description"), "schedule": schedule}
            )
    problems.require(bool(data.get("interventions")), "interventions", "give at least one")
    fields = {
        "admission_id": data.get("admission_id"),
        "patient_id": admission.patient_id if admission else ObjectId(),
        "ward_id": admission.ward_id if admission else ObjectId(),
        "department_id": admission.department_id if admission else ObjectId(),
        "created_by_id": created_by_id,
        "problem": data.get("problem"),
        "goal": data.get("goal"),
        "interventions": interventions,
        "status": CarePlanStatus.ACTIVE,
        "status_at": now,
        "tasks_from": now,
        "created_at": now,
        "updated_at": now,
    }
    plan = problems.build(NursingCarePlan, fields) if interventions else None
    problems.raise_any()
    assert plan is not None
    plan = await common.insert(plan, "care plan")
    await generate_for_plan(plan, now)
    return plan


# -- recording ---------------------------------------------------------------------------------


async def get_task(id: ObjectId) -> NursingTask:
    return await common.get_or_404(NursingTask, id, "NursingTask")


async def get_plan(id: ObjectId) -> NursingCarePlan:
    return await common.get_or_404(NursingCarePlan, id, "NursingCarePlan")


def _still_due(task: NursingTask) -> None:
    if task.status != TaskStatus.DUE:
        raise Conflict(f"This task is {task.status.value} already; read it again", fields=["id"])


async def complete_task(
    id: ObjectId,
    done_by_id: ObjectId,
    done_at: datetime | None,
    note: str | None,
    by: str | None,
) -> NursingTask:
    """Record a due task done, at ``done_at`` (default now): not ahead of the clock, not before
    the admission. Of two recordings of one task, one wins; the other is ``CONFLICT``."""
    task = await get_task(id)
    _still_due(task)
    await medication.refuse_direct_recording(task)
    now = utcnow()
    problems = Problems()
    at = now
    if done_at is not None:
        try:
            at = instant(done_at, "doneAt")
        except BadUserInput as problem:
            problems.add(problem)
    problems.require(at <= now + CLOCK_SLACK, "doneAt", "is in the future")
    admission = await Admission.get(task.admission_id)
    if admission is not None:
        problems.require(at >= admission.admitted_at, "doneAt", "is before the admission")
    if note is not None:
        problems.require(0 < len(note.strip()) <= 5000, "note", "1 to 5000 characters")
    problems.raise_any()
    sets = {
        "status": TaskStatus.DONE,
        "done_by_id": done_by_id,
        "done_at": at,
        "recorded_by": by,
        "note": note.strip() if note else None,
    }
    stored = await _task_cas(id, {"status": TaskStatus.DUE.value, "version": task.version}, sets)
    if stored is None:
        raise Conflict("The task changed meanwhile (recorded or cancelled); read it again")
    await changed(stored, "done")
    return stored


async def skip_task(id: ObjectId, done_by_id: ObjectId, reason: str, by: str | None) -> NursingTask:
    """Record a due task not done, with why (the patient refused, was away, ...)."""
    task = await get_task(id)
    _still_due(task)
    await medication.refuse_direct_recording(task)
    reason = (reason or "").strip()
    if not 0 < len(reason) <= 200:
        raise BadUserInput(
            "reason: give a reason of at most 200 characters", {"reason": "1 to 200 characters"}
        )
    sets = {
        "status": TaskStatus.SKIPPED,
        "done_by_id": done_by_id,
        "recorded_by": by,
        "reason": reason,
    }
    stored = await _task_cas(id, {"status": TaskStatus.DUE.value, "version": task.version}, sets)
    if stored is None:
        raise Conflict("The task changed meanwhile (recorded or cancelled); read it again")
    await changed(stored, "skipped")
    return stored


# -- reads -------------------------------------------------------------------------------------


def task_filter(
    *,
    ward_id: ObjectId | None = None,
    admission_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    statuses: Iterable[TaskStatus] = (),
    due_before: datetime | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
) -> Query:
    """``overdue``: due and past its due time (``False``: everything else)."""
    query: Query = {}
    for field, value in (
        ("ward_id", ward_id),
        ("admission_id", admission_id),
        ("patient_id", patient_id),
    ):
        if value is not None:
            query[field] = value
    wanted = [s.value for s in statuses]
    if wanted:
        query["status"] = {"$in": wanted}
    if due_before is not None:
        query["due_at"] = {"$lt": instant(due_before, "dueBefore")}
    if overdue is not None:
        late = {"status": TaskStatus.DUE.value, "due_at": {"$lt": now or utcnow()}}
        query = both(query, late if overdue else {"$nor": [late]})
    return query


async def list_tasks(query: Query, args: PageArgs, scope: Query | None) -> Page[NursingTask]:
    return await paginate(NursingTask, both(query, scope), BY_DUE, args)


async def overdue_in_ward(
    ward_id: ObjectId, scope: Query | None, now: datetime | None = None
) -> list[NursingTask]:
    """The ward's overdue tasks the caller may see, longest overdue first."""
    query = both(task_filter(ward_id=ward_id, overdue=True, now=now), scope)
    cursor = db.collection(NursingTask).find(query).sort([("due_at", 1), ("_id", 1)])
    return [NursingTask.model_validate(raw) async for raw in cursor.limit(OVERDUE_LIMIT)]


async def next_due(ward_id: ObjectId, now: datetime) -> datetime | None:
    """When the ward's next due task becomes overdue (the live list's next timer)."""
    raw = await db.collection(NursingTask).find_one(
        {"ward_id": ward_id, "status": TaskStatus.DUE.value, "due_at": {"$gte": now}},
        sort=[("due_at", 1)],
    )
    if raw is None:
        return None
    at = raw["due_at"]
    assert isinstance(at, datetime)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
