"""The scheduler: every ``interval`` seconds, whoever holds the Redis lease runs the jobs
(appointment reminders, notification delivery, nursing tasks generated ahead, pharmacy
dispenses and supply issues abandoned part way put right, near-expiry supply alerts).

One ``Scheduler`` per worker process; only the lease holder works, so reminders and deliveries
are not raced by every worker (the outbox's unique keys and claims would keep them correct
anyway: the lease saves the duplicate effort). A tick both takes and renews the lease, so the
lease must outlive the interval. With Redis down no worker holds it and nothing runs; that is
logged when it starts and when it ends. Each tick reads its work from MongoDB, so a restart
loses nothing. ``tick`` is what tests call, with a fake clock and no loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from config import Settings
from events.bus import namespace
from jobs.lease import LeaseUnavailable, RedisLease
from models.base import utcnow
from notifications.channels import Channel, create_channel
from services import inventory, notifications, nursing, pharmacy
from services.notifications import Clock, DispatchPolicy, DispatchResult

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    reminders: int
    delivery: DispatchResult
    nursing_tasks: int = 0
    """Nursing tasks generated ahead for active orders and care plans (their rolling horizon)."""


class Scheduler:
    def __init__(
        self,
        lease: RedisLease,
        channel: Channel,
        *,
        interval: float = 30.0,
        clock: Clock = utcnow,
        reminder_lead: timedelta = notifications.REMINDER_LEAD,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self.lease, self.channel, self.interval, self.clock = lease, channel, interval, clock
        self.reminder_lead = reminder_lead
        self.policy = policy or DispatchPolicy()
        self._task: asyncio.Task[None] | None = None
        self._redis_down = False

    async def tick(self) -> TickResult | None:
        """One run: take or renew the lease, then reminders and delivery; None if not ours."""
        try:
            mine = await self.lease.acquire()
        except LeaseUnavailable as exc:
            if not self._redis_down:
                log.warning("jobs: Redis unreachable (%s); the scheduler is not running", exc)
            self._redis_down = True
            return None
        if self._redis_down:
            log.info("jobs: Redis is back; the scheduler runs again where it holds the lease")
            self._redis_down = False
        if not mine:
            return None
        reminders = await notifications.enqueue_reminders(clock=self.clock, lead=self.reminder_lead)
        delivery = await notifications.dispatch(self.channel, clock=self.clock, policy=self.policy)
        tasks = await nursing.extend_horizon(self.clock())
        await pharmacy.recover()  # abandoned dispenses and lapsed controlled-drug holds
        await inventory.tick(self.clock())  # supply issues left part way, near-expiry alerts
        return TickResult(reminders, delivery, tasks)

    async def _run(self) -> None:
        while True:
            # Waiting first keeps start-up (and the first requests) free of job queries.
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:
                log.exception("jobs: a scheduler run failed; trying again next interval")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="shms-scheduler")

    async def stop(self) -> None:
        """Stop running and release the lease, so another worker takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.lease.held:
            await self.lease.release()


def create_scheduler(settings: Settings, redis: Any, clock: Clock = utcnow) -> Scheduler:
    lease = RedisLease(
        redis, f"{namespace(settings)}:jobs:lease", int(settings.shms_jobs_lease_seconds * 1000)
    )
    return Scheduler(
        lease,
        create_channel(settings),
        interval=settings.shms_jobs_interval_seconds,
        clock=clock,
        reminder_lead=timedelta(hours=settings.shms_reminder_lead_hours),
        policy=DispatchPolicy(
            max_attempts=settings.shms_notify_max_attempts,
            backoff=timedelta(seconds=settings.shms_notify_backoff_seconds),
        ),
    )
