"""GraphQL view of the audit trail, for compliance reviews."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import audit as m
from schema.common import entity_id, ref_id

strawberry.enum(m.AuditAction, description="What was done to the record.")
AuditAction = m.AuditAction
strawberry.enum(m.AuditOutcome, description="Whether the policy let the access happen.")
AuditOutcome = m.AuditOutcome


@strawberry.type(
    description="Accesses to, a change of, or a refusal of records; never edited. A request's "
    "reads of one type with the same fields are one event listing every record and patient."
)
class AuditEvent:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    at: datetime
    actor_subject: str = strawberry.field(description="Who: the token subject, or 'anonymous'.")
    actor_roles: list[str]
    action: AuditAction
    outcome: AuditOutcome
    entity: str = strawberry.field(description="The record's GraphQL type, e.g. `Patient`.")
    fields: list[str] = strawberry.field(description="Fields returned (reads) or written.")
    withheld: list[str] = strawberry.field(description="Fields asked for but withheld by policy.")
    reason: str | None = strawberry.field(description="The break-the-glass or denial reason.")
    break_glass: bool
    request_id: str
    client_request_id: str | None
    client_address: str | None
    operation: str | None = strawberry.field(description="GraphQL operation or mutation name.")

    @strawberry.field
    @staticmethod
    def entity_id(root: strawberry.Parent[m.AuditEvent]) -> strawberry.ID | None:
        """The record, when the event covers one (see ``entityIds``)."""
        return ref_id(root.entity_id)

    @strawberry.field(description="Every record the event covers.")
    @staticmethod
    def entity_ids(root: strawberry.Parent[m.AuditEvent]) -> list[strawberry.ID]:
        return [strawberry.ID(str(i)) for i in root.entity_ids]

    @strawberry.field(description="Every patient whose health data those records hold.")
    @staticmethod
    def patient_ids(root: strawberry.Parent[m.AuditEvent]) -> list[strawberry.ID]:
        return [strawberry.ID(str(i)) for i in root.patient_ids]

    @strawberry.field(description="Whose health data the records hold, when one patient's.")
    @staticmethod
    def patient_id(root: strawberry.Parent[m.AuditEvent]) -> strawberry.ID | None:
        return ref_id(root.patient_id)
