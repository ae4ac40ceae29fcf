"""50 concurrent issues over real HTTP against one uvicorn process, for one level of 10 units:
exactly 10 are issued, the rest refused with ``CONFLICT``/``INSUFFICIENT_STOCK``, and the level
never reads below zero (checked after, and by a reader polling it while the issues run).

One process: the embedded store lives inside it; the worst interleaving of a read and a
decrement is forced in tests/inventory/test_concurrency.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth.tokens import TokenService
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers
from tests.pharmacy.test_http_race import Api

ISSUES = 50

CREATE_ITEM = (
    """mutation($input: CreateSupplyItemInput!) { createSupplyItem(input: $input) { id } }"""
)
CREATE_STORE = """mutation($input: CreateStoreInput!) { createStore(input: $input) { id } }"""
DEPARTMENTS = """{ departments { nodes { id } } }"""
RECEIVE = """mutation($input: ReceiveSuppliesInput!) { receiveSupplies(input: $input) { id } }"""
ISSUE = """mutation($input: IssueSuppliesInput!) { issueSupplies(input: $input) { id status } }"""
LEVELS = """query($store: ID!) { stockLevels(storeId: $store) { nodes { quantity } } }"""
MOVEMENTS = """query($store: ID!) { inventoryMovements(storeId: $store, first: 100) {
  nodes { kind delta } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_RATE_LIMIT_ENABLED": "false",
    }
    with servers(1, env) as started:
        yield started[0]


async def test_fifty_concurrent_issues_never_overdraw(server: Server) -> None:
    async with server.client(timeout=60, connections=ISSUES + 10) as http:
        api = Api(http)
        keeper, admin = await api.sign_in("storekeeper"), await api.sign_in("admin")
        tag = uuid.uuid4().hex[:6].upper()
        item = {"code": f"RACE-{tag}", "name": "Race gloves", "category": "CONSUMABLE",
                "unit": "box", "unitCost": 300}  # fmt: skip
        item_id = (await api.data(keeper, CREATE_ITEM, input=item))["createSupplyItem"]["id"]
        store = {"name": f"Race store {tag}", "code": f"RACE-{tag}", "kind": "CENTRAL"}
        store_id = (await api.data(keeper, CREATE_STORE, input=store))["createStore"]["id"]
        department = (await api.data(admin, DEPARTMENTS))["departments"]["nodes"][0]["id"]
        await api.data(keeper, RECEIVE, input={"storeId": store_id, "itemId": item_id,
                                               "quantity": 10})  # fmt: skip
        issue = {"storeId": store_id, "departmentId": department,
                 "lines": [{"itemId": item_id, "quantity": 1}]}  # fmt: skip

        done = asyncio.Event()
        seen: list[int] = []
        polls = 0

        async def reader() -> None:
            nonlocal polls
            while not done.is_set():
                data = await api.data(keeper, LEVELS, store=store_id)
                seen.extend(n["quantity"] for n in data["stockLevels"]["nodes"])
                polls += 1

        watching = asyncio.create_task(reader())
        try:
            answers = await asyncio.gather(
                *(api.body(keeper, ISSUE, input=issue) for _ in range(ISSUES))
            )
        finally:
            done.set()
            await asyncio.wait_for(watching, 30)

        won = [a["data"]["issueSupplies"] for a in answers if not a.get("errors")]
        refused = [a["errors"] for a in answers if a.get("errors")]
        assert len(won) == 10 and {w["status"] for w in won} == {"COMPLETED"}
        assert len(refused) == ISSUES - 10
        for errors in refused:
            assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in errors] == [
                ("CONFLICT", "INSUFFICIENT_STOCK")
            ], errors
        assert polls > 0 and seen and min(seen) >= 0  # never below zero while running
        print(f"\n{ISSUES} issues: {len(won)} won, {len(refused)} refused, {polls} polls")
        after = (await api.data(keeper, LEVELS, store=store_id))["stockLevels"]["nodes"]
        assert [n["quantity"] for n in after] == [0]
        ledger = (await api.data(keeper, MOVEMENTS, store=store_id))["inventoryMovements"]
        assert sum(m["delta"] for m in ledger["nodes"]) == 0
        assert sorted(m["kind"] for m in ledger["nodes"]) == ["ISSUE"] * 10 + ["RECEIVE"]
