"""Making, revoking and resolving record shares (``models.sharing``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from beanie.odm.enums import SortDirection
from bson import ObjectId

import db
from errors import BadUserInput, Conflict, Forbidden, NotFound
from models.accounts import ServiceClient
from models.base import utcnow
from models.consent import ConsentKind
from models.sharing import RecordShare, ShareBasis, ShareStatus
from services import consent as consents
from services.changes import changed
from services.fhir import RESOURCE_TYPES

MAX_SHARE_DAYS = 366
RESEARCH_PURPOSE = "research"


def consent_kind(share_deidentified: bool) -> ConsentKind:
    """De-identified shares rest on the research consent, others on the sharing consent."""
    return ConsentKind.RESEARCH if share_deidentified else ConsentKind.SHARING


async def create(
    patient_id: ObjectId,
    shared_by_id: ObjectId,
    shared_by: str,
    recipient_client_id: str,
    purpose: str,
    resource_types: Iterable[str],
    expires_at: datetime,
    deidentified: bool = False,
    emergency_reason: str | None = None,
) -> RecordShare:
    """A share with the patient's current consent (whose scope, when it lists any, must name
    the recipient or the purpose), or on an emergency basis with a reason."""
    types = sorted(set(resource_types) | {"Patient"})
    unknown = [t for t in types if t not in RESOURCE_TYPES]
    if unknown:
        raise BadUserInput(
            f"resourceTypes: unknown {', '.join(unknown)}",
            {"resourceTypes": f"use {', '.join(RESOURCE_TYPES)}"},
        )
    now = utcnow()
    if not now < expires_at <= now + timedelta(days=MAX_SHARE_DAYS):
        raise BadUserInput(
            f"expiresAt: must be in the next {MAX_SHARE_DAYS} days",
            {"expiresAt": "in the future, within a year"},
        )
    client = await ServiceClient.find_one({"client_id": recipient_client_id})
    if client is None or not client.active:
        raise BadUserInput(
            "recipientClientId: no active service client", {"recipientClientId": "unknown"}
        )
    basis, consent = ShareBasis.EMERGENCY, None
    if emergency_reason is None:
        kind = consent_kind(deidentified)
        consent = await consents.granted(patient_id, kind)
        covered = consent is not None and (
            not consent.scope or recipient_client_id in consent.scope or purpose in consent.scope
        )
        if not covered:
            consent = None
        if consent is None:
            raise Forbidden(
                f"The patient has not consented to {kind.value} for this recipient or purpose;"
                " record their consent, or share on an emergency basis with a reason",
                reason="no_consent",
            )
        basis = ShareBasis.CONSENT
    elif deidentified:
        raise BadUserInput(
            "emergencyReason: de-identified (research) shares need the research consent",
            {"emergencyReason": "not for research shares"},
        )
    share = RecordShare(
        patient_id=patient_id,
        shared_by_id=shared_by_id,
        shared_by=shared_by,
        recipient_client_id=recipient_client_id,
        recipient_name=client.name,
        purpose=purpose,
        resource_types=types,
        deidentified=deidentified,
        starts_at=now,
        expires_at=expires_at,
        basis=basis,
        consent_id=consent.id if consent else None,
        consent_version=consent.version if consent else None,
        emergency_reason=emergency_reason,
    )
    await share.insert()
    await changed(share, "shared")
    return share


async def revoke(share: RecordShare, by: str, reason: str | None) -> RecordShare:
    """Active -> revoked, once (compare-and-set on status and version)."""
    now = utcnow()
    result = await db.collection(RecordShare).update_one(
        {"_id": share.id, "status": ShareStatus.ACTIVE.value, "version": share.version},
        {
            "$set": {
                "status": ShareStatus.REVOKED.value,
                "revoked_at": now,
                "revoked_by": by,
                "revoke_reason": reason,
                "updated_at": now,
            },
            "$inc": {"version": 1},
        },
    )
    if result.modified_count != 1:
        raise Conflict("This share is already revoked or changed meanwhile; read it again")
    stored = await RecordShare.get(share.id)
    if stored is None:
        raise NotFound("RecordShare", str(share.id))
    await changed(stored, "revoked")
    return stored


async def effective(share: RecordShare, now: datetime | None = None) -> str | None:
    """Why the share gives nothing now (None: it is in force)."""
    now = now or utcnow()
    if share.status is not ShareStatus.ACTIVE:
        return "revoked"
    if not share.starts_at <= now < share.expires_at:
        return "expired"
    if share.basis is ShareBasis.CONSENT:
        consent = await consents.granted(share.patient_id, consent_kind(share.deidentified))
        if consent is None:
            return "consent withdrawn"
    return None


async def for_recipient(client_id: str, patient_id: ObjectId) -> list[RecordShare]:
    """Every share of this patient's record with this client (in force or not)."""
    return await RecordShare.find(
        {"recipient_client_id": client_id, "patient_id": patient_id}
    ).to_list()


async def of_patient(patient_id: ObjectId) -> list[RecordShare]:
    return (
        await RecordShare.find({"patient_id": patient_id})
        .sort([("_id", SortDirection.ASCENDING)])
        .to_list()
    )
