"""Over real HTTP, against a uvicorn process seeded with the demo: a treating doctor exports a
demo patient with visits, results and prescriptions, and the bundle validates with
``fhir.resources``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from auth.tokens import TokenService
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers
from tests.fhir.helpers import types

DOCTOR = "6955b9000200000000000001"  # the demo's `doctor` account: head of Cardiology
CARDIOLOGY = "6955b9000100000000000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    state: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))  # the key, made once
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_fhir_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-fhir-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
    }
    with servers(1, env) as started:
        yield started[0], state


async def test_demo_patient_export_validates(server: tuple[Server, Path]) -> None:
    running, state = server
    claims = {"sub": f"cli:doctor:{DOCTOR}", "roles": ["doctor"], "sid": DOCTOR, "did": CARDIOLOGY}
    token = TokenService.from_settings(Settings(shms_state_dir=str(state))).issue(claims, 600)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=running.url, headers=headers, timeout=30) as http:
        listed = await http.post(
            "/graphql", json={"query": "{ patients(first: 100) { nodes { id } } }"}
        )
        ids = [n["id"] for n in listed.json()["data"]["patients"]["nodes"]]
        assert ids, "the demo doctor treats some patients"
        wanted = {"Patient", "Encounter", "Observation", "MedicationRequest"}
        for patient_id in ids:
            response = await http.get(f"/fhir/Patient/{patient_id}/$everything")
            assert response.status_code == 200, response.text
            bundle = response.json()
            Bundle.model_validate(bundle)
            if wanted <= types(bundle):
                break
        else:
            pytest.fail("no demo patient of the doctor has visits, results and prescriptions")
        assert any(
            e["resource"]["resourceType"] == "Observation"
            and e["resource"]["category"][0]["coding"][0]["code"] == "laboratory"
            for e in bundle["entry"]
        ) or "DiagnosticReport" in types(bundle)
        shifted = await http.get(f"/fhir/Patient/{patient_id}/$everything?deidentify=safe-harbor")
        assert shifted.status_code == 200
        Bundle.model_validate(shifted.json())
        assert patient_id not in shifted.text
