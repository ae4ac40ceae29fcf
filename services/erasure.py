"""Erasing a patient (GDPR Art. 17): identity removed everywhere, retained records pseudonymised.

The order makes it safe without transactions, and resumable:

1. holds: refused (``CONFLICT``, reason ``LEGAL_HOLD``, the holds listed) while one applies;
2. the ``ErasureRequest`` is inserted (unique per patient): from here on, a call for this
   patient completes this erasure, whoever makes it, whatever crashed before;
3. the patient document: identity replaced by the pseudonym and ``erasure: in_progress`` in one
   write, so every read of the patient from then on sees the erased patient;
4. the patient's accounts: disabled, credentials and names removed, sessions revoked;
5. every other collection holding the patient's data (``services.erasure_plan``, derived from
   the declarations): identity removed, free text removed, the rest kept under the pseudonym;
   pending notifications withdrawn; idempotency snapshots that quote the patient dropped;
6. every cached computed result dropped (any may quote the patient);
7. the request and the patient marked ``done``.

Each step is idempotent and each document write ends in ``services.changes.changed``, so the
document cache, result generations, care relations, live boards and subscribers follow (the
patient's event is ``erased``). The audit trail is never rewritten: it names patients by id
only, and the id now leads to the pseudonym. Billing records keep their amounts, so accounts
still reconcile.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

import db
from cache import runtime
from errors import BadUserInput, Conflict, NotFound
from models.accounts import Account, AccountTicket
from models.base import utcnow
from models.erasure import ErasureRequest, ErasureStatus
from models.idempotency import IdempotencyKey, IdempotencyStatus
from models.notifications import Notification, NotificationStatus
from models.patients import Contact, Patient, Sex, sealed_tokens
from models.trusted import trusted
from services import common, legal_holds
from services.accounts import revoke_account_tokens
from services.changes import changed
from services.erasure_plan import Target, targets

log = logging.getLogger(__name__)

ERASED_FIRST_NAME = "Erased"
ERASED_BIRTH_DATE = date(1900, 1, 1)
"""The earliest date of birth SHMS accepts, standing for "unknown": the real one is dropped
(not even its year is kept: nothing needs it once the person is gone)."""
MAX_REASON = 500
HANDLED_ELSEWHERE = frozenset({"ErasureRequest", "Account", "AuditEvent"})
"""Kinds the generic pass leaves alone: the erasure's own record, accounts (step 4), and the
append-only audit trail (kept by law; it names patients by id only)."""
RESULT_SCAN = 500
_encoder = Encoder()


def pseudonym(patient_id: ObjectId) -> str:
    """Stable, so records kept by law still group under one name."""
    return "ERASED-" + hashlib.sha256(str(patient_id).encode()).hexdigest()[:16]


def identity_of(patient: Patient) -> list[str]:
    """The strings that identify the patient: what must not survive anywhere."""
    raw = patient.model_dump()
    contact = raw.get("contact") or {}
    address = contact.get("address") or {}
    emergency = raw.get("emergency_contact") or {}
    born = raw.get("date_of_birth")
    values = [
        raw.get("first_name"),
        raw.get("last_name"),
        raw.get("national_id"),
        contact.get("email"),
        contact.get("phone"),
        address.get("line1"),
        address.get("line2"),
        emergency.get("name"),
        emergency.get("phone"),
        born.isoformat() if isinstance(born, date) else None,
    ]
    return [v for v in values if isinstance(v, str) and len(v) >= 2]


def strike(text: str, identity: Iterable[str]) -> str:
    """``text`` with every identifying string struck out (case-insensitive)."""
    for value in sorted(identity, key=len, reverse=True):
        text = re.sub(re.escape(value), "[erased]", text, flags=re.IGNORECASE)
    return text


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise BadUserInput("reason: is required", {"reason": "is required"})
    if len(text) > MAX_REASON:
        raise BadUserInput(
            f"reason: at most {MAX_REASON} characters",
            {"reason": f"must be at most {MAX_REASON} characters"},
        )
    return text


async def _begin(
    patient: Patient, reason: str, requested_by: str, holds: Sequence[str]
) -> ErasureRequest:
    assert patient.id is not None
    patient_id: ObjectId = patient.id
    applying = await legal_holds.applying(patient_id, holds)
    if applying:
        raise Conflict(
            "A legal hold keeps this patient's data: " + "; ".join(h.describe() for h in applying),
            reason="LEGAL_HOLD",
            holds=[{"hold": h.name, "records": list(h.records)} for h in applying],
        )
    request = ErasureRequest(
        patient_id=patient_id,
        pseudonym=pseudonym(patient_id),
        reason=strike(reason, identity_of(patient)),
        requested_by=requested_by,
    )
    try:
        await request.insert()
    except DuplicateKeyError:  # someone else began it meanwhile: complete theirs
        found = await ErasureRequest.find_one({"patient_id": patient_id})
        assert found is not None
        return found
    await changed(request, "created")
    return request


async def erase(
    patient_id: ObjectId, reason: str, *, requested_by: str, holds: Sequence[str]
) -> tuple[ErasureRequest, bool]:
    """Erase the patient; ``(request, False)`` when they were already erased (nothing done)."""
    text = _reason(reason)
    patient = await Patient.get(patient_id)
    if patient is None:
        raise NotFound("Patient", str(patient_id))
    request = await ErasureRequest.find_one({"patient_id": patient_id})
    if request is not None and request.status == ErasureStatus.DONE:
        return request, False
    if request is None:
        request = await _begin(patient, text, requested_by, holds)
    return await complete(request), True


async def complete(request: ErasureRequest) -> ErasureRequest:
    """Carry an ``in_progress`` erasure to its end; safe to run again at any point."""
    patient = await common.get_or_404(Patient, request.patient_id, "Patient")
    count = 1
    await _patient(patient, request.pseudonym)
    count += await _accounts(request.patient_id, request.pseudonym)
    for target in targets(HANDLED_ELSEWHERE):
        count += await _scrub(target, request.patient_id)
    count += await _withdraw_notifications(request.patient_id)
    count += await _forget_idempotent_answers(request.patient_id)
    await _drop_results()
    done = await _finish(request, count)
    erased = await common.get_or_404(Patient, request.patient_id, "Patient")
    if erased.erasure != ErasureStatus.DONE.value:
        done_now = {"erasure": ErasureStatus.DONE.value}
        await common.update(erased, done_now, "patient", None, "erased")
    return done


async def _patient(patient: Patient, alias: str) -> None:
    changes: dict[str, Any] = {
        "first_name": ERASED_FIRST_NAME,
        "last_name": alias,
        "date_of_birth": ERASED_BIRTH_DATE,
        "sex": Sex.UNKNOWN,
        "national_id": None,
        "contact": Contact(),
        "emergency_contact": None,
        "allergies": [],
        "medical_history": [],
        "search_tokens": sealed_tokens(ERASED_FIRST_NAME, alias),
        "erasure": patient.erasure or ErasureStatus.IN_PROGRESS.value,
    }
    await common.update(patient, changes, "patient", None, "erased")


async def _accounts(patient_id: ObjectId, alias: str) -> int:
    """Linked accounts: disabled for good, with nothing left to sign in with or to name."""
    accounts = await Account.find({"patient_id": patient_id}).sort("_id").to_list()
    for n, account in enumerate(accounts):
        assert account.id is not None
        username = alias.lower() if n == 0 else f"{alias.lower()}-{n}"
        changes: dict[str, Any] = {
            "active": False,
            "username": username,
            "display_name": None,
            "password_hash": None,
            "idp_subject": None,
            "totp_secret": None,
            "totp_pending_secret": None,
            "totp_last_step": None,
        }
        await common.update(account, changes, "account", None, "erased")
        await revoke_account_tokens(account.id)
        await db.collection(AccountTicket).delete_many({"account_id": account.id})
    return len(accounts)


async def _scrub(target: Target, patient_id: ObjectId) -> int:
    """Scrubbed from the documents as built (stored values may be sealed: ``db``), and written
    back whole, field by field, with ``$set``."""
    coll = db.collection(target.model)
    changed_count = 0
    async for raw in coll.find({target.selector: patient_id}):
        sets, unsets = target.scrub(trusted(target.model, raw).model_dump())
        if not sets and not unsets:
            continue
        encoded = {k: _encoder.encode(v) for k, v in sets.items()}
        operation: dict[str, Any] = {"$set": {**encoded, "updated_at": utcnow()}}
        if unsets:
            operation["$unset"] = dict.fromkeys(unsets, "")
        await coll.update_one({"_id": raw["_id"]}, operation)
        changed_count += 1
        if target.declaration.published:
            after = await coll.find_one({"_id": raw["_id"]})
            if after is not None:
                await changed(trusted(target.model, after), "erased")
    return changed_count


async def _withdraw_notifications(patient_id: ObjectId) -> int:
    """Messages not yet sent to the patient are never sent (there is nobody to send them to)."""
    result = await db.collection(Notification).update_many(
        {
            "recipient.kind": "patient",
            "recipient.id": patient_id,
            "status": NotificationStatus.PENDING.value,
        },
        {"$set": {"status": NotificationStatus.SKIPPED.value, "updated_at": utcnow()}},
    )
    return int(result.modified_count)


async def _forget_idempotent_answers(patient_id: ObjectId) -> int:
    """Stored first answers of mutations that quote the patient: dropped; a retry of such a
    mutation is refused (``failed``) until the key expires rather than run again."""
    result = await db.collection(IdempotencyKey).update_many(
        {"quotes": str(patient_id)},
        {
            "$set": {"status": IdempotencyStatus.FAILED.value, "quotes": []},
            "$unset": {"result_json": "", "result_model": "", "result_id": ""},
        },
    )
    return int(result.modified_count)


async def _drop_results() -> None:
    """Every cached computed result (aggregates, saved-query answers) may quote the patient;
    their generations were bumped by the writes, and the entries are removed here too."""
    results = runtime.current().results
    redis = getattr(results, "redis", None)
    namespace = getattr(results, "namespace", None)
    if redis is None or namespace is None:
        return
    try:
        batch: list[Any] = []
        async for key in redis.scan_iter(match=f"{namespace}:result:*", count=RESULT_SCAN):
            batch.append(key)
            if len(batch) >= RESULT_SCAN:
                await redis.delete(*batch)
                batch = []
        if batch:
            await redis.delete(*batch)
    except Exception as exc:  # the entries expire by their TTL; never fail the erasure for it
        log.warning("could not drop cached results after an erasure (%s)", type(exc).__name__)


async def _finish(request: ErasureRequest, count: int) -> ErasureRequest:
    if request.status == ErasureStatus.DONE:
        return request
    changes = {"status": ErasureStatus.DONE, "completed_at": utcnow(), "records": count}
    expected = {"status": ErasureStatus.IN_PROGRESS.value}
    try:
        return await common.update(request, changes, "erasure request", expected)
    except Conflict:  # a concurrent run finished it first
        found = await ErasureRequest.find_one({"patient_id": request.patient_id})
        assert found is not None
        return found


async def request_of(patient_id: ObjectId) -> ErasureRequest | None:
    return await ErasureRequest.find_one({"patient_id": patient_id})
