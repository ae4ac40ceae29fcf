"""Idempotent retries of money mutations, and who may read and move claims."""

from __future__ import annotations

from typing import Any

from models.insurance import Claim
from tests.graphql.helpers import code
from tests.insurance.helpers import (
    ADJUDICATE,
    BALANCE,
    CREATE,
    PAY,
    SUBMIT,
    WRITE_OFF,
    Callers,
    assert_reconciles,
    create_input,
    decide,
    submitted,
    world,
)

MY_CLAIMS = """{ claims(first: 10) { nodes { id status billed patientResponsibility } } }"""
MY_POLICIES = """{ insurancePolicies(first: 10) { nodes { id planName copayBasisPoints
  payer { name } } } }"""
CLAIM_INTERNALS = """query($id: ID!) { claim(id: $id) { id status history { status } notes } }"""
SPLIT = """query($id: ID!) { billingAccount(id: $id) { insurerDue { amount }
  patientDue { amount } writtenOff { amount } } }"""


async def test_retries_with_a_key_take_effect_once(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    first = (await c.billing.data(CREATE, input=create_input(w), key="claim-1"))["createClaim"]
    again = (await c.billing.data(CREATE, input=create_input(w), key="claim-1"))["createClaim"]
    assert again == first
    assert await Claim.find({"account_id": w.account_id}).count() == 1
    other = create_input(w, w.charges[:1])
    assert code(await c.billing.error(CREATE, input=other, key="claim-1")) == "CONFLICT"

    id = first["id"]
    await c.billing.data(SUBMIT, id=id, key="submit-1")
    replayed = (await c.billing.data(SUBMIT, id=id, key="submit-1"))["submitClaim"]
    assert replayed["status"] == "SUBMITTED"
    approve = decide(first, (7200, 0, None), (4000, 0, None))
    await c.billing.data(ADJUDICATE, id=id, input=approve, key="adj-1")
    await c.billing.data(ADJUDICATE, id=id, input=approve, key="adj-1")
    paid = [(await c.billing.data(PAY, id=id, amount=5000, key="pay-1")) for _ in range(3)]
    assert all(p == paid[0] for p in paid)
    account = await assert_reconciles(w.account_id)
    assert (account.insurer_paid, account.insurer_due) == (5000, 6200)
    for _ in range(2):
        await c.billing.data(WRITE_OFF, id=str(w.account_id), amount=300, key="wo-1")
    account = await assert_reconciles(w.account_id)
    assert account.written_off == 300


async def test_the_patient_reads_their_own_claims_and_split_not_internals(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    mine = (await c.patient.data(MY_CLAIMS))["claims"]["nodes"]
    assert [(x["id"], x["patientResponsibility"]) for x in mine] == [(claim["id"], 3800)]
    policies = (await c.patient.data(MY_POLICIES))["insurancePolicies"]["nodes"]
    assert policies[0]["payer"]["name"] == "Acme Health"
    body = await c.patient(CLAIM_INTERNALS, id=claim["id"])
    assert body["data"]["claim"]["status"] == "SUBMITTED"
    assert body["data"]["claim"]["history"] is None and body["data"]["claim"]["notes"] is None
    assert {code(e) for e in body["errors"]} == {"FORBIDDEN"}
    split = (await c.patient.data(SPLIT, id=str(w.account_id)))["billingAccount"]
    assert split == {"insurerDue": {"amount": 11200}, "patientDue": {"amount": 3800},
                     "writtenOff": {"amount": 0}}  # fmt: skip
    # Another patient sees none of it; the patient moves nothing.
    other = await world()
    stranger = client_as(roles=["patient"], pid=str(other.patient.id))
    assert (await stranger.data(MY_CLAIMS))["claims"]["nodes"] == []
    assert code(await stranger.error(CLAIM_INTERNALS, id=claim["id"])) == "FORBIDDEN"
    assert code(await c.patient.error(PAY, id=claim["id"], amount=1)) == "FORBIDDEN"
    assert code(await c.patient.error(CREATE, input=create_input(w))) == "FORBIDDEN"


async def test_doctors_and_analysts_read_no_claim_rows(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    for caller in (c.doctor, c.analyst):
        assert code(await caller.error(MY_CLAIMS)) == "FORBIDDEN"
        assert code(await caller.error(CLAIM_INTERNALS, id=claim["id"])) == "FORBIDDEN"
        assert code(await caller.error(MY_POLICIES)) == "FORBIDDEN"
        assert code(await caller.error(BALANCE, id=str(w.account_id))) == "FORBIDDEN"
        assert code(await caller.error(SUBMIT, id=claim["id"])) == "FORBIDDEN"
    nurse = client_as(roles=["nurse"])
    assert code(await nurse.error(WRITE_OFF, id=str(w.account_id), amount=1)) == "FORBIDDEN"


async def test_admins_run_the_cycle_too(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    made = (await c.admin.data(CREATE, input=create_input(w)))["createClaim"]
    assert (await c.admin.data(SUBMIT, id=made["id"]))["submitClaim"]["status"] == "SUBMITTED"
    await assert_reconciles(w.account_id)
