"""The notification outbox: one row per message to send, written before anything is sent.

The ``key`` is the idempotency key and carries a unique index: enqueueing is an insert, and a
duplicate key means the message is already queued (by this worker or another), so every key
is sent at most once whichever process noticed the reason first.
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

from auth.policy import Classification as Class
from auth.policy import R, S, declare, grant, row
from models.base import Entity, Ref, UtcDatetime


class RecipientKind(StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"


class NotificationKind(StrEnum):
    APPOINTMENT_BOOKED = "appointment_booked"
    APPOINTMENT_RESCHEDULED = "appointment_rescheduled"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    APPOINTMENT_REMINDER = "appointment_reminder"
    PRESCRIPTION_PICKED_UP = "prescription_picked_up"
    LAB_CRITICAL_RESULT = "lab_critical_result"  # to the ordering doctor


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by one dispatcher until claim_expires_at
    SENT = "sent"
    FAILED = "failed"  # gave up: max attempts, or an error retrying cannot fix
    # never sent: withdrawn, the facts overtook it (a reminder for a time since moved or
    # cancelled, a confirmation of a booking since cancelled); see services/notifications.py
    SKIPPED = "skipped"


class Recipient(BaseModel):
    kind: RecipientKind
    id: Ref


class Notification(Entity):
    key: str = Field(description="Idempotency key: one message per key, ever.")
    recipient: Recipient
    kind: NotificationKind
    subject: str
    body: str
    appointment_id: Ref | None = None
    prescription_id: Ref | None = None
    status: NotificationStatus = NotificationStatus.PENDING
    attempts: int = 0
    next_attempt_at: UtcDatetime
    claim_token: str | None = None
    claim_expires_at: UtcDatetime | None = None
    last_error: str | None = None
    sent_at: UtcDatetime | None = None

    class Settings:
        name = "notifications"
        indexes = [
            pymongo.IndexModel([("key", 1)], unique=True, name="one_message_per_key"),
            # The dispatcher's claim: due ones by status, oldest first (_id breaks ties).
            pymongo.IndexModel([("status", 1), ("next_attempt_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("claim_expires_at", 1)]),
            pymongo.IndexModel(
                [("recipient.kind", 1), ("recipient.id", 1), ("created_at", -1), ("_id", -1)]
            ),
            pymongo.IndexModel([("appointment_id", 1), ("kind", 1)]),
        ]


# Recipients only: a patient their own messages, a doctor (by staff id) theirs.
NOTIFICATION = declare(
    "Notification",
    Notification,
    row(
        Class.CLINICAL,
        (
            "id",
            "kind",
            "subject",
            "body",
            "status",
            "attempts",
            "createdAt",
            "sentAt",
            "recipientKind",
            "recipientId",
            "appointmentId",
            "prescriptionId",
        ),
        {R.PATIENT: grant(S), R.DOCTOR: grant(S)},
    ),
    own=(("recipient.id", "patient_id"), ("recipient.id", "staff_id")),
    published=False,
)
