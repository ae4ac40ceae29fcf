"""Every refusal has a clear code, changes nothing, and the account still reconciles."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bson import ObjectId

from models.base import utcnow
from models.billing import BillingAccount
from models.insurance import Claim, InsurancePolicy
from services import insurance
from tests.graphql.helpers import code, snapshot
from tests.insurance.helpers import (
    ADJUDICATE,
    APPEAL,
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
    submitted,
    world,
)

FULL = ((7200, 0, None), (4000, 0, None))


async def _refused(c: Callers, w: Any, expected: str, query: str, **variables: Any) -> str:
    """The request is refused with ``expected`` and nothing stored changes."""
    before = await snapshot(Claim, BillingAccount, InsurancePolicy)
    error = await c.billing.error(query, **variables)
    assert code(error) == expected, error
    assert await snapshot(Claim, BillingAccount, InsurancePolicy) == before
    await assert_reconciles(w.account_id)
    return str(error["message"])


async def test_each_transition_from_a_wrong_state_is_a_conflict(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    draft = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    id = draft["id"]
    assert "only a submitted or resubmitted" in await _refused(
        c, w, "CONFLICT", ADJUDICATE, id=id, input=decide(draft, *FULL)
    )
    await _refused(c, w, "CONFLICT", PAY, id=id, amount=100)
    await _refused(c, w, "CONFLICT", APPEAL, id=id, reason="x")
    await _refused(c, w, "CONFLICT", RESUBMIT, id=id)
    await _refused(c, w, "CONFLICT", CLOSE, id=id, to="PATIENT")
    await c.billing.data(SUBMIT, id=id)
    await _refused(c, w, "CONFLICT", SUBMIT, id=id)
    await c.billing.data(ADJUDICATE, id=id, input=decide(draft, *FULL))
    await _refused(c, w, "CONFLICT", VOID, id=id, reason="too late")
    await _refused(c, w, "CONFLICT", ADJUDICATE, id=id, input=decide(draft, *FULL))
    assert "nothing to appeal" in await _refused(c, w, "CONFLICT", APPEAL, id=id, reason="x")
    await c.billing.data(CLOSE, id=id, to="PATIENT")
    await _refused(c, w, "CONFLICT", PAY, id=id, amount=100)
    await _refused(c, w, "CONFLICT", CLOSE, id=id, to="PATIENT")


async def test_a_stale_version_is_a_conflict(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    draft = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    await _refused(c, w, "CONFLICT", SUBMIT, id=draft["id"], version=draft["version"] + 1)


async def test_two_racing_submits_one_wins(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    draft = (await c.billing.data(CREATE, input=create_input(w)))["createClaim"]
    bodies = await asyncio.gather(*(c.billing(SUBMIT, id=draft["id"]) for _ in range(2)))
    won = [b for b in bodies if "errors" not in b]
    lost = [b for b in bodies if "errors" in b]
    assert len(won) == 1 and len(lost) == 1
    assert code(lost[0]["errors"][0]) == "CONFLICT"
    stored = await insurance.get_claim(ObjectId(draft["id"]))
    assert [h.status for h in stored.history] == ["draft", "submitted"]
    await assert_reconciles(w.account_id)


async def test_two_concurrent_claim_builds_over_the_same_charges_one_wins(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    admin = c.admin
    bodies = await asyncio.gather(
        c.billing(CREATE, input=create_input(w)),
        admin(CREATE, input=create_input(w, w.charges[1:])),
    )
    won = [b for b in bodies if "errors" not in b]
    lost = [b for b in bodies if "errors" in b]
    assert len(won) == 1 and len(lost) == 1
    assert code(lost[0]["errors"][0]) == "CONFLICT"
    assert await Claim.find({"account_id": w.account_id}).count() == 1
    account = await assert_reconciles(w.account_id)
    claim_id = won[0]["data"]["createClaim"]["id"]
    assert {str(ch.claim_id) for ch in account.charges if ch.id in w.charges[1:]} == {claim_id}
    # The loser's reservation on the policy was given back: the deductible counted once.
    policy = await insurance.get_policy(w.policy_id)
    year = next(iter(policy.usage.values()))
    assert year.covered == account.insurer_due


async def test_many_concurrent_builds_claim_each_charge_once(client_as: Any) -> None:
    w = await world((1000,) * 4, deductible=0)
    c = Callers(client_as, w)
    pairs = [[w.charges[i], w.charges[(i + 1) % 4]] for i in range(4)] * 3
    bodies = await asyncio.gather(*(c.billing(CREATE, input=create_input(w, p)) for p in pairs))
    won = [b for b in bodies if "errors" not in b]
    assert 1 <= len(won) <= 2
    assert all(code(b["errors"][0]) == "CONFLICT" for b in bodies if "errors" in b)
    account = await assert_reconciles(w.account_id)
    claimed = [ch.claim_id for ch in account.charges if ch.claim_id is not None]
    assert len(claimed) == 2 * len(won)


async def test_amounts_out_of_range_are_bad_input(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    claim = await submitted(c, w)
    id = claim["id"]
    for amounts in (
        ((15000, 0, None), (4000, 0, None)),  # approved > billed
        ((7200, 5000, None), (4000, 0, None)),  # approved + adjustment > billed
        ((-1, 0, "x"), (4000, 0, None)),
        ((7200, -5, None), (4000, 0, None)),
        ((5000, 0, None), (4000, 0, None)),  # less than covered, no reason
        ((0, 0, "no"), (0, 0, "no")),  # denied without the claim's reason
    ):
        await _refused(c, w, "BAD_USER_INPUT", ADJUDICATE, id=id, input=decide(claim, *amounts))
    short = decide(claim, *FULL)
    short["lines"] = short["lines"][:1]
    await _refused(c, w, "BAD_USER_INPUT", ADJUDICATE, id=id, input=short)
    await c.billing.data(ADJUDICATE, id=id, input=decide(claim, (7000, 0, "cap"), (4000, 0, None)))
    await _refused(c, w, "BAD_USER_INPUT", PAY, id=id, amount=11001)  # payments > approved
    await _refused(c, w, "BAD_USER_INPUT", PAY, id=id, amount=0)
    await c.billing.data(PAY, id=id, amount=11000)
    await _refused(c, w, "BAD_USER_INPUT", PAY, id=id, amount=1)
    # The patient owes 4000: paying the insurer's part is refused.
    await _refused(c, w, "BAD_USER_INPUT", PATIENT_PAYS, id=str(w.account_id), amount=4001)
    await _refused(c, w, "BAD_USER_INPUT", WRITE_OFF, id=str(w.account_id), amount=4001)


async def test_a_claim_over_charges_the_patient_already_paid_is_refused(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    await c.billing.data(PATIENT_PAYS, id=str(w.account_id), amount=14000)
    await _refused(c, w, "BAD_USER_INPUT", CREATE, input=create_input(w))


async def test_claims_on_foreign_charges_bad_policies_and_uncovered_sources(
    client_as: Any,
) -> None:
    w = await world()
    other = await world()
    c = Callers(client_as, w)
    foreign = create_input(w, [other.charges[0]])
    assert "not a charge of the policy's patient" in await _refused(
        c, w, "BAD_USER_INPUT", CREATE, input=foreign
    )
    mixed = {**create_input(w), "policyId": str(other.policy.id)}
    await _refused(c, w, "BAD_USER_INPUT", CREATE, input=mixed)
    await _refused(c, w, "BAD_USER_INPUT", CREATE, input={**create_input(w), "chargeIds": []})
    twice = create_input(w, [w.charges[0], w.charges[0]])
    await _refused(c, w, "BAD_USER_INPUT", CREATE, input=twice)

    narrow = await world(covered_sources=["appointment"])
    c = Callers(client_as, narrow)
    assert "manual is not covered" in await _refused(
        c, narrow, "BAD_USER_INPUT", CREATE, input=create_input(narrow)
    )

    now = utcnow()
    lapsed = await world(valid_from=now - timedelta(days=400), valid_until=now - timedelta(days=1))
    c = Callers(client_as, lapsed)
    assert "was not valid on" in await _refused(
        c, lapsed, "BAD_USER_INPUT", CREATE, input=create_input(lapsed)
    )

    cancelled = await world()
    await insurance.cancel_policy(cancelled.policy_id)
    c = Callers(client_as, cancelled)
    await _refused(c, cancelled, "BAD_USER_INPUT", CREATE, input=create_input(cancelled))


async def test_a_charge_already_claimed_is_a_conflict(client_as: Any) -> None:
    w = await world()
    c = Callers(client_as, w)
    await c.billing.data(CREATE, input=create_input(w, w.charges[:1]))
    assert "already on claim" in await _refused(c, w, "CONFLICT", CREATE, input=create_input(w))
