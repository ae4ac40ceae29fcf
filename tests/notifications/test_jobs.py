"""Reminders, delivery and the scheduler's lease, with a clock the test moves (no sleeps)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from cache.connection import connect_redis
from jobs import RedisLease, Scheduler
from models import Notification
from models.notifications import NotificationKind, NotificationStatus
from models.scheduling import AppointmentStatus
from services import notifications
from services.notifications import DispatchPolicy
from tests import factories
from tests.conftest import TEST_REDIS_URL
from tests.notifications.helpers import FailingChannel, FakeClock, RecordingChannel

pytestmark = pytest.mark.usefixtures("database")
START = factories.FUTURE


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = connect_redis(TEST_REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def lease_key() -> str:
    return f"shms-test:jobs:{uuid.uuid4().hex}"


def scheduler(redis: Any, key: str, channel: Any, clock: FakeClock, **kwargs: Any) -> Scheduler:
    return Scheduler(RedisLease(redis, key, 60_000), channel, clock=clock, **kwargs)


async def _reminders() -> list[Notification]:
    return await Notification.find({"kind": NotificationKind.APPOINTMENT_REMINDER.value}).to_list()


async def test_each_appointment_is_reminded_once_within_the_lead() -> None:
    soon = await factories.appointment(start=START)
    later = await factories.appointment(start=START + timedelta(hours=30))
    cancelled = await factories.appointment(
        start=START + timedelta(hours=1), status=AppointmentStatus.CANCELLED
    )
    clock = FakeClock(START - timedelta(hours=23))
    channel = RecordingChannel()

    assert await notifications.enqueue_reminders(clock=clock) == 1
    assert await notifications.enqueue_reminders(clock=clock) == 0
    await asyncio.gather(*(notifications.enqueue_reminders(clock=clock) for _ in range(3)))
    [reminder] = await _reminders()
    assert reminder.appointment_id == soon.id

    await asyncio.gather(
        notifications.dispatch(channel, clock=clock), notifications.dispatch(channel, clock=clock)
    )
    assert [n.appointment_id for n in channel.sent] == [soon.id]
    stored = await Notification.get(reminder.id)
    assert stored is not None
    assert stored.status == NotificationStatus.SENT
    assert stored.sent_at == clock.now

    clock.advance(timedelta(hours=30))  # now `later` is within 24h too
    await notifications.enqueue_reminders(clock=clock)
    await notifications.dispatch(channel, clock=clock)
    assert sorted(str(n.appointment_id) for n in channel.sent) == sorted(
        [str(soon.id), str(later.id)]
    )
    assert cancelled.id not in {n.appointment_id for n in await _reminders()}


async def test_two_concurrent_scheduler_runs_send_once(redis: Any, lease_key: str) -> None:
    for hours in range(5):
        await factories.appointment(start=START + timedelta(hours=hours))
    clock = FakeClock(START - timedelta(hours=20))
    channel = RecordingChannel()
    # Both run every step, as two workers would without the lease (same token: both "hold" it).
    first = scheduler(redis, lease_key, channel, clock)
    second = Scheduler(
        RedisLease(redis, lease_key, 60_000, first.lease.token), channel, clock=clock
    )
    await asyncio.gather(first.tick(), second.tick(), first.tick())
    assert len(channel.sent) == 5
    assert len({n.appointment_id for n in channel.sent}) == 5
    await first.stop()


async def test_no_reminder_is_lost_across_a_restart(redis: Any, lease_key: str) -> None:
    appointment = await factories.appointment(start=START)
    clock = FakeClock(START - timedelta(hours=30))
    first = scheduler(redis, lease_key, FailingChannel(), clock)
    await first.tick()  # too early: nothing due
    clock.advance(timedelta(hours=7))
    result = await first.tick()  # queued, but the relay is down
    assert result is not None and result.reminders == 1 and result.delivery.retrying == 1
    await first.stop()  # the "restart": nothing in memory survives

    channel = RecordingChannel()
    clock.advance(timedelta(minutes=5))
    second = scheduler(redis, lease_key, channel, clock)
    assert await second.tick() is not None
    assert [n.appointment_id for n in channel.sent] == [appointment.id]
    await second.tick()
    assert len(channel.sent) == 1
    await second.stop()


async def test_a_claim_abandoned_by_a_crashed_dispatcher_comes_back() -> None:
    await factories.appointment(start=START)
    clock = FakeClock(START - timedelta(hours=2))
    await notifications.enqueue_reminders(clock=clock)
    policy = DispatchPolicy()
    claimed = await notifications._claim(clock(), "crashed", policy)  # then it died
    assert claimed is not None
    channel = RecordingChannel()
    assert (await notifications.dispatch(channel, clock=clock)).sent == 0  # still claimed
    clock.advance(policy.claim_for)
    assert (await notifications.dispatch(channel, clock=clock)).sent == 1
    stored = await Notification.get(claimed.id)
    assert stored is not None and stored.status == NotificationStatus.SENT


async def test_failures_back_off_exponentially_then_fail() -> None:
    await factories.appointment(start=START)
    clock = FakeClock(START - timedelta(hours=1))
    await notifications.enqueue_reminders(clock=clock)
    channel = FailingChannel()
    policy = DispatchPolicy(max_attempts=3, backoff=timedelta(seconds=60))

    async def attempt() -> Notification:
        await notifications.dispatch(channel, clock=clock, policy=policy)
        [row] = await _reminders()
        return row

    row = await attempt()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
    assert row.next_attempt_at == clock.now + timedelta(seconds=60)
    assert row.last_error == "ConnectionError: relay down"

    clock.advance(timedelta(seconds=59))
    assert (await attempt()).attempts == 1  # not due yet
    clock.advance(timedelta(seconds=1))
    row = await attempt()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 2)
    assert row.next_attempt_at == clock.now + timedelta(seconds=120)  # doubled

    clock.advance(timedelta(seconds=120))
    row = await attempt()
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, 3)
    clock.advance(timedelta(days=1))
    await attempt()
    assert channel.calls == 3


async def test_a_reminder_for_an_appointment_cancelled_meanwhile_is_skipped() -> None:
    appointment = await factories.appointment(start=START)
    clock = FakeClock(START - timedelta(hours=1))
    await notifications.enqueue_reminders(clock=clock)
    await set_status(appointment.id, AppointmentStatus.CANCELLED)
    channel = RecordingChannel()
    assert (await notifications.dispatch(channel, clock=clock)).skipped == 1
    assert channel.sent == []


async def set_status(id: Any, status: AppointmentStatus) -> None:
    from models import Appointment

    await Appointment.get_motor_collection().update_one(
        {"_id": id}, {"$set": {"status": status.value}}
    )


# -- the lease -----------------------------------------------------------------------------------


async def test_only_one_of_two_schedulers_holds_the_lease(redis: Any, lease_key: str) -> None:
    await factories.appointment(start=START)
    clock = FakeClock(START - timedelta(hours=1))
    channel = RecordingChannel()
    first = scheduler(redis, lease_key, channel, clock)
    second = scheduler(redis, lease_key, channel, clock)
    assert await first.tick() is not None
    assert await second.tick() is None
    assert await first.tick() is not None  # a renewal, not a new race
    assert await first.lease.holder() == first.lease.token
    await first.stop()  # released on shutdown: the other takes over at its next run
    assert await second.tick() is not None
    await second.stop()
    assert await second.lease.holder() is None
    assert len(channel.sent) == 1


async def test_an_expired_lease_passes_to_the_other(redis: Any, lease_key: str) -> None:
    dying = RedisLease(redis, lease_key, ttl_ms=30)
    other = RedisLease(redis, lease_key, ttl_ms=60_000)
    assert await dying.acquire()
    assert not await other.acquire()
    deadline = time.monotonic() + 5  # bounded polling: the lease's own 30 ms TTL runs out
    while not await other.acquire():
        assert time.monotonic() < deadline, "the lease never expired"
    assert not await dying.acquire()  # it cannot renew what is no longer its own
    await dying.release()  # nor release it
    assert await other.holder() == other.token
    await other.release()


async def test_without_redis_the_scheduler_does_not_run(caplog: pytest.LogCaptureFixture) -> None:
    down = connect_redis("redis://127.0.0.1:1/0")
    try:
        sched = Scheduler(RedisLease(down, "k", 1000), RecordingChannel(), clock=FakeClock(START))
        with caplog.at_level(logging.WARNING, logger="jobs.scheduler"):
            assert await sched.tick() is None
            assert await sched.tick() is None
        warnings = [r for r in caplog.records if "not running" in r.getMessage()]
        assert len(warnings) == 1  # said once, not every interval
        await sched.stop()
    finally:
        await down.aclose()
