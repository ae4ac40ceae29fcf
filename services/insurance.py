"""Payers, policies and the claim cycle, and the balance split they keep reconciled.

The account (models/billing.py) keeps ``charges = payments + insurer due + patient due +
write-offs`` with ``patient_due`` as the remainder, so every other writer of charges and
payments stays correct unchanged. The stored totals that claims move (``insurer_due``,
``insurer_paid``, ``written_off``) change only by ``$inc`` in the one account update that also
records the event (the claim markers on its charges, the payment, the write-off entry), with
the invariant in that update's filter: nothing can make an account owe a negative amount.

A transition touches two documents without a transaction. The claim goes first, by a
compare-and-set on (status, version), so of two racing requests exactly one wins and the loser
changed nothing; the account follows; when the account refuses (its guard failed meanwhile) the
claim is put back by a second compare-and-set and the caller gets the refusal. Between the two
writes (milliseconds) the claim may show a state the account has not reached yet: the account
itself always reconciles, and ``reconcile`` cross-checks claims and account when both are still.

A charge is on at most one claim: creating a claim sets ``charge.claim_id`` on each of its
charges in the account update whose filter requires each of them unset (array positions are
stable: charges are only ever appended), so two concurrent builds over one charge cannot both
succeed. Voiding clears the markers; a closed claim keeps them (the charge was claimed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import utcnow
from models.billing import (
    BillingAccount,
    Payment,
    PaymentMethod,
    PaymentPayer,
    WriteOff,
    WriteOffKind,
)
from models.insurance import (
    BASIS_POINTS,
    Claim,
    ClaimLine,
    ClaimOutcome,
    ClaimStatus,
    ClaimStatusChange,
    InsurancePolicy,
    Payer,
    PolicyStatus,
    PolicyYear,
    RemainderTo,
)
from models.patients import Patient
from services import common
from services.billing import MAX_AMOUNT, patient_due_at_least
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.validation import build, require

_encoder = Encoder()
ATTEMPTS = 5
"""Compare-and-set retries on a policy's usage or an account's markers before CONFLICT."""


# -- payers and policies ---------------------------------------------------------------------


async def create_payer(data: Mapping[str, Any]) -> Payer:
    payer = build(Payer, dict(data))
    try:
        await payer.insert()
    except DuplicateKeyError:
        raise Conflict(
            f"Another payer already has the code {payer.code}", fields=["code"]
        ) from None
    await changed(payer, "created")
    return payer


async def set_payer_active(payer_id: ObjectId, active: bool) -> Payer:
    payer = await common.get_or_404(Payer, payer_id, "Payer")
    return await common.update(payer, {"active": active}, "payer")


async def list_payers(active: bool | None, args: PageArgs) -> Page[Payer]:
    query: Query = {} if active is None else {"active": active}
    return await paginate(Payer, query, BY_ID, args)


async def create_policy(data: Mapping[str, Any]) -> InsurancePolicy:
    policy = build(InsurancePolicy, {**data, "status": PolicyStatus.ACTIVE})
    await common.ensure_exists(Patient, policy.patient_id, "patientId", "patient")
    payer = await Payer.get(policy.payer_id)
    require(payer is not None, "payerId", "no such payer")
    require(payer is not None and payer.active, "payerId", "is not an active payer")
    until = policy.valid_until
    require(until is None or until > policy.valid_from, "validUntil", "must be after validFrom")
    require(
        len(set(policy.covered_sources)) == len(policy.covered_sources),
        "coveredSources",
        "lists a source twice",
    )
    for name in ("deductible", "per_claim_limit", "annual_limit"):
        value = getattr(policy, name)
        require(value is None or value <= MAX_AMOUNT, name, f"must be at most {MAX_AMOUNT}")
    await policy.insert()
    await changed(policy, "created")
    return policy


async def cancel_policy(policy_id: ObjectId) -> InsurancePolicy:
    """Open claims keep their policy; only new claims are refused."""
    policy = await common.get_or_404(InsurancePolicy, policy_id, "InsurancePolicy")
    if policy.status == PolicyStatus.CANCELLED:
        raise Conflict(f"InsurancePolicy {policy_id} is already cancelled", fields=["id"])
    return await common.update(
        policy,
        {"status": PolicyStatus.CANCELLED},
        "insurance policy",
        expected={"status": PolicyStatus.ACTIVE.value},
        change="cancelled",
    )


@dataclass(frozen=True)
class PolicyFilter:
    patient_id: ObjectId | None = None
    payer_id: ObjectId | None = None
    active: bool | None = None


async def list_policies(
    f: PolicyFilter, args: PageArgs, scope: Query | None = None
) -> Page[InsurancePolicy]:
    query: Query = {}
    if f.patient_id is not None:
        query["patient_id"] = f.patient_id
    if f.payer_id is not None:
        query["payer_id"] = f.payer_id
    if f.active is not None:
        query["status"] = (PolicyStatus.ACTIVE if f.active else PolicyStatus.CANCELLED).value
    return await paginate(InsurancePolicy, both(query, scope), BY_ID, args)


@dataclass(frozen=True)
class ClaimFilter:
    payer_id: ObjectId | None = None
    patient_id: ObjectId | None = None
    status: ClaimStatus | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None


async def list_claims(f: ClaimFilter, args: PageArgs, scope: Query | None = None) -> Page[Claim]:
    query: Query = {}
    if f.payer_id is not None:
        query["payer_id"] = f.payer_id
    if f.patient_id is not None:
        query["patient_id"] = f.patient_id
    if f.status is not None:
        query["status"] = f.status.value
    window: dict[str, datetime] = {}
    if f.submitted_from is not None:
        window["$gte"] = f.submitted_from
    if f.submitted_to is not None:
        window["$lt"] = f.submitted_to
    if window:
        query["submitted_at"] = window
    return await paginate(Claim, both(query, scope), BY_ID, args)


async def get_claim(claim_id: ObjectId) -> Claim:
    return await common.get_or_404(Claim, claim_id, "Claim")


async def get_payer(payer_id: ObjectId) -> Payer:
    return await common.get_or_404(Payer, payer_id, "Payer")


async def get_policy(policy_id: ObjectId) -> InsurancePolicy:
    return await common.get_or_404(InsurancePolicy, policy_id, "InsurancePolicy")


async def get_account(account_id: ObjectId) -> BillingAccount:
    return await common.get_or_404(BillingAccount, account_id, "BillingAccount")


# -- pricing a claim ---------------------------------------------------------------------------


def _year_key(year: int) -> str:
    return f"y{year}"


def price_lines(
    policy: InsurancePolicy, usage: PolicyYear, charges: Sequence[Any]
) -> tuple[list[ClaimLine], int]:
    """The policy's rules over ``charges`` in order: the deductible still open this year first,
    then the co-pay (basis points of the rest, rounded half up), then the per-claim and annual
    limits cap what the insurer covers. Returns the lines and the deductible they use."""
    deductible_left = max(policy.deductible - usage.deductible, 0)
    claim_left = policy.per_claim_limit
    year_left = None if policy.annual_limit is None else max(policy.annual_limit - usage.covered, 0)
    lines: list[ClaimLine] = []
    used = 0
    for charge in charges:
        deductible = min(deductible_left, charge.amount)
        deductible_left -= deductible
        used += deductible
        rest = charge.amount - deductible
        copay = (rest * policy.copay_bp + BASIS_POINTS // 2) // BASIS_POINTS
        covered = rest - copay
        if claim_left is not None:
            covered = min(covered, claim_left)
            claim_left -= covered
        if year_left is not None:
            covered = min(covered, year_left)
            year_left -= covered
        lines.append(
            ClaimLine(
                charge_id=charge.id,
                source=charge.source,
                description=charge.description,
                service_date=charge.created_at,
                billed=charge.amount,
                covered=covered,
                deductible=deductible,
                copay=copay,
            )
        )
    return lines, used


async def _reserve_usage(
    policy: InsurancePolicy, year: int, charges: Sequence[Any]
) -> tuple[InsurancePolicy, list[ClaimLine], int]:
    """Price the claim and count it against the policy's year, by a compare-and-set on the
    policy's usage version: a concurrent claim on the same policy makes this one price again."""
    key = _year_key(year)
    for _ in range(ATTEMPTS):
        usage = policy.usage.get(key, PolicyYear())
        lines, deductible = price_lines(policy, usage, charges)
        covered = sum(line.covered for line in lines)
        raw = await db.collection(InsurancePolicy).find_one_and_update(
            {
                "_id": policy.id,
                "status": PolicyStatus.ACTIVE.value,
                "usage_version": policy.usage_version,
            },
            {
                "$inc": {
                    f"usage.{key}.covered": covered,
                    f"usage.{key}.deductible": deductible,
                    "usage_version": 1,
                },
                "$set": {"updated_at": utcnow()},
            },
            return_document=ReturnDocument.AFTER,
        )
        if raw is not None:
            return InsurancePolicy.model_validate(raw), lines, deductible
        fresh = await InsurancePolicy.get(policy.id)
        if fresh is None or fresh.status != PolicyStatus.ACTIVE:
            raise BadUserInput("policyId: is cancelled", {"policyId": "is cancelled"})
        policy = fresh
    raise Conflict(f"InsurancePolicy {policy.id} is busy with other claims; retry")


