"""Low stock and near expiry: alerts raised once, followed live, the reorder list, the job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from models.base import utcnow
from models.inventory import AlertKind, InventoryAlert
from services import inventory
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)
from tests.inventory import world as w

FIELD = "inventoryAlerts"
FOLLOW = """subscription($storeId: ID, $departmentId: ID) {
  inventoryAlerts(storeId: $storeId, departmentId: $departmentId) {
    change alert { kind quantity reorderLevel suggestedQuantity lot storeId item { code } } } }"""
REORDER_LIST = """query($store: ID) { reorderList(storeId: $store) {
  suggestedQuantity level { quantity reorderLevel item { code } } } }"""
EXPIRING = """query($days: Int!) { expiringSupplies(withinDays: $days) {
  lot expiry quantity daysLeft level { item { code } store { code } } } }"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


async def _world() -> dict[str, Any]:
    gloves, masks = await w.item("GLOVE-M"), await w.item("MASK")
    dept = await w.department()
    central, ward = await w.central(), await w.ward_store(dept)
    await w.stock(central, gloves, 30)
    await w.stock(central, masks, 30)
    return {"gloves": gloves, "masks": masks, "dept": dept, "central": central, "ward": ward}


def _issue(client: TestClient, token: str, x: dict[str, Any], item: str, n: int) -> None:
    data(client, token, w.ISSUE, input={
        "storeId": str(x["central"].id), "departmentId": str(x["dept"].id),
        "lines": [{"itemId": str(x[item].id), "quantity": n}]})  # fmt: skip


def test_low_stock_fires_once_per_crossing_live(client: TestClient) -> None:
    x = call(client, _world)
    keeper = token_for(client.app, **w.KEEPER)
    central = str(x["central"].id)
    data(client, keeper, w.REORDER, store=central, item=str(x["gloves"].id), level=10, quantity=40)
    with subscriber(client, TRANSPORT_WS, keeper) as live:
        live.subscribe("central", FOLLOW, storeId=central)
        wait_for_metric(client, open_subscriptions(FIELD), 1)
        _issue(client, keeper, x, "gloves", 15)  # 30 -> 15: above 10, nothing
        _issue(client, keeper, x, "gloves", 6)  # 15 -> 9: crosses
        _issue(client, keeper, x, "gloves", 2)  # 9 -> 7: still below, nothing
        _issue(client, keeper, x, "masks", 29)  # not watched: nothing
        first = live.next("central")["data"][FIELD]
        assert first["change"] == "raised"
        assert first["alert"] == {
            "kind": "LOW_STOCK", "quantity": 9, "reorderLevel": 10, "suggestedQuantity": 41,
            "lot": None, "storeId": central, "item": {"code": "GLOVE-M"},
        }  # fmt: skip
        # Back above re-arms it; the next crossing alerts again (and only that one).
        data(client, keeper, w.RECEIVE, input={
            "storeId": central, "itemId": str(x["gloves"].id), "quantity": 20})  # fmt: skip
        _issue(client, keeper, x, "gloves", 20)  # 27 -> 7
        second = live.next("central")["data"][FIELD]
        assert (second["alert"]["quantity"], second["alert"]["suggestedQuantity"]) == (7, 43)
    alerts = call(client, InventoryAlert.find_all().to_list)
    assert [(a.kind, a.quantity) for a in alerts] == [
        (AlertKind.LOW_STOCK, 9),
        (AlertKind.LOW_STOCK, 7),
    ]
    listed = data(client, keeper, REORDER_LIST, store=central)["reorderList"]
    assert listed == [{"suggestedQuantity": 43, "level": {
        "quantity": 7, "reorderLevel": 10, "item": {"code": "GLOVE-M"}}}]  # fmt: skip


