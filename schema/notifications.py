"""GraphQL view of the notification outbox: a recipient's own messages."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import notifications as m
from schema.common import entity_id, ref_id

strawberry.enum(m.NotificationKind, description="Why the message was sent.")
NotificationKind = m.NotificationKind
strawberry.enum(m.NotificationStatus, description="Where the message is in delivery.")
NotificationStatus = m.NotificationStatus
strawberry.enum(m.RecipientKind, description="Who a message is for: a patient or a doctor.")
RecipientKind = m.RecipientKind


@strawberry.type(description="One message to a patient or doctor: a confirmation or reminder.")
class Notification:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: NotificationKind
    subject: str
    body: str
    status: NotificationStatus
    attempts: int = strawberry.field(description="Delivery attempts so far.")
    created_at: datetime
    sent_at: datetime | None

    @strawberry.field
    @staticmethod
    def recipient_kind(root: strawberry.Parent[m.Notification]) -> RecipientKind:
        return root.recipient.kind

    @strawberry.field
    @staticmethod
    def recipient_id(root: strawberry.Parent[m.Notification]) -> strawberry.ID:
        return strawberry.ID(str(root.recipient.id))

    @strawberry.field(description="The appointment the message is about, if any.")
    @staticmethod
    def appointment_id(root: strawberry.Parent[m.Notification]) -> strawberry.ID | None:
        return ref_id(root.appointment_id)

    @strawberry.field(description="The prescription the message is about, if any.")
    @staticmethod
    def prescription_id(root: strawberry.Parent[m.Notification]) -> strawberry.ID | None:
        return ref_id(root.prescription_id)
