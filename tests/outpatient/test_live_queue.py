"""The Redis queues: in step after every write, rebuilt from MongoDB, never older than it."""

from __future__ import annotations

import dataclasses
from typing import Any

from bson import ObjectId

import db
from cache import queues
from models.outpatient import VisitStatus
from tests import factories
from tests.outpatient.helpers import BOARD, CALL_NEXT, QUEUE, WALK_IN, clinic


def _live() -> queues.LiveQueues:
    live = queues.current()
    assert live is not None, "the app's lifespan installs the live queues"
    return live


async def _drop_all(live: queues.LiveQueues) -> int:
    """Every key of this app's queues (the shared Redis holds other tests' keys too)."""
    redis = live._redis
    keys = [k async for k in redis.scan_iter(match=f"{live._ns}:opd-*")]
    if keys:
        await redis.delete(*keys)
    return len(keys)


async def _busy_clinic(gql: Any, size: int = 4) -> tuple[Any, Any, list[str]]:
    dept, doctor = await clinic()
    ids = []
    for i in range(size):
        made = await gql.data(
            WALK_IN,
            input={
                "patientId": str((await factories.patient()).id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id) if i % 2 else None,
                "priority": "EMERGENCY" if i == 3 else None,
            },
        )
        ids.append(made["walkInOutpatient"]["id"])
    await gql.data(CALL_NEXT, room="Room 1", departmentId=str(dept.id))
    return dept, doctor, ids


async def test_queues_are_read_from_redis_without_touching_mongodb(
    gql: Any, client_as: Any
) -> None:
    dept, _doctor, _ = await _busy_clinic(gql)
    screen = client_as(roles=["service"])
    await screen.data(BOARD, departmentId=str(dept.id))  # the department row is cached now
    with db.operations.measure() as ops:
        board = (await screen.data(BOARD, departmentId=str(dept.id)))["outpatientBoard"]
    assert not [k for k in ops.counts if k[0] == "outpatient_visits"], ops.counts
    assert len(board["entries"]) == 4


async def test_flushed_queues_are_rebuilt_from_mongodb(gql: Any, client_as: Any) -> None:
    dept, doctor, _ = await _busy_clinic(gql)
    screen = client_as(roles=["service"])
    expected = {
        "department": await queues.from_mongo("department", dept.id),
        "doctor": await queues.from_mongo("doctor", doctor.id),
    }
    before = (await screen.data(BOARD, departmentId=str(dept.id)))["outpatientBoard"]["entries"]
    staff_view = (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"]
    live = _live()
    assert await _drop_all(live) > 0

    # Read after the flush: refilled from MongoDB on first read, the same as before.
    after = (await screen.data(BOARD, departmentId=str(dept.id)))["outpatientBoard"]["entries"]
    assert after == before
    assert (await gql.data(QUEUE, doctorId=str(doctor.id)))["queue"] == staff_view

    # And at start-up: rebuild() refills every queue with patients and drops stale sets.
    await _drop_all(live)
    ghost = ObjectId()
    await live._redis.zadd(live.queue_key("department", dept.id), {str(ghost): 1, "*": -1})
    assert await live.rebuild() == 4
    for kind, key in (("department", dept.id), ("doctor", doctor.id)):
        members = await live._redis.zrange(live.queue_key(kind, key), 0, -1)  # type: ignore[arg-type]
        assert str(ghost).encode() not in members
        current = await live.queue(kind, key)  # type: ignore[arg-type]
        assert current.entries == expected[kind].entries
        assert current == await queues.from_mongo(kind, key)  # type: ignore[arg-type]


async def test_an_older_state_never_replaces_a_newer_one(gql: Any) -> None:
    dept, _, _ = await _busy_clinic(gql)
    live = _live()
    current = await live.queue("department", dept.id)
    called = next(e for e in current.entries if e.status == VisitStatus.CALLED)
    stale = dataclasses.replace(called, status=VisitStatus.WAITING, version=called.version - 1)
    await live.write(stale)  # a writer that lost the race, landing late
    again = await live.queue("department", dept.id)
    assert next(e for e in again.entries if e.id == called.id).status == VisitStatus.CALLED
    assert again == await queues.from_mongo("department", dept.id)


async def test_a_broken_redis_answers_from_mongodb(gql: Any) -> None:
    dept, _, _ = await _busy_clinic(gql)

    class Down:
        def __getattr__(self, name: str) -> Any:
            raise ConnectionError("redis is down")

    broken = queues.LiveQueues(Down(), "broken")
    answer = await broken.queue("department", dept.id)
    assert answer == await queues.from_mongo("department", dept.id)
    assert next(e.status for e in answer.entries) == VisitStatus.CALLED  # the emergency