async def _adjust_usage(policy_id: ObjectId, year: int, covered: int, deductible: int) -> None:
    """Give back (negative) or count more of a policy year; the version moves so a claim
    being priced meanwhile prices again."""
    if covered == 0 and deductible == 0:
        return
    key = _year_key(year)
    policy = await db.collection(InsurancePolicy).find_one_and_update(
        {"_id": policy_id},
        {
            "$inc": {
                f"usage.{key}.covered": covered,
                f"usage.{key}.deductible": deductible,
                "usage_version": 1,
            },
            "$set": {"updated_at": utcnow()},
        },
        return_document=ReturnDocument.AFTER,
    )
    if policy is not None:
        await changed(InsurancePolicy.model_validate(policy), "usage_changed")


# -- the account side --------------------------------------------------------------------------


async def _account_write(
    account: BillingAccount, guard: Query, update: Query
) -> BillingAccount | None:
    raw = await db.collection(BillingAccount).find_one_and_update(
        {"_id": account.id, **guard}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else BillingAccount.model_validate(raw)


async def _account(account_id: ObjectId) -> BillingAccount:
    account = await BillingAccount.get(account_id)
    if account is None:
        raise NotFound("BillingAccount", str(account_id))
    return account


def _paid_already(account: BillingAccount, amount: int) -> BadUserInput:
    reason = (
        f"the patient owes only {max(account.patient_due, 0)} ({account.currency}) on this "
        f"account, less than the {amount} this would make theirs again or the insurer's: "
        "payments already made are not refunded"
    )
    return BadUserInput(f"amount: {reason}", {"amount": reason})


# -- claims ------------------------------------------------------------------------------------


def _charge_ids(ids: Sequence[ObjectId]) -> list[ObjectId]:
    require(len(ids) > 0, "chargeIds", "name at least one charge")
    require(len(set(ids)) == len(ids), "chargeIds", "lists a charge twice")
    return list(ids)


async def create_claim(
    policy_id: ObjectId, charge_ids: Sequence[ObjectId], notes: str | None, by: str | None
) -> Claim:
    """A draft claim on the policy over charges of its patient's account: the covered part of
    each charge becomes the insurer's due at once (what a claim expects), the rest stays the
    patient's."""
    ids = _charge_ids(charge_ids)
    policy = await InsurancePolicy.get(policy_id)
    require(policy is not None, "policyId", "no such insurance policy")
    assert policy is not None
    require(policy.status == PolicyStatus.ACTIVE, "policyId", "is cancelled")
    payer = await Payer.get(policy.payer_id)
    require(payer is not None and payer.active, "policyId", "its payer is not active")
    account = await BillingAccount.find_one({"patient_id": policy.patient_id})
    require(account is not None, "policyId", "its patient has no billing account")
    assert account is not None and account.id is not None
    require(account.currency == policy.currency, "policyId", "is in another currency")
    positions: dict[ObjectId, int] = {c.id: i for i, c in enumerate(account.charges)}
    for cid in ids:
        require(cid in positions, "chargeIds", f"{cid} is not a charge of the policy's patient")
    charges = [account.charges[positions[cid]] for cid in ids]
    for charge in charges:
        if charge.claim_id is not None:
            raise Conflict(
                f"Charge {charge.id} is already on claim {charge.claim_id}", fields=["chargeIds"]
            )
        require(
            charge.source in policy.covered_sources,
            "chargeIds",
            f"{charge.id}: {charge.source.value} is not covered by the policy",
        )
        require(
            policy.valid_on(charge.created_at),
            "policyId",
            f"was not valid on {charge.created_at.date().isoformat()} (charge {charge.id})",
        )
    now = utcnow()
    year = now.year
    claim_id = ObjectId()
    expected, _ = price_lines(policy, policy.usage.get(_year_key(year), PolicyYear()), charges)
    if account.patient_due < sum(line.covered for line in expected):  # before any write
        raise _paid_already(account, sum(line.covered for line in expected))
    policy, lines, deductible = await _reserve_usage(policy, year, charges)
    covered = sum(line.covered for line in lines)
    guard: Query = {"currency": account.currency, **patient_due_at_least(covered)}
    marks: dict[str, Any] = {}
    for cid in ids:
        at = positions[cid]
        guard[f"charges.{at}.id"] = cid
        guard[f"charges.{at}.claim_id"] = None
        marks[f"charges.{at}.claim_id"] = claim_id
    updated = await _account_write(
        account,
        guard,
        {"$set": {**marks, "updated_at": now}, "$inc": {"insurer_due": covered}},
    )
    if updated is None:
        await _adjust_usage(policy_id, year, -covered, -deductible)
        fresh = await _account(account.id)
        for cid in ids:
            taken = fresh.charges[positions[cid]].claim_id
            if taken is not None:
                raise Conflict(f"Charge {cid} is already on claim {taken}", fields=["chargeIds"])
        if fresh.patient_due < covered:
            raise _paid_already(fresh, covered)
        raise Conflict(f"BillingAccount {account.id} changed meanwhile; retry")
    claim = Claim(
        id=claim_id,
        number=f"CLM-{year}-{str(claim_id).upper()}",
        patient_id=policy.patient_id,
        account_id=account.id,
        policy_id=policy_id,
        payer_id=policy.payer_id,
        currency=policy.currency,
        benefit_year=year,
        lines=lines,
        status_at=now,
        notes=notes,
        history=[ClaimStatusChange(status=ClaimStatus.DRAFT, at=now, by=by)],
        created_at=now,
    )
    try:
        await claim.insert()
    except BaseException:
        await _release_charges(updated, claim, covered)
        await _adjust_usage(policy_id, year, -covered, -deductible)
        raise
    await changed(claim, "created")
    await changed(updated, "claimed")
    return claim


async def _release_charges(account: BillingAccount, claim: Claim, insurer: int) -> BillingAccount:
    """Take the claim's markers off its charges and its share off the insurer's due."""
    for _ in range(ATTEMPTS):
        guard: Query = {}
        clear: dict[str, Any] = {}
        for at, charge in enumerate(account.charges):
            if charge.claim_id == claim.id:
                guard[f"charges.{at}.claim_id"] = claim.id
                clear[f"charges.{at}.claim_id"] = None
        updated = await _account_write(
            account,
            guard,
            {"$set": {**clear, "updated_at": utcnow()}, "$inc": {"insurer_due": -insurer}},
        )
        if updated is not None:
            return updated
        assert account.id is not None
        account = await _account(account.id)
    raise Conflict(f"BillingAccount {account.id} is busy; retry")


def _refusal(claim: Claim, verb: str, allowed: Sequence[ClaimStatus]) -> Conflict:
    wanted = " or ".join(s.value for s in allowed)
    return Conflict(
        f"Claim {claim.id} is {claim.status.value}; only a {wanted} claim can be {verb}",
        fields=["id"],
    )


def _check(claim: Claim, verb: str, allowed: Sequence[ClaimStatus], version: int | None) -> None:
    if claim.status not in allowed:
        raise _refusal(claim, verb, allowed)
    if version is not None and version != claim.version:
        raise Conflict(
            f"Claim {claim.id} is at version {claim.version}, not {version}: reload it",
            fields=["version"],
        )


async def _move(
    claim: Claim,
    verb: str,
    allowed: Sequence[ClaimStatus],
    to: ClaimStatus,
    fields: Mapping[str, Any],
    by: str | None,
    note: str | None = None,
    inc: Mapping[str, int] | None = None,
) -> Claim:
    """The claim's compare-and-set on (status, version): one of two racing requests wins."""
    now = utcnow()
    step = ClaimStatusChange(status=to, at=now, by=by, note=note)
    raw = await db.collection(Claim).find_one_and_update(
        {
            "_id": claim.id,
            "status": {"$in": [s.value for s in allowed]},
            "version": claim.version,
        },
        {
            "$set": {
                **{k: _encoder.encode(v) for k, v in fields.items()},
                "status": to.value,
                "status_at": now,
                "updated_at": now,
            },
            "$inc": {"version": 1, **(inc or {})},
            "$push": {"history": _encoder.encode(step)},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        assert claim.id is not None
        fresh = await get_claim(claim.id)
        if fresh.status not in allowed:
            raise _refusal(fresh, verb, allowed)
        raise Conflict(f"Claim {claim.id} changed meanwhile; reload it and retry")
    return Claim.model_validate(raw)


async def _undo(after: Claim, before: Claim, reason: str) -> None:
    """Put a claim back as it was before a transition its account refused."""
    undo: dict[str, Any] = {
        "status": before.status.value,
        "status_at": before.status_at,
        "lines": _encoder.encode(before.lines),
        "outcome": _encoder.encode(before.outcome),
        "denial_reason": before.denial_reason,
        "insurer_paid": before.insurer_paid,
        "remainder": before.remainder,
        "remainder_to": _encoder.encode(before.remainder_to),
        "adjudicated_at": before.adjudicated_at,
        "closed_at": before.closed_at,
        "updated_at": utcnow(),
    }
    step = ClaimStatusChange(status=before.status, at=utcnow(), note=f"reverted: {reason}"[:200])
    await db.collection(Claim).update_one(
        {"_id": after.id, "version": after.version},
        {"$set": undo, "$inc": {"version": 1}, "$push": {"history": _encoder.encode(step)}},
    )


async def submit_claim(claim_id: ObjectId, version: int | None, by: str | None) -> Claim:
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.DRAFT,)
    _check(claim, "submitted", allowed, version)
    moved = await _move(
        claim, "submitted", allowed, ClaimStatus.SUBMITTED, {"submitted_at": utcnow()}, by
    )
    await changed(moved, "submitted")
    return moved


@dataclass(frozen=True)
class LineDecision:
    charge_id: ObjectId
    approved: int
    adjustment: int = 0
    denial_reason: str | None = None


def _decide(claim: Claim, decisions: Sequence[LineDecision], reason: str | None) -> list[ClaimLine]:
    """The adjudicated lines, or ``BAD_USER_INPUT`` naming every amount out of range."""
    problems: dict[str, str] = {}
    given = {d.charge_id: (i, d) for i, d in enumerate(decisions)}
    if len(given) != len(decisions) or set(given) != {line.charge_id for line in claim.lines}:
        problems["lines"] = "give one decision for each line of the claim, by chargeId"
    lines: list[ClaimLine] = []
    for line in claim.lines:
        if line.charge_id not in given:
            continue
        i, d = given[line.charge_id]
        path = f"lines[{i}]"
        if d.approved < 0:
            problems[f"{path}.approved"] = "must not be negative"
        if d.adjustment < 0:
            problems[f"{path}.adjustment"] = "must not be negative"
        if d.approved > line.billed:
            problems[f"{path}.approved"] = f"exceeds the billed {line.billed}"
        elif d.approved + d.adjustment > line.billed:
            problems[f"{path}.adjustment"] = (
                f"with the approved amount exceeds the billed {line.billed}"
            )
        if d.approved < line.covered and not d.denial_reason:
            problems[f"{path}.denialReason"] = "is required when less than covered is approved"
        lines.append(
            line.model_copy(
                update={
                    "approved": d.approved,
                    "adjustment": d.adjustment,
                    "denial_reason": d.denial_reason,
                }
            )
        )
    if not problems and sum(line.insurer_share for line in lines) == 0 and not reason:
        problems["denialReason"] = "is required when the claim is denied"
    if problems:
        raise BadUserInput("Invalid adjudication: " + "; ".join(problems), problems)
    return lines


def _outcome(lines: Sequence[ClaimLine]) -> ClaimOutcome:
    if sum(line.insurer_share for line in lines) == 0:
        return ClaimOutcome.DENIED
    if all(line.insurer_share >= line.covered for line in lines):
        return ClaimOutcome.APPROVED
    return ClaimOutcome.PARTIALLY_APPROVED


async def adjudicate_claim(
    claim_id: ObjectId,
    decisions: Sequence[LineDecision],
    denial_reason: str | None,
    version: int | None,
    by: str | None,
) -> Claim:
    """The insurer's decision per line: what it approves moves to (or stays) the insurer's
    due, a contractual adjustment is written off, the rest becomes the patient's."""
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.SUBMITTED, ClaimStatus.RESUBMITTED)
    _check(claim, "adjudicated", allowed, version)
    lines = _decide(claim, decisions, denial_reason)
    outcome = _outcome(lines)
    to_insurer = sum(line.insurer_share for line in lines) - claim.insurer_share
    to_write_off = sum(line.adjustment for line in lines) - claim.adjustment
    account = await _account(claim.account_id)
    if account.patient_due < to_insurer + to_write_off:
        raise _paid_already(account, to_insurer + to_write_off)
    now = utcnow()
    fields = {
        "lines": lines,
        "outcome": outcome,
        "denial_reason": denial_reason,
        "adjudicated_at": now,
    }
    moved = await _move(claim, "adjudicated", allowed, ClaimStatus.ADJUDICATED, fields, by)
    update: dict[str, Any] = {
        "$inc": {"insurer_due": to_insurer, "written_off": to_write_off},
        "$set": {"updated_at": now},
    }
    if to_write_off != 0:
        entry = WriteOff(
            amount=to_write_off,
            kind=WriteOffKind.CONTRACTUAL,
            reason=f"claim {claim.number}: contractual adjustment",
            claim_id=claim.id,
            at=now,
        )
        update["$push"] = {"write_offs": _encoder.encode(entry)}
    updated = await _account_write(account, patient_due_at_least(to_insurer + to_write_off), update)
    if updated is None:
        await _undo(moved, claim, "the account refused the adjudication")
        raise _paid_already(await _account(claim.account_id), to_insurer + to_write_off)
    await _adjust_usage(claim.policy_id, claim.benefit_year, to_insurer, 0)
    await changed(moved, "adjudicated")
    await changed(updated, "adjudicated")
    return moved


async def record_insurer_payment(
    claim_id: ObjectId,
    amount: int,
    reference: str | None,
    version: int | None,
    by: str | None,
) -> Claim:
    """The insurer pays (part of) what it approved: the payment is the account's, with the
    claim named, and reduces the insurer's due."""
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.ADJUDICATED, ClaimStatus.PAID)
    _check(claim, "paid", allowed, version)
    require(0 < amount <= MAX_AMOUNT, "amount", "must be positive")
    owed = claim.insurer_share - claim.insurer_paid
    if amount > owed:
        reason = f"exceeds what the insurer owes on this claim, {owed} ({claim.currency})"
        raise BadUserInput(f"amount: {amount} {reason}", {"amount": reason})
    moved = await _move(
        claim, "paid", allowed, ClaimStatus.PAID, {}, by, inc={"insurer_paid": amount}
    )
    now = utcnow()
    payment = Payment(
        amount=amount,
        method=PaymentMethod.INSURANCE,
        reference=reference,
        received_at=now,
        payer=PaymentPayer.INSURER,
        claim_id=claim.id,
    )
    account = await _account(claim.account_id)
    updated = await _account_write(
        account,
        {"insurer_due": {"$gte": amount}},
        {
            "$push": {"payments": _encoder.encode(payment)},
            "$inc": {"total_paid": amount, "insurer_paid": amount, "insurer_due": -amount},
            "$set": {"updated_at": now},
        },
    )
    if updated is None:
        await _undo(moved, claim, "the account refused the payment")
        raise Conflict(f"BillingAccount {account.id} does not show this claim's due; retry")
    await changed(moved, "insurer_paid")
    await changed(updated, "paid")
    return moved


