"""Never negative under the worst interleaving, and what a failure part way leaves: nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from models.base import utcnow
from models.inventory import InventoryMovement, MovementKind, SupplyTransfer, TransferStatus
from services import inventory
from tests.inventory import world as w

REQUESTS = 30


async def test_every_issuer_planning_from_the_same_stale_read(
    app: Any, client_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    packs = await w.item("STER-PACK", expires=True)
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, packs, 4, lot="A", days=10)
    await w.stock(central, packs, 6, lot="B", days=20)
    real = inventory._plan
    planned = 0
    everyone = asyncio.Event()

    def stale(level: Any, wanted: int, on: Any) -> Any:
        """Plans from the level each issuer read; the decrements wait until all have read."""
        nonlocal planned
        planned += 1
        if planned == REQUESTS:
            everyone.set()
        return real(level, wanted, on)

    real_apply = inventory._apply

    async def after_everyone(*args: Any, **kwargs: Any) -> Any:
        await asyncio.wait_for(everyone.wait(), 10)
        return await real_apply(*args, **kwargs)

    monkeypatch.setattr(inventory, "_plan", stale)
    monkeypatch.setattr(inventory, "_apply", after_everyone)
    keeper = client_as(**w.KEEPER)
    issue = {"storeId": str(central.id), "departmentId": str(dept.id),
             "lines": [{"itemId": str(packs.id), "quantity": 1}]}  # fmt: skip
    answers = await asyncio.gather(*(keeper(w.ISSUE, input=issue) for _ in range(REQUESTS)))
    won = [a["data"]["issueSupplies"] for a in answers if not a.get("errors")]
    lost = [a["errors"] for a in answers if a.get("errors")]
    assert len(won) == 10 and len(lost) == REQUESTS - 10
    for errors in lost:
        assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in errors] == [
            ("CONFLICT", "INSUFFICIENT_STOCK")]  # fmt: skip
    taken = sorted(lot["lot"] for x in won for lot in x["lines"][0]["lots"])
    assert taken == ["A"] * 4 + ["B"] * 6
    src, dst = await w.level(central, packs), await w.level(ward, packs)
    assert (src.quantity, dst.quantity) == (0, 10)
    await w.agrees(src, dst)


async def test_a_failed_transfer_gives_back_what_it_took(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gloves, masks = await w.item("GLOVE-M"), await w.item("MASK")
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, gloves, 10)
    await w.stock(central, masks, 10)
    real = inventory._apply
    calls = 0

    async def broken(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second line's decrement: the database goes away
            raise RuntimeError("connection reset")
        return await real(*args, **kwargs)

    monkeypatch.setattr(inventory, "_apply", broken)
    lines = [inventory.LineInput(w.oid(gloves.id), 4), inventory.LineInput(w.oid(masks.id), 3)]
    with pytest.raises(RuntimeError):
        await inventory.transfer(w.oid(central.id), w.oid(ward.id), lines, "test")
    [doc] = await SupplyTransfer.find_all().to_list()
    assert doc.status == TransferStatus.FAILED and "RuntimeError" in (doc.failure or "")
    gl, ms = await w.level(central, gloves), await w.level(central, masks)
    assert (gl.quantity, ms.quantity) == (10, 10)
    assert await inventory.find_level(w.oid(gloves.id), w.oid(ward.id)) is None
    rows = await InventoryMovement.find({"level_id": gl.id}).sort("at", "_id").to_list()
    assert [(r.kind, r.delta) for r in rows] == [
        (MovementKind.RECEIVE, 10),
        (MovementKind.TRANSFER, -4),
        (MovementKind.COMPENSATION, 4),
    ]
    await w.agrees(gl, ms)


async def test_recovery_after_a_crash_at_either_step(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gloves = await w.item("GLOVE-M")
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, gloves, 10)
    lines = [inventory.LineInput(w.oid(gloves.id), 4)]

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed")

    # 1. Killed after the source decrement, before anything else: pending, stock held.
    monkeypatch.setattr(inventory, "_fail", crash)
    real_ledger = inventory._ledger

    async def ledger_then_die(*args: Any, **kwargs: Any) -> None:
        await real_ledger(*args, **kwargs)
        raise SystemExit("killed")

    monkeypatch.setattr(inventory, "_ledger", ledger_then_die)
    with pytest.raises(SystemExit):
        await inventory.transfer(w.oid(central.id), w.oid(ward.id), lines, "test")
    monkeypatch.setattr(inventory, "_ledger", real_ledger)
    monkeypatch.undo()
    assert (await w.level(central, gloves)).quantity == 6
    assert (await inventory.recover()).failed == 0  # not lapsed yet: it may still be running
    later = utcnow() + inventory.GRACE + timedelta(seconds=1)
    assert (await inventory.recover(now=later)).failed == 1
    assert (await w.level(central, gloves)).quantity == 10
    await w.agrees(await w.level(central, gloves))

    # 2. Killed while delivering: recovery rolls it forward.
    real_put = inventory._put
    monkeypatch.setattr(inventory, "_put", crash)
    with pytest.raises(SystemExit):
        await inventory.transfer(w.oid(central.id), w.oid(ward.id), lines, "test")
    monkeypatch.setattr(inventory, "_put", real_put)
    stuck = await SupplyTransfer.find_one({"status": TransferStatus.DELIVERING})
    assert stuck is not None
    assert (await inventory.recover(now=later + inventory.GRACE)).delivered == 1
    done = await SupplyTransfer.get(stuck.id)
    assert done is not None and done.status == TransferStatus.COMPLETED
    src, dst = await w.level(central, gloves), await w.level(ward, gloves)
    assert (src.quantity, dst.quantity) == (6, 4)
    await w.agrees(src, dst)
