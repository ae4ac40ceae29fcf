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
from crypto.keys import state_keys
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

PATIENT = "6955b9000600000000000001"
DEVICE = "6955b9000500000000000001"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    state: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))  # one key, made before both
    state_keys(state)  # and one master key: both derive the same data keys from it
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_METRICS_PUBLIC": "true",  # scraped without a token
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
                line.startswith("shms_subscriptions_open{") and float(line.split()[-1]) == 1
                for line in metrics.splitlines()
            ):
                return
            await asyncio.sleep(0.05)  # polling another process's state, bounded
    raise AssertionError("the subscription never opened")


class Pair:
    """Write on A, read on B, as one signed-in user on both."""

    def __init__(self, pair: list[Server], username: str) -> None:
        self.a, self.b = pair
        self.on_a, self.on_b = token(self.a, username), token(self.b, username)

    def write(self, query: str, **variables: Any) -> dict[str, Any]:
        return gql(self.a, self.on_a, query, **variables)

    def read(self, query: str, **variables: Any) -> dict[str, Any]:
        return gql(self.b, self.on_b, query, **variables)


def test_every_kind_of_write_on_a_is_read_on_b(pair: list[Server]) -> None:
    """Each mutation family: warm B's cache, write on A, B sees the new value at once."""
    desk, admin, billing = Pair(pair, "frontdesk"), Pair(pair, "admin"), Pair(pair, "billing")
    doctor = Pair(pair, "doctor")

    # registerPatient, then scheduleAppointment / reschedule / cancel on the new patient.
    new = desk.write(
        'mutation { registerPatient(input: {firstName: "Ines", lastName: "Nova",'
        ' dateOfBirth: "1991-02-03"}) { id } }'
    )["registerPatient"]["id"]
    assert desk.read("query($id: ID!) { patient(id: $id) { lastName } }", id=new) == {
        "patient": {"lastName": "Nova"}
    }
    booked = desk.write(
        "mutation($p: ID!) { scheduleAppointment(input: {patientId: $p, doctorId:"
        ' "6955b9000200000000000001", startAt: "2031-02-03T09:00:00Z",'
        ' endAt: "2031-02-03T09:30:00Z", reason: "First visit"}) { id } }',
        p=new,
    )["scheduleAppointment"]["id"]
    read_appt = "query($id: ID!) { appointment(id: $id) { status startAt } }"
    assert desk.read(read_appt, id=booked)["appointment"]["status"] == "SCHEDULED"
    desk.write(
        "mutation($id: ID!) { rescheduleAppointment(id: $id, input: {"
        ' startAt: "2031-02-04T09:00:00Z",'
        ' endAt: "2031-02-04T09:30:00Z"}) { id } }',
        id=booked,
    )
    assert desk.read(read_appt, id=booked)["appointment"]["startAt"].startswith("2031-02-04T09")
    desk.write("mutation($id: ID!) { cancelAppointment(id: $id) { id } }", id=booked)
    assert desk.read(read_appt, id=booked)["appointment"]["status"] == "CANCELLED"

    # Cancelling ended the care that booking gave; a new booking gives it again, on B too.
    desk.write(
        "mutation($p: ID!) { scheduleAppointment(input: {patientId: $p, doctorId:"
        ' "6955b9000200000000000001", startAt: "2031-02-05T09:00:00Z",'
        ' endAt: "2031-02-05T09:30:00Z", reason: "Second visit"}) { id } }',
        p=new,
    )
    plan = doctor.write(
        "mutation($p: ID!) { createTreatmentPlan(input: {patientId: $p, doctorId:"
        ' "6955b9000200000000000001", diagnosis: {description: "Migraine"}}) { id } }',
        p=new,
    )["createTreatmentPlan"]["id"]
    read_plan = "query($id: ID!) { treatmentPlan(id: $id) { status notes } }"
    assert doctor.read(read_plan, id=plan)["treatmentPlan"] == {"status": "ACTIVE", "notes": None}
    doctor.write(
        'mutation($id: ID!) { updateTreatmentPlan(id: $id, input: {notes: "Diary"}) { id } }',
        id=plan,
    )
    assert doctor.read(read_plan, id=plan)["treatmentPlan"]["notes"] == "Diary"
    rx = doctor.write(
        "mutation($p: ID!) { createPrescription(input: {patientId: $p, prescriberId:"
        ' "6955b9000200000000000001", drug: "Sumatriptan", dose: "50 mg", route: ORAL,'
        ' frequency: "as needed", durationDays: 30}) { id } }',
        p=new,
    )["createPrescription"]["id"]
    read_rx = "query($id: ID!) { prescription(id: $id) { dose status } }"
    doctor.write(
        'mutation($id: ID!) { updatePrescription(id: $id, input: {dose: "100 mg"}) { id } }', id=rx
    )
    assert doctor.read(read_rx, id=rx)["prescription"] == {"dose": "100 mg", "status": "PRESCRIBED"}
    doctor.write(
        "mutation($id: ID!) { updatePrescriptionStatus(id: $id, status: CANCELLED) { id } }", id=rx
    )
    assert doctor.read(read_rx, id=rx)["prescription"]["status"] == "CANCELLED"
    treated = doctor.write(
        "mutation($id: ID!) { recordTreatment(planId: $id, input: {performedById:"
        ' "6955b9000200000000000001", performedByRole: DOCTOR,'
        ' performedAt: "2026-01-05T10:00:00Z", procedure: "Nerve block"}) { id } }',
        id=plan,
    )["recordTreatment"]["id"]
    assert doctor.read("query($id: ID!) { treatment(id: $id) { procedure } }", id=treated) == {
        "treatment": {"procedure": "Nerve block"}
    }

    # Billing: open an account for the new patient, charge, pay, insure.
    account = billing.write(
        "mutation($p: ID!) { openBillingAccount(input: {patientId: $p}) { id } }", p=new
    )["openBillingAccount"]["id"]
    read_account = (
        "query($id: ID!) { billingAccount(id: $id) { balance { amount } insurance { provider } } }"
    )
    assert billing.read(read_account, id=account)["billingAccount"]["balance"]["amount"] == 0
    billing.write(
        'mutation($id: ID!) { addCharge(accountId: $id, input: {description: "Consultation",'
        ' amount: {amount: 9000, currency: "EUR"}, source: MANUAL}) { id } }',
        id=account,
    )
    assert billing.read(read_account, id=account)["billingAccount"]["balance"]["amount"] == 9000
    billing.write(
        "mutation($id: ID!) { recordPayment(accountId: $id, input: {amount: {amount: 4000,"
        ' currency: "EUR"}, method: CARD}) { id } }',
        id=account,
    )
    assert billing.read(read_account, id=account)["billingAccount"]["balance"]["amount"] == 5000
    billing.write(
        'mutation($id: ID!) { updateInsurance(accountId: $id, insurance: {provider: "Mutuelle",'
        ' policyNumber: "P-1"}) { id } }',
        id=account,
    )
    assert billing.read(read_account, id=account)["billingAccount"]["insurance"] == {
        "provider": "Mutuelle"
    }

    # Staff and equipment (admin).
    doc = admin.write(
        'mutation { createDoctor(input: {firstName: "Ana", lastName: "Reyes", departmentId:'
        ' "6955b9000100000000000001", specialty: "Cardiology", licenceNumber: "E2E-1"}) { id } }'
    )["createDoctor"]["id"]
    admin.write(
        "mutation($id: ID!) { updateDoctor(id: $id,"
        ' input: {specialty: "Electrophysiology"}) { id } }',
        id=doc,
    )
    assert admin.read("query($id: ID!) { doctor(id: $id) { specialty } }", id=doc) == {
        "doctor": {"specialty": "Electrophysiology"}
    }
    device = admin.write(
        'mutation { registerEquipment(input: {name: "Holter", equipmentType: "ECG monitor",'
        ' serialNumber: "E2E-H1", departmentId: "6955b9000100000000000001"}) { id } }'
    )["registerEquipment"]["id"]
    admin.write(
        "mutation($id: ID!) { allocateEquipment(id: $id,"
        ' departmentId: "6955b9000100000000000002") { id } }',
        id=device,
    )
    assert admin.read("query($id: ID!) { equipment(id: $id) { departmentId } }", id=device) == {
        "equipment": {"departmentId": "6955b9000100000000000002"}
    }


