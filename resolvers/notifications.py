"""The ``notifications`` root field: the caller's own messages, newest first."""

from __future__ import annotations

import strawberry

from auth.policy import READ, ROW, EntityKind, relations_for
from auth.roles import Role
from errors import Forbidden
from models.notifications import Recipient, RecipientKind
from schema.common import Connection, connection
from schema.context import Info
from schema.notifications import Notification
from services import notifications


@strawberry.type
class NotificationQuery:
    @strawberry.field(
        description="Your own notifications, newest first: a patient's, or a doctor's."
    )
    async def notifications(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Notification]:
        ctx = info.context
        principal = ctx.access.principal
        rules = READ[EntityKind.NOTIFICATION][ROW]
        granted = {role for role in principal.roles if role in rules}
        if not relations_for(rules, principal.roles):
            raise Forbidden("Only patients and doctors receive notifications")
        # Which recipient each granted role reads as: a patient by record, a doctor by staff id.
        mine: list[Recipient] = []
        if principal.patient_id is not None and Role.PATIENT in granted:
            mine.append(Recipient(kind=RecipientKind.PATIENT, id=principal.patient_id))
        if principal.staff_id is not None and Role.DOCTOR in granted:
            mine.append(Recipient(kind=RecipientKind.DOCTOR, id=principal.staff_id))
        query = notifications.recipient_filter(mine)
        page = await notifications.list_notifications(query, ctx.page(first, after))
        return connection(Notification, page)
