"""Insurance: payers, patients' policies with their coverage rules, and claims.

A claim is built from charges of one billing account and moves money between what the insurer
and what the patient owes on that account (``BillingAccount.insurer_due``; the rest is the
patient's). The rules of that movement live in services/insurance.py; here are the documents,
their indexes and who may read and change them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pymongo
from pydantic import BaseModel, Field

from auth.policy import A, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Currency, Entity, LongText, Name, Ref, ShortText, UtcDatetime
from models.billing import ChargeSource


class Payer(Entity):
    """An insurer (or other third party) claims are sent to."""

    name: Name
    code: str = Field(min_length=2, max_length=20, pattern=r"^[A-Z0-9_-]+$")
    contact: ShortText | None = None
    active: bool = True

    class Settings:
        name = "payers"
        indexes = [pymongo.IndexModel("code", unique=True), pymongo.IndexModel("name")]


class PolicyPriority(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class PolicyStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class PolicyYear(BaseModel):
    """What a policy has already paid (or is expected to) and what deductible the patient met,
    in one benefit (calendar) year: the annual limit and the deductible count against it."""

    covered: int = 0
    deductible: int = 0


BASIS_POINTS = 10_000


class InsurancePolicy(Entity):
    patient_id: Ref
    payer_id: Ref
    plan_name: Name
    member_id: str = Field(min_length=1, max_length=64)
    group_number: str | None = Field(default=None, max_length=64)
    currency: Currency = "EUR"
    copay_bp: int = Field(default=0, ge=0, le=BASIS_POINTS, description="Co-pay, basis points")
    deductible: int = Field(default=0, ge=0, description="Per benefit year, minor units")
    per_claim_limit: int | None = Field(default=None, gt=0)
    annual_limit: int | None = Field(default=None, gt=0)
    covered_sources: list[ChargeSource] = Field(min_length=1)
    valid_from: UtcDatetime
    valid_until: UtcDatetime | None = None
    priority: PolicyPriority = PolicyPriority.PRIMARY
    status: PolicyStatus = PolicyStatus.ACTIVE
    notes: LongText | None = None
    # Keyed "y2031": a compare-and-set on usage_version makes two concurrent claims on one
    # policy count the deductible and the annual limit once each.
    usage: dict[str, PolicyYear] = Field(default_factory=dict)
    usage_version: int = 0

    def valid_on(self, moment: datetime) -> bool:
        until = self.valid_until
        return self.valid_from <= moment and (until is None or moment <= until)

    class Settings:
        name = "insurance_policies"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("priority", 1), ("status", 1)]),
            pymongo.IndexModel([("payer_id", 1), ("member_id", 1)]),
        ]


class ClaimStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ADJUDICATED = "adjudicated"
    PAID = "paid"
    CLOSED = "closed"
    APPEALED = "appealed"
    RESUBMITTED = "resubmitted"
    VOID = "void"


class ClaimOutcome(StrEnum):
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    DENIED = "denied"


class RemainderTo(StrEnum):
    """Where an approved amount the insurer never paid goes when a claim is closed."""

    PATIENT = "patient"
    WRITE_OFF = "write_off"


class ClaimLine(BaseModel):
    """One charge on the claim. Until adjudication the insurer is expected to pay ``covered``;
    afterwards ``approved``; ``adjustment`` is written off by contract; the patient owes the
    rest (``patient_responsibility``)."""

    charge_id: Ref
    source: ChargeSource
    description: ShortText
    service_date: UtcDatetime
    billed: int = Field(gt=0)
    covered: int = Field(ge=0)
    deductible: int = Field(default=0, ge=0)
    copay: int = Field(default=0, ge=0)
    approved: int | None = Field(default=None, ge=0)
    adjustment: int = Field(default=0, ge=0)
    denial_reason: ShortText | None = None

    @property
    def insurer_share(self) -> int:
        return self.covered if self.approved is None else self.approved

    @property
    def patient_responsibility(self) -> int:
        return self.billed - self.insurer_share - self.adjustment


class ClaimStatusChange(BaseModel):
    status: ClaimStatus
    at: UtcDatetime
    by: str | None = None
    note: ShortText | None = None


class Claim(Entity):
    number: str = Field(min_length=1, max_length=40)
    patient_id: Ref
    account_id: Ref
    policy_id: Ref
    payer_id: Ref
    currency: Currency
    benefit_year: int
    lines: list[ClaimLine] = Field(min_length=1)
    status: ClaimStatus = ClaimStatus.DRAFT
    outcome: ClaimOutcome | None = None
    denial_reason: ShortText | None = None
    appeal_reason: ShortText | None = None
    insurer_paid: int = 0
    remainder: int = 0
    remainder_to: RemainderTo | None = None
    submitted_at: UtcDatetime | None = None
    adjudicated_at: UtcDatetime | None = None
    closed_at: UtcDatetime | None = None
    status_at: UtcDatetime
    version: int = 0
    history: list[ClaimStatusChange] = Field(default_factory=list)
    notes: LongText | None = None

    @property
    def billed(self) -> int:
        return sum(line.billed for line in self.lines)

    @property
    def covered(self) -> int:
        return sum(line.covered for line in self.lines)

    @property
    def approved(self) -> int | None:
        if self.outcome is None:
            return None
        return sum(line.insurer_share for line in self.lines)

    @property
    def insurer_share(self) -> int:
        return sum(line.insurer_share for line in self.lines)

    @property
    def adjustment(self) -> int:
        return sum(line.adjustment for line in self.lines)

    @property
    def patient_responsibility(self) -> int:
        return sum(line.patient_responsibility for line in self.lines)

    @property
    def insurer_outstanding(self) -> int:
        """What this claim still puts in the account's ``insurer_due``."""
        if self.status in (ClaimStatus.VOID, ClaimStatus.CLOSED):
            return 0
        return self.insurer_share - self.insurer_paid

    class Settings:
        name = "claims"
        indexes = [
            pymongo.IndexModel("number", unique=True),
            pymongo.IndexModel([("account_id", 1), ("status", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("payer_id", 1), ("status", 1), ("submitted_at", 1)]),
            pymongo.IndexModel([("status", 1), ("submitted_at", 1)]),
            pymongo.IndexModel("policy_id"),
        ]


_BILLING = {R.BILLING: grant(A), R.ADMIN: grant(A)}
_HOLDERS = {**_BILLING, R.PATIENT: grant(S)}
_CYCLE = {R.BILLING: grant(A), R.ADMIN: grant(A)}

PAYER = declare(
    "Payer",
    Payer,
    row(
        Class.OPERATIONAL,
        ("id", "name", "code", "active", "createdAt", "updatedAt"),
        # Patients read the payer of their own policies and claims: the directory is public.
        {**_BILLING, R.PATIENT: grant(A)},
    ),
    group("contact", Class.CONTACT, ("contact",), _BILLING),
    actions={"create": _CYCLE, "update": _CYCLE},
    cached=True,
)

INSURANCE_POLICY = declare(
    "InsurancePolicy",
    InsurancePolicy,
    row(
        Class.FINANCIAL,
        (
            "id",
            "patientId",
            "patient",
            "payerId",
            "payer",
            "planName",
            "memberId",
            "groupNumber",
            "currency",
            "copayBasisPoints",
            "deductible",
            "perClaimLimit",
            "annualLimit",
            "coveredSources",
            "validFrom",
            "validUntil",
            "priority",
            "status",
            "usage",
            "createdAt",
            "updatedAt",
        ),
        _HOLDERS,
    ),
    group("notes", Class.FINANCIAL, ("notes",), _BILLING),
    actions={"create": _CYCLE, "cancel": _CYCLE},
    patient="patient_id",
    refs=("patient_id", "payer_id"),
    cached=True,
)

CLAIM = declare(
    "Claim",
    Claim,
    row(
        Class.FINANCIAL,
        (
            "id",
            "number",
            "patientId",
            "patient",
            "accountId",
            "policyId",
            "policy",
            "payerId",
            "payer",
            "currency",
            "benefitYear",
            "lines",
            "status",
            "outcome",
            "denialReason",
            "appealReason",
            "billed",
            "covered",
            "approved",
            "adjustment",
            "patientResponsibility",
            "insurerPaid",
            "insurerOutstanding",
            "remainder",
            "remainderTo",
            "submittedAt",
            "adjudicatedAt",
            "closedAt",
            "statusAt",
            "version",
            "createdAt",
            "updatedAt",
        ),
        _HOLDERS,
    ),
    # Who did what, and the billing office's own notes: not the patient's to read.
    group("internal", Class.FINANCIAL, ("history", "notes"), _BILLING),
    actions={
        "create": _CYCLE,
        "submit": _CYCLE,
        "adjudicate": _CYCLE,
        "recordInsurerPayment": _CYCLE,
        "appeal": _CYCLE,
        "resubmit": _CYCLE,
        "close": _CYCLE,
        "void": _CYCLE,
    },
    patient="patient_id",
    refs=("patient_id", "payer_id", "policy_id", "account_id"),
    cached=True,
)

# A claim line quotes its charge's description: sealed like the charge's (``models.billing``),
# each line bound to its charge id.
CLAIM_SEALED = sealed(Claim, "claims", (), {}, items={"lines": ("charge_id", ("description",))})
