"""Issue 16's scripted ward round, end to end over real HTTP against one real uvicorn process.

A patient of the demo lies on a ward. The pharmacist (the demo's ``pharmacist`` sign-in) issues
ondansetron from the pharmacy's store to the ward. The patient's attending doctor orders
ondansetron 4 mg IV every eight hours: three doses are scheduled over the next day, each with
its nursing task. A nurse of another ward and the billing clerk are refused a dose. The ward's
nurse gives two and holds one; the ward's stock of the drug falls by two (one 4 mg ampoule a
dose), the pharmacy's store does not move, and the pharmacist sees the ward's consumption:
two doses, two units, what is left.

The doctor and the ward's nurses have no demo sign-in: their tokens are signed with the server's
key exactly as ``shms token --role <role> --subject <id>`` signs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.tokens import TokenService
from config import Settings
from models.base import utcnow
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers
from tests.e2e.test_outpatient_journey import Api, iso

ADMISSIONS = """{ admissions(status: [ACTIVE], first: 100) { nodes {
  id patientId wardId departmentId attendingDoctorId } } }"""
NURSES = """query($d: ID!) { nurses(departmentId: $d, first: 100) { nodes { id wardId } } }"""
DRUGS = """{ drugs(search: "ondansetron", first: 5) { nodes { id genericName strength {
  value unit } } } }"""
BATCHES = """query($d: ID!, $w: ID, $l: StockLocation) {
  stockBatches(drugId: $d, wardId: $w, location: $l, first: 100) {
    nodes { id batchNumber quantity location wardId expired } } }"""
ISSUE = """mutation($b: ID!, $w: ID!, $q: Int!) {
  issueStockToWard(batchId: $b, wardId: $w, quantity: $q) { id quantity location wardId } }"""
ORDER = """mutation($input: DoctorOrderInput!) { createDoctorOrder(input: $input) {
  id status tasks(first: 10) { nodes { id dueAt status } } } }"""
DOSES = """query($a: ID!) { medicationAdministrations(filter: {admissionId: $a}, first: 100) {
  nodes { id orderId taskId status dueAt drugId units } } }"""
GIVE = """mutation($id: ID!) { giveMedication(id: $id, note: "Given slowly over 2 minutes") {
  id status givenAt recordedById lines { batchNumber quantity } task { status } } }"""
HOLD = """mutation($id: ID!) { holdMedication(id: $id, reason: "No nausea since morning") {
  id status reason task { status } } }"""
CONSUMPTION = """query($w: ID!, $from: DateTime!, $to: DateTime!) {
  wardMedicationConsumption(wardId: $w, from: $from, to: $to) {
    wardId drugs { drugId drugName dosesGiven unitsConsumed stockRemaining } } }"""


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(path)))  # the key, made once
    return path


@pytest.fixture(scope="module")
def server(state: Path) -> Iterator[Server]:
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "10",
        "SHMS_LOG_LEVEL": "WARNING",
    }
    with servers(1, env) as started:
        yield started[0]


@pytest.fixture
async def api(server: Server, state: Path) -> Any:
    async with server.client() as http:
        yield Api(server, state, http)


def _code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


async def _units(api: Api, who: str, drug: str, **where: Any) -> int:
    found = (await api.data(who, BATCHES, d=drug, **where))["stockBatches"]["nodes"]
    return sum(b["quantity"] for b in found if not b["expired"])


async def test_the_ward_round(api: Api) -> None:
    admin = await api.sign_in("admin")
    pharmacist = await api.sign_in("pharmacist")
    billing = await api.sign_in("billing")
    started = utcnow()

    # A patient on a ward, her attending doctor, a nurse of that ward and one of another ward.
    admissions = (await api.data(admin, ADMISSIONS))["admissions"]["nodes"]
    assert admissions, "the demo has patients on its wards"
    stay = admissions[0]
    nurses = (await api.data(admin, NURSES, d=stay["departmentId"]))["nurses"]["nodes"]
    (ward_nurse, *_) = [n["id"] for n in nurses if n["wardId"] == stay["wardId"]]
    others = [a for a in admissions if a["wardId"] != stay["wardId"]]
    assert others, "the demo has more than one ward with patients"
    other_nurses = (await api.data(admin, NURSES, d=others[0]["departmentId"]))["nurses"]["nodes"]
    (other_nurse, *_) = [n["id"] for n in other_nurses if n["wardId"] == others[0]["wardId"]]
    doctor = api.cli_token("doctor", stay["attendingDoctorId"], stay["departmentId"])
    nurse = api.cli_token("nurse", ward_nurse, stay["departmentId"])
    stranger = api.cli_token("nurse", other_nurse, others[0]["departmentId"])
    ward = stay["wardId"]

    # The pharmacy issues ondansetron to the ward.
    (drug,) = (await api.data(pharmacist, DRUGS))["drugs"]["nodes"]
    assert drug["strength"] == {"value": 4, "unit": "mg"}
    store = (await api.data(pharmacist, BATCHES, d=drug["id"], l="PHARMACY"))["stockBatches"]
    source = next(b for b in store["nodes"] if not b["expired"] and b["quantity"] >= 5)
    issued = (await api.data(pharmacist, ISSUE, b=source["id"], w=ward, q=5))["issueStockToWard"]
    assert (issued["location"], issued["wardId"]) == ("WARD", ward)
    ward_before = await _units(api, pharmacist, drug["id"], w=ward, l="WARD")
    store_before = await _units(api, pharmacist, drug["id"], l="PHARMACY")
    assert ward_before >= 5

    # The doctor orders it: three doses over the next day, each with its nursing task.
    order = {
        "admissionId": stay["id"],
        "kind": "MEDICATION",
        "medication": {"drug": "Ondansetron", "dose": 4, "unit": "mg", "route": "INTRAVENOUS"},
        "schedule": {"pattern": "EVERY_HOURS", "everyHours": 8},
    }
    made = (await api.data(doctor, ORDER, input=order))["createDoctorOrder"]
    assert made["status"] == "ACTIVE" and len(made["tasks"]["nodes"]) == 3
    doses = [
        d
        for d in (await api.data(nurse, DOSES, a=stay["id"]))["medicationAdministrations"]["nodes"]
        if d["orderId"] == made["id"]
    ]
    assert len(doses) == 3
    assert {d["taskId"] for d in doses} == {t["id"] for t in made["tasks"]["nodes"]}
    assert {(d["status"], d["drugId"], d["units"]) for d in doses} == {("SCHEDULED", drug["id"], 1)}
    first, second, third = sorted(doses, key=lambda d: d["dueAt"])

    # Nobody outside the ward's team records a dose.
    assert _code(await api.body(stranger, GIVE, id=first["id"])) == "FORBIDDEN"
    assert _code(await api.body(billing, GIVE, id=first["id"])) == "FORBIDDEN"

    # The ward's nurse gives two and holds one.
    for dose in (first, second):
        given = (await api.data(nurse, GIVE, id=dose["id"]))["giveMedication"]
        assert (given["status"], given["recordedById"]) == ("GIVEN", ward_nurse)
        assert sum(x["quantity"] for x in given["lines"]) == 1
        assert given["task"]["status"] == "DONE"
    assert _code(await api.body(nurse, GIVE, id=first["id"])) == "CONFLICT"  # given already
    held = (await api.data(nurse, HOLD, id=third["id"]))["holdMedication"]
    assert (held["status"], held["task"]["status"]) == ("HELD", "SKIPPED")

    # The ward's stock fell by two; the pharmacy's store did not move.
    assert await _units(api, pharmacist, drug["id"], w=ward, l="WARD") == ward_before - 2
    assert await _units(api, pharmacist, drug["id"], l="PHARMACY") == store_before

    # The pharmacist sees the ward's consumption.
    span = {"w": ward, "from": iso(started - timedelta(minutes=1)),
            "to": iso(utcnow() + timedelta(minutes=1))}  # fmt: skip
    seen = (await api.data(pharmacist, CONSUMPTION, **span))["wardMedicationConsumption"]
    assert seen["wardId"] == ward
    (row,) = [d for d in seen["drugs"] if d["drugId"] == drug["id"]]
    assert (row["drugName"], row["dosesGiven"], row["unitsConsumed"]) == ("Ondansetron", 2, 2)
    assert row["stockRemaining"] == ward_before - 2
    # The nurse does not read the pharmacy's view.
    assert _code(await api.body(nurse, CONSUMPTION, **span)) == "FORBIDDEN"
