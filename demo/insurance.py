"""Demo insurance: the demo's insurers as payers, a policy for every insured demo account (the
account's free-form ``insurance`` names the payer, member id and group), and claims built from
those accounts' unpaid charges at every stage of the cycle.

The stages go round ``STAGES`` over the insured accounts with something left to claim, oldest
account first, so the billing office's worklist shows drafts, claims with the payer, decisions
(approved, partly approved, denied), payments, an appeal, a resubmission, closed and void
claims. Each claim's money is applied to its account exactly as services/insurance.py would
(the insurer's due, its payments, contractual write-offs, the charge markers), so every demo
account reconciles. Ids derive from the account, times from the claimed charges and the demo
clock: every seed writes the same documents. Runs after every module that adds charges.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder

import db
from demo import catalog
from demo.clock import ANCHOR, minutes
from models.billing import (
    BillingAccount,
    Charge,
    ChargeSource,
    Payment,
    PaymentMethod,
    PaymentPayer,
    WriteOff,
    WriteOffKind,
)
from models.insurance import (
    Claim,
    ClaimOutcome,
    ClaimStatus,
    ClaimStatusChange,
    InsurancePolicy,
    Payer,
    PolicyPriority,
    PolicyYear,
)
from services.insurance import price_lines

_encoder = Encoder()
BY = "demo:billing"

CODES = {
    "AOK Nordost": "AOK-NO",
    "Techniker Krankenkasse": "TK",
    "Barmer": "BARMER",
    "DAK-Gesundheit": "DAK",
    "Allianz Private": "ALLIANZ",
}
STAGES = (
    "draft",
    "submitted",
    "approved",
    "partial",
    "denied",
    "paid",
    "closed",
    "appealed",
    "resubmitted",
    "void",
)
MAX_CLAIMS = 20
MAX_LINES = 3


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.sha256(f"insurance:{name}".encode()).hexdigest()[:24])


def payers() -> list[Payer]:
    at = ANCHOR - timedelta(days=400)
    return [
        Payer(
            id=_id(f"payer:{name}"),
            name=name,
            code=CODES.get(name, name.upper()[:20].replace(" ", "-")),
            contact=f"claims@{CODES.get(name, 'payer').lower()}.example",
            created_at=at,
        )
        for name in catalog.INSURERS
    ]


def _policy(account: BillingAccount, payer: Payer) -> InsurancePolicy:
    assert account.insurance is not None
    private = payer.code == "ALLIANZ"
    at = minutes(account.created_at)
    return InsurancePolicy(
        id=_id(f"policy:{account.id}"),
        patient_id=account.patient_id,
        payer_id=payer.id,
        plan_name="Private Comfort" if private else "Statutory Basic",
        member_id=account.insurance.policy_number,
        group_number=account.insurance.group_number,
        copay_bp=1000 if private else 2000,
        deductible=5000 if private else 0,
        per_claim_limit=None if private else 500_000,
        annual_limit=2_000_000 if private else None,
        covered_sources=list(ChargeSource),
        valid_from=datetime(2025, 1, 1, tzinfo=UTC),
        valid_until=account.insurance.valid_until,
        priority=PolicyPriority.PRIMARY,
        created_at=at,
    )


@dataclass
class _Money:
    """What one demo claim does to its account."""

    insurer_due: int = 0
    insurer_paid: int = 0
    written_off: int = 0


def _later(moment: datetime, days: int) -> datetime:
    return minutes(min(ANCHOR - timedelta(hours=1), moment + timedelta(days=days)))


def _claim(
    account: BillingAccount, policy: InsurancePolicy, charges: list[Charge], stage: str
) -> tuple[Claim, _Money, list[Payment], list[WriteOff]]:
    """The claim at ``stage``, and what it did to its account, as the services would."""
    usage = policy.usage.get(f"y{ANCHOR.year}", PolicyYear())
    lines, _ = price_lines(policy, usage, charges)
    claim_id = _id(f"claim:{account.id}")
    created = _later(max(c.created_at for c in charges), 1)
    history = [ClaimStatusChange(status=ClaimStatus.DRAFT, at=created, by=BY)]
    claim = Claim(
        id=claim_id,
        number=f"CLM-{ANCHOR.year}-{str(claim_id).upper()}",
        patient_id=account.patient_id,
        account_id=account.id,
        policy_id=policy.id,
        payer_id=policy.payer_id,
        currency=policy.currency,
        benefit_year=ANCHOR.year,
        lines=lines,
        status_at=created,
        history=history,
        created_at=created,
        updated_at=created,
    )
    money = _Money(insurer_due=claim.covered)
    payments: list[Payment] = []
    write_offs: list[WriteOff] = []

    def step(status: ClaimStatus, days: int, note: str | None = None) -> datetime:
        at = _later(claim.status_at, days)
        claim.status, claim.status_at, claim.updated_at = status, at, at
        claim.version += 1
        claim.history.append(ClaimStatusChange(status=status, at=at, by=BY, note=note))
        return at

    if stage == "draft":
        return claim, money, payments, write_offs
    if stage == "void":
        step(ClaimStatus.VOID, 1, "Billed to the wrong payer")
        return claim, _Money(), payments, write_offs
    claim.submitted_at = step(ClaimStatus.SUBMITTED, 1)
    if stage == "submitted":
        return claim, money, payments, write_offs
    denial = {"denied": "Not medically necessary", "appealed": "Prior authorisation missing",
              "resubmitted": "Prior authorisation missing"}.get(stage)  # fmt: skip
    decided: list[tuple[int, int, str | None]] = [
        (0, 0, denial) if denial else (line.covered, 0, None) for line in lines
    ]
    if stage == "partial":  # the first line cut by a tenth, half of that by contract
        cut = lines[0].covered // 10
        decided[0] = (lines[0].covered - cut, cut // 2, "Above the fee schedule")
    claim.lines = [
        line.model_copy(update={"approved": a, "adjustment": adj, "denial_reason": why})
        for line, (a, adj, why) in zip(lines, decided, strict=True)
    ]
    share = claim.insurer_share
    claim.outcome = (
        ClaimOutcome.DENIED
        if share == 0
        else ClaimOutcome.APPROVED
        if share >= claim.covered
        else ClaimOutcome.PARTIALLY_APPROVED
    )
    if claim.outcome == ClaimOutcome.DENIED:
        claim.denial_reason = denial
    claim.adjudicated_at = step(ClaimStatus.ADJUDICATED, 12)
    money.insurer_due = share
    if claim.adjustment:
        money.written_off = claim.adjustment
        write_offs.append(
            WriteOff(
                id=_id(f"adjustment:{claim_id}"),
                amount=claim.adjustment,
                kind=WriteOffKind.CONTRACTUAL,
                reason=f"claim {claim.number}: contractual adjustment",
                claim_id=claim_id,
                at=claim.adjudicated_at,
            )
        )
    if stage in ("appealed", "resubmitted"):
        claim.appeal_reason = "Authorisation was given by phone; reference attached"
        step(ClaimStatus.APPEALED, 3, claim.appeal_reason)
        if stage == "resubmitted":
            claim.submitted_at = step(ClaimStatus.RESUBMITTED, 2)
        return claim, money, payments, write_offs
    if stage in ("paid", "closed"):
        amount = share if stage == "closed" else share // 2
        paid_at = step(ClaimStatus.PAID, 7)
        payments.append(
            Payment(
                id=_id(f"payment:{claim_id}"),
                amount=amount,
                method=PaymentMethod.INSURANCE,
                reference=f"EOB-{claim.number[-6:]}",
                received_at=paid_at,
                payer=PaymentPayer.INSURER,
                claim_id=claim_id,
            )
        )
        claim.insurer_paid = amount
        money.insurer_due -= amount
        money.insurer_paid = amount
        if stage == "closed":
            claim.closed_at = step(ClaimStatus.CLOSED, 1)  # paid in full: nothing remains
    return claim, money, payments, write_offs


def _claimable(account: BillingAccount, policy: InsurancePolicy) -> list[Charge]:
    """The oldest unclaimed charges, at most ``MAX_LINES``, whose cover the patient still owes."""
    chosen: list[Charge] = []
    usage = policy.usage.get(f"y{ANCHOR.year}", PolicyYear())
    for charge in account.charges:
        if charge.claim_id is not None or not policy.valid_on(charge.created_at):
            continue
        trial = [*chosen, charge]
        lines, _ = price_lines(policy, usage, trial)
        if sum(line.covered for line in lines) > account.patient_due:
            break
        chosen = trial
        if len(chosen) == MAX_LINES:
            break
    return chosen


async def seed_insurance() -> dict[str, int]:
    """Payers, policies and claims; returns how many of each were written."""
    listed = payers()
    await db.collection(Payer).insert_many([_encoder.encode(p) for p in listed])
    by_name = {p.name: p for p in listed}
    raw = db.collection(BillingAccount).find({"insurance": {"$ne": None}}).sort("_id", 1)
    accounts = [BillingAccount.model_validate(a) for a in await raw.to_list(None)]
    policies: list[InsurancePolicy] = []
    claims: list[Claim] = []
    for account in accounts:
        assert account.insurance is not None
        payer = by_name.get(account.insurance.provider)
        if payer is None:
            continue
        policy = _policy(account, payer)
        policies.append(policy)
        if len(claims) >= MAX_CLAIMS:
            continue
        charges = _claimable(account, policy)
        if not charges:
            continue
        stage = STAGES[len(claims) % len(STAGES)]
        claim, money, payments, write_offs = _claim(account, policy, charges, stage)
        claims.append(claim)
        if claim.status != ClaimStatus.VOID:
            ids = {c.id for c in charges}
            for charge in account.charges:
                if charge.id in ids:
                    charge.claim_id = claim.id
            deductible = sum(line.deductible for line in claim.lines)
            policy.usage[f"y{ANCHOR.year}"] = PolicyYear(
                covered=claim.insurer_share, deductible=deductible
            )
            policy.usage_version = 1
        account.payments = sorted([*account.payments, *payments], key=lambda p: p.received_at)
        account.write_offs = write_offs
        account.total_paid += money.insurer_paid
        account.insurer_paid = money.insurer_paid
        account.insurer_due = money.insurer_due
        account.written_off = money.written_off
        account.updated_at = max(account.updated_at, claim.updated_at)
        document: dict[str, Any] = _encoder.encode(account)
        await db.collection(BillingAccount).replace_one({"_id": account.id}, document)
    if policies:
        await db.collection(InsurancePolicy).insert_many([_encoder.encode(p) for p in policies])
    if claims:
        await db.collection(Claim).insert_many([_encoder.encode(c) for c in claims])
    return {"payers": len(listed), "insurance_policies": len(policies), "claims": len(claims)}