def test_concurrent_writers_cross_once(client: TestClient) -> None:
    x = call(client, _world)
    keeper = token_for(client.app, **w.KEEPER)
    data(client, keeper, w.REORDER, store=str(x["central"].id), item=str(x["gloves"].id),
         level=20)  # fmt: skip

    async def race() -> None:
        lines = [inventory.LineInput(w.oid(x["gloves"].id), 1)]
        await asyncio.gather(*(
            inventory.issue(w.oid(x["central"].id), w.oid(x["dept"].id), lines, "test")
            for _ in range(25)))  # fmt: skip

    call(client, race)
    alerts = call(client, InventoryAlert.find_all().to_list)
    # One alert, whichever writer flipped the flag (it records the level as it then was).
    assert [a.kind for a in alerts] == [AlertKind.LOW_STOCK] and alerts[0].quantity <= 20
    assert (await_level := call(client, w.level, x["central"], x["gloves"])).quantity == 5
    assert await_level.low


def test_raising_the_reorder_level_over_the_stock_alerts(client: TestClient) -> None:
    x = call(client, _world)
    keeper = token_for(client.app, **w.KEEPER)
    store, item = str(x["central"].id), str(x["gloves"].id)
    level = data(client, keeper, w.REORDER, store=store, item=item, level=30)["setReorderLevel"]
    assert level["belowReorderLevel"]
    data(client, keeper, w.REORDER, store=store, item=item, level=30)  # no new crossing
    data(client, keeper, w.REORDER, store=store, item=item, level=None)  # unwatched: re-armed
    data(client, keeper, w.REORDER, store=store, item=item, level=35)
    assert call(client, InventoryAlert.count) == 2


def test_near_expiry_job_and_query(client: TestClient) -> None:
    async def world() -> dict[str, Any]:
        packs = await w.item("STER-PACK", expires=True)
        central = await w.central()
        await w.stock(central, packs, 5, lot="SOON", days=10)
        await w.stock(central, packs, 5, lot="LATER", days=120)
        return {"packs": packs, "central": central}

    x = call(client, world)
    keeper = token_for(client.app, **w.KEEPER)
    with subscriber(client, TRANSPORT_WS, keeper) as live:
        live.subscribe("all", FOLLOW)
        wait_for_metric(client, open_subscriptions(FIELD), 1)
        assert call(client, inventory.raise_expiry_alerts) == 1  # within 30 days: SOON
        assert call(client, inventory.raise_expiry_alerts) == 0  # once per lot
        got = live.next("all")["data"][FIELD]["alert"]
        assert (got["kind"], got["lot"], got["quantity"]) == ("NEAR_EXPIRY", "SOON", 5)
    later = utcnow() + timedelta(days=100)
    assert call(client, inventory.tick, later).expiry_alerts == 1  # LATER, 100 days on
    found = data(client, keeper, EXPIRING, days=30)["expiringSupplies"]
    assert [(f["lot"], f["daysLeft"], f["level"]["store"]["code"]) for f in found] == [
        ("SOON", 10, "CENTRAL")]  # fmt: skip
    assert x["packs"].code == "STER-PACK"


def test_nurses_follow_their_own_department_only(client: TestClient) -> None:
    x = call(client, _world)
    keeper = token_for(client.app, **w.KEEPER)
    other = call(client, w.department, "NEURO")
    nurse = token_for(client.app, roles=["nurse"], did=str(x["dept"].id))
    with subscriber(client, TRANSPORT_WS, nurse) as live:
        live.subscribe("other", FOLLOW, departmentId=str(other.id))
        message = live.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    ward = str(x["ward"].id)
    _issue(client, keeper, x, "gloves", 10)
    data(client, keeper, w.REORDER, store=ward, item=str(x["gloves"].id), level=5)
    with subscriber(client, TRANSPORT_WS, nurse) as live:
        live.subscribe("mine", FOLLOW, departmentId=str(x["dept"].id))
        live.subscribe("all", FOLLOW)
        wait_for_metric(client, open_subscriptions(FIELD), 2)
        data(client, keeper, w.REORDER, store=str(x["central"].id), item=str(x["gloves"].id),
             level=25)  # the central store's alert: not the nurse's  # fmt: skip
        data(client, keeper, w.ISSUE, input={"storeId": ward, "departmentId": str(x["dept"].id),
             "lines": [{"itemId": str(x["gloves"].id), "quantity": 6}]})  # fmt: skip
        got = {live.receive()["id"] for _ in range(2)}
        assert got == {"mine", "all"}
