"""Idempotency keys for mutations that create or move money or bookings.

A client that may retry (a timeout, a dropped connection, a double click) sends the same
``idempotencyKey`` with the same arguments; the mutation then takes effect once, and every
retry gets the first answer again, as payment APIs and the IETF Idempotency-Key draft do: a
retried payment shows the balance it left, not today's, and a retried booking stays
``SCHEDULED`` after a later cancel. The design uses MongoDB alone, no transactions: the
``idempotency_keys`` collection has a unique index on (subject, key), so exactly one request wins
the insert of the ``in_progress`` claim and runs the mutation.

- Same key, same payload, finished: the first answer stored with the key (the returned document
  as pydantic JSON, which round-trips exactly where BSON would drop microseconds) is validated
  back into its Beanie model and handed to the caller's ``replay``, which re-checks that the
  caller may still do the action and audits the answer, noted as a replay (``replay_note``).
  The answer's fields go through the schema's field checks for the retrying caller like any
  answer; the records it links to (patient, doctor) resolve as they are now. A row without a
  snapshot (written before snapshots existed) or one its model no longer parses gets
  ``CONFLICT``: an answer read from today's state would be the wrong one.
- Same key, same payload, still running: poll (a few ms, growing) for at most
  ``WAIT_FOR_RESULT``; then ``CONFLICT`` ("still in progress, retry later").
- Same key, another payload or another mutation: ``CONFLICT``, nothing runs. Keys are per
  caller (token subject): another caller's identical key is independent.
- The mutation refused the request (``BAD_USER_INPUT``, ``CONFLICT``, ``NOT_FOUND``,
  ``FORBIDDEN``, ...: such errors are raised before anything is written): the claim is deleted,
  so a corrected retry may use the same key.
- Any other error: the effect is unknown (the write may have happened before the failure),
  so the row is kept as ``failed`` for ``FAILED_HOLD`` and retries with the key get
  ``CONFLICT`` telling the client to check the state; afterwards the key may be used again.
- A claim whose process died stays ``in_progress`` only for ``LEASE``; then it counts as
  expired and the next retry takes it over.

Rows expire ``KEY_LIFETIME`` after the claim (a TTL index on real MongoDB; reads filter on
``expires_at`` anyway, and an expired row is replaced by a compare-and-set on its ``claim``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from beanie import Document
from bson import ObjectId
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

import db
from crypto.fields import open_document
from errors import BadUserInput, Conflict, ShmsError
from models.base import utcnow
from models.idempotency import IDEMPOTENCY_SEALED, IdempotencyKey, IdempotencyStatus

D = TypeVar("D", bound=Document)

KEY_LIFETIME = timedelta(hours=24)
LEASE = timedelta(seconds=60)  # longer than any of these mutations may take
FAILED_HOLD = timedelta(seconds=60)
WAIT_FOR_RESULT = 5.0  # seconds a duplicate waits for the first request to finish
MAX_KEY_LENGTH = 100

# Refusals: the services raise these before writing anything, so the key is released.
NOTHING_WRITTEN = frozenset(
    {"BAD_USER_INPUT", "CONFLICT", "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED", "RATE_LIMITED"}
)


def _plain(value: Any) -> Any:
    """Arguments -> JSON-able values, the same for equal arguments however they were written."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, datetime):
        try:
            return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
        except OverflowError:  # a calendar-end instant: the call itself refuses it
            return value.isoformat()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, ObjectId):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def payload_hash(operation: str, subject: str, payload: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the mutation name, the caller and the arguments."""
    document = {"operation": operation, "subject": subject, "arguments": _plain(payload)}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        reason = f"must be 1 to {MAX_KEY_LENGTH} characters"
        raise BadUserInput(f"idempotencyKey: {reason}", {"idempotencyKey": reason})


QUOTED = re.compile(r"\b[0-9a-f]{24}\b")
"""An id as JSON spells it (ObjectId hex)."""


def _collection() -> Any:
    return db.collection(IdempotencyKey)


@dataclasses.dataclass(frozen=True)
class _Held:
    """A claim this request holds: the row, its token and when it was claimed."""

    row_id: Any
    claim: str
    claimed_at: datetime


async def _claim(subject: str, key: str, operation: str, digest: str) -> _Held:
    """Insert the ``in_progress`` row; raises DuplicateKeyError if (subject, key) exists."""
    now = utcnow()
    claim = secrets.token_hex(16)
    row: dict[str, Any] = {
        "subject": subject,
        "key": key,
        "operation": operation,
        "payload_hash": digest,
        "status": IdempotencyStatus.IN_PROGRESS.value,
        "claim": claim,
        "result_id": None,
        "result_model": None,
        "result_json": None,
        "quotes": [],
        "claimed_at": now,
        "expires_at": now + LEASE,
    }
    inserted = await _collection().insert_one(row)
    return _Held(inserted.inserted_id, claim, now)


async def _take_over(row: Mapping[str, Any], operation: str, digest: str) -> _Held | None:
    """Replace an expired row by a fresh claim, unless someone else replaced it first."""
    now = utcnow()
    claim = secrets.token_hex(16)
    done = await _collection().update_one(
        {"_id": row["_id"], "claim": row["claim"], "expires_at": {"$lte": now}},
        {
            "$set": {
                "operation": operation,
                "payload_hash": digest,
                "status": IdempotencyStatus.IN_PROGRESS.value,
                "claim": claim,
                "result_id": None,
                "result_model": None,
                "result_json": None,
                "quotes": [],
                "claimed_at": now,
                "expires_at": now + LEASE,
            }
        },
    )
    return _Held(row["_id"], claim, now) if done.modified_count == 1 else None


def _expired(row: Mapping[str, Any]) -> bool:
    expires: datetime = row["expires_at"]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires <= utcnow()


def _refuse_mismatch(row: Mapping[str, Any], operation: str, digest: str) -> None:
    if row["operation"] != operation:
        raise Conflict(
            f"idempotencyKey was already used for {row['operation']}; use a new key",
            fields=["idempotencyKey"],
        )
    if row["payload_hash"] != digest:
        raise Conflict(
            f"idempotencyKey was already used for {operation} with different arguments;"
            " use a new key for a different request",
            fields=["idempotencyKey"],
        )


async def _run_claimed(held: _Held, run: Callable[[], Awaitable[D]]) -> D:
    mine = {"_id": held.row_id, "claim": held.claim}
    try:
        result = await run()
        # Inside the try: an answer that cannot be kept must hold the key, not free it to run
        # again once the lease lapses.
        done = {
            "status": IdempotencyStatus.DONE.value,
            "result_id": str(result.id),
            "result_model": _model_name(type(result)),
            "result_json": (snapshot := result.model_dump_json()),
            "quotes": sorted(set(QUOTED.findall(snapshot))),
            "expires_at": held.claimed_at + KEY_LIFETIME,
        }
    except ShmsError as exc:
        if exc.code in NOTHING_WRITTEN:
            await _collection().delete_one(mine)
        else:
            await _fail(mine)
        raise
    except BaseException:  # cancelled included: whether the write happened is unknown
        await asyncio.shield(_fail(mine))
        raise
    await _collection().update_one(mine, {"$set": done})
    return result


def _model_name(model: type[Document]) -> str:
    """Kept beside the snapshot, so a row is never parsed as another model's answer."""
    return f"{model.__module__}.{model.__qualname__}"


def replay_note(key: str) -> str:
    """The audit reason of a retry answered from ``key``, so compliance can tell it apart."""
    return f"idempotent replay of {key}: the first answer again, nothing written"


def _first_answer(row: Mapping[str, Any], model: type[D]) -> D:
    """The document the first call returned, rebuilt from the row's snapshot."""
    text, name = open_document(IDEMPOTENCY_SEALED, row).get("result_json"), row.get("result_model")
    if isinstance(text, str) and name == _model_name(model):
        try:
            return model.model_validate_json(text)
        except ValidationError:  # the model changed since: never guess an answer
            pass
    raise Conflict(
        "The first answer to this idempotencyKey can no longer be shown; check the current"
        " state, then use a new key if still needed",
        fields=["idempotencyKey"],
    )


async def _fail(mine: Mapping[str, Any]) -> None:
    until = utcnow() + FAILED_HOLD
    status = IdempotencyStatus.FAILED.value
    await _collection().update_one(mine, {"$set": {"status": status, "expires_at": until}})


async def idempotent(
    subject: str | None,
    operation: str,
    key: str | None,
    payload: Mapping[str, Any],
    model: type[D],
    run: Callable[[], Awaitable[D]],
    replay: Callable[[D, str], Awaitable[D]],
) -> D:
    """Run ``run`` once per (``subject``, ``key``); retries get ``replay(first answer, note)``.

    ``run`` returns a ``model`` document; ``replay`` must re-check the caller's right (a retry
    must not outlive a revoked one), audit the answer with ``note`` (``replay_note``) and
    return it. Without a key (or a caller: ``run`` then refuses the request) this is just ``run()``.
    """
    if key is None or subject is None:
        return await run()
    check_key(key)
    digest = payload_hash(operation, subject, payload)
    deadline = time.monotonic() + WAIT_FOR_RESULT
    pause = 0.002
    while True:
        try:
            held = await _claim(subject, key, operation, digest)
        except DuplicateKeyError:
            pass
        else:
            return await _run_claimed(held, run)
        row = await _collection().find_one({"subject": subject, "key": key})
        if row is None:  # released or removed meanwhile: claim again at once
            continue
        if _expired(row):
            taken = await _take_over(row, operation, digest)
            if taken is not None:
                return await _run_claimed(taken, run)
            continue
        _refuse_mismatch(row, operation, digest)
        if row["status"] == IdempotencyStatus.DONE.value:
            return await replay(_first_answer(row, model), replay_note(key))
        if row["status"] == IdempotencyStatus.FAILED.value:
            raise Conflict(
                "An earlier request with this idempotencyKey failed unexpectedly and its"
                " effect is unknown; check the current state, then use a new key if still needed",
                fields=["idempotencyKey"],
            )
        if time.monotonic() >= deadline:
            raise Conflict(
                "A request with this idempotencyKey is still in progress; retry later",
                fields=["idempotencyKey"],
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
