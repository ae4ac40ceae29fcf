"""Receive, issue, transfer, count and write off supplies over GraphQL, and their refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.inventory import InventoryMovement, SupplyTransfer, TransferStatus
from tests.inventory import world as w


async def test_receive_issue_into_the_department_store(app: Any, client_as: Any) -> None:
    keeper = client_as(**w.KEEPER)
    gloves = await w.item("GLOVE-M")
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    delivery = {"storeId": str(central.id), "itemId": str(gloves.id), "quantity": 40}
    received = (await keeper.data(w.RECEIVE, input=delivery))["receiveSupplies"]
    assert received["quantity"] == 40 and received["lots"] == []
    issued = (await keeper.data(w.ISSUE, input={
        "storeId": str(central.id), "departmentId": str(dept.id),
        "lines": [{"itemId": str(gloves.id), "quantity": 15}]}))["issueSupplies"]  # fmt: skip
    assert issued["status"] == "COMPLETED" and issued["kind"] == "ISSUE"
    assert issued["toStoreId"] == str(ward.id) and not issued["consumed"]
    src, dst = await w.level(central, gloves), await w.level(ward, gloves)
    assert (src.quantity, dst.quantity) == (25, 15)
    await w.agrees(src, dst)
    # From the department's own store: the department used them (they leave the inventory).
    used = (await keeper.data(w.ISSUE, input={
        "storeId": str(ward.id), "departmentId": str(dept.id),
        "lines": [{"itemId": str(gloves.id), "quantity": 5}]}))["issueSupplies"]  # fmt: skip
    assert used["consumed"] and used["toStoreId"] is None
    assert (await w.level(ward, gloves)).quantity == 10
    await w.agrees(dst)
    kinds = [m.kind.value for m in await InventoryMovement.find_all().to_list()]
    assert sorted(kinds) == ["issue", "issue", "issue", "receive"]


async def test_lots_leave_soonest_expiry_first_and_travel_with_the_stock(
    app: Any, client_as: Any
) -> None:
    keeper = client_as(**w.KEEPER)
    packs = await w.item("STER-PACK", expires=True)
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, packs, 5, lot="LATE", days=200)
    await w.stock(central, packs, 3, lot="SOON", days=20)
    await w.stock(central, packs, 4, lot="GONE", days=400)
    gone = await w.level(central, packs)
    # GONE expires today (set directly: receiving refuses expired lots).
    await w.expire_lot(gone, "GONE")
    issued = (await keeper.data(w.ISSUE, input={
        "storeId": str(central.id), "departmentId": str(dept.id),
        "lines": [{"itemId": str(packs.id), "quantity": 6}]}))["issueSupplies"]  # fmt: skip
    assert issued["lines"][0]["lots"] == [
        {"lot": "SOON", "quantity": 3},
        {"lot": "LATE", "quantity": 3},
    ]
    dst = await w.level(ward, packs)
    assert sorted((x.lot, x.quantity) for x in dst.lots) == [("LATE", 3), ("SOON", 3)]
    assert {x.lot: x.expiry for x in dst.lots}["SOON"] == w.today() + timedelta(days=20)
    # Two usable are left: four more are in the expired lot, which is never issued.
    error = await keeper.error(w.ISSUE, input={
        "storeId": str(central.id), "departmentId": str(dept.id),
        "lines": [{"itemId": str(packs.id), "quantity": 3}]})  # fmt: skip
    assert (w.code(error), error["extensions"]["reason"], error["extensions"]["available"]) == (
        "CONFLICT", "INSUFFICIENT_STOCK", 2)  # fmt: skip
    src = await w.level(central, packs)
    assert src.quantity == 6 and [(x.lot, x.quantity) for x in src.lots if x.quantity] == [
        ("LATE", 2), ("GONE", 4)]  # fmt: skip
    # The expired lot is written off as EXPIRED; a lot not expired is not.
    refused = await keeper.error(w.WRITE_OFF, store=str(central.id), item=str(packs.id),
                                 quantity=2, reason="EXPIRED", lot="LATE")  # fmt: skip
    assert w.code(refused) == "BAD_USER_INPUT" and "reason" in refused["extensions"]["fields"]
    done = (await keeper.data(w.WRITE_OFF, store=str(central.id), item=str(packs.id),
                              quantity=4, reason="EXPIRED", lot="GONE"))  # fmt: skip
    done = done["writeOffSupplies"]
    assert done["quantity"] == 2 and done["usableQuantity"] == 2
    await w.agrees(src, dst)


async def test_refusals_change_nothing(app: Any, client_as: Any) -> None:
    keeper = client_as(**w.KEEPER)
    gloves, masks = await w.item("GLOVE-M"), await w.item("MASK")
    packs = await w.item("STER-PACK", expires=True)
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, gloves, 10)
    await w.stock(central, masks, 2)
    before = await InventoryMovement.count()

    async def refused(query: str, **variables: Any) -> dict[str, Any]:
        return await keeper.error(query, **variables)

    # Two lines, the second short: all or nothing, and nothing moved.
    error = await refused(w.ISSUE, input={
        "storeId": str(central.id), "departmentId": str(dept.id),
        "lines": [{"itemId": str(gloves.id), "quantity": 4},
                  {"itemId": str(masks.id), "quantity": 3}]})  # fmt: skip
    assert error["extensions"]["reason"] == "INSUFFICIENT_STOCK"
    for query, variables, expected in (
        (w.ISSUE, {"input": {"storeId": str(central.id), "departmentId": str(dept.id),
                             "lines": [{"itemId": str(gloves.id), "quantity": 0}]}},
         "BAD_USER_INPUT"),
        (w.ISSUE, {"input": {"storeId": str(central.id), "departmentId": str(dept.id),
                             "lines": [{"itemId": str(gloves.id), "quantity": 1},
                                       {"itemId": str(gloves.id), "quantity": 1}]}},
         "BAD_USER_INPUT"),
        (w.ISSUE, {"input": {"storeId": str(central.id), "departmentId": str(gloves.id),
                             "lines": [{"itemId": str(gloves.id), "quantity": 1}]}},
         "BAD_USER_INPUT"),
        (w.RECEIVE, {"input": {"storeId": str(central.id), "itemId": str(packs.id),
                               "quantity": 5}}, "BAD_USER_INPUT"),  # no lot
        (w.RECEIVE, {"input": {"storeId": str(central.id), "itemId": str(packs.id), "quantity": 5,
                               "lot": "L1", "expiry": str(w.today())}}, "BAD_USER_INPUT"),
        (w.RECEIVE, {"input": {"storeId": str(central.id), "itemId": str(gloves.id), "quantity": 5,
                               "lot": "L1"}}, "BAD_USER_INPUT"),  # gloves have no lots
        (w.WRITE_OFF, {"store": str(central.id), "item": str(gloves.id), "quantity": 11,
                       "reason": "DAMAGED"}, "CONFLICT"),
        (w.WRITE_OFF, {"store": str(central.id), "item": str(gloves.id), "quantity": 1,
                       "reason": "EXPIRED"}, "BAD_USER_INPUT"),
        (w.WRITE_OFF, {"store": str(ward.id), "item": str(gloves.id), "quantity": 1,
                       "reason": "DAMAGED"}, "NOT_FOUND"),
        (w.ADJUST, {"store": str(central.id), "item": str(gloves.id), "counted": -1,
                    "reason": "count"}, "BAD_USER_INPUT"),
        (w.ADJUST, {"store": str(central.id), "item": str(gloves.id), "counted": 3,
                    "reason": "  "}, "BAD_USER_INPUT"),
        (w.TRANSFER, {"input": {"fromStoreId": str(central.id), "toStoreId": str(central.id),
                                "lines": [{"itemId": str(gloves.id), "quantity": 1}]}},
         "BAD_USER_INPUT"),
    ):  # fmt: skip
        assert w.code(await refused(query, **variables)) == expected, (query, variables)
    assert [(await w.level(central, x)).quantity for x in (gloves, masks)] == [10, 2]
    assert await w.level(central, gloves) and await InventoryMovement.count() == before
    assert await SupplyTransfer.find({"status": {"$ne": "failed"}}).count() == 0
    await w.agrees(await w.level(central, gloves), await w.level(central, masks))


async def test_stock_count_and_transfer_back(app: Any, client_as: Any) -> None:
    keeper = client_as(**w.KEEPER)
    gloves = await w.item("GLOVE-M")
    packs = await w.item("STER-PACK", expires=True)
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, gloves, 10)
    await w.stock(central, packs, 6, lot="A1")
    counted = (await keeper.data(w.ADJUST, store=str(central.id), item=str(gloves.id),
                                 counted=7, reason="monthly count"))["adjustStock"]  # fmt: skip
    assert counted["quantity"] == 7
    # An expiring item is counted per lot; a lot not on record comes in with its expiry.
    expiry = str(w.today() + timedelta(days=90))
    lots = (await keeper.data(w.ADJUST, store=str(central.id), item=str(packs.id), counted=2,
                              reason="found", lot="B2", expiry=expiry))["adjustStock"]  # fmt: skip
    assert lots["quantity"] == 8
    error = await keeper.error(w.ADJUST, store=str(central.id), item=str(packs.id), counted=2,
                               reason="count")  # fmt: skip
    assert w.code(error) == "BAD_USER_INPUT" and "lot" in error["extensions"]["fields"]
    moved = (await keeper.data(w.TRANSFER, input={
        "fromStoreId": str(central.id), "toStoreId": str(ward.id),
        "lines": [{"itemId": str(gloves.id), "quantity": 7}]}))["transferSupplies"]  # fmt: skip
    assert moved["kind"] == "TRANSFER" and moved["status"] == "COMPLETED"
    back = (await keeper.data(w.TRANSFER, input={
        "fromStoreId": str(ward.id), "toStoreId": str(central.id),
        "lines": [{"itemId": str(gloves.id), "quantity": 2}]}))["transferSupplies"]  # fmt: skip
    assert back["status"] == "COMPLETED"
    assert [(await w.level(s, gloves)).quantity for s in (central, ward)] == [2, 5]
    kinds = (await keeper.data(w.MOVEMENTS, store=str(central.id)))["inventoryMovements"]
    assert [(m["kind"], m["delta"]) for m in kinds["nodes"] if m["levelId"] == str(
        (await w.level(central, gloves)).id)] == [
        ("RECEIVE", 10), ("ADJUST", -3), ("TRANSFER", -7), ("TRANSFER", 2)]  # fmt: skip
    await w.agrees(*[await w.level(s, x) for s in (central,) for x in (gloves, packs)])
    await w.agrees(await w.level(ward, gloves))
    assert await SupplyTransfer.find({"status": TransferStatus.COMPLETED}).count() == 2


async def test_idempotent_issue_and_receive(app: Any, client_as: Any) -> None:
    keeper = client_as(**w.KEEPER)
    gloves = await w.item("GLOVE-M")
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    receive = {"storeId": str(central.id), "itemId": str(gloves.id), "quantity": 10}
    first = await keeper.data(w.RECEIVE, input=receive, key="delivery-1")
    again = await keeper.data(w.RECEIVE, input=receive, key="delivery-1")
    assert first == again and (await w.level(central, gloves)).quantity == 10
    other = await keeper.error(w.RECEIVE, input={**receive, "quantity": 11}, key="delivery-1")
    assert w.code(other) == "CONFLICT"
    issue = {"storeId": str(central.id), "departmentId": str(dept.id),
             "lines": [{"itemId": str(gloves.id), "quantity": 4}]}  # fmt: skip
    one = await keeper.data(w.ISSUE, input=issue, key="issue-1")
    two = await keeper.data(w.ISSUE, input=issue, key="issue-1")
    assert one == two
    assert [(await w.level(s, gloves)).quantity for s in (central, ward)] == [6, 4]
    assert await SupplyTransfer.count() == 1
    # A refused issue releases its key: the corrected retry goes through.
    short = {**issue, "lines": [{"itemId": str(gloves.id), "quantity": 60}]}
    assert w.code(await keeper.error(w.ISSUE, input=short, key="issue-2")) == "CONFLICT"
    await w.stock(central, gloves, 60)
    assert (await keeper.data(w.ISSUE, input=short, key="issue-2"))["issueSupplies"]["status"] == (
        "COMPLETED"
    )
