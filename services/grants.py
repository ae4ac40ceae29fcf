"""Break-the-glass: time-boxed emergency access of one clinician to one patient."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from models.base import utcnow
from models.grants import AccessGrant
from models.patients import Patient
from services import common
from services.validation import build, require

MIN_REASON = 10


async def open_grant(subject: str, patient_id: ObjectId, reason: str, minutes: int) -> AccessGrant:
    """Open ``patient_id`` to ``subject`` for ``minutes``; the reason must say why."""
    require(len(reason.strip()) >= MIN_REASON, "reason", f"give at least {MIN_REASON} characters")
    await common.get_or_404(Patient, patient_id, "Patient")
    now = utcnow()
    grant = build(
        AccessGrant,
        {
            "subject": subject,
            "patient_id": patient_id,
            "reason": reason,
            "expires_at": now + timedelta(minutes=minutes),
        },
    )
    return await common.insert(grant, "access grant")


async def live(subject: str) -> list[AccessGrant]:
    """The grants of ``subject`` that have not expired."""
    return await AccessGrant.find({"subject": subject, "expires_at": {"$gt": utcnow()}}).to_list()


async def live_grants(subject: str) -> dict[ObjectId, str]:
    """The patients ``subject`` may open now, with the reason given (for the audit trail)."""
    return {g.patient_id: g.reason for g in await live(subject)}