UTILISATION = """{ analytics { equipmentUtilisation(filter: {from: "2025-01-01T00:00:00Z",
  to: "2027-01-01T00:00:00Z"}) { cached groups { departmentId devices bookedMinutes } } } }"""


def test_a_write_on_one_process_drops_an_aggregate_cached_on_the_other(
    pair: list[Server],
) -> None:
    """The result cache's generations live in the shared Redis: A's write makes B recompute."""
    a, b = pair
    admin_a, admin_b = token(a, "admin"), token(b, "admin")
    first = gql(b, admin_b, UTILISATION)["analytics"]["equipmentUtilisation"]
    again = gql(b, admin_b, UTILISATION)["analytics"]["equipmentUtilisation"]
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["groups"] == first["groups"]

    device = "6955b9000500000000000002"
    status = gql(
        a, admin_a, "query($id: ID!) { equipment(id: $id) { allowedTransitions } }", id=device
    )["equipment"]["allowedTransitions"][0]
    gql(
        a,
        admin_a,
        "mutation($id: ID!, $s: EquipmentStatus!) { updateEquipmentStatus(id: $id, status: $s,"
        ' reason: "two-process cache test") { status } }',
        id=device,
        s=status,
    )

    after = gql(b, admin_b, UTILISATION)["analytics"]["equipmentUtilisation"]
    assert after["cached"] is False
