"""A small supplies world: items, a central store, a department store, and the shared queries."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from bson import ObjectId

import db
from models.base import utcnow
from models.departments import Department
from models.inventory import Store, SupplyCategory, SupplyItem, SupplyLevel
from services import inventory

KEEPER = {"sub": "test:storekeeper", "roles": ["storekeeper"]}

LEVEL_FIELDS = (
    "id quantity usableQuantity reorderLevel belowReorderLevel lots { lot expiry quantity }"
)
RECEIVE = f"""mutation($input: ReceiveSuppliesInput!, $key: String) {{
  receiveSupplies(input: $input, idempotencyKey: $key) {{ {LEVEL_FIELDS} }} }}"""
ISSUE = """mutation($input: IssueSuppliesInput!, $key: String) {
  issueSupplies(input: $input, idempotencyKey: $key) {
    id kind status consumed toStoreId departmentId lines { itemId quantity lots { lot quantity } }
  } }"""
TRANSFER = """mutation($input: TransferSuppliesInput!) { transferSupplies(input: $input) {
  id kind status toStoreId lines { quantity lots { lot quantity } } } }"""
ADJUST = f"""mutation($store: ID!, $item: ID!, $counted: Int!, $reason: String!, $lot: String,
  $expiry: Date) {{ adjustStock(storeId: $store, itemId: $item, counted: $counted,
  reason: $reason, lot: $lot, expiry: $expiry) {{ {LEVEL_FIELDS} }} }}"""
WRITE_OFF = f"""mutation($store: ID!, $item: ID!, $quantity: Int!, $reason: SupplyWriteOffReason!,
  $lot: String, $key: String) {{ writeOffSupplies(storeId: $store, itemId: $item,
  quantity: $quantity, reason: $reason, lot: $lot, idempotencyKey: $key) {{ {LEVEL_FIELDS} }} }}"""
REORDER = """mutation($store: ID!, $item: ID!, $level: Int, $quantity: Int! = 0) {
  setReorderLevel(storeId: $store, itemId: $item, reorderLevel: $level,
                  reorderQuantity: $quantity) { id quantity reorderLevel belowReorderLevel } }"""
LEVELS = """query($store: ID, $below: Boolean! = false) {
  stockLevels(storeId: $store, belowReorderLevel: $below) {
    nodes { id quantity storeId item { code } stockValue { amount } } } }"""
MOVEMENTS = """query($store: ID, $kind: InventoryMovementKind) {
  inventoryMovements(storeId: $store, kind: $kind, first: 100) {
    nodes { kind delta levelId reason } } }"""


def today() -> date:
    return utcnow().date()


async def item(
    code: str = "GLOVE-M", *, expires: bool = False, cost: int = 25, **fields: Any
) -> SupplyItem:
    data: dict[str, Any] = {
        "code": code,
        "name": fields.pop("name", f"Item {code}"),
        "category": SupplyCategory.SURGICAL if expires else SupplyCategory.CONSUMABLE,
        "unit": "box",
        "unit_cost": cost,
        "tracks_expiry": expires,
        **fields,
    }
    return await inventory.create_item(data)


async def department(code: str = "CARD") -> Department:
    doc = Department(name=f"Dept {code}", code=code)
    return await doc.insert()


async def central(code: str = "CENTRAL") -> Store:
    return await inventory.create_store({"name": "Central stores", "code": code, "kind": "central"})


async def ward_store(dept: Department, code: str | None = None) -> Store:
    return await inventory.create_store(
        {"name": f"{dept.name} store", "code": code or f"{dept.code}-STORE",
         "kind": "department", "department_id": dept.id}
    )  # fmt: skip


async def stock(
    store: Store, it: SupplyItem, quantity: int, *, lot: str | None = None, days: int = 365
) -> SupplyLevel:
    expiry = today() + timedelta(days=days) if it.tracks_expiry else None
    if it.tracks_expiry and lot is None:
        lot = "LOT-1"
    return await inventory.receive(
        oid(store.id), oid(it.id), quantity, "test:receiver", lot=lot, expiry=expiry
    )


async def level(store: Store, it: SupplyItem) -> SupplyLevel:
    found = await inventory.find_level(oid(it.id), oid(store.id))
    assert found is not None
    return found


async def agrees(*levels: SupplyLevel) -> None:
    """Each level: never negative, lots sum to it, nothing pending, the ledger sums to it."""
    for lv in levels:
        fresh = await SupplyLevel.get(lv.id)
        assert fresh is not None
        assert fresh.quantity >= 0 and all(x.quantity >= 0 for x in fresh.lots)
        if fresh.lots:
            assert sum(x.quantity for x in fresh.lots) == fresh.quantity
        assert fresh.pending_ops == [], fresh.pending_ops
        assert await inventory.ledger_sum(oid(fresh.id)) == fresh.quantity


async def expire_lot(lv: SupplyLevel, lot: str, days: int = 0) -> None:
    """Set a lot's expiry directly (receiving refuses expired lots): ``days`` from today."""
    expiry = datetime.combine(today() + timedelta(days=days), time())
    await db.collection(SupplyLevel).update_one(
        {"_id": lv.id, "lots.lot": lot}, {"$set": {"lots.$.expiry": expiry}}
    )


def oid(value: ObjectId | None) -> ObjectId:
    assert value is not None
    return value


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])
