"""The pharmacy issues stock to a ward: both sides move once, with ledger rows; a failure part
way or a crash gives the units back; a dose's give abandoned mid-way is recovered."""

from __future__ import annotations

from typing import Any

import pytest
from beanie import PydanticObjectId
from bson import ObjectId

from models.base import utcnow
from models.medication import DoseLine, DoseStatus, MedicationAdministration
from models.pharmacy import MovementKind, PendingOp, StockBatch, StockLocation
from services import pharmacy, ward_stock
from tests.graphql.helpers import code
from tests.medication.helpers import GIVE, ISSUE, round_, stored, ward_batch
from tests.pharmacy import world


async def test_issuing_moves_units_from_the_store_to_the_ward(client_as: Any) -> None:
    r = await round_(client_as)
    store = await world.batch(r.drug, "LOT7", 10, expires_in=90)
    first = (await r.pharmacist.data(ISSUE, b=str(store.id), w=str(r.w.ward.id), q=4))[
        "issueStockToWard"
    ]
    assert (first["batchNumber"], first["quantity"], first["location"], first["wardId"]) == (
        "LOT7", 4, "WARD", str(r.w.ward.id),
    )  # fmt: skip
    again = (await r.pharmacist.data(ISSUE, b=str(store.id), w=str(r.w.ward.id), q=3))[
        "issueStockToWard"
    ]
    assert again["id"] == first["id"] and again["quantity"] == 7
    ward = await StockBatch.get(ObjectId(first["id"]))
    assert ward is not None
    assert await world.quantities(store, ward) == [3, 7]
    await world.ledger_agrees(store, ward)
    error = await r.pharmacist.error(ISSUE, b=str(store.id), w=str(r.w.ward.id), q=4)
    assert code(error) == "CONFLICT" and error["extensions"]["reason"] == "INSUFFICIENT_STOCK"
    assert await world.quantities(store, ward) == [3, 7]
    assert code(await r.c.nurse.error(ISSUE, b=str(store.id), w=str(r.w.ward.id), q=1)) == (
        "FORBIDDEN"
    )
    # What was issued is given: the dose takes the ward's units.
    await r.c.nurse.data(GIVE, id=r.doses[0]["id"])
    assert await world.quantities(store, ward) == [3, 5]


async def test_a_failure_before_the_ward_gets_the_units_gives_them_back(
    client_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await round_(client_as)
    store = await world.batch(r.drug, "LOT8", 10, expires_in=90)

    async def broken(*args: Any) -> StockBatch:
        raise RuntimeError("the ward's write failed")

    monkeypatch.setattr(ward_stock, "_arrive", broken)
    with pytest.raises(RuntimeError):
        await ward_stock.issue_to_ward(store.id, r.w.ward.id, 4, "test:pharmacist")  # type: ignore[arg-type]
    assert await world.quantities(store) == [10]
    await world.ledger_agrees(store)
    assert await StockBatch.find({"location": StockLocation.WARD.value}).count() == 0


async def test_recover_settles_or_gives_back_what_a_crash_left(client_as: Any) -> None:
    r = await round_(client_as)
    store = await world.batch(r.drug, "LOT9", 10, expires_in=90)
    ward = await ward_batch(r.w, r.drug, "W1", 10)
    later = utcnow() + pharmacy.GRACE * 2
    # A transfer that crashed after taking the store's units: they go back.
    out = PendingOp(op=PydanticObjectId(), kind=MovementKind.TRANSFER_OUT, delta=-4,
                    by="test", at=utcnow())  # fmt: skip
    assert await pharmacy.apply_op(store.id, out) is not None  # type: ignore[arg-type]
    # A give that crashed after taking the ward's units: the dose is free again, units back.
    dose = await stored(r.doses[0]["id"])
    line = DoseLine(batch_id=ward.id, batch_number="W1", expiry=ward.expiry, quantity=2)
    await MedicationAdministration.find_one({"_id": dose.id}).update(
        {"$set": {"status": DoseStatus.GIVING.value, "claimed_at": utcnow(),
                  "lines": [line.model_dump()]}}
    )  # fmt: skip
    taken = PendingOp(op=line.op, kind=MovementKind.ADMINISTER, delta=-2, by="test", at=utcnow())
    assert await pharmacy.apply_op(ward.id, taken) is not None  # type: ignore[arg-type]
    assert await world.quantities(store, ward) == [6, 8]
    assert code(await r.c.nurse.error(GIVE, id=str(dose.id))) == "CONFLICT"  # still running
    await pharmacy.recover(now=later)
    assert await world.quantities(store, ward) == [10, 10]
    await world.ledger_agrees(store, ward)
    assert (await stored(str(dose.id))).status == DoseStatus.SCHEDULED
    given = (await r.c.nurse.data(GIVE, id=str(dose.id)))["giveMedication"]
    assert given["status"] == "GIVEN" and await world.quantities(ward) == [8]
