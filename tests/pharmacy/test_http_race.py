"""Issue 16's "Done when": 50 concurrent dispenses over real HTTP against one uvicorn process,
for a drug with 10 units over two batches. Exactly the stock is dispensed, the rest are refused
with ``CONFLICT``/``INSUFFICIENT_STOCK``, and no batch ever reads below zero: checked after, and
by a reader polling the batches over GraphQL while the dispenses run.

One process: the embedded store lives inside it (see tests/e2e/test_outpatient_journey.py); the
worst interleaving of a read and a decrement is forced in tests/pharmacy/test_concurrency.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.tokens import TokenService
from config import Settings
from models.base import utcnow
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

DISPENSES = 50

CREATE_DRUG = """mutation($input: CreateDrugInput!) { createDrug(input: $input) { id } }"""
RECEIVE = """mutation($input: ReceiveStockInput!) { receiveStock(input: $input) { id quantity } }"""
PATIENTS = """{ patients(first: 1) { nodes { id } } }"""
PRESCRIBE = """mutation($input: CreatePrescriptionInput!) { createPrescription(input: $input) {
  id status } }"""
DISPENSE = """mutation($id: ID!) { dispensePrescription(prescriptionId: $id, quantity: 1) {
  id quantity lines { batchId quantity } } }"""
BATCHES = """query($drugId: ID!) { stockBatches(drugId: $drugId, includeEmpty: true) {
  nodes { id batchNumber quantity } } }"""
MOVEMENTS = """query($drugId: ID!) { stockMovements(drugId: $drugId, first: 100) {
  nodes { batchId kind delta } } }"""


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


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def sign_in(self, username: str) -> str:
        response = await self.http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": username,
                  "password": f"demo-{username}-pass"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def body(self, bearer: str, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {bearer}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, bearer: str, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.body(bearer, query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


async def test_fifty_concurrent_dispenses_never_oversell(server: Server) -> None:
    async with server.client(timeout=60, connections=DISPENSES + 10) as http:
        api = Api(http)
        pharmacist, pharmacist2, doctor = (
            await api.sign_in("pharmacist"),
            await api.sign_in("pharmacist2"),
            await api.sign_in("doctor"),
        )
        drug = {
            "genericName": f"Racemycin {uuid.uuid4().hex[:6]}",
            "form": "TABLET",
            "strength": {"value": 100, "unit": "mg"},
            "route": "ORAL",
            "atcCode": "J01XX99",
            "unitOfIssue": "tablet",
            "price": 150,
        }
        drug_id = (await api.data(pharmacist, CREATE_DRUG, input=drug))["createDrug"]["id"]
        today = utcnow().date()
        for number, quantity, days in (("RACE-A", 4, 40), ("RACE-B", 6, 400)):
            batch = {"drugId": drug_id, "batchNumber": number, "quantity": quantity,
                     "unitCost": 50, "expiry": str(today + timedelta(days=days))}  # fmt: skip
            await api.data(pharmacist, RECEIVE, input=batch)
        patient = (await api.data(doctor, PATIENTS))["patients"]["nodes"][0]["id"]
        prescription = {"patientId": patient, "drug": drug["genericName"], "drugId": drug_id,
                        "dose": "100 mg", "route": "ORAL", "frequency": "once daily",
                        "durationDays": 1}  # fmt: skip
        ids = [
            (await api.data(doctor, PRESCRIBE, input=prescription))["createPrescription"]["id"]
            for _ in range(DISPENSES)
        ]

        done = asyncio.Event()
        seen: list[int] = []
        polls = 0

        async def reader() -> None:
            nonlocal polls
            while not done.is_set():
                data = await api.data(pharmacist, BATCHES, drugId=drug_id)
                seen.extend(n["quantity"] for n in data["stockBatches"]["nodes"])
                polls += 1

        async def dispense(i: int, rx: str) -> dict[str, Any]:
            return await api.body(pharmacist if i % 2 else pharmacist2, DISPENSE, id=rx)

        watching = asyncio.create_task(reader())
        try:
            answers = await asyncio.gather(*(dispense(i, rx) for i, rx in enumerate(ids)))
        finally:
            done.set()
            await asyncio.wait_for(watching, 30)

        won = [a["data"]["dispensePrescription"] for a in answers if not a.get("errors")]
        refused = [a["errors"] for a in answers if a.get("errors")]
        assert sum(w["quantity"] for w in won) == 10 and len(won) == 10
        assert len(refused) == DISPENSES - 10
        for errors in refused:
            assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in errors] == [
                ("CONFLICT", "INSUFFICIENT_STOCK")
            ], errors
        assert polls > 0 and seen and min(seen) >= 0  # never below zero while running
        print(f"\n{DISPENSES} dispenses: {len(won)} won, {len(refused)} refused, {polls} polls")
        after = (await api.data(pharmacist, BATCHES, drugId=drug_id))["stockBatches"]["nodes"]
        assert sorted((b["batchNumber"], b["quantity"]) for b in after) == [
            ("RACE-A", 0), ("RACE-B", 0),
        ]  # fmt: skip
        ledger = (await api.data(pharmacist, MOVEMENTS, drugId=drug_id))["stockMovements"]
        assert sum(m["delta"] for m in ledger["nodes"]) == 0
        assert sum(1 for m in ledger["nodes"] if m["kind"] == "DISPENSE") == 10
        taken = sorted(ln["batchId"] for w in won for ln in w["lines"])
        by_batch = {b["id"]: b["batchNumber"] for b in after}
        assert sorted(by_batch[t] for t in taken) == ["RACE-A"] * 4 + ["RACE-B"] * 6
