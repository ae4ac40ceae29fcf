"""Idempotency keys: one row per (caller, key) remembers what a retried mutation did."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from beanie import Document
from pydantic import Field

from crypto.fields import sealed
from models.base import UtcDatetime


class IdempotencyStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # claimed; the mutation runs (or its process died)
    DONE = "done"  # ran once; retries answer with the stored first answer (result_json)
    FAILED = "failed"  # failed unexpectedly, effect unknown; refused until expires_at


class IdempotencyKey(Document):
    """Written and read only by ``services.idempotency``.

    ``expires_at`` is the single clock: 24 hours after the claim for ``done`` rows, a short
    lease for ``in_progress`` and ``failed`` ones. A row past it counts as absent (real MongoDB's
    TTL monitor removes it eventually; mongomock never does) and is replaced by a
    compare-and-set on ``claim``, the random token of whoever holds the row.

    A ``done`` row keeps the first answer itself (``result_json``, the returned document as
    pydantic JSON, with ``result_model`` naming its class), not just its id: a retry must see
    what the first call returned, not today's state. That snapshot is patient data (a booking,
    an account), kept no longer than the row: 24 hours.
    """

    subject: str  # the caller's token subject
    key: str
    operation: str  # the mutation's GraphQL name
    payload_hash: str  # sha256 of the canonical JSON of operation, subject and arguments
    status: IdempotencyStatus
    claim: str
    result_id: str | None = None  # the entity the first call returned
    result_model: str | None = None  # its document class, ``module.QualName``
    result_json: str | None = None  # the document exactly as first returned (model_dump_json)
    # Every id the snapshot quotes (24-hex strings), in clear: erasure finds the snapshots that
    # quote a patient here, as ``result_json`` itself is sealed.
    quotes: list[str] = Field(default_factory=list)
    claimed_at: UtcDatetime
    expires_at: UtcDatetime

    class Settings:
        name = "idempotency_keys"
        indexes = [
            pymongo.IndexModel([("subject", 1), ("key", 1)], unique=True),
            pymongo.IndexModel("expires_at", expireAfterSeconds=0),
        ]


# The first answer is patient data (a booking, a procedure, a clinical question): sealed.
IDEMPOTENCY_SEALED = sealed(IdempotencyKey, "idempotency_keys", ("result_json",), {})
