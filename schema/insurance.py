"""GraphQL types and inputs for payers, insurance policies and claims.

Amounts are ``Long`` integer minor units of the claim's or policy's ``currency``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import insurance as m
from models.billing import ChargeSource
from schema.common import Long, entity_id
from schema.context import Context, Info

if TYPE_CHECKING:
    from schema.patients import Patient

strawberry.enum(m.PolicyPriority)
PolicyPriority = m.PolicyPriority
strawberry.enum(m.PolicyStatus)
PolicyStatus = m.PolicyStatus
strawberry.enum(m.ClaimStatus, description="Where a claim is in its cycle.")
ClaimStatus = m.ClaimStatus
strawberry.enum(m.ClaimOutcome, description="The insurer's decision on an adjudicated claim.")
ClaimOutcome = m.ClaimOutcome
strawberry.enum(m.RemainderTo)
RemainderTo = m.RemainderTo


@strawberry.type(description="An insurer claims are sent to.")
class Payer:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    code: str
    contact: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


@strawberry.type(description="What a policy has covered and the deductible met in one year.")
class PolicyYearUsage:
    year: int
    covered: Long
    deductible: Long


@strawberry.type(description="A patient's insurance with a payer, and its coverage rules.")
class InsurancePolicy:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    plan_name: str
    member_id: str
    group_number: str | None
    currency: str
    covered_sources: list[ChargeSource]
    valid_from: datetime
    valid_until: datetime | None
    priority: PolicyPriority
    status: PolicyStatus
    notes: str | None = strawberry.field(description="The billing office's; not the patient's.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.InsurancePolicy]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.InsurancePolicy], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    def payer_id(root: strawberry.Parent[m.InsurancePolicy]) -> strawberry.ID:
        return strawberry.ID(str(root.payer_id))

    @strawberry.field
    @staticmethod
    async def payer(root: strawberry.Parent[m.InsurancePolicy], info: Info) -> Payer | None:
        return await info.context.loaders.payer_by_id.load(root.payer_id)

    @strawberry.field(description="The patient's co-pay, in basis points (2000 = 20%).")
    @staticmethod
    def copay_basis_points(root: strawberry.Parent[m.InsurancePolicy]) -> int:
        return root.copay_bp

    @strawberry.field(description="Per benefit (calendar) year.")
    @staticmethod
    def deductible(root: strawberry.Parent[m.InsurancePolicy]) -> Long:
        return Long(root.deductible)

    @strawberry.field
    @staticmethod
    def per_claim_limit(root: strawberry.Parent[m.InsurancePolicy]) -> Long | None:
        return None if root.per_claim_limit is None else Long(root.per_claim_limit)

    @strawberry.field(description="What the policy covers at most per benefit year.")
    @staticmethod
    def annual_limit(root: strawberry.Parent[m.InsurancePolicy]) -> Long | None:
        return None if root.annual_limit is None else Long(root.annual_limit)

    @strawberry.field(description="Per benefit year, the latest first.")
    @staticmethod
    def usage(root: strawberry.Parent[m.InsurancePolicy]) -> list[PolicyYearUsage]:
        years = sorted(root.usage.items(), reverse=True)
        return [
            PolicyYearUsage(year=int(k[1:]), covered=Long(u.covered), deductible=Long(u.deductible))
            for k, u in years
        ]


@strawberry.type(description="One charge on a claim, and what the payer decided on it.")
class ClaimLine:
    description: str
    source: ChargeSource
    service_date: datetime
    denial_reason: str | None

    @strawberry.field
    @staticmethod
    def charge_id(root: strawberry.Parent[m.ClaimLine]) -> strawberry.ID:
        return strawberry.ID(str(root.charge_id))

    @strawberry.field
    @staticmethod
    def billed(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.billed)

    @strawberry.field(description="What the policy's rules expect the insurer to pay.")
    @staticmethod
    def covered(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.covered)

    @strawberry.field(description="The deductible this line used.")
    @staticmethod
    def deductible(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.deductible)

    @strawberry.field
    @staticmethod
    def copay(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.copay)

    @strawberry.field(description="What the payer approved; null until adjudicated.")
    @staticmethod
    def approved(root: strawberry.Parent[m.ClaimLine]) -> Long | None:
        return None if root.approved is None else Long(root.approved)

    @strawberry.field(description="Written off by contract at adjudication.")
    @staticmethod
    def adjustment(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.adjustment)

    @strawberry.field(description="What the patient owes for this line.")
    @staticmethod
    def patient_responsibility(root: strawberry.Parent[m.ClaimLine]) -> Long:
        return Long(root.patient_responsibility)


@strawberry.type
class ClaimStatusChange:
    status: ClaimStatus
    at: datetime
    by: str | None
    note: str | None


@strawberry.type(description="A claim to a payer over charges of one billing account.")
class Claim:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    number: str
    currency: str
    benefit_year: int
    lines: list[ClaimLine]
    status: ClaimStatus
    outcome: ClaimOutcome | None
    denial_reason: str | None
    appeal_reason: str | None
    remainder_to: RemainderTo | None
    submitted_at: datetime | None
    adjudicated_at: datetime | None
    closed_at: datetime | None
    status_at: datetime
    version: int
    history: list[ClaimStatusChange] | None = strawberry.field(
        description="Who moved the claim when; the billing office's, not the patient's."
    )
    notes: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Claim]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Claim], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    def account_id(root: strawberry.Parent[m.Claim]) -> strawberry.ID:
        return strawberry.ID(str(root.account_id))

    @strawberry.field
    @staticmethod
    def policy_id(root: strawberry.Parent[m.Claim]) -> strawberry.ID:
        return strawberry.ID(str(root.policy_id))

    @strawberry.field
    @staticmethod
    async def policy(root: strawberry.Parent[m.Claim], info: Info) -> InsurancePolicy | None:
        return await info.context.loaders.insurance_policy_by_id.load(root.policy_id)

    @strawberry.field
    @staticmethod
    def payer_id(root: strawberry.Parent[m.Claim]) -> strawberry.ID:
        return strawberry.ID(str(root.payer_id))

    @strawberry.field
    @staticmethod
    async def payer(root: strawberry.Parent[m.Claim], info: Info) -> Payer | None:
        return await info.context.loaders.payer_by_id.load(root.payer_id)

    @strawberry.field
    @staticmethod
    def billed(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.billed)

    @strawberry.field(description="What the policy's rules expect the insurer to pay.")
    @staticmethod
    def covered(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.covered)

    @strawberry.field(description="What the payer approved; null until adjudicated.")
    @staticmethod
    def approved(root: strawberry.Parent[m.Claim]) -> Long | None:
        approved = root.approved
        return None if approved is None else Long(approved)

    @strawberry.field(description="Written off by contract at adjudication.")
    @staticmethod
    def adjustment(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.adjustment)

    @strawberry.field
    @staticmethod
    def patient_responsibility(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.patient_responsibility)

    @strawberry.field
    @staticmethod
    def insurer_paid(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.insurer_paid)

    @strawberry.field(description="What this claim still adds to the account's insurer due.")
    @staticmethod
    def insurer_outstanding(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.insurer_outstanding)

    @strawberry.field(description="Approved, never paid, when the claim was closed.")
    @staticmethod
    def remainder(root: strawberry.Parent[m.Claim]) -> Long:
        return Long(root.remainder)


@strawberry.type
class ClaimEvent:
    change: str = strawberry.field(
        description="`created`, `submitted`, `adjudicated`, `insurer_paid`, `appealed`, "
        "`resubmitted`, `closed` or `voided`."
    )
    claim_id: strawberry.ID
    at: datetime
    claim: Claim | None = strawberry.field(description="The claim as it is now.")
    context: strawberry.Private[Context]


@strawberry.input
class CreatePayerInput:
    name: str
    code: str = strawberry.field(description="Unique, upper case: letters, digits, - and _")
    contact: str | None = None


@strawberry.input
class CreateInsurancePolicyInput:
    patient_id: strawberry.ID
    payer_id: strawberry.ID
    plan_name: str
    member_id: str
    covered_sources: list[ChargeSource]
    valid_from: datetime
    valid_until: datetime | None = None
    group_number: str | None = None
    currency: str = "EUR"
    copay_basis_points: int = strawberry.field(default=0, description="2000 = 20%")
    deductible: Long = strawberry.field(default=Long(0), description="Per benefit year")
    per_claim_limit: Long | None = None
    annual_limit: Long | None = None
    priority: PolicyPriority = PolicyPriority.PRIMARY
    notes: str | None = None


@strawberry.input
class InsurancePolicyFilter:
    patient_id: strawberry.ID | None = None
    payer_id: strawberry.ID | None = None
    active: bool | None = None


@strawberry.input
class ClaimFilter:
    payer_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    status: ClaimStatus | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None


@strawberry.input
class CreateClaimInput:
    policy_id: strawberry.ID
    charge_ids: list[strawberry.ID] = strawberry.field(
        description="Charges of the policy's patient not on another claim."
    )
    notes: str | None = None


@strawberry.input
class ClaimLineDecisionInput:
    charge_id: strawberry.ID
    approved: Long
    adjustment: Long = strawberry.field(
        default=Long(0), description="Written off by contract; the patient does not owe it."
    )
    denial_reason: str | None = strawberry.field(
        default=None, description="Required when less than the covered amount is approved."
    )


@strawberry.input
class AdjudicateClaimInput:
    lines: list[ClaimLineDecisionInput]
    denial_reason: str | None = strawberry.field(
        default=None, description="Required when nothing is approved."
    )
