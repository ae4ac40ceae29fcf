"""Break-the-glass grants: emergency access of one clinician to one patient, for a while."""

from __future__ import annotations

import pymongo

from models.base import Entity, Ref, ShortText, UtcDatetime


class AccessGrant(Entity):
    subject: str  # the clinician's token subject
    patient_id: Ref
    reason: ShortText
    expires_at: UtcDatetime

    class Settings:
        name = "access_grants"
        indexes = [
            pymongo.IndexModel([("subject", 1), ("expires_at", 1)]),
            # Real MongoDB drops expired grants by itself; reads filter on expires_at anyway.
            pymongo.IndexModel("expires_at", expireAfterSeconds=0),
        ]
