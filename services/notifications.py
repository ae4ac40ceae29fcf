"""The notification outbox: enqueue (from domain events and the reminder job), dispatch, list.

- Enqueue is one insert. The unique ``key`` makes it idempotent: a duplicate key means the
  message is queued already (a retried hook, a second worker, a second reminder run), and is
  ignored. Keys name the fact a message is about, so each fact is announced once:

  - ``appointment_booked:<id>`` and ``appointment_cancelled:<id>`` (each happens once);
  - ``appointment_rescheduled:<id>:<history entry id>``: every reschedule appends a history
    entry with an id its writer chose, so concurrent reschedules get one message each, and the
    message states that entry's own new time (never a later one read back);
  - ``appointment_reminder:<id>:<start>:<version>``: one reminder per appointment time, where
    the version is how many reschedules the appointment had (so moving back to an earlier time
    is a new time again); ``appointment_reminder:<id>`` rows predate it and still count;
  - ``prescription_picked_up:<prescription id>``.
- Confirmations come from ``on_event``, a bus ``on_publish`` hook installed by the app: it runs
  in the writing process for every write, so no service can forget to notify.
- Reminders: ``enqueue_reminders`` looks at the store, not at timers: every active appointment
  starting in ``(now, now + lead]`` gets the reminder for its current time unless it has one. A
  restart, or a run that was skipped, loses nothing; two runs at once still queue one row.
- Withdrawal: an unsent message the facts overtook is set ``skipped``, never sent. A reschedule
  withdraws the pending reminders of the times it replaced (the next reminder run queues the
  new time's); a cancel withdraws every pending reminder and booking/reschedule confirmation of
  the appointment: the cancellation notice alone states the facts, and a retried "booked for"
  arriving after it would send the patient to a time that is no longer theirs. Sent messages
  stay as history. Dispatch re-checks each row before sending, so a row queued or claimed while
  the facts changed is skipped as well (left: a send already under way when they change).
- Dispatch: ``dispatch`` claims one due row at a time with ``find_one_and_update`` (pending ->
  sending, with a claim expiry, so a crashed dispatcher's claim comes back), sends it through
  the channel, then settles it by compare-and-set on the claim: sent, or pending again after an
  exponential backoff, or failed after ``max_attempts``.

Messages say no more than needed: a date and time, never a diagnosis, drug or doctor's name.
Everything takes a ``clock`` (aware UTC now) so tests control time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from opentelemetry.trace import SpanKind
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
import metrics
from events.types import DomainEvent
from models.base import utcnow
from models.clinical import Prescription, PrescriptionStatus
from models.consent import ConsentChannel, ConsentKind, ConsentStatus
from models.notifications import (
    Notification,
    NotificationKind,
    NotificationStatus,
    Recipient,
    RecipientKind,
)
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, Appointment, AppointmentStatus
from notifications.channels import Channel, PermanentDeliveryError
from observability import tracing
from services import consent
from services.pagination import DESC, Page, PageArgs, Query, Sort, paginate

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
NEWEST_FIRST: Sort = (("created_at", DESC), ("_id", DESC))
REMINDER_LEAD = timedelta(hours=24)
CLAIM_FOR = timedelta(minutes=5)
"""How long a dispatcher may hold a claimed row before another may take it over."""
MAX_ERROR_LENGTH = 300


def _collection() -> Any:
    return db.collection(Notification)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# -- enqueue -------------------------------------------------------------------------------------


async def enqueue(
    key: str,
    recipient: Recipient,
    kind: NotificationKind,
    subject: str,
    body: str,
    *,
    clock: Clock = utcnow,
    appointment_id: ObjectId | None = None,
    prescription_id: ObjectId | None = None,
) -> bool:
    """Queue a message unless one with ``key`` exists; True when this call queued it."""
    now = clock()
    notification = Notification(
        key=key,
        recipient=recipient,
        kind=kind,
        subject=subject,
        body=body,
        appointment_id=appointment_id,
        prescription_id=prescription_id,
        next_attempt_at=now,
        created_at=now,
    )
    try:
        await notification.insert()
    except DuplicateKeyError:
        return False
    return True


def reminder_key(appointment_id: ObjectId | None, start_at: datetime, version: int) -> str:
    """The key of the reminder for one appointment time (``version``: reschedules before it)."""
    kind = NotificationKind.APPOINTMENT_REMINDER.value
    return f"{kind}:{appointment_id}:{start_at.isoformat()}:{version}"


def _legacy_reminder_key(appointment_id: ObjectId | None) -> str:
    """The one reminder key per appointment used before times were part of it."""
    return f"{NotificationKind.APPOINTMENT_REMINDER.value}:{appointment_id}"


def current_reminder_key(appointment: Appointment) -> str:
    """The key of the reminder for the time ``appointment`` holds now."""
    version = len(appointment.reschedule_history)
    return reminder_key(appointment.id, appointment.start_at, version)


def _replaced_reminder_keys(appointment: Appointment) -> list[str]:
    """Keys of reminders for every time a reschedule replaced, including the pre-key-scheme one.

    Entry ``i`` moved the appointment off version ``i``, whose time it recorded as its previous
    start (its write was a compare-and-set on that time), so this list is exact.
    """
    return [_legacy_reminder_key(appointment.id)] + [
        reminder_key(appointment.id, entry.previous_start_at, version)
        for version, entry in enumerate(appointment.reschedule_history)
    ]


def _appointment_message(appointment: Appointment, kind: NotificationKind) -> tuple[str, str, str]:
    """(key, subject, body) for a booking, cancellation or reminder of ``appointment``."""
    when = _when(appointment.start_at)
    if kind == NotificationKind.APPOINTMENT_BOOKED:
        return (
            f"{kind.value}:{appointment.id}",
            "Appointment booked",
            f"Your appointment is booked for {when}.",
        )
    if kind == NotificationKind.APPOINTMENT_CANCELLED:
        return (
            f"{kind.value}:{appointment.id}",
            "Appointment cancelled",
            f"Your appointment on {when} is cancelled.",
        )
    if kind == NotificationKind.APPOINTMENT_REMINDER:
        return (
            current_reminder_key(appointment),
            "Appointment reminder",
            f"A reminder: you have an appointment at {when}.",
        )
    raise ValueError(f"{kind.value} is not announced from the appointment alone")


def _patient(appointment: Appointment) -> Recipient:
    return Recipient(kind=RecipientKind.PATIENT, id=appointment.patient_id)


async def notify_appointment(
    appointment: Appointment, kind: NotificationKind, *, clock: Clock = utcnow
) -> bool:
    """Queue a booking, cancellation or reminder message (reschedules: ``notify_rescheduled``)."""
    if kind == NotificationKind.APPOINTMENT_RESCHEDULED:
        return bool(await notify_rescheduled(appointment, clock=clock))
    key, subject, body = _appointment_message(appointment, kind)
    return await enqueue(
        key, _patient(appointment), kind, subject, body, clock=clock, appointment_id=appointment.id
    )


async def notify_rescheduled(appointment: Appointment, *, clock: Clock = utcnow) -> int:
    """Queue one confirmation per reschedule in the history not yet announced; how many queued.

    Each is keyed on its entry's writer-chosen id and states that entry's new time, so it does
    not matter which writer's hook (or which retry) reads the history: every reschedule is
    announced exactly once. Entries without an id predate the scheme and were announced then.
    """
    kind = NotificationKind.APPOINTMENT_RESCHEDULED
    entries = {
        f"{kind.value}:{appointment.id}:{entry.id}": entry
        for entry in appointment.reschedule_history
        if entry.id is not None
    }
    if not entries:
        return 0
    queued = set(await _collection().distinct("key", {"key": {"$in": list(entries)}}))
    count = 0
    for key, entry in entries.items():
        if key not in queued:
            body = f"Your appointment has moved to {_when(entry.start_at)}."
            count += await enqueue(
                key,
                _patient(appointment),
                kind,
                "Appointment moved",
                body,
                clock=clock,
                appointment_id=appointment.id,
            )
    return count


async def withdraw(appointment_id: ObjectId | None, query: Query, *, clock: Clock = utcnow) -> int:
    """Set this appointment's pending messages matching ``query`` to skipped; how many.

    Only pending rows: a sent one is history, and one being sent is re-checked by dispatch.
    """
    result = await _collection().update_many(
        {"appointment_id": appointment_id, "status": NotificationStatus.PENDING.value, **query},
        {"$set": {"status": NotificationStatus.SKIPPED.value, "updated_at": clock()}},
    )
    return int(result.modified_count)


WITHDRAWN_BY_CANCEL = (
    NotificationKind.APPOINTMENT_REMINDER,
    NotificationKind.APPOINTMENT_BOOKED,
    NotificationKind.APPOINTMENT_RESCHEDULED,
)
"""What a cancellation withdraws while unsent: the cancellation notice supersedes them."""


async def on_rescheduled(appointment: Appointment, *, clock: Clock = utcnow) -> None:
    """Announce the reschedules and withdraw the reminders of the times they replaced."""
    await notify_rescheduled(appointment, clock=clock)
    keys = _replaced_reminder_keys(appointment)
    await withdraw(appointment.id, {"key": {"$in": keys}}, clock=clock)


async def on_cancelled(appointment: Appointment, *, clock: Clock = utcnow) -> None:
    """Announce the cancellation and withdraw what it made untrue (cancelling is final)."""
    if appointment.status != AppointmentStatus.CANCELLED:
        return
    await notify_appointment(appointment, NotificationKind.APPOINTMENT_CANCELLED, clock=clock)
    await withdraw(
        appointment.id, {"kind": {"$in": [k.value for k in WITHDRAWN_BY_CANCEL]}}, clock=clock
    )


async def notify_picked_up(prescription: Prescription, *, clock: Clock = utcnow) -> bool:
    kind = NotificationKind.PRESCRIPTION_PICKED_UP
    return await enqueue(
        f"{kind.value}:{prescription.id}",
        Recipient(kind=RecipientKind.DOCTOR, id=prescription.prescriber_id),
        kind,
        "Prescription picked up",
        f"Prescription {prescription.id} was picked up.",
        clock=clock,
        prescription_id=prescription.id,
    )


async def on_event(event: DomainEvent) -> None:
    """The bus hook: queue (and withdraw) what a write calls for; the document is read back,
    and every key names a fact recorded in it, so any reader queues the same rows."""
    if event.entity == Appointment.get_collection_name():
        if event.change not in ("created", "rescheduled", "cancelled"):
            return
        appointment = await Appointment.get(ObjectId(event.id))
        if appointment is None:
            return
        if event.change == "created":
            await notify_appointment(appointment, NotificationKind.APPOINTMENT_BOOKED)
        elif event.change == "rescheduled":
            await on_rescheduled(appointment)
        else:
            await on_cancelled(appointment)
    elif event.entity == Prescription.get_collection_name() and event.change == "status_changed":
        prescription = await Prescription.get(ObjectId(event.id))
        if prescription is not None and prescription.status == PrescriptionStatus.PICKED_UP:
            await notify_picked_up(prescription)


# -- reminders -----------------------------------------------------------------------------------


async def enqueue_reminders(
    *, clock: Clock = utcnow, lead: timedelta = REMINDER_LEAD, batch: int = 500
) -> int:
    """Queue the reminder for the current time of every active appointment starting in
    ``(now, now + lead]`` that has none yet; returns how many this run queued. Driven by the
    store alone: a reschedule makes a new time, hence a new key, and so a new reminder."""
    now = clock()
    query: Query = {
        "status": {"$in": [s.value for s in ACTIVE_APPOINTMENT_STATUSES]},
        "start_at": {"$gt": now, "$lte": now + lead},
    }
    queued = 0
    last: ObjectId | None = None
    while True:
        page_query = query if last is None else {**query, "_id": {"$gt": last}}
        appointments = await Appointment.find(page_query).sort("+_id").limit(batch).to_list()
        if not appointments:
            return queued
        last = appointments[-1].id
        reminded = await _reminded(appointments)
        for appointment in appointments:
            if appointment.id not in reminded:
                queued += await notify_appointment(
                    appointment, NotificationKind.APPOINTMENT_REMINDER, clock=clock
                )


async def _reminded(appointments: list[Appointment]) -> set[ObjectId | None]:
    """Which of ``appointments`` have a reminder (in any state) for their current time."""
    current = {current_reminder_key(a): a for a in appointments}
    legacy = {_legacy_reminder_key(a.id): a for a in appointments if _legacy_covers(a)}
    keys = await _collection().distinct("key", {"key": {"$in": [*current, *legacy]}})
    return {(current.get(key) or legacy[key]).id for key in keys}


def _legacy_covers(appointment: Appointment) -> bool:
    """Does a reminder keyed the old way (one per appointment) cover its current time? Yes
    unless a reschedule written since moved it: those entries have ids, and all came later."""
    return all(entry.id is None for entry in appointment.reschedule_history)


# -- dispatch ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchPolicy:
    max_attempts: int = 5
    backoff: timedelta = timedelta(minutes=1)
    """Wait after the first failure; it doubles after each further one."""
    claim_for: timedelta = CLAIM_FOR

    def retry_after(self, attempts: int) -> timedelta:
        return self.backoff * (2 ** max(attempts - 1, 0))


@dataclass
class DispatchResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


async def _claim(now: datetime, token: str, policy: DispatchPolicy) -> Notification | None:
    raw = await _collection().find_one_and_update(
        {
            "$or": [
                {"status": NotificationStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
                # a dispatcher that died holding a claim: its row comes back
                {"status": NotificationStatus.SENDING.value, "claim_expires_at": {"$lte": now}},
            ]
        },
        {
            "$set": {
                "status": NotificationStatus.SENDING.value,
                "claim_token": token,
                "claim_expires_at": now + policy.claim_for,
                "updated_at": now,
            },
            "$inc": {"attempts": 1},
        },
        sort=[("next_attempt_at", 1), ("_id", 1)],
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else Notification.model_validate(raw)


async def _settle(notification: Notification, token: str, changes: Query) -> bool:
    """Compare-and-set on the claim: only the dispatcher holding it may settle the row."""
    result = await _collection().update_one(
        {
            "_id": notification.id,
            "status": NotificationStatus.SENDING.value,
            "claim_token": token,
        },
        {"$set": {**changes, "claim_token": None, "claim_expires_at": None}},
    )
    return bool(result.modified_count)


async def _still_relevant(notification: Notification) -> bool:
    """Do the facts still stand? Withdrawal catches most rows; this catches the ones queued or
    claimed while a reschedule or cancel was being written."""
    if notification.kind not in WITHDRAWN_BY_CANCEL:
        return True
    appointment = await Appointment.get(notification.appointment_id)
    if appointment is None:
        return False
    if notification.kind != NotificationKind.APPOINTMENT_REMINDER:
        return appointment.status != AppointmentStatus.CANCELLED
    if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        return False
    if notification.key == current_reminder_key(appointment):
        return True
    legacy = _legacy_reminder_key(appointment.id)
    return notification.key == legacy and _legacy_covers(appointment)


CONSENT_CHANNELS = {
    "smtp": ConsentChannel.EMAIL,
    "email": ConsentChannel.EMAIL,
    "sms": ConsentChannel.SMS,
    "push": ConsentChannel.PUSH,
}
"""The consent (``models.consent``) each delivery channel needs; others (``log``) need none."""


async def _declined(notification: Notification, channel: Channel) -> bool:
    """The patient withdrew their consent to messages on this channel: skipped, never sent."""
    wanted = CONSENT_CHANNELS.get(channel.name)
    if wanted is None or notification.recipient.kind != RecipientKind.PATIENT:
        return False
    found = await consent.current(notification.recipient.id, ConsentKind.NOTIFICATIONS, wanted)
    return found is not None and found.status is ConsentStatus.WITHDRAWN


async def dispatch(
    channel: Channel,
    *,
    clock: Clock = utcnow,
    policy: DispatchPolicy | None = None,
    limit: int = 100,
) -> DispatchResult:
    """Send up to ``limit`` due notifications; safe to run in several places at once."""
    policy = policy or DispatchPolicy()
    result = DispatchResult()
    token = uuid.uuid4().hex
    for _ in range(limit):
        now = clock()
        notification = await _claim(now, token, policy)
        if notification is None:
            break
        if not await _still_relevant(notification) or await _declined(notification, channel):
            await _settle(notification, token, {"status": NotificationStatus.SKIPPED.value})
            result.skipped += 1
            continue
        try:
            with tracing.span(  # the kind and channel only: no recipient, no text
                f"notify {channel.name}",
                SpanKind.PRODUCER,
                {"shms.notification.kind": str(notification.kind), "shms.channel": channel.name},
            ):
                await channel.send(notification)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
            permanent = isinstance(exc, PermanentDeliveryError)
            if permanent or notification.attempts >= policy.max_attempts:
                await _settle(
                    notification,
                    token,
                    {"status": NotificationStatus.FAILED.value, "last_error": error},
                )
                result.failed += 1
                log.warning(
                    "notification %s failed for good after %d attempts: %s",
                    notification.id,
                    notification.attempts,
                    type(exc).__name__,
                )
            else:
                retry_at = clock() + policy.retry_after(notification.attempts)
                await _settle(
                    notification,
                    token,
                    {
                        "status": NotificationStatus.PENDING.value,
                        "next_attempt_at": retry_at,
                        "last_error": error,
                    },
                )
                result.retrying += 1
            continue
        await _settle(
            notification,
            token,
            {"status": NotificationStatus.SENT.value, "sent_at": clock(), "last_error": None},
        )
        result.sent += 1
    for outcome in ("sent", "retrying", "failed", "skipped"):
        metrics.NOTIFICATIONS_SENT.labels(outcome).inc(getattr(result, outcome))
    return result


# -- reading -------------------------------------------------------------------------------------


def recipient_filter(recipients: Iterable[Recipient]) -> Query:
    """Notifications addressed to any of ``recipients``; none when the list is empty."""
    branches: list[Query] = [
        {"recipient.kind": r.kind.value, "recipient.id": r.id} for r in recipients
    ]
    if not branches:
        return {"_id": {"$exists": False}}
    return branches[0] if len(branches) == 1 else {"$or": branches}


async def list_notifications(query: Query, args: PageArgs) -> Page[Notification]:
    return await paginate(Notification, query, NEWEST_FIRST, args)
