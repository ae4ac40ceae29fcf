"""Issue 15's "Done when" for admissions, over real HTTP against one real uvicorn process:
100 concurrent admissions of different patients into 10 free beds admit exactly 10 and refuse
90 with CONFLICT; 100 concurrent transfers into one bed move exactly one patient. Afterwards no
bed holds two patients and no patient two beds (read back through the API)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.tokens import TokenService
from config import Settings
from tests.admissions.helpers import ADMIT, TRANSFER
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

DOCTOR = "6955b9000200000000000001"  # the demo's head of Cardiology
CARDIOLOGY = "6955b9000100000000000001"
PATIENTS = 100

REGISTER = """mutation($input: RegisterPatientInput!) { registerPatient(input: $input) { id } }"""
WARD = """mutation($input: CreateWardInput!) { createWard(input: $input) { id } }"""
BED = """mutation($input: CreateBedInput!) { createBed(input: $input) { id } }"""
BEDS = """query($wardId: ID) { beds(wardId: $wardId, first: 100) {
  nodes { id status patientId admissionId } } }"""
ACTIVE = """query($after: String) { admissions(status: [ACTIVE], first: 100, after: $after) {
  nodes { id patientId bedId } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(path)))
    return path


@pytest.fixture(scope="module")
def server(state: Path) -> Iterator[Server]:
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "5",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_RATE_LIMIT_ENABLED": "false",
    }
    with servers(1, env) as started:
        yield started[0]


class Api:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.token = http, token

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


def admin_token(state: Path) -> str:
    service = TokenService.from_settings(Settings(shms_state_dir=str(state)))
    return service.issue({"sub": "e2e:admin", "roles": ["admin"]}, 600)


async def ward_with_beds(api: Api, code: str, count: int) -> tuple[str, list[str]]:
    ward = await api.data(
        WARD,
        input={"name": f"Ward {code}", "code": code, "departmentId": CARDIOLOGY,
               "capacity": count},
    )  # fmt: skip
    ward_id = ward["createWard"]["id"]
    beds = []
    for i in range(count):
        made = await api.data(BED, input={"wardId": ward_id, "label": f"{code}-{i + 1}"})
        beds.append(made["createBed"]["id"])
    return ward_id, beds


def admit(patient: str, bed: str) -> dict[str, Any]:
    return {
        "patientId": patient,
        "bedId": bed,
        "attendingDoctorId": DOCTOR,
        "source": "ELECTIVE",
        "reason": "Elective admission",
    }


def codes(answers: list[dict[str, Any]]) -> Counter[str]:
    return Counter(a["errors"][0]["extensions"]["code"] if "errors" in a else "OK" for a in answers)


async def invariants(api: Api) -> list[dict[str, Any]]:
    """No bed with two patients, no patient with two beds; every admission's bed names it."""
    active: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await api.data(ACTIVE, after=after))["admissions"]
        active += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert max(Counter(a["patientId"] for a in active).values(), default=1) == 1
    assert max(Counter(a["bedId"] for a in active).values(), default=1) == 1
    return active


async def test_a_hundred_admissions_into_ten_beds_and_transfers_into_one(
    server: Server, state: Path
) -> None:
    async with server.client(timeout=120, connections=PATIENTS) as http:
        api = Api(http, admin_token(state))
        patients = [
            (await api.data(
                REGISTER,
                input={"firstName": "Race", "lastName": f"Patient{i}",
                       "dateOfBirth": "1970-01-01"},
            ))["registerPatient"]["id"]
            for i in range(PATIENTS)
        ]  # fmt: skip
        ten_ward, ten = await ward_with_beds(api, "RACE", 10)

        answers = await asyncio.gather(
            *(api(ADMIT, input=admit(p, ten[i % 10])) for i, p in enumerate(patients))
        )
        assert codes(answers) == {"OK": 10, "CONFLICT": 90}
        active = await invariants(api)
        beds = (await api.data(BEDS, wardId=ten_ward))["beds"]["nodes"]
        assert all(b["status"] == "OCCUPIED" for b in beds)
        by_bed = {a["bedId"]: a for a in active}
        for bed in beds:  # each bed names the admission that names it
            assert by_bed[bed["id"]]["id"] == bed["admissionId"]
            assert by_bed[bed["id"]]["patientId"] == bed["patientId"]

        # The 90 refused take beds of a second ward; then everyone races for one bed.
        waiting = sorted(set(patients) - {a["patientId"] for a in active})
        _, ninety = await ward_with_beds(api, "MOVE", 90)
        _, (target,) = await ward_with_beds(api, "ONE", 1)
        for p, bed in zip(waiting, ninety, strict=True):
            await api.data(ADMIT, input=admit(p, bed))
        everyone = await invariants(api)
        assert len(everyone) == PATIENTS
        moves = await asyncio.gather(*(api(TRANSFER, id=a["id"], bedId=target) for a in everyone))
        assert codes(moves) == {"OK": 1, "CONFLICT": PATIENTS - 1}
        after = await invariants(api)
        assert sum(1 for a in after if a["bedId"] == target) == 1
