"""The demo's supplies agree with their own ledger and tell the story the README tells."""

from __future__ import annotations

from typing import Any

from demo import seed_demo
from demo.clock import ANCHOR
from models.departments import Department
from models.inventory import InventoryAlert, Store, StoreKind, SupplyItem, SupplyLevel
from services import inventory


async def test_demo_supplies(database: Any) -> None:
    await seed_demo(20)
    departments = await Department.count()
    stores = await Store.find_all().to_list()
    assert sum(s.kind == StoreKind.CENTRAL for s in stores) == 1
    assert sum(s.kind == StoreKind.DEPARTMENT for s in stores) == departments
    assert await SupplyItem.count() == 20
    levels = await SupplyLevel.find_all().to_list()
    for level in levels:
        assert level.quantity >= 0 and not level.pending_ops
        if level.lots:
            assert sum(x.quantity for x in level.lots) == level.quantity
        assert await inventory.ledger_sum(level.id) == level.quantity  # type: ignore[arg-type]
    low = [lv for lv in levels if lv.reorder_level is not None and lv.quantity <= lv.reorder_level]
    assert len(low) >= 4 and all(lv.low for lv in low)
    assert await InventoryAlert.count() == len(low)
    central = next(s for s in stores if s.kind == StoreKind.CENTRAL)
    listed = await inventory.reorder_list(central.id, None)
    codes = set()
    for line in listed:
        item = await SupplyItem.get(line.level.item_id)
        assert item is not None
        codes.add(item.code)
    assert codes == {"MSK-N95", "CAN-20G", "GLU-STRIP"}
    soon = await inventory.expiring(30, None, now=ANCHOR)
    assert sorted(x.lot for x in soon) == ["GS-2611", "SD-2611", "SK-2611"]
