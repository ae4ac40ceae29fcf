"""Record shares: a clinician sends (part of) a patient's record to another provider.

The receiver is a service client (its own client credentials: another hospital's system, a
registry, a research group) and reads the shared resource types through the FHIR endpoint,
while the share lasts and is not revoked. A share rests on the patient's current consent
(sharing; research for de-identified shares), checked when it is made and again on every read,
so withdrawing the consent ends it; or on an emergency basis, with a reason, flagged in the
audit trail like break-the-glass.

Who reads shares: the clinicians who treat the patient and the one who shared, the patient
(who their record went to), admin and compliance.
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import Field

from auth.policy import A, C, R, S, declare, grant, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Name, Ref, ShortText, UtcDatetime, utcnow


class ShareBasis(StrEnum):
    CONSENT = "consent"
    EMERGENCY = "emergency"


class ShareStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class RecordShare(Entity):
    patient_id: Ref
    shared_by_id: Ref = Field(description="The clinician's staff record.")
    shared_by: str = Field(max_length=255, description="Their token subject.")
    recipient_client_id: str = Field(max_length=64, description="The receiver's ServiceClient.")
    recipient_name: Name
    purpose: ShortText
    resource_types: list[str] = Field(min_length=1, max_length=20)
    deidentified: bool = Field(default=False, description="HIPAA Safe Harbor (research).")
    starts_at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime
    basis: ShareBasis
    consent_id: Ref | None = None
    consent_version: int | None = None
    emergency_reason: ShortText | None = None
    status: ShareStatus = ShareStatus.ACTIVE
    revoked_at: UtcDatetime | None = None
    revoked_by: str | None = Field(default=None, max_length=255)
    revoke_reason: ShortText | None = None
    version: int = 0

    class Settings:
        name = "record_shares"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("recipient_client_id", 1), ("patient_id", 1), ("status", 1)]),
            pymongo.IndexModel([("shared_by_id", 1), ("_id", 1)]),
        ]


_SHARERS = {R.DOCTOR: grant(C), R.NURSE: grant(C)}

RECORD_SHARE = declare(
    "RecordShare",
    RecordShare,
    row(
        Class.SECURITY,
        (
            "id",
            "patientId",
            "sharedById",
            "sharedBy",
            "recipientClientId",
            "recipientName",
            "purpose",
            "resourceTypes",
            "deidentified",
            "startsAt",
            "expiresAt",
            "basis",
            "consentVersion",
            "emergencyReason",
            "status",
            "revokedAt",
            "revokedBy",
            "revokeReason",
            "active",
            "version",
            "createdAt",
            "updatedAt",
        ),
        {**_SHARERS, R.ADMIN: grant(A), R.COMPLIANCE: grant(A), R.PATIENT: grant(S)},
    ),
    actions={
        "shareRecord": _SHARERS,
        "revokeRecordShare": {**_SHARERS, R.ADMIN: grant(A), R.PATIENT: grant(S)},
    },
    creates=frozenset({"shareRecord"}),
    patient="patient_id",
    clinicians=("shared_by_id",),
    refs=("patient_id", "shared_by_id"),
    order=(("starts_at", 1), ("_id", 1)),
)

# Purpose and reasons are free text about the patient's care (an emergency, why a share ended);
# nothing queries them (the consent's scope is compared with the purpose in Python).
RECORD_SHARE_SEALED = sealed(
    RecordShare, "record_shares", ("purpose", "emergency_reason", "revoke_reason"), {}
)
