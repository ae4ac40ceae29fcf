"""An insured patient with charges, the callers, and the GraphQL operations the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId

from models.billing import BillingAccount
from models.departments import Department
from models.insurance import InsurancePolicy, Payer
from models.patients import Patient
from services import billing, insurance
from tests import factories

CLAIM_FIELDS = """id number status outcome version billed covered approved adjustment
  patientResponsibility insurerPaid insurerOutstanding remainder remainderTo denialReason
  appealReason lines { chargeId billed covered deductible copay approved adjustment
  patientResponsibility denialReason }"""
CREATE = f"""mutation($input: CreateClaimInput!, $key: String) {{
  createClaim(input: $input, idempotencyKey: $key) {{ {CLAIM_FIELDS} }} }}"""
SUBMIT = f"""mutation($id: ID!, $version: Int, $key: String) {{
  submitClaim(id: $id, version: $version, idempotencyKey: $key) {{ {CLAIM_FIELDS} }} }}"""
ADJUDICATE = f"""mutation($id: ID!, $input: AdjudicateClaimInput!, $key: String) {{
  adjudicateClaim(id: $id, input: $input, idempotencyKey: $key) {{ {CLAIM_FIELDS} }} }}"""
PAY = f"""mutation($id: ID!, $amount: Long!, $key: String) {{
  recordInsurerPayment(id: $id, amount: $amount, reference: "EOB-1", idempotencyKey: $key) {{
    {CLAIM_FIELDS} }} }}"""
APPEAL = f"""mutation($id: ID!, $reason: String!, $key: String) {{
  appealClaim(id: $id, reason: $reason, idempotencyKey: $key) {{ {CLAIM_FIELDS} }} }}"""
RESUBMIT = f"""mutation($id: ID!) {{ resubmitClaim(id: $id) {{ {CLAIM_FIELDS} }} }}"""
CLOSE = f"""mutation($id: ID!, $to: RemainderTo!) {{
  closeClaim(id: $id, remainderTo: $to) {{ {CLAIM_FIELDS} }} }}"""
VOID = f"""mutation($id: ID!, $reason: String!) {{
  voidClaim(id: $id, reason: $reason) {{ {CLAIM_FIELDS} }} }}"""
PATIENT_PAYS = """mutation($id: ID!, $amount: Long!, $key: String) {
  recordPayment(accountId: $id, idempotencyKey: $key,
                input: {amount: {amount: $amount, currency: "EUR"}, method: CARD}) {
    balance { amount } patientDue { amount } } }"""
WRITE_OFF = """mutation($id: ID!, $amount: Long!, $key: String) {
  writeOff(accountId: $id, amount: $amount, kind: CHARITY, reason: "hardship",
           idempotencyKey: $key) {
    writtenOff { amount } patientDue { amount } } }"""
BALANCE = """query($id: ID!) { billingAccount(id: $id) {
  totalCharged { amount } totalPaid { amount } balance { amount } insurerDue { amount }
  patientDue { amount } insurerPaid { amount } patientPaid { amount } writtenOff { amount }
  charges { id claimId } payments { amount { amount } payer claimId } } }"""


@dataclass
class World:
    department: Department
    patient: Patient
    account: BillingAccount
    payer: Payer
    policy: InsurancePolicy
    charges: list[ObjectId]

    @property
    def policy_id(self) -> ObjectId:
        assert self.policy.id is not None
        return self.policy.id

    @property
    def account_id(self) -> ObjectId:
        assert self.account.id is not None
        return self.account.id


async def charge(account_id: ObjectId, dept: Department, amount: int, what: str = "Ward") -> Any:
    data = {
        "description": what,
        "amount": amount,
        "currency": "EUR",
        "source": "manual",
        "department_id": dept.id,
    }
    account = await billing.add_charge(account_id, data)
    return account.charges[-1].id


async def world(amounts: tuple[int, ...] = (10000, 5000), **policy: Any) -> World:
    """A patient whose account holds manual charges of ``amounts``, insured by a policy with a
    20% co-pay and a 1000 deductible unless ``policy`` says otherwise."""
    dept = await factories.department()
    patient = await factories.patient(clinician_access=False)
    assert patient.id is not None
    account = await billing.open_billing_account(patient.id)
    assert account.id is not None
    charges = [await charge(account.id, dept, a) for a in amounts]
    payer = await insurance.create_payer({"name": "Acme Health", "code": f"ACME{factories.n()}"})
    first = account.created_at - timedelta(days=30)
    rules = {
        "patient_id": patient.id,
        "payer_id": payer.id,
        "plan_name": "Acme Gold",
        "member_id": f"M{factories.n()}",
        "copay_bp": 2000,
        "deductible": 1000,
        "covered_sources": ["manual", "appointment"],
        "valid_from": first,
        **policy,
    }
    made = await insurance.create_policy(rules)
    fresh = await BillingAccount.get(account.id)
    assert fresh is not None
    return World(dept, patient, fresh, payer, made, charges)


async def assert_reconciles(account_id: ObjectId) -> BillingAccount:
    """charges = payments + insurer due + patient due + write-offs, each term equal to its
    ledger and insurer due equal to what the claims still expect."""
    account = await BillingAccount.get(account_id)
    assert account is not None
    problems = await insurance.reconcile(account)
    assert problems == [], problems
    return account


def split(account: BillingAccount) -> dict[str, int]:
    return {
        "charged": account.total_charged,
        "insurer_due": account.insurer_due,
        "patient_due": account.patient_due,
        "insurer_paid": account.insurer_paid,
        "patient_paid": account.patient_paid,
        "written_off": account.written_off,
    }


class Callers:
    def __init__(self, client_as: Any, w: World) -> None:
        self.billing = client_as(roles=["billing"])
        self.admin = client_as(roles=["admin"])
        self.patient = client_as(roles=["patient"], pid=str(w.patient.id))
        self.analyst = client_as(roles=["analyst"])
        self.doctor = client_as(roles=["doctor"], sid=str(ObjectId()), did=str(w.department.id))


def create_input(w: World, charges: list[ObjectId] | None = None) -> dict[str, Any]:
    ids = w.charges if charges is None else charges
    return {"policyId": str(w.policy.id), "chargeIds": [str(c) for c in ids]}


def decide(claim: dict[str, Any], *amounts: tuple[int, int, str | None]) -> dict[str, Any]:
    """Adjudication input: (approved, adjustment, reason) per line, in line order."""
    lines = [
        {"chargeId": line["chargeId"], "approved": a, "adjustment": adj, "denialReason": why}
        for line, (a, adj, why) in zip(claim["lines"], amounts, strict=True)
    ]
    return {"lines": lines}


async def submitted(c: Callers, w: World) -> dict[str, Any]:
    made = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    result: dict[str, Any] = (await c.billing.data(SUBMIT, id=made["id"]))["submitClaim"]
    return result
