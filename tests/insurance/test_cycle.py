"""A claim's whole cycle: the account's balance splits and reconciles at every transition."""

from __future__ import annotations

from typing import Any

from models.insurance import PolicyYear
from services import insurance
from tests.insurance.helpers import (
    ADJUDICATE,
    APPEAL,
    BALANCE,
    CLOSE,
    CREATE,
    PATIENT_PAYS,
    PAY,
    RESUBMIT,
    SUBMIT,
    VOID,
    WRITE_OFF,
    Callers,
    assert_reconciles,
    create_input,
    decide,
    split,
    submitted,
    world,
)


async def test_charges_to_claim_to_payments_end_with_nothing_outstanding(client_as: Any) -> None:
    w = await world()  # 10000 + 5000; 20% co-pay, 1000 deductible
    c = Callers(client_as, w)
    before = await assert_reconciles(w.account_id)
    assert split(before) == {"charged": 15000, "insurer_due": 0, "patient_due": 15000,
                             "insurer_paid": 0, "patient_paid": 0, "written_off": 0}  # fmt: skip

    made = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    assert made["status"] == "DRAFT" and made["billed"] == 15000
    # Line 1: 1000 deductible, 20% of 9000 = 1800 co-pay, 7200 covered; line 2: 1000 + 4000.
    assert [(x["deductible"], x["copay"], x["covered"]) for x in made["lines"]] == [
        (1000, 1800, 7200),
        (0, 1000, 4000),
    ]
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (11200, 3800)
    assert all(ch.claim_id is not None for ch in account.charges)

    sent = (await c.billing.data(SUBMIT, id=made["id"]))["submitClaim"]
    assert sent["status"] == "SUBMITTED" and sent["version"] == made["version"] + 1
    assert split(await assert_reconciles(w.account_id)) == split(account)  # no money moves

    decision = decide(sent, (7200, 0, None), (3000, 500, "Above the fee schedule"))
    decided = (await c.billing.data(ADJUDICATE, id=made["id"], input=decision))["adjudicateClaim"]
    assert (decided["status"], decided["outcome"]) == ("ADJUDICATED", "PARTIALLY_APPROVED")
    assert (decided["approved"], decided["adjustment"]) == (10200, 500)
    assert decided["patientResponsibility"] == 4300
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due, account.written_off) == (10200, 4300, 500)

    paid = (await c.billing.data(PAY, id=made["id"], amount=6000))["recordInsurerPayment"]
    assert (paid["status"], paid["insurerPaid"], paid["insurerOutstanding"]) == ("PAID", 6000, 4200)
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.insurer_paid) == (4200, 6000)
    paid = (await c.billing.data(PAY, id=made["id"], amount=4200))["recordInsurerPayment"]
    assert paid["insurerOutstanding"] == 0
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (0, 4300)

    settled = await c.billing.data(PATIENT_PAYS, id=str(w.account_id), amount=4300)
    assert settled["recordPayment"] == {"balance": {"amount": 0}, "patientDue": {"amount": 0}}
    closed = (await c.billing.data(CLOSE, id=made["id"], to="PATIENT"))["closeClaim"]
    assert (closed["status"], closed["remainder"], closed["insurerOutstanding"]) == ("CLOSED", 0, 0)
    account = await assert_reconciles(w.account_id)
    assert split(account) == {
        "charged": 15000, "insurer_due": 0, "patient_due": 0,
        "insurer_paid": 10200, "patient_paid": 4300, "written_off": 500,
    }  # fmt: skip
    assert account.balance == 0
    shown = (await c.billing.data(BALANCE, id=str(w.account_id)))["billingAccount"]
    assert [p["payer"] for p in shown["payments"]] == ["INSURER", "INSURER", "PATIENT"]
    assert shown["payments"][0]["claimId"] == made["id"]