async def appeal_claim(
    claim_id: ObjectId, reason: str, version: int | None, by: str | None
) -> Claim:
    """Only a denial or a partial approval not yet paid is appealed; money stays where the
    decision put it until the insurer decides again."""
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.ADJUDICATED,)
    _check(claim, "appealed", allowed, version)
    if claim.outcome not in (ClaimOutcome.DENIED, ClaimOutcome.PARTIALLY_APPROVED):
        raise Conflict(
            f"Claim {claim.id} was approved in full; there is nothing to appeal", fields=["id"]
        )
    reason = reason.strip()
    require(0 < len(reason) <= 200, "reason", "give the reason, at most 200 characters")
    moved = await _move(
        claim, "appealed", allowed, ClaimStatus.APPEALED, {"appeal_reason": reason}, by, reason
    )
    await changed(moved, "appealed")
    return moved


async def resubmit_claim(claim_id: ObjectId, version: int | None, by: str | None) -> Claim:
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.APPEALED,)
    _check(claim, "resubmitted", allowed, version)
    moved = await _move(
        claim, "resubmitted", allowed, ClaimStatus.RESUBMITTED, {"submitted_at": utcnow()}, by
    )
    await changed(moved, "resubmitted")
    return moved


async def close_claim(
    claim_id: ObjectId, remainder_to: RemainderTo, version: int | None, by: str | None
) -> Claim:
    """What the insurer approved and never paid goes to the patient or is written off."""
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.ADJUDICATED, ClaimStatus.PAID)
    _check(claim, "closed", allowed, version)
    remainder = claim.insurer_share - claim.insurer_paid
    now = utcnow()
    fields = {
        "remainder": remainder,
        "remainder_to": remainder_to if remainder else None,
        "closed_at": now,
    }
    moved = await _move(claim, "closed", allowed, ClaimStatus.CLOSED, fields, by)
    account = await _account(claim.account_id)
    if remainder:
        update: dict[str, Any] = {"$inc": {"insurer_due": -remainder}, "$set": {"updated_at": now}}
        if remainder_to == RemainderTo.WRITE_OFF:
            update["$inc"]["written_off"] = remainder
            entry = WriteOff(
                amount=remainder,
                kind=WriteOffKind.CONTRACTUAL,
                reason=f"claim {claim.number}: approved, never paid by the insurer",
                claim_id=claim.id,
                at=now,
            )
            update["$push"] = {"write_offs": _encoder.encode(entry)}
        updated = await _account_write(account, {"insurer_due": {"$gte": remainder}}, update)
        if updated is None:
            await _undo(moved, claim, "the account refused the closing")
            raise Conflict(f"BillingAccount {account.id} does not show this claim's due; retry")
        await _adjust_usage(claim.policy_id, claim.benefit_year, -remainder, 0)
        account = updated
    await changed(moved, "closed")
    if remainder:
        await changed(account, "claim_closed")
    return moved


