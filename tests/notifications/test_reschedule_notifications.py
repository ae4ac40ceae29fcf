"""Notifications follow the facts: each reschedule is announced once, reminders follow the time.

Writes go over HTTP; the reminder job and delivery run by hand on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from events.types import DomainEvent
from jobs import RedisLease, Scheduler
from models import Appointment, Notification
from models.notifications import NotificationKind, NotificationStatus, Recipient, RecipientKind
from services import notifications
from tests import factories
from tests.graphql.helpers import code
from tests.notifications.helpers import FakeClock, RecordingChannel
from tests.scheduling.helpers import CANCEL, RESCHEDULE, START, book, iso

REMINDER = NotificationKind.APPOINTMENT_REMINDER
RESCHEDULED = NotificationKind.APPOINTMENT_RESCHEDULED
SENT, PENDING, SKIPPED = (
    NotificationStatus.SENT,
    NotificationStatus.PENDING,
    NotificationStatus.SKIPPED,
)


def scheduler(app: Any, clock: FakeClock, channel: RecordingChannel) -> Scheduler:
    """The job runner as the app builds it, on the app's Redis, with this test's clock."""
    lease = RedisLease(app.state.redis, f"shms-test:jobs:{uuid.uuid4().hex}", 60_000)
    return Scheduler(lease, channel, clock=clock)


async def booked(gql: Any) -> str:
    return await book(gql, await factories.patient(), await factories.doctor(), START)


async def attempt_move(gql: Any, appointment_id: str, start: datetime) -> dict[str, Any]:
    """The whole answer to a reschedule: it may lose a race (CONFLICT)."""
    times = {"startAt": iso(start), "endAt": iso(start + timedelta(minutes=30))}
    return await gql(RESCHEDULE, id=appointment_id, input=times)


async def move(gql: Any, appointment_id: str, start: datetime) -> None:
    answer = await attempt_move(gql, appointment_id, start)
    assert "errors" not in answer, answer["errors"]


async def of(kind: NotificationKind, appointment_id: str | None = None) -> list[Notification]:
    query: dict[str, Any] = {"kind": kind.value}
    if appointment_id is not None:
        query["appointment_id"] = ObjectId(appointment_id)
    return await Notification.find(query).sort("+created_at", "+_id").to_list()


def said(notification: Notification) -> str:
    """The time a message names, as its body spells it."""
    found = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", notification.body)
    assert found is not None, notification.body
    return found.group()


def at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


async def test_a_reschedule_after_the_reminder_was_sent_gets_a_reminder_for_the_new_time(
    app: Any, gql: Any
) -> None:
    appointment_id = await booked(gql)
    clock, channel = FakeClock(START - timedelta(hours=23)), RecordingChannel()
    jobs = scheduler(app, clock, channel)
    await jobs.tick()
    [first] = await of(REMINDER)
    assert first.status == SENT and said(first) == at(START)

    later = START + timedelta(minutes=30)  # still inside the reminder window
    await move(gql, appointment_id, later)
    clock.advance(timedelta(minutes=1))
    await jobs.tick()
    await jobs.tick()  # a second run adds nothing
    old, new = await of(REMINDER)
    assert old.id == first.id and old.status == SENT  # the sent one stays as history
    assert new.status == SENT and said(new) == at(later)
    reminders = [n for n in channel.sent if n.kind == REMINDER]
    assert [said(n) for n in reminders] == [at(START), at(later)]
    await jobs.stop()


async def test_a_reschedule_inside_the_window_reminds_of_the_new_time_only(
    app: Any, gql: Any
) -> None:
    appointment_id = await booked(gql)
    clock, channel = FakeClock(START - timedelta(hours=23)), RecordingChannel()
    assert await notifications.enqueue_reminders(clock=clock) == 1  # queued, not sent yet

    later = START + timedelta(minutes=30)
    await move(gql, appointment_id, later)
    [withdrawn] = await of(REMINDER)
    assert withdrawn.status == SKIPPED  # at once, not only when its turn comes

    jobs = scheduler(app, clock, channel)
    await jobs.tick()
    reminders = [n for n in channel.sent if n.kind == REMINDER]
    assert [said(n) for n in reminders] == [at(later)]

    # Back to the first time: a new time again, so it is reminded again.
    await move(gql, appointment_id, START)
    clock.advance(timedelta(minutes=1))
    await jobs.tick()
    reminders = [n for n in channel.sent if n.kind == REMINDER]
    assert [said(n) for n in reminders] == [at(later), at(START)]
    assert [n.status for n in await of(REMINDER)] == [SKIPPED, SENT, SENT]
    await jobs.stop()


async def test_a_reminder_queued_from_a_stale_read_is_not_sent(gql: Any) -> None:
    """The reminder job read the old time, then the reschedule ran, then the job queued."""
    appointment_id = await booked(gql)
    stale = await Appointment.get(ObjectId(appointment_id))
    assert stale is not None
    later = START + timedelta(minutes=30)
    await move(gql, appointment_id, later)
    clock = FakeClock(START - timedelta(hours=23))
    await notifications.notify_appointment(stale, REMINDER, clock=clock)  # the late insert
    assert await notifications.enqueue_reminders(clock=clock) == 1  # the new time's

    channel = RecordingChannel()
    result = await notifications.dispatch(channel, clock=clock)
    assert result.skipped == 1
    assert [said(n) for n in channel.sent if n.kind == REMINDER] == [at(later)]


async def test_cancelling_withdraws_what_is_unsent_and_keeps_what_was_sent(
    app: Any, gql: Any
) -> None:
    reminded = await booked(gql)
    clock, channel = FakeClock(START - timedelta(hours=23)), RecordingChannel()
    jobs = scheduler(app, clock, channel)
    await jobs.tick()  # its confirmation and reminder go out
    await gql.data(CANCEL, id=reminded)
    for kind in (NotificationKind.APPOINTMENT_BOOKED, REMINDER):
        assert [n.status for n in await of(kind, reminded)] == [SENT], kind  # history stays

    # Two more, booked and reminded but nothing sent yet; one is cancelled.
    cancelled, kept = await booked(gql), await booked(gql)
    assert await notifications.enqueue_reminders(clock=clock) == 2
    await gql.data(CANCEL, id=cancelled)
    for kind in (NotificationKind.APPOINTMENT_BOOKED, REMINDER):
        assert [n.status for n in await of(kind, cancelled)] == [SKIPPED], kind
        assert [n.status for n in await of(kind, kept)] == [PENDING], kind
    [notice] = await of(NotificationKind.APPOINTMENT_CANCELLED, cancelled)
    assert notice.status == PENDING

    channel.sent.clear()
    await jobs.tick()
    assert sorted((n.kind.value, str(n.appointment_id)) for n in channel.sent) == sorted(
        [
            (NotificationKind.APPOINTMENT_CANCELLED.value, reminded),
            (NotificationKind.APPOINTMENT_CANCELLED.value, cancelled),
            (NotificationKind.APPOINTMENT_BOOKED.value, kept),
            (REMINDER.value, kept),
        ]
    )
    await jobs.stop()


async def test_concurrent_reschedules_are_each_announced_once(app: Any, gql: Any) -> None:
    appointment_id = await booked(gql)
    times = [START + timedelta(hours=hours) for hours in (1, 2, 3)]
    answers = await asyncio.gather(*(attempt_move(gql, appointment_id, t) for t in times))
    won = [t for t, answer in zip(times, answers, strict=True) if not answer.get("errors")]
    for answer in answers:
        if answer.get("errors"):
            assert [code(e) for e in answer["errors"]] == ["CONFLICT"], answer
    assert won

    rescheduled = await of(RESCHEDULED)
    assert len(rescheduled) == len(won)
    assert sorted(said(n) for n in rescheduled) == sorted(at(t) for t in won)
    stored = await Appointment.get(ObjectId(appointment_id))
    assert stored is not None and len(stored.reschedule_history) == len(won)

    # A retried hook, and the reminder job, add none.
    await notifications.on_event(DomainEvent("appointments", appointment_id, "rescheduled"))
    clock, channel = FakeClock(START - timedelta(hours=20)), RecordingChannel()
    jobs = scheduler(app, clock, channel)
    await jobs.tick()
    assert len([n for n in channel.sent if n.kind == RESCHEDULED]) == len(won)
    # Only the time the appointment ended with is reminded.
    assert [said(n) for n in channel.sent if n.kind == REMINDER] == [at(stored.start_at)]
    await jobs.stop()


async def test_a_reminder_keyed_the_old_way_still_counts_for_its_time(gql: Any) -> None:
    appointment_id = await booked(gql)
    appointment = await Appointment.get(ObjectId(appointment_id))
    assert appointment is not None
    clock = FakeClock(START - timedelta(hours=23))
    await notifications.enqueue(
        f"{REMINDER.value}:{appointment_id}",  # how reminders were keyed before
        Recipient(kind=RecipientKind.PATIENT, id=appointment.patient_id),
        REMINDER,
        "Appointment reminder",
        f"A reminder: you have an appointment at {at(START)} UTC.",
        clock=clock,
        appointment_id=appointment.id,
    )
    assert await notifications.enqueue_reminders(clock=clock) == 0

    later = START + timedelta(minutes=30)
    await move(gql, appointment_id, later)
    [legacy] = await of(REMINDER)
    assert legacy.status == SKIPPED
    assert await notifications.enqueue_reminders(clock=clock) == 1
    assert [said(n) for n in await of(REMINDER)] == [at(START), at(later)]