async def test_a_denial_is_appealed_resubmitted_and_approved(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    denied = decide(claim, (0, 0, "Not medically necessary"), (0, 0, "Not medically necessary"))
    denied["denialReason"] = "Not medically necessary"
    out = (await c.billing.data(ADJUDICATE, id=claim["id"], input=denied))["adjudicateClaim"]
    assert (out["outcome"], out["denialReason"], out["patientResponsibility"]) == (
        "DENIED", "Not medically necessary", 15000,
    )  # fmt: skip
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (0, 15000)

    appealed = await c.billing.data(APPEAL, id=claim["id"], reason="Referral letter attached")
    assert appealed["appealClaim"]["status"] == "APPEALED"
    assert split(await assert_reconciles(w.account_id)) == split(account)
    again = (await c.billing.data(RESUBMIT, id=claim["id"]))["resubmitClaim"]
    assert again["status"] == "RESUBMITTED"
    await assert_reconciles(w.account_id)

    approved = decide(again, (7200, 0, None), (4000, 0, None))
    out = (await c.billing.data(ADJUDICATE, id=claim["id"], input=approved))["adjudicateClaim"]
    assert (out["outcome"], out["approved"]) == ("APPROVED", 11200)
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (11200, 3800)
    await c.billing.data(PAY, id=claim["id"], amount=11200)
    await c.billing.data(PATIENT_PAYS, id=str(w.account_id), amount=3800)
    await c.billing.data(CLOSE, id=claim["id"], to="PATIENT")
    account = await assert_reconciles(w.account_id)
    assert account.balance == 0 and account.written_off == 0


async def test_a_partial_approval_appealed_replaces_its_adjustment(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    partial = decide(claim, (5000, 1000, "Fee schedule"), (4000, 0, None))
    await c.billing.data(ADJUDICATE, id=claim["id"], input=partial)
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.written_off) == (9000, 1000)
    await c.billing.data(APPEAL, id=claim["id"], reason="Contract rate is higher")
    again = (await c.billing.data(RESUBMIT, id=claim["id"]))["resubmitClaim"]
    full = decide(again, (7200, 0, None), (4000, 0, None))
    await c.billing.data(ADJUDICATE, id=claim["id"], input=full)
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.written_off, account.patient_due) == (11200, 0, 3800)
    assert [wo.amount for wo in account.write_offs] == [1000, -1000]


async def test_closing_moves_what_the_insurer_never_paid(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    approve = decide(claim, (7200, 0, None), (4000, 0, None))
    await c.billing.data(ADJUDICATE, id=claim["id"], input=approve)
    await c.billing.data(PAY, id=claim["id"], amount=10000)
    closed = (await c.billing.data(CLOSE, id=claim["id"], to="WRITE_OFF"))["closeClaim"]
    assert (closed["remainder"], closed["remainderTo"]) == (1200, "WRITE_OFF")
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.written_off, account.patient_due) == (0, 1200, 3800)

    other = await world()
    c2 = Callers(client_as, other)
    claim = await submitted(c2, other)
    await c2.billing.data(
        ADJUDICATE, id=claim["id"], input=decide(claim, (7200, 0, None), (4000, 0, None))
    )
    closed = (await c2.billing.data(CLOSE, id=claim["id"], to="PATIENT"))["closeClaim"]
    assert (closed["remainder"], closed["remainderTo"]) == (11200, "PATIENT")
    account = await assert_reconciles(other.account_id)
    assert (account.insurer_due, account.patient_due) == (0, 15000)


async def test_voiding_frees_the_charges_and_returns_the_due(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    voided = (await c.billing.data(VOID, id=claim["id"], reason="Wrong policy"))["voidClaim"]
    assert voided["status"] == "VOID" and voided["insurerOutstanding"] == 0
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (0, 15000)
    assert all(ch.claim_id is None for ch in account.charges)
    policy = await insurance.get_policy(w.policy_id)
    assert all(u == PolicyYear() for u in policy.usage.values())
    again = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    assert again["covered"] == 11200  # the deductible was given back too
    await assert_reconciles(w.account_id)


async def test_a_write_off_reduces_what_the_patient_owes(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    await c.billing.data(CREATE, input=create_input(w))
    out = (await c.billing.data(WRITE_OFF, id=str(w.account_id), amount=800))["writeOff"]
    assert out == {"writtenOff": {"amount": 800}, "patientDue": {"amount": 3000}}
    await assert_reconciles(w.account_id)


async def test_limits_cap_the_cover_per_claim_and_per_year(client_as: Any) -> None:
    w = await world((10000, 10000, 10000), copay_bp=0, deductible=0, per_claim_limit=15000,
                    annual_limit=20000)  # fmt: skip
    c = Callers(client_as, w)
    first = (await c.billing.data(CREATE, input=create_input(w, w.charges[:2])))["createClaim"]
    assert [x["covered"] for x in first["lines"]] == [10000, 5000]
    second = (await c.billing.data(CREATE, input=create_input(w, w.charges[2:])))["createClaim"]
    assert [x["covered"] for x in second["lines"]] == [5000]  # 20000 a year, 15000 used
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_due, account.patient_due) == (20000, 10000)
