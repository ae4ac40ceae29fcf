"""Races: exactly one of two racing steps takes effect, and nothing is counted twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from errors import Conflict
from models.billing import BillingAccount
from models.laboratory import LabOrder, LabSample
from services import laboratory
from tests.graphql.helpers import code
from tests.laboratory.world import COLLECT, VERIFY, ordered, resulted, world


async def test_two_concurrent_verifications_charge_once(client_as: Any) -> None:
    w = await world(client_as)
    id = await resulted(w)
    bodies = await asyncio.gather(w["tech2"](VERIFY, id=id), w["doctor"](VERIFY, id=id))
    won = [b for b in bodies if "errors" not in b]
    lost = [b for b in bodies if "errors" in b]
    assert len(won) == 1 and len(lost) == 1
    # Refused by the compare-and-set, or (when it read the order after the winner) by status.
    assert code(lost[0]["errors"][0]) in {"CONFLICT", "BAD_USER_INPUT"}
    account = await BillingAccount.find_one({"patient_id": w.patient.id})
    assert account is not None
    assert [c.source_id for c in account.charges] == [ObjectId(id)]
    assert account.total_charged == 2500


async def test_settling_the_charge_twice_at_once_charges_once(client_as: Any) -> None:
    w = await world(client_as)
    id = await resulted(w)
    order = await laboratory.verify_order(ObjectId(id), "lab:someone-else")
    # As if the charge step were retried (or run by two processes) for the same order.
    unset = order.model_copy(update={"charged_at": None})
    await asyncio.gather(laboratory.settle_charge(unset), laboratory.settle_charge(unset))
    account = await BillingAccount.find_one({"patient_id": w.patient.id})
    assert account is not None and [c.amount for c in account.charges] == [2500]


async def test_accession_numbers_are_unique_under_concurrency(database: Any) -> None:
    now = datetime(2026, 12, 4, 10, tzinfo=UTC)
    numbers = await asyncio.gather(*(laboratory.next_accession(now) for _ in range(50)))
    assert len(set(numbers)) == 50
    assert sorted(numbers)[0] == "L20261204-00001"
    assert await laboratory.next_accession(datetime(2026, 12, 5, tzinfo=UTC)) == "L20261205-00001"


async def test_two_concurrent_collections_take_one_set_of_samples(client_as: Any) -> None:
    w = await world(client_as)
    id = await ordered(w, ["BMP", "CBC"])
    bodies = await asyncio.gather(w["tech"](COLLECT, id=id), w["tech2"](COLLECT, id=id))
    assert sorted("errors" in b for b in bodies) == [False, True]
    samples = await LabSample.find({"order_id": ObjectId(id)}).to_list()
    assert len(samples) == 2  # serum and whole blood, once
    order = await LabOrder.get(ObjectId(id))
    assert order is not None and order.status.value == "collected"


async def test_a_step_on_a_stale_order_is_a_conflict_and_writes_nothing(client_as: Any) -> None:
    w = await world(client_as)
    id = await resulted(w)
    stale = await laboratory.get_lab_order(ObjectId(id))
    await laboratory.verify_order(ObjectId(id), "lab:someone-else")
    try:
        await laboratory._advance(stale, None, "lab:late", datetime.now(UTC))
    except Conflict:
        pass
    else:
        raise AssertionError("a stale compare-and-set went through")
    fresh = await laboratory.get_lab_order(ObjectId(id))
    assert fresh.version == stale.version + 1  # the verification alone
