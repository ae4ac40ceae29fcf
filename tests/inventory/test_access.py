"""Who reads and does what with supplies (models/inventory.py)."""

from __future__ import annotations

from typing import Any

from tests.inventory import world as w

ITEMS = """{ supplyItems { nodes { code unitCost { amount } } } }"""
STORES = """{ stores { nodes { code } } }"""
LEVELS = """{ stockLevels { nodes { quantity store { code } stockValue { amount } } } }"""
REORDER_LIST = """{ reorderList { level { store { code } } } }"""


async def test_roles(app: Any, client_as: Any) -> None:
    gloves = await w.item("GLOVE-M", cost=25)
    dept, other = await w.department("CARD"), await w.department("NEURO")
    central, ward = await w.central(), await w.ward_store(dept)
    await w.ward_store(other)
    await w.stock(central, gloves, 10)
    await w.stock(ward, gloves, 4)
    keeper = client_as(**w.KEEPER)
    nurse = client_as(roles=["nurse"], did=str(dept.id))
    desk = client_as(roles=["admin_staff"], did=str(dept.id))
    billing = client_as(roles=["billing"])
    analyst, patient = client_as(roles=["analyst"]), client_as(roles=["patient"])
    doctor = client_as(roles=["doctor"], did=str(dept.id))

    # Storekeepers: everything, with costs.
    levels = (await keeper.data(LEVELS))["stockLevels"]["nodes"]
    assert sorted((n["store"]["code"], n["stockValue"]["amount"]) for n in levels) == [
        ("CARD-STORE", 100), ("CENTRAL", 250)]  # fmt: skip
    # Nurses and the front desk: their department's store only, read only, no costs.
    for staff in (nurse, desk):
        body = await staff(LEVELS)
        assert {e["extensions"]["field"] for e in body["errors"]} == {"value"}
        assert [n["store"]["code"] for n in body["data"]["stockLevels"]["nodes"]] == ["CARD-STORE"]
        assert [n["code"] for n in (await staff.data(STORES))["stores"]["nodes"]] == ["CARD-STORE"]
        listed = (await staff(ITEMS))["data"]["supplyItems"]["nodes"]
        assert listed == [{"code": "GLOVE-M", "unitCost": None}]
        issue = {"storeId": str(ward.id), "departmentId": str(dept.id),
                 "lines": [{"itemId": str(gloves.id), "quantity": 1}]}  # fmt: skip
        assert w.code(await staff.error(w.ISSUE, input=issue)) == "FORBIDDEN"
        assert w.code(await staff.error(w.REORDER, store=str(ward.id), item=str(gloves.id),
                                        level=3)) == "FORBIDDEN"  # fmt: skip
    # Billing: every level with its value, but writes nothing.
    values = (await billing.data(LEVELS))["stockLevels"]["nodes"]
    assert sorted(n["stockValue"]["amount"] for n in values) == [100, 250]
    assert (await billing.data(ITEMS))["supplyItems"]["nodes"][0]["unitCost"] == {"amount": 25}
    receive = {"storeId": str(central.id), "itemId": str(gloves.id), "quantity": 1}
    assert w.code(await billing.error(w.RECEIVE, input=receive)) == "FORBIDDEN"
    # Analysts, patients and doctors: nothing.
    for nobody in (analyst, patient, doctor):
        for query in (LEVELS, STORES, REORDER_LIST, w.MOVEMENTS):
            assert w.code(await nobody.error(query)) == "FORBIDDEN", query
    assert w.code(await doctor.error(w.RECEIVE, input=receive)) == "FORBIDDEN"
    assert (await w.level(central, gloves)).quantity == 10
