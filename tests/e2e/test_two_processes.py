"""Two uvicorn processes, one Redis: a write on one is seen by reads and subscribers on the other.

No MongoDB server can run here, so each process holds its own embedded store. Both seed the same
deterministic demo facility and share one cache namespace (``SHMS_CACHE_NAMESPACE``): process B
then reads what process A wrote through Redis alone — exactly the path a deployment sharing a
real MongoDB takes on a cache hit. An event crosses over Redis pub/sub and B loads its object
through the same cache.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from auth.tokens import TokenService
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

PATIENT = "6955b9000600000000000001"
DEVICE = "6955b9000500000000000001"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    state: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))  # one key, made before both
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
    }
    with servers(2, env) as started:
        yield started


def token(server: Server, username: str) -> str:
    response = httpx.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "password", "username": username, "password": f"demo-{username}-pass"},
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def gql(server: Server, bearer: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_a_write_on_one_process_is_read_on_the_other(pair: list[Server]) -> None:
    a, b = pair
    desk_a, desk_b = token(a, "frontdesk"), token(b, "frontdesk")
    read = "query($id: ID!) { patient(id: $id) { lastName contact { phone } } }"
    before = gql(b, desk_b, read, id=PATIENT)["patient"]  # warms the shared cache from B
    new_name = f"Lefèvre-{uuid.uuid4().hex[:6]}"
    gql(
        a,
        desk_a,
        "mutation($id: ID!, $n: String!) { updatePatient(id: $id, input: {lastName: $n}) { id } }",
        id=PATIENT,
        n=new_name,
    )
    after = gql(b, desk_b, read, id=PATIENT)["patient"]
    assert before["lastName"] != new_name
    assert after == {**before, "lastName": new_name}


def test_an_equipment_change_on_one_process_reaches_a_subscriber_on_the_other(
    pair: list[Server],
) -> None:
    asyncio.run(_subscribe_on_b_write_on_a(*pair))


async def _subscribe_on_b_write_on_a(a: Server, b: Server) -> None:
    admin_a, admin_b = token(a, "admin"), token(b, "admin")
    device = gql(
        a,
        admin_a,
        "query($id: ID!) { equipment(id: $id) { status allowedTransitions } }",
        id=DEVICE,
    )["equipment"]
    target = device["allowedTransitions"][0]
    url = f"ws://127.0.0.1:{b.port}/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": admin_b}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        query = (
            "subscription($id: ID) { equipmentStatusChanged(equipmentId: $id) {"
            " change equipmentId equipment { status } } }"
        )
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"id": DEVICE}},
                }
            )
        )
        await _until_subscribed(b)
        gql(
            a,
            admin_a,
            "mutation($id: ID!, $s: EquipmentStatus!) { updateEquipmentStatus(id: $id, status: $s,"
            ' reason: "two-process test") { status } }',
            id=DEVICE,
            s=target,
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "next", message
    event = message["payload"]["data"]["equipmentStatusChanged"]
    assert event == {
        "change": "status_changed",
        "equipmentId": DEVICE,
        "equipment": {"status": target},
    }


async def _until_subscribed(server: Server) -> None:
    """The protocols do not acknowledge a subscribe: wait until the server counts it open."""
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            metrics = (await client.get(f"{server.url}/metrics")).text
            if any(
                line.startswith("shms_subscriptions_open") and line.rstrip().endswith(" 1")
                for line in metrics.splitlines()
            ):
                return
            await asyncio.sleep(0.05)  # polling another process's state, bounded
    raise AssertionError("the subscription never opened")