async def void_claim(claim_id: ObjectId, reason: str, version: int | None, by: str | None) -> Claim:
    """A claim never decided is withdrawn: its charges are free to claim again and what it
    expected from the insurer is the patient's again."""
    claim = await get_claim(claim_id)
    allowed = (ClaimStatus.DRAFT, ClaimStatus.SUBMITTED)
    _check(claim, "voided", allowed, version)
    reason = reason.strip()
    require(0 < len(reason) <= 200, "reason", "give the reason, at most 200 characters")
    moved = await _move(claim, "voided", allowed, ClaimStatus.VOID, {}, by, reason)
    account = await _account(claim.account_id)
    updated = await _release_charges(account, claim, claim.insurer_share)
    deductible = sum(line.deductible for line in claim.lines)
    await _adjust_usage(claim.policy_id, claim.benefit_year, -claim.insurer_share, -deductible)
    await changed(moved, "voided")
    await changed(updated, "claim_voided")
    return moved


# -- write-offs --------------------------------------------------------------------------------


async def write_off(
    account_id: ObjectId, amount: int, kind: WriteOffKind, reason: str
) -> BillingAccount:
    """Give up part of what the patient owes (bad debt, charity, a small balance)."""
    account = await _account(account_id)
    require(0 < amount <= MAX_AMOUNT, "amount", "must be positive")
    require(kind != WriteOffKind.CONTRACTUAL, "kind", "contractual write-offs come from claims")
    reason = reason.strip()
    require(0 < len(reason) <= 200, "reason", "give the reason, at most 200 characters")
    if amount > account.patient_due:
        raise _paid_already(account, amount)
    now = utcnow()
    entry = WriteOff(amount=amount, kind=kind, reason=reason, at=now)
    updated = await _account_write(
        account,
        patient_due_at_least(amount),
        {
            "$push": {"write_offs": _encoder.encode(entry)},
            "$inc": {"written_off": amount},
            "$set": {"updated_at": now},
        },
    )
    if updated is None:
        raise _paid_already(await _account(account_id), amount)
    await changed(updated, "written_off")
    return updated


