"""Issue 14's "Done when", end to end: one real uvicorn process, real HTTP and WebSocket.

The journey signs in through ``/oauth/token`` as the demo's front desk, doctor, nurse, lab
technician, billing clerk and analyst, and as the ``dashboard`` service client (the waiting-room
screen); the new patient's own token is signed with the server's key exactly as ``shms token
--role patient --subject <id>`` signs it (the demo's patient account is someone else).

The concurrency checks race requests against one server. Two server processes cannot share the
embedded store (it lives inside one process), so a cross-process race cannot be run here, and
inside one process the embedded store's calls do not yield, so a queue head's read and its
update cannot interleave between two requests. The guarantee across processes rests on the
conditional updates themselves: ``waiting -> called`` with ``status`` in the filter (the worst
interleaving, both callers holding the same head, is forced in
tests/outpatient/test_concurrency.py), and the scanner's 5-minute reservations under a unique
index, which refuse an overlapping insert however requests interleave
(tests/radiology/test_booking.py).

The analyst's step reads ``analytics.labTurnaround`` against the demo's history: with
``SHMS_DEMO_PATIENTS=20`` the CRP group is large enough to show and TROP's is not.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from auth.tokens import TokenService
from config import Settings
from demo.clock import ANCHOR
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

DOCTOR = "6955b9000200000000000001"  # the `doctor` account: head of Cardiology
CARDIOLOGY = "6955b9000100000000000001"
WAIT = 10.0  # seconds any one event may take to arrive


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
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_METRICS_PUBLIC": "true",  # scraped without a token
    }
    with servers(1, env) as started:
        yield started[0]


class Api:
    """Real HTTP to one server: sign-ins, tokens and GraphQL requests."""

    def __init__(self, server: Server, state: Path, http: httpx.AsyncClient) -> None:
        self.server, self.state, self.http = server, state, http

    async def sign_in(self, username: str) -> str:
        response = await self.http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": f"demo-{username}-pass",
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def client_token(self, client_id: str, secret: str) -> str:
        response = await self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def cli_token(self, role: str, subject: str, department: str | None = None) -> str:
        """What ``shms token --role <role> --subject <id> [--department <id>]`` prints."""
        claims: dict[str, object] = {"sub": f"cli:{role}:{subject}", "roles": [role]}
        claims["pid" if role == "patient" else "sid"] = subject
        if department:
            claims["did"] = department
        service = TokenService.from_settings(Settings(shms_state_dir=str(self.state)))
        return service.issue(claims, 600)

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

    async def subscriptions_open(self, field: str) -> int:
        metrics = (await self.http.get("/metrics")).text
        sample = f'shms_subscriptions_open{{field="{field}"}} '
        for line in metrics.splitlines():
            if line.startswith(sample):
                return int(float(line.split()[-1]))
        return 0

    async def until_open(self, field: str, count: int) -> None:
        """The protocol does not acknowledge a subscribe: wait until the server counts it."""
        for _ in range(200):
            if await self.subscriptions_open(field) >= count:
                return
            await asyncio.sleep(0.05)  # polling another process's state, bounded
        raise AssertionError(f"fewer than {count} {field} subscriptions ever opened")


class Subscription:
    """One graphql-transport-ws subscription; keeps every raw frame it received."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[str] = []

    @classmethod
    async def open(cls, server: Server, bearer: str, query: str, **variables: Any) -> Subscription:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{server.port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": bearer}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert ack["type"] == "connection_ack", ack
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return cls(ws)

    async def next(self) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), WAIT)
            self.frames.append(raw)
            message = json.loads(raw)
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            data: dict[str, Any] = message["payload"]["data"]
            return data

    async def until(self, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event that satisfies ``ok`` (earlier ones are kept in ``frames``)."""
        while True:
            data = await self.next()
            if ok(data):
                return data

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
async def api(server: Server, state: Path) -> Any:
    async with server.client(timeout=20) as http:
        yield Api(server, state, http)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


APPOINTMENT = ("2031-03-03T09:00:00Z", "2031-03-03T09:30:00Z")  # years ahead: always free


REGISTER = """mutation($first: String!, $last: String!, $born: Date!) {
  registerPatient(input: {firstName: $first, lastName: $last, dateOfBirth: $born, sex: FEMALE}) {
    id } }"""
BOOK = """mutation($p: ID!, $d: ID!, $s: DateTime!, $e: DateTime!) {
  scheduleAppointment(input: {patientId: $p, doctorId: $d, startAt: $s, endAt: $e,
    reason: "Chest discomfort on exertion"}) { id status } }"""
CHECK_IN = """mutation($a: ID!) { checkInOutpatient(input: {appointmentId: $a}) {
  id status queueNumber queueDate position priority patientId doctorId } }"""
WALK_IN = """mutation($p: ID!, $dept: ID!, $d: ID, $prio: OutpatientPriority) {
  walkInOutpatient(input: {patientId: $p, departmentId: $dept, doctorId: $d, priority: $prio}) {
    id status queueNumber queueDate position } }"""
CALL_NEXT = """mutation($room: String!, $d: ID) {
  callNextOutpatient(room: $room, doctorId: $d) { id status calledTo queueNumber } }"""
BOARD = """subscription($d: ID) { outpatientBoardChanged(doctorId: $d) {
  change at board { doctorId entries {
    queueNumber queueDate priority status position calledTo calledAt } } } }"""
LAB_LIVE = """subscription($d: ID) { labResultEntered(doctorId: $d, criticalOnly: true) {
  change resultId result { orderId analyteCode value flag critical status } } }"""


async def new_patient(api: Api, desk: str, last: str, born: str = "1985-04-12") -> str:
    made = await api.data(desk, REGISTER, first="Maëlle", last=last, born=born)
    return str(made["registerPatient"]["id"])


def entry_of(event: dict[str, Any], ticket: tuple[int, str]) -> dict[str, Any] | None:
    """Our patient's line on the board, found as the screen finds it: by queue number and day."""
    board = event["outpatientBoardChanged"]["board"]
    for entry in board["entries"]:
        if (entry["queueNumber"], entry["queueDate"]) == ticket:
            return dict(entry)
    return None


def moved_from(ticket: tuple[int, str], position: int) -> Callable[[dict[str, Any]], bool]:
    """An event where our line is no longer at ``position`` (moved, called or gone)."""
    return lambda event: (entry_of(event, ticket) or {}).get("position") != position


TURNAROUND = """query($f: DateTime!, $t: DateTime!) { analytics {
  labTurnaround(filter: {from: $f, to: $t}) { deidentified suppressionThreshold
    groups { code tests patients medianMinutes p90Minutes suppressed } } } }"""
VERIFY = "mutation($id: ID!) { verifyLabOrder(id: $id) { status verifiedAt } }"
READ_REPORT = """query($id: ID!) { labOrder(id: $id) { status
  report { analyteCode value unit flag referenceRange } } }"""


@dataclass
class Journey:
    """One patient's morning, a phase per method; each phase asserts what it must have done."""

    api: Api
    desk: str
    doctor: str
    nurse: str
    lab: str
    billing: str
    analyst: str
    screen: str
    surname: str = field(default_factory=lambda: f"Journeyman{uuid.uuid4().hex[:6]}")
    patient_id: str = ""
    appointment_id: str = ""
    urgent_id: str = ""
    visit: dict[str, Any] = field(default_factory=dict)
    note_id: str = ""
    order_id: str = ""
    critical_result_id: str = ""

    @classmethod
    async def start(cls, api: Api) -> Journey:
        return cls(
            api,
            desk=await api.sign_in("frontdesk"),
            doctor=await api.sign_in("doctor"),
            nurse=await api.sign_in("nurse"),
            lab=await api.sign_in("labtech"),
            billing=await api.sign_in("billing"),
            analyst=await api.sign_in("analyst"),
            screen=await api.client_token("dashboard", "demo-dashboard-secret"),
        )

    @property
    def me(self) -> str:
        """The patient's own token."""
        return self.api.cli_token("patient", self.patient_id)

    async def book(self) -> None:
        self.patient_id = await new_patient(self.api, self.desk, self.surname)
        start, end = APPOINTMENT
        booked = await self.api.data(self.desk, BOOK, p=self.patient_id, d=DOCTOR, s=start, e=end)
        self.appointment_id = booked["scheduleAppointment"]["id"]

    async def check_in_and_wait(self, board: Subscription) -> None:
        """Check-in joins the doctor's queue; the screen follows our line until we are called."""
        first = await board.next()
        assert first["outpatientBoardChanged"]["change"] == "snapshot"
        api, desk = self.api, self.desk
        self.visit = (await api.data(desk, CHECK_IN, a=self.appointment_id))["checkInOutpatient"]
        visit = self.visit
        assert (visit["status"], visit["patientId"], visit["doctorId"]) == (
            "WAITING", self.patient_id, DOCTOR
        )  # fmt: skip
        ticket = (visit["queueNumber"], visit["queueDate"])
        joined = entry_of(await board.until(lambda e: entry_of(e, ticket) is not None), ticket)
        assert joined is not None and joined["status"] == "WAITING"
        assert joined["position"] == visit["position"] >= 1
        position = joined["position"]

        # An emergency walks in for the same doctor: it goes ahead of us, the screen shows it.
        self.urgent_id = await new_patient(api, desk, f"Urgent{uuid.uuid4().hex[:6]}", "1990-01-01")
        urgent = await api.data(
            desk, WALK_IN, p=self.urgent_id, dept=CARDIOLOGY, d=DOCTOR, prio="EMERGENCY"
        )
        assert urgent["walkInOutpatient"]["position"] <= position  # emergencies first
        behind = await board.until(moved_from(ticket, position))
        assert entry_of(behind, ticket) == {**joined, "position": position + 1}
        position += 1

        # The doctor calls the head of the queue until it is us; each call moves us up one.
        while True:
            called = (await api.data(self.doctor, CALL_NEXT, room="Room 3", d=DOCTOR))[
                "callNextOutpatient"
            ]
            assert called is not None
            if called["id"] == visit["id"]:
                break
            moved = await board.until(moved_from(ticket, position))
            assert (entry_of(moved, ticket) or {})["position"] == position - 1
            position -= 1
        assert position == 1 and called["calledTo"] == "Room 3"
        shown = await board.until(lambda e: (entry_of(e, ticket) or {}).get("status") == "CALLED")
        assert (entry_of(shown, ticket) or {}) == {
            **joined, "status": "CALLED", "position": None, "calledTo": "Room 3",
            "calledAt": (entry_of(shown, ticket) or {}).get("calledAt"),
        }  # fmt: skip

    async def vital_signs(self) -> None:
        """The nurse records a set in the visit; BMI is computed; the doctor's trend has it."""
        measured = iso(datetime.now(UTC) - timedelta(minutes=1))
        vitals = await self.api.data(
            self.nurse,
            """mutation($p: ID!, $v: ID!, $at: DateTime!) { recordVitalSigns(input: {
              patientId: $p, visitId: $v, recordedAt: $at, temperature: 37.1, pulse: 104,
              systolic: 152, diastolic: 94, respiratoryRate: 20, spo2: 96, height: 168,
              weight: 70, painScore: 6}) { visitId bmi { value unit } } }""",
            p=self.patient_id,
            v=self.visit["id"],
            at=measured,
        )
        assert vitals["recordVitalSigns"] == {
            "visitId": self.visit["id"], "bmi": {"value": 24.8, "unit": "kg/m2"}
        }  # fmt: skip
        trend = await self.api.data(
            self.doctor,
            """query($p: ID!) { vitalSignsSeries(patientId: $p, measurement: SYSTOLIC,
              first: 5) { nodes { value unit } } }""",
            p=self.patient_id,
        )
        assert trend["vitalSignsSeries"]["nodes"] == [{"value": 152, "unit": "mm[Hg]"}]

    async def seen(self) -> None:
        """The consultation starts; the doctor writes the consultation note and signs it."""
        api, doctor = self.api, self.doctor
        seen = await api.data(
            doctor,
            "mutation($id: ID!) { startOutpatientConsultation(id: $id) { status seenAt } }",
            id=self.visit["id"],
        )
        assert seen["startOutpatientConsultation"]["status"] == "IN_CONSULTATION"
        note = (
            await api.data(
                doctor,
                """mutation($p: ID!, $v: ID!) { createClinicalNote(input: {patientId: $p,
                  visitId: $v, noteType: CONSULTATION, title: "Chest pain",
                  text: "Exertional chest pain since this morning; troponin, CRP ordered."}) {
                  id status version } }""",
                p=self.patient_id,
                v=self.visit["id"],
            )
        )["createClinicalNote"]
        assert note["status"] == "DRAFT"
        self.note_id = note["id"]
        signed = (
            await api.data(
                doctor,
                """mutation($id: ID!, $v: Int!) { signClinicalNote(id: $id, version: $v) {
                  status contentHash signedById integrity { valid } } }""",
                id=note["id"],
                v=note["version"],
            )
        )["signClinicalNote"]
        assert signed["status"] == "SIGNED" and signed["signedById"] == DOCTOR
        assert re.fullmatch("[0-9a-f]{64}", signed["contentHash"])
        assert signed["integrity"]["valid"]

    async def lab_order(self) -> None:
        order = (
            await self.api.data(
                self.doctor,
                """mutation($p: ID!, $v: ID!) { createLabOrder(input: {patientId: $p,
                  visitId: $v, testCodes: ["TROP", "CRP"], priority: STAT}) {
                  id status visitId orderingDoctorId } }""",
                p=self.patient_id,
                v=self.visit["id"],
            )
        )["createLabOrder"]
        assert (order["status"], order["visitId"], order["orderingDoctorId"]) == (
            "ORDERED", self.visit["id"], DOCTOR
        )  # fmt: skip
        self.order_id = order["id"]

    async def laboratory(self) -> None:
        """Samples collected (accession numbers) and received; a critical value among two."""
        api, lab = self.api, self.lab
        collected = (
            await api.data(
                lab,
                """mutation($id: ID!) { collectLabSamples(orderId: $id) { status
                  samples { nodes { id accessionNumber specimenType status } } } }""",
                id=self.order_id,
            )
        )["collectLabSamples"]
        assert collected["status"] == "COLLECTED"
        samples = collected["samples"]["nodes"]
        assert sorted(s["specimenType"] for s in samples) == ["PLASMA", "SERUM"]  # TROP, CRP
        assert all(re.fullmatch(r"L\d{8}-\d{5}", s["accessionNumber"]) for s in samples)
        RECEIVE = "mutation($id: ID!) { receiveLabSample(id: $id) { status order { status } } }"
        first = (await api.data(lab, RECEIVE, id=samples[0]["id"]))["receiveLabSample"]
        assert first == {"status": "RECEIVED", "order": {"status": "COLLECTED"}}  # one to go
        second = (await api.data(lab, RECEIVE, id=samples[1]["id"]))["receiveLabSample"]
        assert second == {"status": "RECEIVED", "order": {"status": "RECEIVED"}}
        entered = (
            await api.data(
                lab,
                """mutation($id: ID!) { enterLabResults(orderId: $id, results: [
                  {testCode: "TROP", analyteCode: "TNIHS", value: 2400},
                  {testCode: "CRP", analyteCode: "CRP", value: 12}]) {
                  id analyteCode flag critical status } }""",
                id=self.order_id,
            )
        )["enterLabResults"]
        flags = {r["analyteCode"]: (r["flag"], r["critical"], r["status"]) for r in entered}
        assert flags == {
            "TNIHS": ("CRITICAL_HIGH", True, "PRELIMINARY"),
            "CRP": ("HIGH", False, "PRELIMINARY"),
        }
        self.critical_result_id = next(r["id"] for r in entered if r["critical"])

    async def doctor_notified(self, live: Subscription) -> None:
        """The ordering doctor: the live event (critical only) and the notification."""
        event = (await live.next())["labResultEntered"]
        assert event["resultId"] == self.critical_result_id
        assert event["result"] == {
            "orderId": self.order_id, "analyteCode": "TNIHS", "value": 2400.0,
            "flag": "CRITICAL_HIGH", "critical": True, "status": "PRELIMINARY",
        }  # fmt: skip
        inbox = await self.api.data(
            self.doctor,
            "{ notifications(first: 50) { nodes { kind recipientKind recipientId body } } }",
        )
        about = [n for n in inbox["notifications"]["nodes"] if self.order_id in n["body"]]
        assert [(n["kind"], n["recipientKind"], n["recipientId"]) for n in about] == [
            ("LAB_CRITICAL_RESULT", "DOCTOR", DOCTOR)
        ]  # exactly one, for the one critical value
        assert "2400" not in about[0]["body"]  # it names the order, not the value

    async def verified(self) -> None:
        """A second person verifies: never the technician who entered the values."""
        refused = await self.api.body(self.lab, VERIFY, id=self.order_id)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        verified = (await self.api.data(self.doctor, VERIFY, id=self.order_id))["verifyLabOrder"]
        assert verified["status"] == "VERIFIED" and verified["verifiedAt"]

    async def patient_reads(self) -> None:
        """The patient reads their own verified values (the report), and only their orders."""
        own = (await self.api.data(self.me, READ_REPORT, id=self.order_id))["labOrder"]
        assert own["status"] == "VERIFIED"
        lines = {line["analyteCode"]: line for line in own["report"]}
        assert lines["TNIHS"] | {"referenceRange": None} == {
            "analyteCode": "TNIHS", "value": 2400.0, "unit": "ng/L", "flag": "CRITICAL_HIGH",
            "referenceRange": None,
        }  # fmt: skip
        assert lines["TNIHS"]["referenceRange"]  # the range for her sex and age
        assert (lines["CRP"]["value"], lines["CRP"]["flag"]) == (12.0, "HIGH")
        mine = await self.api.data(self.me, "{ labOrders(first: 50) { nodes { id patientId } } }")
        assert mine["labOrders"]["nodes"] == [{"id": self.order_id, "patientId": self.patient_id}]

    async def billing_sees_the_charge_only(self) -> None:
        api, billing = self.api, self.billing
        prices = await api.data(
            self.doctor, "{ labTests(first: 50) { nodes { code price { amount currency } } } }"
        )
        price = {n["code"]: n["price"] for n in prices["labTests"]["nodes"]}
        total = price["TROP"]["amount"] + price["CRP"]["amount"]
        charged = await api.data(
            billing,
            """query($id: ID!) { labOrder(id: $id) { status charge { amount currency }
              chargedAt } }""",
            id=self.order_id,
        )
        assert charged["labOrder"]["charge"] == {"amount": total, "currency": "EUR"}
        assert charged["labOrder"]["chargedAt"]
        accounts = await api.data(
            billing,
            """query($p: ID!) { billingAccounts(patientId: $p) { nodes {
              charges { amount { amount } source sourceId description } } } }""",
            p=self.patient_id,
        )
        (account,) = accounts["billingAccounts"]["nodes"]
        lab_charges = [c for c in account["charges"] if c["source"] == "LAB_ORDER"]
        assert [(c["amount"]["amount"], c["sourceId"]) for c in lab_charges] == [
            (total, self.order_id)
        ]  # exactly once
        assert lab_charges[0]["description"] == "Laboratory order (2 tests)"  # no test names
        peek = await api.body(
            billing,
            """query($id: ID!) { labOrder(id: $id) { status report { value flag }
              results { nodes { value flag } } } }""",
            id=self.order_id,
        )
        assert peek["data"]["labOrder"] == {"status": "VERIFIED", "report": None, "results": None}
        assert {(tuple(e["path"]), e["extensions"]["code"]) for e in peek["errors"]} == {
            (("labOrder", "report"), "FORBIDDEN"),
            (("labOrder", "results"), "FORBIDDEN"),
        }
        for query in (
            "query($id: ID!) { clinicalNote(id: $id) { text } }",
            "query($id: ID!) { labResult(id: $id) { value } }",
        ):
            target = self.note_id if "clinicalNote" in query else self.critical_result_id
            refused = await api.body(billing, query, id=target)
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
            assert not any((refused["data"] or {}).values())

    async def turnaround(self) -> dict[str, dict[str, Any]]:
        """The analyst's lab turnaround report, by test code."""
        # From before the demo's history (fixed dates) to after now: the demo's orders and ours.
        window = {"f": iso(ANCHOR - timedelta(days=90)), "t": iso(datetime.now(UTC) + timedelta(1))}
        report = (await self.api.data(self.analyst, TURNAROUND, **window))["analytics"]
        turnaround = report["labTurnaround"]
        assert turnaround["deidentified"] is True
        return {g["code"]: g for g in turnaround["groups"]}

    async def analyst_refused_rows(self) -> None:
        for query, value in (
            ("query($id: ID!) { labOrder(id: $id) { status } }", self.order_id),
            ("query($id: ID) { labOrders(patientId: $id, first: 5) { nodes { id } } }", None),
            ("query($id: ID!) { labResult(id: $id) { value } }", self.critical_result_id),
        ):
            refused = await self.api.body(self.analyst, query, id=value)
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
            assert not any((refused["data"] or {}).values())

    async def leaves(self, board: Subscription) -> None:
        """The visit completes and leaves the queue; the screen drops our line."""
        done = await self.api.data(
            self.doctor,
            "mutation($id: ID!) { completeOutpatientVisit(id: $id) { status position } }",
            id=self.visit["id"],
        )
        assert done["completeOutpatientVisit"] == {"status": "COMPLETED", "position": None}
        ticket = (self.visit["queueNumber"], self.visit["queueDate"])
        await board.until(lambda e: entry_of(e, ticket) is None)

    async def screen_was_nameless(self, board: Subscription) -> None:
        """Nothing the waiting-room screen received names a patient or carries their ids."""
        frames = "\n".join(board.frames)
        assert len(board.frames) >= 6
        secrets = [self.patient_id, self.urgent_id, self.visit["id"], self.appointment_id]
        for secret in [*secrets, self.surname, "Maëlle", "Ma\\u00eb"]:
            assert secret not in frames, secret
        entry = await self.api.data(
            self.screen, '{ __type(name: "OutpatientBoardEntry") { fields { name } } }'
        )
        names = {f["name"] for f in entry["__type"]["fields"]}
        assert not {n for n in names if "patient" in n.lower() or "name" in n.lower()}, names


async def test_an_outpatient_journey_over_http_and_websocket(api: Api) -> None:
    journey = await Journey.start(api)
    before = await journey.turnaround()
    await journey.book()

    board = await Subscription.open(api.server, journey.screen, BOARD, d=DOCTOR)
    await journey.check_in_and_wait(board)
    await journey.vital_signs()
    await journey.seen()
    await journey.lab_order()

    open_before = await api.subscriptions_open("labResultEntered")
    live = await Subscription.open(api.server, journey.doctor, LAB_LIVE, d=DOCTOR)
    await api.until_open("labResultEntered", open_before + 1)
    await journey.laboratory()
    await journey.doctor_notified(live)
    await live.close()

    await journey.verified()
    await journey.patient_reads()
    await journey.billing_sees_the_charge_only()

    # The analyst: the turnaround aggregate, counting the new order; never an order or result.
    # CRP's group is large enough to show (the demo's 11 patients); TROP's is not, so the
    # journey's own timing stays withheld.
    after = await journey.turnaround()
    assert not before["CRP"]["suppressed"] and not after["CRP"]["suppressed"]
    assert after["CRP"]["tests"] == before["CRP"]["tests"] + 1
    assert after["CRP"]["patients"] == before["CRP"]["patients"] + 1
    assert after["CRP"]["medianMinutes"] is not None and after["CRP"]["p90Minutes"] is not None
    assert after["TROP"] == {
        "code": "TROP", "tests": None, "patients": None, "medianMinutes": None,
        "p90Minutes": None, "suppressed": True,
    }  # fmt: skip
    await journey.analyst_refused_rows()

    await journey.leaves(board)
    await board.close()
    await journey.screen_was_nameless(board)


async def new_doctor(api: Api) -> tuple[str, str]:
    """A Cardiology doctor with an empty queue, and their token (as ``shms token`` signs it)."""
    admin = await api.sign_in("admin")
    made = await api.data(
        admin,
        """mutation($licence: String!) { createDoctor(input: {firstName: "Ada", lastName: "Quinn",
          departmentId: "6955b9000100000000000001", specialty: "Cardiology",
          licenceNumber: $licence}) { id } }""",
        licence=f"E2E-{uuid.uuid4().hex[:8]}",
    )
    doctor_id = str(made["createDoctor"]["id"])
    return doctor_id, api.cli_token("doctor", doctor_id, CARDIOLOGY)


async def walk_in(api: Api, desk: str, doctor_id: str) -> str:
    patient_id = await new_patient(api, desk, f"Racer{uuid.uuid4().hex[:6]}")
    made = await api.data(desk, WALK_IN, p=patient_id, dept=CARDIOLOGY, d=doctor_id, prio=None)
    return str(made["walkInOutpatient"]["id"])


async def test_two_people_calling_the_next_patient_at_once_never_call_the_same(api: Api) -> None:
    desk, nurse = await api.sign_in("frontdesk"), await api.sign_in("nurse")
    doctor_id, doctor = await new_doctor(api)
    callers = [doctor, nurse]

    # One patient waits; the doctor and the nurse call the next patient at the same moment.
    only = await walk_in(api, desk, doctor_id)
    answers = await asyncio.gather(
        *(api.data(who, CALL_NEXT, room=f"Room {n}", d=doctor_id) for n, who in enumerate(callers))
    )
    called = [a["callNextOutpatient"] for a in answers]
    assert sorted(c is None for c in called) == [False, True], called
    (winner,) = [c for c in called if c is not None]
    assert winner["id"] == only

    # Four wait; eight calls at once (both people, four rooms each): each patient once.
    waiting = [await walk_in(api, desk, doctor_id) for _ in range(4)]
    answers = await asyncio.gather(
        *(api.data(callers[n % 2], CALL_NEXT, room=f"Room {n}", d=doctor_id) for n in range(8))
    )
    taken = [a["callNextOutpatient"] for a in answers if a["callNextOutpatient"] is not None]
    assert sorted(c["id"] for c in taken) == sorted(waiting)
    assert len(answers) - len(taken) == 4

    # What is stored agrees: one call per visit, to the room its caller was answered with.
    for visit in [winner, *taken]:
        stored = await api.data(
            desk,
            "query($id: ID!) { visit(id: $id) { status calledTo history { toStatus room } } }",
            id=visit["id"],
        )
        steps = stored["visit"]["history"]
        assert stored["visit"]["status"] == "CALLED"
        assert stored["visit"]["calledTo"] == visit["calledTo"]
        assert [s["room"] for s in steps if s["toStatus"] == "CALLED"] == [visit["calledTo"]]


RADIOLOGY = "6955b9000100000000000003"
CT_SCANNER = "6955b9000500000000000015"
SECOND_RADIOLOGIST = "6955b9000200000000000009"  # Interventional Radiology
ORDER_IMAGING = """mutation($p: ID!, $v: ID!) { orderImaging(input: {patientId: $p, visitId: $v,
  modality: CT, bodyPart: "Chest", clinicalQuestion: "Pulmonary embolism?", priority: URGENT}) {
  id status } }"""
SCHEDULE_STUDY = """mutation($o: ID!, $e: ID!, $s: DateTime!, $t: DateTime!) {
  scheduleImagingStudy(orderId: $o, input: {equipmentId: $e, startAt: $s, endAt: $t}) {
    id scheduledStart scheduledEnd equipmentId } }"""


async def test_two_bookings_of_one_scanner_at_once_never_overlap(api: Api) -> None:
    desk = await api.sign_in("frontdesk")
    doctor_id, doctor = await new_doctor(api)
    radiologist = await api.sign_in("radiologist")
    colleague = api.cli_token("radiologist", SECOND_RADIOLOGIST, RADIOLOGY)

    # A patient seen by the doctor, who orders two CTs from the visit.
    patient_id = await new_patient(api, desk, f"Scan{uuid.uuid4().hex[:6]}")
    made = await api.data(desk, WALK_IN, p=patient_id, dept=CARDIOLOGY, d=doctor_id, prio=None)
    visit_id = made["walkInOutpatient"]["id"]
    await api.data(doctor, CALL_NEXT, room="Room 9", d=doctor_id)
    await api.data(
        doctor, "mutation($id: ID!) { startOutpatientConsultation(id: $id) { id } }", id=visit_id
    )
    orders = [
        (await api.data(doctor, ORDER_IMAGING, p=patient_id, v=visit_id))["orderImaging"]["id"]
        for _ in range(3)
    ]

    # Two radiologists book the CT at once for overlapping half hours: one study, one CONFLICT.
    start = datetime(2031, 7, 1, 9, tzinfo=UTC)
    first = (iso(start), iso(start + timedelta(minutes=30)))
    overlapping = (iso(start + timedelta(minutes=15)), iso(start + timedelta(minutes=45)))
    answers = await asyncio.gather(
        api.body(radiologist, SCHEDULE_STUDY, o=orders[0], e=CT_SCANNER, s=first[0], t=first[1]),
        api.body(
            colleague, SCHEDULE_STUDY, o=orders[1], e=CT_SCANNER, s=overlapping[0], t=overlapping[1]
        ),
    )
    won = [a["data"]["scheduleImagingStudy"] for a in answers if "errors" not in a]
    lost = [a["errors"][0] for a in answers if "errors" in a]
    assert len(won) == 1 and len(lost) == 1, answers
    assert lost[0]["extensions"]["code"] == "CONFLICT"
    assert lost[0]["extensions"]["imagingStudyIds"] == [won[0]["id"]]

    # The loser's order is still waiting and can take the adjacent half hour.
    loser = orders[1] if won[0]["scheduledStart"].startswith(first[0][:16]) else orders[0]
    later = start + timedelta(minutes=45) if loser == orders[1] else start + timedelta(minutes=30)
    adjacent = await api.data(
        colleague, SCHEDULE_STUDY, o=loser, e=CT_SCANNER, s=iso(later),
        t=iso(later + timedelta(minutes=30)),
    )  # fmt: skip
    assert adjacent["scheduleImagingStudy"]["equipmentId"] == CT_SCANNER

    # The scanner's day: no two studies overlap.
    day = await api.data(
        radiologist,
        """query($e: ID!, $f: DateTime!, $t: DateTime!) { imagingStudies(equipmentId: $e,
          from: $f, to: $t, first: 50) { nodes { scheduledStart scheduledEnd } } }""",
        e=CT_SCANNER,
        f=iso(start - timedelta(hours=2)),
        t=iso(start + timedelta(hours=4)),
    )
    spans = sorted(
        (datetime.fromisoformat(n["scheduledStart"]), datetime.fromisoformat(n["scheduledEnd"]))
        for n in day["imagingStudies"]["nodes"]
    )
    assert len(spans) == 2
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
