"""Orders generate nursing tasks from their schedule, once per due time, and stop with them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from cache.connection import connect_redis
from jobs import RedisLease, Scheduler
from models.base import utcnow
from models.nursing import NursingTask, TaskStatus
from models.orders import DoctorOrder, OrderStatus, Schedule, SchedulePattern
from models.wards import Bed
from services import nursing
from tests.admissions.helpers import DISCHARGE, TRANSFER
from tests.conftest import TEST_REDIS_URL
from tests.graphql.helpers import code
from tests.notifications.helpers import FakeClock, RecordingChannel
from tests.orders.helpers import (
    CANCEL_ORDER,
    CARE_PLAN,
    COMPLETE_ORDER,
    CREATE_ORDER,
    HOLD,
    RESUME,
    Callers,
    iso,
    medication,
    ward,
)


def test_due_times_follow_the_pattern() -> None:
    start = datetime(2031, 1, 1, 6, 0, tzinfo=UTC)
    every = Schedule(pattern=SchedulePattern.EVERY_HOURS, start_at=start, every_hours=8)
    since = start + timedelta(hours=1)
    got = nursing.due_times(every, since, start + timedelta(hours=24))
    assert got == [start + timedelta(hours=8), start + timedelta(hours=16)]
    ended = every.model_copy(update={"end_at": start + timedelta(hours=10)})
    assert nursing.due_times(ended, start, start + timedelta(days=2)) == [
        start, start + timedelta(hours=8)
    ]  # fmt: skip
    daily = Schedule(
        pattern=SchedulePattern.TIMES_OF_DAY, start_at=start, times_of_day=[time(8), time(20)]
    )
    times = nursing.due_times(daily, start, start + timedelta(days=1))
    assert len(times) == 2 and all(t.astimezone(UTC) >= start for t in times)
    prn = Schedule(pattern=SchedulePattern.PRN, start_at=start)
    assert nursing.due_times(prn, start, start + timedelta(days=3)) == []
    once = Schedule(pattern=SchedulePattern.ONCE, start_at=start - timedelta(hours=1))
    assert nursing.due_times(once, start, start + timedelta(hours=1), start) == [start]


async def _tasks(order_id: str, status: TaskStatus | None = None) -> list[NursingTask]:
    from bson import ObjectId

    query: dict[str, Any] = {"source_id": ObjectId(order_id)}
    if status is not None:
        query["status"] = status.value
    return await NursingTask.find(query).sort("due_at").to_list()


async def test_an_order_generates_its_horizon_once_however_often_it_runs(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    start = utcnow() + timedelta(minutes=30)
    order = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]
    assert order["status"] == "ACTIVE" and order["wardId"] == str(w.ward.id)
    dues = [datetime.fromisoformat(t["dueAt"]) for t in order["tasks"]["nodes"]]
    assert dues == [start + timedelta(hours=h) for h in (0, 8, 16)]
    assert all(t["description"] == "Give Amoxicillin 500 mg oral" for t in order["tasks"]["nodes"])

    stored = await DoctorOrder.get(order["id"])
    assert stored is not None
    assert await nursing.generate_for_order(stored) == 0  # again: nothing new
    stored.tasks_until = None  # as if a crash lost the horizon: the index still holds
    assert await nursing.generate_for_order(stored) == 0
    assert len(await _tasks(order["id"])) == 3
    # The horizon rolls on: a day later, the next day's doses, and still no duplicate.
    later = utcnow() + timedelta(hours=24)
    assert await nursing.extend_horizon(later) == 3
    assert await nursing.extend_horizon(later) == 0
    dues_after = [t.due_at for t in await _tasks(order["id"])]
    assert len(dues_after) == len(set(dues_after)) == 6


async def test_hold_resume_complete_and_cancel_move_the_tasks(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    start = utcnow() + timedelta(minutes=30)
    order_id = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]["id"]
    held = await c.doctor.data(HOLD, id=order_id, reason="Nil by mouth for theatre")
    assert held["holdDoctorOrder"]["status"] == "HELD"
    assert [t.status for t in await _tasks(order_id)] == [TaskStatus.CANCELLED] * 3
    assert code(await c.doctor.error(HOLD, id=order_id)) == "BAD_USER_INPUT"  # held already

    assert (await c.doctor.data(RESUME, id=order_id))["resumeDoctorOrder"]["status"] == "ACTIVE"
    tasks = await _tasks(order_id)
    assert [t.status for t in tasks] == [TaskStatus.DUE] * 3  # the same tasks, reopened
    assert len({t.due_at for t in tasks}) == 3

    done = await c.doctor.data(COMPLETE_ORDER, id=order_id)
    assert done["completeDoctorOrder"]["status"] == "COMPLETED"
    assert {t.status for t in await _tasks(order_id)} == {TaskStatus.CANCELLED}
    assert code(await c.doctor.error(RESUME, id=order_id)) == "BAD_USER_INPUT"  # final

    second = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]["id"]
    assert code(await c.doctor.error(CANCEL_ORDER, id=second, reason=" ")) == "BAD_USER_INPUT"
    cancelled = await c.doctor.data(CANCEL_ORDER, id=second, reason="Allergy reported")
    order = cancelled["cancelDoctorOrder"]
    assert order["status"] == "CANCELLED" and order["reason"] == "Allergy reported"
    assert [h["status"] for h in order["history"]] == ["ACTIVE", "CANCELLED"]
    assert {t.status for t in await _tasks(second)} == {TaskStatus.CANCELLED}


async def test_a_held_order_keeps_its_late_tasks_and_generation_stops(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    order_id = (await c.doctor.data(CREATE_ORDER, input=medication(w)))["createDoctorOrder"]["id"]
    first = (await _tasks(order_id))[0]  # due at placement: overdue by now
    await c.doctor.data(HOLD, id=order_id)
    statuses = {t.id: t.status for t in await _tasks(order_id)}
    assert statuses.pop(first.id) == TaskStatus.DUE  # late: still to be done or skipped
    assert set(statuses.values()) == {TaskStatus.CANCELLED}
    stored = await DoctorOrder.get(order_id)
    assert stored is not None and stored.status == OrderStatus.HELD
    assert await nursing.extend_horizon(utcnow() + timedelta(days=2)) == 0


async def test_a_care_plan_generates_per_intervention(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    plan = {
        "admissionId": str(w.admission.id),
        "problem": "Risk of pressure ulcers",
        "goal": "Skin intact at discharge",
        "interventions": [
            {"description": "Reposition", "schedule": {"pattern": "EVERY_HOURS", "everyHours": 4}},
            {"description": "Skin check", "schedule": {"pattern": "EVERY_HOURS", "everyHours": 12}},
        ],
    }
    made = (await c.nurse.data(CARE_PLAN, input=plan))["createNursingCarePlan"]
    tasks = made["tasks"]["nodes"]
    ids = [i["id"] for i in made["interventions"]]
    assert sorted(t["sourceId"] == ids[0] for t in tasks).count(True) == 6
    assert [t["sourceId"] for t in tasks].count(ids[1]) == 2
    bad = {**plan, "interventions": [{"description": "x", "schedule": {"pattern": "EVERY_HOURS"}}]}
    error = await c.nurse.error(CARE_PLAN, input=bad)
    assert code(error) == "BAD_USER_INPUT"
    assert "interventions.0.schedule.everyHours" in error["extensions"]["fields"]


async def test_discharge_closes_the_admissions_care(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    start = utcnow() + timedelta(minutes=30)
    order_id = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]["id"]
    assert w.admission.id is not None
    await nursing.close_for_admission(w.admission.id)
    await nursing.close_for_admission(w.admission.id)  # repeatable
    stored = await DoctorOrder.get(order_id)
    assert stored is not None and stored.status == OrderStatus.COMPLETED
    assert {t.status for t in await _tasks(order_id)} == {TaskStatus.CANCELLED}


async def test_the_scheduler_rolls_the_horizon_on(client_as: Any) -> None:
    """Tasks exist a day ahead; the periodic job, not a request, keeps it so."""
    w = await ward()
    c = Callers(client_as, w)
    start = utcnow() + timedelta(minutes=30)
    order = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]
    clock = FakeClock(utcnow() + timedelta(hours=24))
    redis = connect_redis(TEST_REDIS_URL)
    lease = RedisLease(redis, f"shms-test:jobs:{uuid.uuid4().hex}", 60_000)
    jobs = Scheduler(lease, RecordingChannel(), clock=clock)
    try:
        result = await jobs.tick()
        assert result is not None and result.nursing_tasks == 3
        assert len(await _tasks(order["id"])) == 6
    finally:
        await jobs.stop()
        await redis.aclose()


async def test_a_transfer_moves_the_care_and_a_discharge_ends_it(client_as: Any) -> None:
    """Through the admission's own mutations: the ward lists follow the patient, and nothing
    stays due once they have gone home."""
    w = await ward()
    c = Callers(client_as, w)
    start = utcnow() + timedelta(minutes=30)
    order_id = (await c.doctor.data(CREATE_ORDER, input=medication(w, startAt=iso(start))))[
        "createDoctorOrder"
    ]["id"]
    bed = await Bed(ward_id=w.other_ward.id, department_id=w.department.id, label="T1").insert()
    await c.doctor.data(TRANSFER, id=str(w.admission.id), bedId=str(bed.id), reason="Step down")
    tasks = await _tasks(order_id)
    assert tasks and {t.ward_id for t in tasks} == {w.other_ward.id}
    moved = await DoctorOrder.get(order_id)
    assert moved is not None and moved.ward_id == w.other_ward.id

    note = {"summary": "Recovered", "diagnosis": "Pneumonia", "instructions": "Rest"}
    await c.doctor.data(DISCHARGE, id=str(w.admission.id), note=note, d="HOME")
    stored = await DoctorOrder.get(order_id)
    assert stored is not None and stored.status == OrderStatus.COMPLETED
    assert {t.status for t in await _tasks(order_id)} == {TaskStatus.CANCELLED}
