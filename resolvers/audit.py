"""The audit trail root field: administrators and compliance officers only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from auth.audit import require_audit_reader
from schema.audit import AuditAction, AuditEvent, AuditOutcome
from schema.common import Connection, connection, oid
from schema.context import Info
from services import audit


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Audit events, newest first. Admin and compliance roles only.")
    async def audit_events(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        actor: str | None = None,
        since: Annotated[
            datetime | None,
            strawberry.argument(name="from", description="Events at or after this instant"),
        ] = None,
        before: Annotated[
            datetime | None,
            strawberry.argument(name="to", description="Events before this instant"),
        ] = None,
        action: AuditAction | None = None,
        outcome: AuditOutcome | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        ctx = info.context
        require_audit_reader(ctx.principal, ctx.auth_error)  # reads of the trail are not audited
        query = audit.audit_filter(
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            actor=actor,
            since=since,
            before=before,
            action=action,
            outcome=outcome,
        )
        page = await audit.list_audit_events(query, ctx.page(first, after))
        return connection(AuditEvent, page)
