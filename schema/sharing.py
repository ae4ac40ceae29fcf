"""GraphQL types of record shares (``models.sharing``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import sharing as m
from models.base import utcnow
from schema.common import entity_id, ref_id

strawberry.enum(m.ShareBasis, description="The patient's consent, or an emergency (audited).")
ShareBasis = m.ShareBasis
strawberry.enum(m.ShareStatus)
ShareStatus = m.ShareStatus


@strawberry.type(
    description="A patient's record (or some of its FHIR resource types) shared with another "
    "provider's service client, for a purpose, until it expires or is revoked."
)
class RecordShare:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    shared_by: str
    recipient_client_id: str
    recipient_name: str
    purpose: str
    resource_types: list[str]
    deidentified: bool
    starts_at: datetime
    expires_at: datetime
    basis: ShareBasis
    consent_version: int | None
    emergency_reason: str | None
    status: ShareStatus
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.RecordShare]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def shared_by_id(root: strawberry.Parent[m.RecordShare]) -> strawberry.ID | None:
        return ref_id(root.shared_by_id)

    @strawberry.field(description="Not revoked and within its period (consent checked on read).")
    @staticmethod
    def active(root: strawberry.Parent[m.RecordShare]) -> bool:
        return root.status is m.ShareStatus.ACTIVE and root.starts_at <= utcnow() < root.expires_at


@strawberry.input
class ShareRecordInput:
    patient_id: strawberry.ID
    recipient_client_id: str
    purpose: str
    expires_at: datetime
    resource_types: list[str] | None = strawberry.field(
        default=None, description="FHIR resource types shared; default: all (Patient always)."
    )
    deidentified: bool = strawberry.field(
        default=False, description="HIPAA Safe Harbor: for research, needs the research consent."
    )
    emergency_reason: str | None = strawberry.field(
        default=None,
        description="Share without consent on an emergency basis (audited like break-the-glass).",
    )
