"""The event bus: in process, over fakeredis and over a real Redis, one contract."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from events.bus import Bus, LocalBus, RedisBus, Subscription
from events.types import DomainEvent
from metrics import sample
from tests.conftest import TEST_REDIS_URL

TIMEOUT = 10.0


def event(entity: str = "equipment", change: str = "status_changed", **refs: str) -> DomainEvent:
    return DomainEvent(entity, uuid.uuid4().hex[:24], change, dict(refs))


async def next_event(subscription: Subscription) -> DomainEvent:
    return await asyncio.wait_for(anext(subscription), TIMEOUT)


def namespace() -> str:
    return f"shms-test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def real_redis() -> AsyncIterator[Any]:
    name = f"shms-test-{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(TEST_REDIS_URL, client_name=name)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["local", "fakeredis", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    client: Any = None
    if request.param == "local":
        made: Bus = LocalBus(queue_size=2)
    elif request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis()
        made = RedisBus(client, namespace(), queue_size=2)
    else:
        client = aioredis.from_url(TEST_REDIS_URL)
        made = RedisBus(client, namespace(), queue_size=2)
    await made.start()
    try:
        yield made
    finally:
        await made.aclose()
        if client is not None:
            await client.aclose()


async def test_a_subscriber_gets_the_events_of_its_entities_in_order(bus: Bus) -> None:
    mine = bus.subscribe(["equipment"])
    first, second = event(), event(change="allocated")
    await bus.publish(event("appointments"))
    await bus.publish(first)
    await bus.publish(second)
    assert await next_event(mine) == first
    assert await next_event(mine) == second


async def test_every_subscriber_gets_every_event(bus: Bus) -> None:
    one, two = bus.subscribe(["equipment"]), bus.subscribe(["equipment", "appointments"])
    sent = event(department_id="d1")
    await bus.publish(sent)
    assert await next_event(one) == sent
    received = await next_event(two)
    assert received == sent and received.refs == {"department_id": "d1"}


async def test_a_subscriber_too_far_behind_is_ended_and_the_others_go_on(bus: Bus) -> None:
    slow = bus.subscribe(["equipment"])  # this bus queues 2 events per subscriber
    keeping_up = bus.subscribe(["equipment"])
    fast = bus.subscribe(["sync"])
    sent = [event() for _ in range(5)]
    dropped = sample("shms_events_dropped_total", entity="equipment")
    for item in sent[:2]:
        await bus.publish(item)
    assert [await next_event(keeping_up) for _ in range(2)] == sent[:2]
    for item in sent[2:]:
        await bus.publish(item)
        assert await next_event(keeping_up) == item  # never held back by the slow one
    await bus.publish(marker := event("sync"))
    assert await next_event(fast) == marker  # in order: the slow one was offered all five
    # Two queued, the third overflowed: the slow subscriber is ended, not left with a gap.
    assert slow.overflowed and not keeping_up.overflowed
    assert [item async for item in slow] == []
    assert slow.dropped == 3
    assert sample("shms_events_dropped_total", entity="equipment") == dropped + 3


async def test_closing_the_bus_ends_every_subscription(bus: Bus) -> None:
    subscription = bus.subscribe(["equipment"])
    waiting = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0)  # one turn of the loop, so it is waiting: closing must wake it
    await bus.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, TIMEOUT)
    late = bus.subscribe(["equipment"])
    assert [e async for e in late] == []  # a closed bus accepts no new listeners


async def test_a_closed_subscription_is_forgotten(bus: Bus) -> None:
    subscription = bus.subscribe(["equipment"])
    assert bus.subscriber_count == 1
    await subscription.aclose()
    await subscription.aclose()
    assert bus.subscriber_count == 0
    assert [e async for e in subscription] == []


async def test_publish_hooks_run_first_and_a_failing_hook_does_not_stop_the_event(
    bus: Bus,
) -> None:
    seen: list[str] = []

    async def failing(e: DomainEvent) -> None:
        raise RuntimeError("broken hook")

    async def recording(e: DomainEvent) -> None:
        seen.append(e.id)

    bus.on_publish(failing)
    bus.on_publish(recording)
    subscription = bus.subscribe(["equipment"])
    sent = event()
    await bus.publish(sent)
    assert seen == [sent.id]  # before publish returned, in the writer's process
    assert await next_event(subscription) == sent


async def test_events_cross_between_processes_through_redis(real_redis: Any) -> None:
    """Two buses on two connections stand for two worker processes sharing one Redis."""
    ns = namespace()
    other = aioredis.from_url(TEST_REDIS_URL)
    writer, reader = RedisBus(real_redis, ns), RedisBus(other, ns)
    elsewhere = RedisBus(other, namespace())  # another database's events never mix in
    for b in (writer, reader, elsewhere):
        await b.start()
    try:
        listening, stranger = (
            reader.subscribe(["appointments"]),
            elsewhere.subscribe(["appointments"]),
        )
        sent = event("appointments", "created", doctor_id="d1", patient_id="p1")
        await writer.publish(sent)
        assert await next_event(listening) == sent
        await elsewhere.publish(mark := event("appointments"))
        assert await next_event(stranger) == mark  # it never saw the other database's event
    finally:
        for b in (writer, reader, elsewhere):
            await b.aclose()
        await other.aclose()


async def test_a_publish_that_fails_is_counted_and_not_raised() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    bus = RedisBus(unreachable, namespace())
    errors = sample("shms_event_publish_errors_total", entity="equipment")
    published = sample("shms_events_published_total", entity="equipment")
    await bus.publish(event())  # no exception: the write that produced it already happened
    assert sample("shms_event_publish_errors_total", entity="equipment") == errors + 1
    assert sample("shms_events_published_total", entity="equipment") == published
    await bus.aclose()
    await unreachable.aclose()


async def test_the_reader_reconnects_after_losing_redis(real_redis: Any) -> None:
    bus = RedisBus(real_redis, namespace())
    await bus.start()
    try:
        subscription = bus.subscribe(["equipment"])
        name = real_redis.connection_pool.connection_kwargs["client_name"]
        listeners = [c for c in await real_redis.client_list(_type="pubsub") if c["name"] == name]
        assert len(listeners) == 1
        await real_redis.client_kill_filter(_id=listeners[0]["id"])
        await asyncio.wait_for(bus.wait_connected(after=1), TIMEOUT)
        sent = event()
        await bus.publish(sent)
        assert await next_event(subscription) == sent
    finally:
        await bus.aclose()


async def test_unreadable_messages_on_our_channels_are_ignored(real_redis: Any) -> None:
    bus = RedisBus(real_redis, namespace())
    await bus.start()
    try:
        subscription = bus.subscribe(["equipment"])
        await real_redis.publish(bus.channel("equipment"), b"not json")
        sent = event()
        await bus.publish(sent)
        assert await next_event(subscription) == sent
    finally:
        await bus.aclose()