# -- reconciliation ----------------------------------------------------------------------------


async def reconcile(account: BillingAccount) -> list[str]:
    """Every way the account's money could disagree with itself or with its claims; empty when
    ``charges = payments (patient + insurer) + insurer due + patient due + write-offs`` holds
    with each term equal to its ledger."""
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    a = account
    check(a.total_charged == sum(c.amount for c in a.charges), "total_charged != sum of charges")
    check(a.total_paid == sum(p.amount for p in a.payments), "total_paid != sum of payments")
    insurer = [p for p in a.payments if p.payer == PaymentPayer.INSURER]
    check(a.insurer_paid == sum(p.amount for p in insurer), "insurer_paid != insurer payments")
    check(a.total_paid == a.insurer_paid + a.patient_paid, "payments != insurer + patient")
    check(a.written_off == sum(w.amount for w in a.write_offs), "written_off != write-offs")
    check(a.insurer_due >= 0, f"insurer_due {a.insurer_due} < 0")
    check(a.patient_due >= 0, f"patient_due {a.patient_due} < 0")
    check(a.written_off >= 0, f"written_off {a.written_off} < 0")
    total = a.total_paid + a.insurer_due + a.patient_due + a.written_off
    check(a.total_charged == total, f"charges {a.total_charged} != {total}")
    claims = await Claim.find({"account_id": a.id}).to_list()
    outstanding = sum(c.insurer_outstanding for c in claims)
    check(a.insurer_due == outstanding, f"insurer_due {a.insurer_due} != claims' {outstanding}")
    by_claim = {c.id: c for c in claims}
    for claim in claims:
        paid = sum(p.amount for p in insurer if p.claim_id == claim.id)
        check(claim.insurer_paid == paid, f"claim {claim.id}: paid {claim.insurer_paid} != {paid}")
        for line in claim.lines:
            check(
                line.patient_responsibility >= 0,
                f"claim {claim.id}: line {line.charge_id} owes the patient a negative amount",
            )
            marked = next((c.claim_id for c in a.charges if c.id == line.charge_id), "missing")
            if claim.status == ClaimStatus.VOID:  # free again, perhaps claimed anew since
                check(marked != claim.id, f"charge {line.charge_id} still on void {claim.id}")
            else:
                check(
                    marked == claim.id, f"charge {line.charge_id} marked {marked}, not {claim.id}"
                )
        adjustments = sum(w.amount for w in a.write_offs if w.claim_id == claim.id)
        closed = claim.remainder if claim.remainder_to == RemainderTo.WRITE_OFF else 0
        check(
            adjustments == claim.adjustment + closed,
            f"claim {claim.id}: write-offs {adjustments} != {claim.adjustment + closed}",
        )
    for charge in a.charges:
        if charge.claim_id is not None:
            check(charge.claim_id in by_claim, f"charge {charge.id} on unknown claim")
    return problems
