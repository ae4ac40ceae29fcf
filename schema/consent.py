"""GraphQL types of consents (``models.consent``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import consent as m
from schema.common import entity_id, ref_id

strawberry.enum(m.ConsentKind, description="sharing, research, or notifications on a channel.")
ConsentKind = m.ConsentKind
strawberry.enum(m.ConsentChannel)
ConsentChannel = m.ConsentChannel
strawberry.enum(m.ConsentStatus)
ConsentStatus = m.ConsentStatus


@strawberry.type(
    description="One version of a patient's consent; a change is a new version, never an edit."
)
class Consent:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: ConsentKind
    channel: ConsentChannel | None
    status: ConsentStatus
    version: int
    scope: list[str] = strawberry.field(
        description="Organisations (service client ids) or purposes it covers; empty: any."
    )
    recorded_at: datetime
    recorded_by: str = strawberry.field(description="The token subject who recorded it.")
    on_behalf: bool = strawberry.field(description="Recorded by staff for the patient.")
    note: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Consent]) -> strawberry.ID | None:
        return ref_id(root.patient_id)


@strawberry.input
class RecordConsentInput:
    patient_id: strawberry.ID
    kind: ConsentKind
    channel: ConsentChannel | None = None
    scope: list[str] | None = None
    note: str | None = None
    expected_version: int | None = strawberry.field(
        default=None, description="The current version you saw (0: none): CONFLICT if it moved."
    )
