"""Giving takes the ward's stock (soonest expiry first, that ward's only); holding and refusing
take nothing; a ward without the stock refuses the dose and nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.base import utcnow
from models.medication import DoseStatus
from models.nursing import NursingTask
from tests.graphql.helpers import code
from tests.medication.helpers import GIVE, HOLD, REFUSE, round_, stored, ward_batch
from tests.orders.helpers import iso
from tests.pharmacy import world


async def test_giving_takes_the_ward_stock_soonest_expiry_first(client_as: Any) -> None:
    r = await round_(client_as)
    late = await ward_batch(r.w, r.drug, "LATE", 10, expires_in=300)
    soon = await ward_batch(r.w, r.drug, "SOON", 1, expires_in=30)
    expired = await ward_batch(r.w, r.drug, "OLD", 10, expires_in=-1)
    elsewhere = await ward_batch(r.w.other_ward.id, r.drug, "OTHER", 10, expires_in=10)
    store = await world.batch(r.drug, "STORE", 10, expires_in=5)
    at = utcnow() - timedelta(minutes=3)
    given = (await r.c.nurse.data(GIVE, id=r.doses[0]["id"], givenAt=iso(at), note="With food"))[
        "giveMedication"
    ]
    assert given["status"] == "GIVEN" and given["recordedById"] == str(r.w.nurse.id)
    assert [(x["batchNumber"], x["quantity"]) for x in given["lines"]] == [("SOON", 1), ("LATE", 1)]
    assert given["task"]["status"] == "DONE"
    assert await world.quantities(soon, late, expired, elsewhere, store) == [0, 9, 10, 10, 10]
    await world.ledger_agrees(soon, late)
    # Recorded once: a second give, hold or refusal of the same dose is a conflict.
    for op, args in ((GIVE, {}), (HOLD, {"reason": "x"}), (REFUSE, {"reason": "x"})):
        assert code(await r.c.nurse.error(op, id=r.doses[0]["id"], **args)) == "CONFLICT"
    assert await world.quantities(soon, late) == [0, 9]


async def test_a_dose_is_given_at_a_valid_time(client_as: Any) -> None:
    r = await round_(client_as)
    stock = await ward_batch(r.w, r.drug, "B1", 10)
    dose = r.doses[0]["id"]
    for when in (utcnow() + timedelta(minutes=30), r.w.admission.admitted_at - timedelta(hours=1)):
        error = await r.c.nurse.error(GIVE, id=dose, givenAt=iso(when))
        assert code(error) == "BAD_USER_INPUT" and "givenAt" in error["extensions"]["fields"]
    assert (await stored(dose)).status == DoseStatus.SCHEDULED
    assert await world.quantities(stock) == [10]


async def test_without_ward_stock_the_dose_is_refused_and_nothing_changes(
    client_as: Any,
) -> None:
    r = await round_(client_as)
    one = await ward_batch(r.w, r.drug, "ONE", 1)  # a dose takes two
    store = await world.batch(r.drug, "STORE", 50)  # the pharmacy's store is not the ward's
    dose = r.doses[0]["id"]
    error = await r.c.nurse.error(GIVE, id=dose)
    assert code(error) == "CONFLICT"
    assert (error["extensions"]["reason"], error["extensions"]["available"]) == ("NO_WARD_STOCK", 1)
    after = await stored(dose)
    assert (after.status, after.lines, after.version) == (DoseStatus.SCHEDULED, [], 0)
    assert await world.quantities(one, store) == [1, 50]
    await world.ledger_agrees(one, store)
    task = await NursingTask.get(after.task_id)
    assert task is not None and task.status == "due"


async def test_holding_and_refusing_take_no_stock_and_need_a_reason(client_as: Any) -> None:
    r = await round_(client_as)
    stock = await ward_batch(r.w, r.drug, "B1", 10)
    first, second = r.doses[0]["id"], r.doses[1]["id"]
    assert code(await r.c.nurse.error(HOLD, id=first, reason="  ")) == "BAD_USER_INPUT"
    held = (await r.c.nurse.data(HOLD, id=first, reason="Nil by mouth for theatre"))[
        "holdMedication"
    ]
    assert (held["status"], held["reason"]) == ("HELD", "Nil by mouth for theatre")
    assert held["task"]["status"] == "SKIPPED" and "Nil by mouth" in held["task"]["reason"]
    refused = (await r.c.nurse.data(REFUSE, id=second, reason="Feels nauseous"))["refuseMedication"]
    assert refused["status"] == "REFUSED" and refused["task"]["status"] == "SKIPPED"
    assert await world.quantities(stock) == [10]
