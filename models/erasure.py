"""Access and erasure requests (GDPR Art. 15 and 17): the record of each patient's erasure.

One ``ErasureRequest`` per patient, ever (a unique index on ``patient_id``): it is written
before anything is erased, so a crash part way leaves a request ``in_progress`` that the next
call (or anyone retrying) completes, and a second request for an erased patient answers with
the first one. It holds no identity: the patient's pseudonym, who asked and why (the reason
with the patient's identity struck out).

``PatientDataExport`` has no collection: it is the permission to download everything SHMS holds
about a patient (``GET /patients/{id}/export``): the patient themself, or an admin on their
behalf.
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import Field

from auth.policy import A, R, S, declare, each, grant, row
from auth.policy import Classification as Class
from models.base import Entity, LongText, Ref, UtcDatetime, utcnow


class ErasureStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # begun; reads of the patient already see the pseudonym
    DONE = "done"


class ErasureRequest(Entity):
    patient_id: Ref
    pseudonym: str = Field(pattern=r"^ERASED-[0-9a-f]{16}$")
    status: ErasureStatus = ErasureStatus.IN_PROGRESS
    reason: LongText
    requested_by: str = Field(max_length=255, description="The token subject who asked.")
    started_at: UtcDatetime = Field(default_factory=utcnow)
    completed_at: UtcDatetime | None = None
    records: int = Field(default=0, description="Documents changed by the erasure.")

    class Settings:
        name = "erasure_requests"
        keep_nulls = False
        indexes = [pymongo.IndexModel("patient_id", unique=True)]


ERASE = "erasePatient"
EXPORT = "exportPatientData"

# Erasure is irreversible: admins only. Compliance officers read the requests (and the audit
# trail) to answer regulators, but do not erase.
ERASURE_REQUEST = declare(
    "ErasureRequest",
    ErasureRequest,
    row(
        Class.SECURITY,
        (
            "id",
            "patientId",
            "pseudonym",
            "status",
            "reason",
            "requestedBy",
            "startedAt",
            "completedAt",
            "records",
            "createdAt",
            "updatedAt",
        ),
        each((R.ADMIN, R.COMPLIANCE), grant(A)),
    ),
    actions={ERASE: {R.ADMIN: grant(A)}},
    patient="patient_id",
    creates=frozenset({ERASE}),
)

PATIENT_DATA_EXPORT = declare(
    "PatientDataExport",
    None,
    row(Class.SECURITY, ("patientDataExport",), {R.ADMIN: grant(A), R.PATIENT: grant(S)}),
    actions={EXPORT: {R.ADMIN: grant(A), R.PATIENT: grant(S)}},
)
