"""Issue 15's scripted journey, end to end: one real uvicorn process, real HTTP and WebSocket.

A woman falls at home and comes to the emergency department. The ED's front desk registers her,
an ED nurse triages her (ESI 2, with vital signs) while the ED board screen watches, an ED
doctor sees her and admits her from the ED to a bed of an orthopaedic (surgical) ward under an
orthopaedic surgeon, while that ward's nurse watches the ward's bed board. The surgeon orders
a medication every eight hours and a nursing observation; the tasks are generated, a nurse of
another ward is refused one, the ward's own nurse records it. She is operated on in a theatre
of the Surgery department by the surgeon and an anaesthetist (the four reserved together: the
same surgeon cannot be booked elsewhere at that time), and the completed case is charged to her
account. The surgeon moves her to a general ward (the orthopaedic board shows the old bed
being cleaned, the general ward's dashboard screen shows her bed taken), and discharges her
with a signed note; the bed is cleaned and free again. The compliance officer finds every step
in the audit trail under the right person; the analyst sees none of her rows.

Sign-ins through ``/oauth/token`` are the demo's admin, compliance, analyst, billing and ``nurse``
(a Cardiology nurse: the one refused) accounts and the ``dashboard`` service client. The ED's
clerk, nurse and doctor, the ward nurses, and the surgeon and anaesthetist (created for the run,
so no demo appointment can clash with the case) have no demo sign-in: their tokens are signed
with the server's key exactly as ``shms token --role <role> --subject <id>`` signs them.

What this does not prove: the concurrency guarantees (one bed per patient, one patient per bed,
one booking per theatre slot under races) are tests of their own (the first "Done when"); the
reservations are checked here by their effect (a clashing booking of the surgeon is refused
with ``CONFLICT``), not by reading the stored documents, which the API does not expose. The
audit check finds each step's write by operation, entity kind, actor and verb (a step that
creates a record, such as registering an arrival or an admission, is filed as CREATE).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.tokens import TokenService
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers
from tests.e2e.test_outpatient_journey import Api, Subscription, iso

GRID = timedelta(minutes=5)  # the reservation grid surgery times sit on


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


def next_slot(moment: datetime) -> datetime:
    """The first grid instant after ``moment``."""
    floor = moment.replace(second=0, microsecond=0) - timedelta(minutes=moment.minute % 5)
    return floor + GRID


def code_of(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


# -- the facility as the API shows it ------------------------------------------------------------

DEPARTMENTS = "{ departments(first: 100) { nodes { id code } } }"
WARDS = """query($d: ID!) { wards(departmentId: $d, first: 100) { nodes { id code sexPolicy } } }"""
FREE_BEDS = """query($w: ID!) { beds(wardId: $w, status: [AVAILABLE], first: 100) {
  nodes { id label status } } }"""
NURSES = """query($d: ID!) { nurses(departmentId: $d, first: 100) { nodes { id wardId } } }"""
DOCTORS = """query($d: ID!) { doctors(departmentId: $d, first: 100) { nodes { id specialty } } }"""
CLERKS = """query($d: ID!) { adminStaff(departmentId: $d, first: 100) { nodes { id duties } } }"""
THEATRES = """query($d: ID!) { theatres(departmentId: $d, active: true, first: 10) {
  nodes { id code hourlyRate turnoverMinutes } } }"""
CREATE_DOCTOR = """mutation($first: String!, $last: String!, $d: ID!, $s: String!, $l: String!) {
  createDoctor(input: {firstName: $first, lastName: $last, departmentId: $d, specialty: $s,
    licenceNumber: $l}) { id } }"""


@dataclass
class Facility:
    """Ids the journey needs, found through the API as an administrator finds them."""

    departments: dict[str, str]
    ed_clerk: str
    ed_nurse: str
    ed_doctor: str
    surgical_ward: str
    surgical_nurse: str
    general_ward: str
    general_nurse: str
    theatre: dict[str, Any]
    other_theatre: str

    @classmethod
    async def find(cls, api: Api, admin: str) -> Facility:
        departments = {
            d["code"]: d["id"] for d in (await api.data(admin, DEPARTMENTS))["departments"]["nodes"]
        }
        er, orth, gen, surg = (departments[c] for c in ("ER", "ORTH", "GEN", "SURG"))

        async def nodes(query: str, **variables: Any) -> list[dict[str, Any]]:
            data = await api.data(admin, query, **variables)
            (connection,) = data.values()
            found: list[dict[str, Any]] = connection["nodes"]
            return found

        clerks = await nodes(CLERKS, d=er)
        (ed_clerk, *_) = [c["id"] for c in clerks if "FRONT_DESK" in c["duties"]] or [
            c["id"] for c in clerks
        ]
        (ed_nurse, *_) = [n["id"] for n in await nodes(NURSES, d=er)]
        (ed_doctor, *_) = [
            d["id"] for d in await nodes(DOCTORS, d=er) if d["specialty"] == "Emergency Medicine"
        ]
        wards = {w["code"]: w for w in await nodes(WARDS, d=orth) + await nodes(WARDS, d=gen)}
        assert wards["ORTH-A3"]["sexPolicy"] == "MIXED" and wards["GEN-B2"]["sexPolicy"] == "FEMALE"
        surgical, general = wards["ORTH-A3"]["id"], wards["GEN-B2"]["id"]
        # The demo's nurses work on the ward their record names (``Nurse.wardId``).
        (surgical_nurse, *_) = [
            n["id"] for n in await nodes(NURSES, d=orth) if n["wardId"] == surgical
        ]
        (general_nurse, *_) = [
            n["id"] for n in await nodes(NURSES, d=gen) if n["wardId"] == general
        ]
        theatres = await nodes(THEATRES, d=surg)
        assert len(theatres) >= 2, theatres
        return cls(
            departments, ed_clerk, ed_nurse, ed_doctor, surgical, surgical_nurse, general,
            general_nurse, theatres[0], theatres[1]["id"],
        )  # fmt: skip

    def dept(self, code: str) -> str:
        return self.departments[code]


# -- the journey ------------------------------------------------------------------------------

REGISTER_PATIENT = """mutation($last: String!) { registerPatient(input: {firstName: "Ottilie",
  lastName: $last, dateOfBirth: "1951-06-02", sex: FEMALE}) { id } }"""
ARRIVAL = """mutation($p: ID!, $d: ID!) { registerEmergencyArrival(input: {patientId: $p,
  departmentId: $d, arrivalMode: AMBULANCE,
  chiefComplaint: "Fall at home, painful shortened right leg"}) {
  id status patientId departmentId triageLevel } }"""
TRIAGE = """mutation($id: ID!) { triageEmergencyVisit(id: $id, input: {level: 2,
  vitals: {heartRate: 112, systolic: 98, diastolic: 60, respiratoryRate: 22, spo2: 95,
    temperature: 36.4, painScore: 8, gcs: 15}, note: "Suspected neck of femur fracture"}) {
  id status triageLevel triage { level triagedById triagedByRole
    vitals { heartRate systolic spo2 painScore gcs } } } }"""
ED_BOARD = """query($d: ID!) { emergencyBoard(departmentId: $d) {
  entries { visitId level status position } } }"""
ED_LIVE = """subscription($d: ID!) { emergencyBoardChanged(departmentId: $d) {
  change board { entries { visitId level status } } } }"""
SEE = """mutation($id: ID!) { startEmergencyTreatment(id: $id) {
  status assignedDoctorId } }"""
ADMIT = """mutation($id: ID!, $bed: ID!, $doc: ID!) { admitFromEmergency(id: $id,
  input: {bedId: $bed, attendingDoctorId: $doc, reason: "Neck of femur fracture for fixation",
    diagnosis: "S72.0", note: "Admitted to orthopaedics"}) {
  status dispositionKind admissionId disposition { kind admissionId byId } } }"""
ADMISSION = """query($id: ID!) { admission(id: $id) { id status source sourceId patientId
  attendingDoctorId wardId bedId version dischargedAt
  stays { bedId wardId fromAt toAt reason }
  discharge { summary disposition authorId signedAt contentHash } } }"""
BEDS_LIVE = """subscription($w: ID!) { bedBoardChanged(wardId: $w) {
  change bedId board { counts { occupied cleaning available }
    beds { id status incoming patientId admissionId } } } }"""
SCREEN_LIVE = """subscription($w: ID!) { bedBoardChanged(wardId: $w) {
  change bedId board { beds { id label status incoming } } } }"""
BED = "query($id: ID!) { bed(id: $id) { id status patientId admissionId } }"
ORDER = """mutation($input: DoctorOrderInput!) { createDoctorOrder(input: $input) {
  id kind status orderedById wardId tasks(first: 10) { nodes { id status dueAt } } } }"""
TASKS = """query($a: ID!) { nursingTasks(filter: {admissionId: $a, status: [DUE]}, first: 50) {
  nodes { id orderId dueAt status wardId } } }"""
COMPLETE_TASK = """mutation($id: ID!) { completeNursingTask(id: $id,
  note: "Observations in range") { id status doneAt doneById } }"""
BOOK = """mutation($input: BookSurgeryInput!) { bookSurgery(input: $input) {
  id status startAt endAt reservedUntil theatreId surgeonId anaesthetistId patientId
  admissionId } }"""
START = """mutation($id: ID!, $at: DateTime!) { startSurgery(id: $id, input: {
  checklist: [IDENTITY_CONFIRMED, SITE_MARKED, CONSENT_SIGNED, FASTING_CONFIRMED,
    ALLERGIES_REVIEWED], anaesthesiaType: GENERAL, inTheatreAt: $at}) {
  id bookingId checklistComplete checklist { item checkedById } inTheatreAt } }"""
RECORD = """mutation($id: ID!, $input: SurgicalRecordInput!) {
  updateSurgicalRecord(id: $id, input: $input) { id version incisionAt closureAt
  outOfTheatreAt postOpDestination postOpWardId procedureCodes } }"""
COMPLETE_SURGERY = """mutation($id: ID!) { completeSurgery(id: $id) { id status chargedAt
  theatreCharge procedureFee recordId } }"""
CHARGES = """query($p: ID!) { billingAccounts(patientId: $p) { nodes {
  charges { amount { amount } source sourceId description } } } }"""
TRANSFER = """mutation($a: ID!, $bed: ID!, $v: Int!) { transferPatient(admissionId: $a,
  bedId: $bed, reason: "Post-operative rehabilitation", expectedVersion: $v) {
  id bedId wardId version stays { bedId wardId fromAt toAt reason } } }"""
DISCHARGE = """mutation($a: ID!) { dischargePatient(admissionId: $a, disposition: HOME,
  note: {summary: "Cemented hemiarthroplasty, uneventful recovery; mobile with a frame.",
    diagnosis: "Neck of femur fracture, right", instructions: "Full weight bearing.",
    followUp: "Fracture clinic in six weeks"}) {
  id status dischargedAt discharge { disposition authorId contentHash signedAt } } }"""
CLEANED = "mutation($id: ID!) { markBedCleaned(id: $id) { id status patientId } }"
AUDIT = """query($p: ID, $actor: String, $from: DateTime!, $after: String) {
  auditEvents(patientId: $p, actor: $actor, from: $from, first: 100, after: $after) {
  nodes { action outcome entity entityId entityIds operation actorSubject patientId }
  pageInfo { hasNextPage endCursor } } }"""


def bed_of(event: dict[str, Any], bed_id: str) -> dict[str, Any]:
    (entry,) = [b for b in event["bedBoardChanged"]["board"]["beds"] if b["id"] == bed_id]
    return dict(entry)


def bed_is(bed_id: str, **wanted: Any) -> Callable[[dict[str, Any]], bool]:
    """An event whose entry for ``bed_id`` has ``wanted`` (the bed's own change or not)."""
    return lambda e: all(bed_of(e, bed_id).get(k) == v for k, v in wanted.items())


@dataclass
class Journey:
    """One inpatient stay, a phase per method; each phase asserts what it must have done."""

    api: Api
    at: Facility
    admin: str
    compliance: str
    analyst: str
    billing: str
    screen: str
    cardiology_nurse: str
    ed_clerk: str = ""
    ed_nurse: str = ""
    ed_doctor: str = ""
    surgical_nurse: str = ""
    general_nurse: str = ""
    surgeon: str = ""
    surgeon_id: str = ""
    anaesthetist_id: str = ""
    second_anaesthetist: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(seconds=5))
    surname: str = field(default_factory=lambda: f"Inpatient{uuid.uuid4().hex[:6]}")
    patient_id: str = ""
    visit_id: str = ""
    admission_id: str = ""
    first_bed: str = ""
    second_bed: str = ""
    order_ids: list[str] = field(default_factory=list)
    task_id: str = ""
    booking_id: str = ""
    record_id: str = ""
    subjects: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def start(cls, api: Api) -> Journey:
        admin = await api.sign_in("admin")
        at = await Facility.find(api, admin)
        journey = cls(
            api,
            at,
            admin=admin,
            compliance=await api.sign_in("compliance"),
            analyst=await api.sign_in("analyst"),
            billing=await api.sign_in("billing"),
            screen=await api.client_token("dashboard", "demo-dashboard-secret"),
            cardiology_nurse=await api.sign_in("nurse"),
        )
        # A surgeon and an anaesthetist of their own: nobody's demo diary can clash with the case.
        journey.surgeon_id = await journey.new_doctor("ORTH", "Joint Replacement", "Fenwick")
        journey.anaesthetist_id = await journey.new_doctor("SURG", "Anaesthesiology", "Marsh")
        journey.second_anaesthetist = await journey.new_doctor("SURG", "Anaesthesiology", "Pell")
        journey.ed_clerk = api.cli_token("admin_staff", at.ed_clerk, at.dept("ER"))
        journey.ed_nurse = api.cli_token("nurse", at.ed_nurse, at.dept("ER"))
        journey.ed_doctor = api.cli_token("doctor", at.ed_doctor, at.dept("ER"))
        journey.surgical_nurse = api.cli_token("nurse", at.surgical_nurse, at.dept("ORTH"))
        journey.general_nurse = api.cli_token("nurse", at.general_nurse, at.dept("GEN"))
        journey.surgeon = api.cli_token("doctor", journey.surgeon_id, at.dept("ORTH"))
        for name in (
            "admin", "ed_clerk", "ed_nurse", "ed_doctor", "surgical_nurse", "general_nurse",
            "surgeon", "cardiology_nurse",
        ):  # fmt: skip
            viewer = await api.data(getattr(journey, name), "{ viewer { subject } }")
            journey.subjects[name] = viewer["viewer"]["subject"]
        return journey

    async def new_doctor(self, department: str, specialty: str, last: str) -> str:
        made = await self.api.data(
            self.admin,
            CREATE_DOCTOR,
            first="Rowan",
            last=last,
            d=self.at.dept(department),
            s=specialty,
            l=f"E2E-{uuid.uuid4().hex[:8]}",
        )
        return str(made["createDoctor"]["id"])

    # 1. arrival and triage ---------------------------------------------------------------------

    async def arrives_and_is_triaged(self, board: Subscription) -> None:
        api, er = self.api, self.at.dept("ER")
        first = await board.next()
        assert first["emergencyBoardChanged"]["change"] == "snapshot"
        made = await api.data(self.ed_clerk, REGISTER_PATIENT, last=self.surname)
        self.patient_id = made["registerPatient"]["id"]
        visit = (await api.data(self.ed_clerk, ARRIVAL, p=self.patient_id, d=er))[
            "registerEmergencyArrival"
        ]
        assert visit["status"] == "WAITING" and visit["triageLevel"] is None
        assert (visit["patientId"], visit["departmentId"]) == (self.patient_id, er)
        self.visit_id = visit["id"]

        def entry(event: dict[str, Any]) -> dict[str, Any] | None:
            entries = event["emergencyBoardChanged"]["board"]["entries"]
            return next((e for e in entries if e["visitId"] == self.visit_id), None)

        waiting = await board.until(lambda e: entry(e) is not None)
        assert entry(waiting) == {"visitId": self.visit_id, "level": None, "status": "WAITING"}

        triaged = (await api.data(self.ed_nurse, TRIAGE, id=self.visit_id))["triageEmergencyVisit"]
        assert (triaged["status"], triaged["triageLevel"]) == ("TRIAGED", 2)
        assert triaged["triage"] == {
            "level": 2, "triagedById": self.at.ed_nurse, "triagedByRole": "NURSE",
            "vitals": {"heartRate": 112, "systolic": 98, "spo2": 95.0, "painScore": 8, "gcs": 15},
        }  # fmt: skip
        shown = await board.until(lambda e: (entry(e) or {}).get("status") == "TRIAGED")
        assert entry(shown) == {"visitId": self.visit_id, "level": 2, "status": "TRIAGED"}
        read = (await api.data(self.ed_nurse, ED_BOARD, d=er))["emergencyBoard"]["entries"]
        (ours,) = [e for e in read if e["visitId"] == self.visit_id]
        assert (ours["level"], ours["status"]) == (2, "TRIAGED")
        # Acuity first: nothing less urgent is ahead of an ESI 2.
        ahead = [e for e in read if e["position"] < ours["position"]]
        assert all(e["level"] is None or e["level"] <= 2 for e in ahead), read

    # 2. admission from the ED ------------------------------------------------------------------

    async def admitted(self, ward_board: Subscription) -> None:
        api = self.api
        snapshot = await ward_board.next()
        assert snapshot["bedBoardChanged"]["change"] == "snapshot"
        free = (await api.data(self.surgical_nurse, FREE_BEDS, w=self.at.surgical_ward))["beds"]
        self.first_bed = free["nodes"][0]["id"]
        assert bed_of(snapshot, self.first_bed)["status"] == "AVAILABLE"
        seen = (await api.data(self.ed_doctor, SEE, id=self.visit_id))["startEmergencyTreatment"]
        assert seen == {"status": "IN_TREATMENT", "assignedDoctorId": self.at.ed_doctor}

        done = (
            await api.data(
                self.ed_doctor, ADMIT, id=self.visit_id, bed=self.first_bed, doc=self.surgeon_id
            )
        )["admitFromEmergency"]
        self.admission_id = done["admissionId"]
        assert done["status"] == "DISPOSED" and done["dispositionKind"] == "ADMITTED"
        assert done["disposition"] == {
            "kind": "ADMITTED", "admissionId": self.admission_id, "byId": self.at.ed_doctor
        }  # fmt: skip
        board = await api.data(self.ed_nurse, ED_BOARD, d=self.at.dept("ER"))
        assert self.visit_id not in {e["visitId"] for e in board["emergencyBoard"]["entries"]}

        taken = await ward_board.until(
            bed_is(self.first_bed, status="OCCUPIED", incoming=False, patientId=self.patient_id)
        )
        assert bed_of(taken, self.first_bed)["admissionId"] == self.admission_id
        admission = (await api.data(self.surgeon, ADMISSION, id=self.admission_id))["admission"]
        assert {k: admission[k] for k in ("status", "source", "sourceId", "patientId")} == {
            "status": "ACTIVE", "source": "EMERGENCY", "sourceId": self.visit_id,
            "patientId": self.patient_id,
        }  # fmt: skip
        assert (admission["attendingDoctorId"], admission["wardId"], admission["bedId"]) == (
            self.surgeon_id, self.at.surgical_ward, self.first_bed
        )  # fmt: skip
        assert [(s["bedId"], s["toAt"]) for s in admission["stays"]] == [(self.first_bed, None)]
        bed = (await api.data(self.surgical_nurse, BED, id=self.first_bed))["bed"]
        assert bed == {
            "id": self.first_bed, "status": "OCCUPIED", "patientId": self.patient_id,
            "admissionId": self.admission_id,
        }  # fmt: skip

    # 3. orders and nursing ---------------------------------------------------------------------

    async def orders_and_nursing(self) -> None:
        api = self.api
        medication = {
            "admissionId": self.admission_id,
            "kind": "MEDICATION",
            "medication": {"drug": "Paracetamol", "dose": 1, "unit": "g", "route": "ORAL"},
            "schedule": {"pattern": "EVERY_HOURS", "everyHours": 8},
        }
        nursing = {
            "admissionId": self.admission_id,
            "kind": "NURSING",
            "instruction": "Neurovascular observations of the right leg",
            "schedule": {"pattern": "ONCE"},
        }
        for order, tasks in ((medication, 3), (nursing, 1)):
            made = (await api.data(self.surgeon, ORDER, input=order))["createDoctorOrder"]
            assert (made["kind"], made["status"], made["orderedById"], made["wardId"]) == (
                order["kind"], "ACTIVE", self.surgeon_id, self.at.surgical_ward
            )  # fmt: skip
            # Tasks 24 hours ahead: every 8 hours from now is three, once is one.
            assert len(made["tasks"]["nodes"]) == tasks, made
            assert {t["status"] for t in made["tasks"]["nodes"]} == {"DUE"}
            self.order_ids.append(made["id"])

        due = (await api.data(self.surgical_nurse, TASKS, a=self.admission_id))["nursingTasks"]
        assert {t["orderId"] for t in due["nodes"]} == set(self.order_ids)
        assert {t["wardId"] for t in due["nodes"]} == {self.at.surgical_ward}
        (observation,) = [t for t in due["nodes"] if t["orderId"] == self.order_ids[1]]
        self.task_id = observation["id"]

        # A nurse of another ward has no care of her: refused, and nothing recorded.
        refused = await api.body(self.cardiology_nurse, COMPLETE_TASK, id=self.task_id)
        assert code_of(refused) == "FORBIDDEN", refused
        # The ward's own nurse records it.
        done = (await api.data(self.surgical_nurse, COMPLETE_TASK, id=self.task_id))[
            "completeNursingTask"
        ]
        assert (done["status"], done["doneById"]) == ("DONE", self.at.surgical_nurse)
        assert done["doneAt"] is not None

    # 4. surgery --------------------------------------------------------------------------------

    async def operated(self) -> None:
        api, theatre = self.api, self.at.theatre
        start = next_slot(datetime.now(UTC))
        case = {
            "patientId": self.patient_id,
            "theatreId": theatre["id"],
            "surgeonId": self.surgeon_id,
            "anaesthetistId": self.anaesthetist_id,
            "startAt": iso(start),
            "endAt": iso(start + timedelta(minutes=90)),
            "priority": "EMERGENCY",
            "admissionId": self.admission_id,
            "procedure": {"description": "Hemiarthroplasty, right hip", "codes": ["0SR90J9"]},
        }
        booked = (await api.data(self.admin, BOOK, input=case))["bookSurgery"]
        assert booked["status"] == "SCHEDULED"
        assert (booked["theatreId"], booked["surgeonId"], booked["anaesthetistId"]) == (
            theatre["id"], self.surgeon_id, self.anaesthetist_id
        )  # fmt: skip
        reserved_until = datetime.fromisoformat(booked["reservedUntil"])
        assert reserved_until == start + timedelta(minutes=90 + theatre["turnoverMinutes"])
        self.booking_id = booked["id"]

        # The surgeon is held for the case: another patient, another theatre, the same surgeon.
        other = await api.data(self.ed_clerk, REGISTER_PATIENT, last=f"Other{uuid.uuid4().hex[:6]}")
        clash = await api.body(
            self.admin,
            BOOK,
            input={
                **case, "patientId": other["registerPatient"]["id"], "admissionId": None,
                "theatreId": self.at.other_theatre, "anaesthetistId": self.second_anaesthetist,
                "startAt": iso(start + timedelta(minutes=30)),
                "endAt": iso(start + timedelta(minutes=60)),
            },
        )  # fmt: skip
        assert code_of(clash) == "CONFLICT", clash

        in_theatre = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        record = (await api.data(self.surgeon, START, id=self.booking_id, at=iso(in_theatre)))[
            "startSurgery"
        ]
        assert record["bookingId"] == self.booking_id and record["checklistComplete"] is True
        assert {c["checkedById"] for c in record["checklist"]} == {self.surgeon_id}
        self.record_id = record["id"]

        t = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        times = {
            "anaesthesiaStartAt": iso(t),
            "incisionAt": iso(t + timedelta(seconds=60)),
            "closureAt": iso(t + timedelta(seconds=180)),
            "outOfTheatreAt": iso(t + timedelta(seconds=240)),
            "procedureCodes": ["0SR90J9"],
            "postOpDestination": "WARD",
            "postOpWardId": self.at.general_ward,
        }
        updated = (await api.data(self.surgeon, RECORD, id=self.record_id, input=times))[
            "updateSurgicalRecord"
        ]
        assert updated["postOpDestination"] == "WARD" and updated["outOfTheatreAt"] is not None

        completed = (await api.data(self.surgeon, COMPLETE_SURGERY, id=self.booking_id))[
            "completeSurgery"
        ]
        assert completed["status"] == "COMPLETED" and completed["chargedAt"] is not None
        assert completed["recordId"] == self.record_id
        # Under 15 minutes in theatre: one block of a quarter hour.
        assert completed["theatreCharge"] == theatre["hourlyRate"] // 4
        accounts = (await api.data(self.billing, CHARGES, p=self.patient_id))["billingAccounts"]
        (account,) = accounts["nodes"]
        surgery = sorted(
            (c["sourceId"], c["amount"]["amount"])
            for c in account["charges"]
            if c["source"] == "SURGERY"
        )
        assert surgery == sorted(
            [
                (self.booking_id, completed["theatreCharge"]),
                (self.record_id, completed["procedureFee"]),
            ]
        )

    # 5. transfer -------------------------------------------------------------------------------

    async def transferred(self, ward_board: Subscription, screen: Subscription) -> None:
        api = self.api
        snapshot = await screen.next()
        assert snapshot["bedBoardChanged"]["change"] == "snapshot"
        free = (await api.data(self.general_nurse, FREE_BEDS, w=self.at.general_ward))["beds"]
        self.second_bed = free["nodes"][0]["id"]
        before = (await api.data(self.surgeon, ADMISSION, id=self.admission_id))["admission"]
        moved = (
            await api.data(
                self.surgeon, TRANSFER, a=self.admission_id, bed=self.second_bed,
                v=before["version"],
            )
        )["transferPatient"]  # fmt: skip
        assert (moved["bedId"], moved["wardId"]) == (self.second_bed, self.at.general_ward)
        first, second = moved["stays"]
        assert (first["bedId"], first["wardId"]) == (self.first_bed, self.at.surgical_ward)
        assert (second["bedId"], second["wardId"]) == (self.second_bed, self.at.general_ward)
        assert first["toAt"] is not None and second["toAt"] is None
        assert first["toAt"] == second["fromAt"]
        assert second["reason"] == "Post-operative rehabilitation"

        # The orthopaedic board: her old bed is being cleaned, nobody in it.
        cleaning = await ward_board.until(bed_is(self.first_bed, status="CLEANING"))
        assert bed_of(cleaning, self.first_bed)["patientId"] is None
        # The general ward's screen: the bed is taken; it never shows who lies there.
        await screen.until(bed_is(self.second_bed, status="OCCUPIED", incoming=False))
        old = (await api.data(self.surgical_nurse, BED, id=self.first_bed))["bed"]
        assert old == {"id": self.first_bed, "status": "CLEANING", "patientId": None,
                       "admissionId": None}  # fmt: skip

    # 6. discharge ------------------------------------------------------------------------------

    async def discharged(self, screen: Subscription) -> None:
        api = self.api
        out = (await api.data(self.surgeon, DISCHARGE, a=self.admission_id))["dischargePatient"]
        assert out["status"] == "DISCHARGED" and out["dischargedAt"] is not None
        note = out["discharge"]
        assert (note["disposition"], note["authorId"]) == ("HOME", self.surgeon_id)
        assert re.fullmatch("[0-9a-f]{64}", note["contentHash"]) and note["signedAt"]
        await screen.until(bed_is(self.second_bed, status="CLEANING"))
        bed = (await api.data(self.general_nurse, BED, id=self.second_bed))["bed"]
        assert bed["status"] == "CLEANING" and bed["patientId"] is None
        clean = (await api.data(self.general_nurse, CLEANED, id=self.second_bed))["markBedCleaned"]
        assert clean == {"id": self.second_bed, "status": "AVAILABLE", "patientId": None}
        await screen.until(bed_is(self.second_bed, status="AVAILABLE"))
        stays = (await api.data(self.surgeon, ADMISSION, id=self.admission_id))["admission"]
        assert stays["status"] == "DISCHARGED"
        assert [s["toAt"] is not None for s in stays["stays"]] == [True, True]

    # 7. the audit trail -------------------------------------------------------------------------

    async def audit(self, **filters: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = None
        while True:
            page = (
                await self.api.data(
                    self.compliance, AUDIT, **filters, after=after, **{"from": iso(self.started)}
                )
            )["auditEvents"]
            events += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return events
            after = page["pageInfo"]["endCursor"]

    async def audit_shows_every_step(self) -> dict[tuple[str, str, str], set[str]]:
        """Every write of the journey, by operation, entity kind and actor; answers the steps
        recorded under another verb than the one expected (the caller decides)."""
        events = await self.audit(p=self.patient_id)
        verbs: dict[tuple[str, str, str], set[str]] = {}
        for e in events:
            if e["action"] != "READ" and e["outcome"] == "ALLOWED":
                key = (e["operation"], e["entity"], e["actorSubject"])
                verbs.setdefault(key, set()).add(e["action"])
        who = self.subjects
        expected = {
            ("registerPatient", "Patient", who["ed_clerk"]): "CREATE",
            ("registerEmergencyArrival", "EmergencyVisit", who["ed_clerk"]): "CREATE",
            ("triageEmergencyVisit", "EmergencyVisit", who["ed_nurse"]): "UPDATE",
            ("startEmergencyTreatment", "EmergencyVisit", who["ed_doctor"]): "UPDATE",
            ("admitFromEmergency", "EmergencyVisit", who["ed_doctor"]): "UPDATE",
            ("admitFromEmergency", "Admission", who["ed_doctor"]): "CREATE",
            ("createDoctorOrder", "DoctorOrder", who["surgeon"]): "CREATE",
            ("completeNursingTask", "NursingTask", who["surgical_nurse"]): "UPDATE",
            ("bookSurgery", "SurgeryBooking", who["admin"]): "CREATE",
            ("startSurgery", "SurgicalRecord", who["surgeon"]): "CREATE",
            ("updateSurgicalRecord", "SurgicalRecord", who["surgeon"]): "UPDATE",
            ("completeSurgery", "SurgeryBooking", who["surgeon"]): "UPDATE",
            ("transferPatient", "Admission", who["surgeon"]): "UPDATE",
            ("dischargePatient", "Admission", who["surgeon"]): "UPDATE",
        }
        missing = sorted(set(expected) - set(verbs))
        assert not missing, (missing, sorted(verbs))
        # Both orders, each by its id; the refused attempt is there too, under its nurse.
        orders = {
            i for e in events if e["operation"] == "createDoctorOrder" for i in e["entityIds"]
        }
        assert orders >= set(self.order_ids)
        refusals = {
            (e["operation"], e["entity"], e["actorSubject"])
            for e in events
            if e["outcome"] == "DENIED"
        }
        assert (
            "completeNursingTask", "NursingTask", who["cardiology_nurse"]
        ) in refusals, refusals  # fmt: skip
        # The bed's cleaning names no patient any more: it is found under its nurse.
        cleaned = await self.audit(actor=who["general_nurse"])
        assert any(
            e["operation"] == "markBedCleaned" and e["entity"] == "Bed"
            and e["entityId"] == self.second_bed and e["action"] == "UPDATE"
            for e in cleaned
        ), cleaned  # fmt: skip
        return {k: verbs[k] for k, verb in expected.items() if verbs[k] != {verb}}

    async def analyst_sees_nothing(self) -> None:
        for query, value in (
            ("query($id: ID) { admissions(patientId: $id, first: 5) { nodes { id } } }",
             self.patient_id),
            ("query($id: ID!) { admission(id: $id) { id } }", self.admission_id),
            ("query($id: ID!) { emergencyVisit(id: $id) { id } }", self.visit_id),
        ):  # fmt: skip
            refused = await self.api.body(self.analyst, query, id=value)
            assert code_of(refused) == "FORBIDDEN", refused
            assert not any((refused["data"] or {}).values())


async def test_an_emergency_admission_surgery_transfer_and_discharge(api: Api) -> None:
    journey = await Journey.start(api)
    at = journey.at

    ed_board = await Subscription.open(api.server, journey.ed_nurse, ED_LIVE, d=at.dept("ER"))
    await journey.arrives_and_is_triaged(ed_board)
    await ed_board.close()

    ward_board = await Subscription.open(
        api.server, journey.surgical_nurse, BEDS_LIVE, w=at.surgical_ward
    )
    await journey.admitted(ward_board)
    await journey.orders_and_nursing()
    await journey.operated()

    screen = await Subscription.open(api.server, journey.screen, SCREEN_LIVE, w=at.general_ward)
    await journey.transferred(ward_board, screen)
    await ward_board.close()
    await journey.discharged(screen)
    await screen.close()

    misfiled = await journey.audit_shows_every_step()
    await journey.analyst_sees_nothing()

    assert not misfiled, f"audited with the wrong verb: {sorted(misfiled)}"
