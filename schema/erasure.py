"""GraphQL type of erasure requests (``models.erasure``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import erasure as m
from schema.common import entity_id, ref_id

strawberry.enum(m.ErasureStatus, description="in_progress until every collection is done.")
ErasureStatus = m.ErasureStatus


@strawberry.type(
    description="The erasure of one patient (GDPR Art. 17): one per patient, ever. It names "
    "the patient by id and pseudonym only."
)
class ErasureRequest:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    pseudonym: str = strawberry.field(description="What the patient's records now carry.")
    status: ErasureStatus
    reason: str = strawberry.field(description="As given, with the patient's identity struck.")
    requested_by: str = strawberry.field(description="The token subject who asked.")
    started_at: datetime
    completed_at: datetime | None
    records: int = strawberry.field(description="Documents the erasure changed.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ErasureRequest]) -> strawberry.ID | None:
        return ref_id(root.patient_id)
