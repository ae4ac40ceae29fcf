"""The demo's claims agree with its insured accounts, show every stage, and reconcile."""

from __future__ import annotations

from typing import Any

from demo import seed_demo
from models.billing import BillingAccount
from models.insurance import Claim, ClaimOutcome, ClaimStatus, InsurancePolicy, Payer
from services import insurance


async def test_demo_claims_cover_every_stage_and_every_account_reconciles(database: Any) -> None:
    await seed_demo(80)
    payers = {p.id: p for p in await Payer.find_all().to_list()}
    policies = await InsurancePolicy.find_all().to_list()
    assert policies
    for policy in policies:
        account = await BillingAccount.find_one({"patient_id": policy.patient_id})
        assert account is not None and account.insurance is not None
        assert payers[policy.payer_id].name == account.insurance.provider
        assert policy.member_id == account.insurance.policy_number
    claims = await Claim.find_all().to_list()
    assert {c.status for c in claims} == set(ClaimStatus)
    assert {c.outcome for c in claims} >= set(ClaimOutcome)
    for account in await BillingAccount.find_all().to_list():
        assert await insurance.reconcile(account) == [], account.id
