"""The notification outbox: enqueue (from domain events and the reminder job), dispatch, list.

- Enqueue is one insert. The unique ``key`` makes it idempotent: a duplicate key means the
  message is queued already (a retried hook, a second worker, a second reminder run), and is
  ignored. Keys: ``<kind>:<appointment id>`` for bookings, cancellations and reminders,
  ``appointment_rescheduled:<id>:<new start>:<reschedule count>`` (each reschedule confirms
  once), ``prescription_picked_up:<prescription id>``.
- Confirmations come from ``on_event``, a bus ``on_publish`` hook installed by the app: it runs
  in the writing process for every write, so no service can forget to notify.
- Reminders: ``enqueue_reminders`` looks at the store, not at timers: every active appointment
  starting in ``(now, now + lead]`` gets its reminder row unless it has one. A restart, or a
  run that was skipped, loses nothing; two runs at once still queue one row.
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
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from events.types import DomainEvent
from models.base import utcnow
from models.clinical import Prescription, PrescriptionStatus
from models.notifications import (
    Notification,
    NotificationKind,
    NotificationStatus,
    Recipient,
    RecipientKind,
)
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, Appointment
from notifications.channels import Channel, PermanentDeliveryError
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


def _appointment_message(appointment: Appointment, kind: NotificationKind) -> tuple[str, str, str]:
    """(key, subject, body) for one appointment message."""
    when = _when(appointment.start_at)
    if kind == NotificationKind.APPOINTMENT_BOOKED:
        return (
            f"{kind.value}:{appointment.id}",
            "Appointment booked",
            f"Your appointment is booked for {when}.",
        )
    if kind == NotificationKind.APPOINTMENT_RESCHEDULED:
        start = appointment.start_at.isoformat()
        count = len(appointment.reschedule_history)
        return (
            f"{kind.value}:{appointment.id}:{start}:{count}",
            "Appointment moved",
            f"Your appointment has moved to {when}.",
        )
    if kind == NotificationKind.APPOINTMENT_CANCELLED:
        return (
            f"{kind.value}:{appointment.id}",
            "Appointment cancelled",
            f"Your appointment on {when} is cancelled.",
        )
    return (
        f"{kind.value}:{appointment.id}",
        "Appointment reminder",
        f"A reminder: you have an appointment at {when}.",
    )


async def notify_appointment(
    appointment: Appointment, kind: NotificationKind, *, clock: Clock = utcnow
) -> bool:
    key, subject, body = _appointment_message(appointment, kind)
    return await enqueue(
        key,
        Recipient(kind=RecipientKind.PATIENT, id=appointment.patient_id),
        kind,
        subject,
        body,
        clock=clock,
        appointment_id=appointment.id,
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


APPOINTMENT_CHANGES = {
    "created": NotificationKind.APPOINTMENT_BOOKED,
    "rescheduled": NotificationKind.APPOINTMENT_RESCHEDULED,
    "cancelled": NotificationKind.APPOINTMENT_CANCELLED,
}


async def on_event(event: DomainEvent) -> None:
    """The bus hook: queue the confirmation a write calls for (the document is read back)."""
    if event.entity == Appointment.get_collection_name():
        kind = APPOINTMENT_CHANGES.get(event.change)
        if kind is not None:
            appointment = await Appointment.get(ObjectId(event.id))
            if appointment is not None:
                await notify_appointment(appointment, kind)
    elif event.entity == Prescription.get_collection_name() and event.change == "status_changed":
        prescription = await Prescription.get(ObjectId(event.id))
        if prescription is not None and prescription.status == PrescriptionStatus.PICKED_UP:
            await notify_picked_up(prescription)


# -- reminders -----------------------------------------------------------------------------------


async def enqueue_reminders(
    *, clock: Clock = utcnow, lead: timedelta = REMINDER_LEAD, batch: int = 500
) -> int:
    """Queue a reminder for every active appointment starting in ``(now, now + lead]`` that has
    none yet; returns how many this run queued. Driven by the store alone."""
    now = clock()
    kind = NotificationKind.APPOINTMENT_REMINDER
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
        reminded = set(
            await _collection().distinct(
                "appointment_id",
                {"kind": kind.value, "appointment_id": {"$in": [a.id for a in appointments]}},
            )
        )
        for appointment in appointments:
            if appointment.id not in reminded:
                queued += await notify_appointment(appointment, kind, clock=clock)


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
    if notification.kind != NotificationKind.APPOINTMENT_REMINDER:
        return True
    appointment = await Appointment.get(notification.appointment_id)
    return appointment is not None and appointment.status in ACTIVE_APPOINTMENT_STATUSES


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
        if not await _still_relevant(notification):
            await _settle(notification, token, {"status": NotificationStatus.SKIPPED.value})
            result.skipped += 1
            continue
        try:
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
