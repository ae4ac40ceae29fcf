"""Break-the-glass grants: emergency access of one clinician to one patient, for a while."""

from __future__ import annotations

import pymongo

from auth.policy import Classification as Class
from auth.policy import R, S, declare, each, grant, row
from crypto.fields import sealed
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


# A clinician's own emergency grants (``viewer.emergencyAccess``).
ACCESS_GRANT = declare(
    "AccessGrant",
    AccessGrant,
    row(
        Class.SECURITY,
        ("id", "reason", "expiresAt", "createdAt", "patientId"),
        each((R.DOCTOR, R.NURSE), grant(S)),
    ),
    own=(("subject", "subject"),),
)

# Why the glass was broken is free text about the patient's emergency (reads go through the
# model: grants are found by subject and expiry, never by reason): encrypted at rest.
ACCESS_GRANT_SEALED = sealed(AccessGrant, "access_grants", ("reason",), {})
