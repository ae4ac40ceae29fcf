"""Logs: JSON lines with the request and trace they belong to, and no patient data in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from observability import logs
from services import departments
from tests.conftest import random_address

PATIENTS = """{ patients(first: 50) { edges { node { id firstName lastName nationalId
  treatmentPlans(first: 5) { edges { node { diagnosis { description } } } } } } } }"""
PATIENT = """query($id: ID!) { patient(id: $id) { firstName lastName nationalId
  treatmentPlans(first: 5) { edges { node { diagnosis { description } } } } } }"""
UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id } }"""


class Captured(logging.Handler):
    """Every record, and every line the JSON and plain formatters make of it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.json = logs.handler("json", io.StringIO())
        self.plain = logs.handler("plain", io.StringIO())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.json.handle(record)
        self.plain.handle(record)

    def json_lines(self) -> list[dict[str, Any]]:
        stream: Any = getattr(self.json, "stream")  # noqa: B009
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    def text(self) -> str:
        """Everything written, JSON decoded (it escapes non-ASCII letters), and plain."""
        plain: Any = getattr(self.plain, "stream")  # noqa: B009
        decoded = "\n".join(json.dumps(line, ensure_ascii=False) for line in self.json_lines())
        messages = "\n".join(r.getMessage() for r in self.records)
        return "\n".join([decoded, plain.getvalue(), messages])


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    handler, level = Captured(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def demo(settings: Any) -> AsyncIterator[Any]:
    from app import create_app

    seeded = settings.model_copy(update={"shms_seed_demo": True, "shms_demo_patients": 20})
    application = create_app(seeded)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=(random_address(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            yield http


async def _sign_in(http: Any, username: str, password: str) -> dict[str, str]:
    response = await http.post(
        "/oauth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def _gql(http: Any, who: dict[str, str], query: str, **variables: Any) -> Any:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=who
    )
    assert response.status_code == 200, response.text
    return response


def _sensitive(patients: list[dict[str, Any]]) -> set[str]:
    values: set[str] = set()
    for patient in patients:
        values |= {patient["firstName"], patient["lastName"]}
        values |= {patient["nationalId"]} if patient.get("nationalId") else set()
        plans = (patient.get("treatmentPlans") or {}).get("edges", [])
        values |= {plan["node"]["diagnosis"]["description"] for plan in plans}
    return {value for value in values if len(value) >= 4}  # "Li" would match anywhere


async def test_a_session_logs_no_patient_data(
    demo: Any, captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor = await _sign_in(demo, "doctor", "demo-doctor-pass")
    admin = await _sign_in(demo, "admin", "demo-admin-pass")
    patient_account = await _sign_in(demo, "patient", "demo-patient-pass")
    wrong = await demo.post(
        "/oauth/token", data={"grant_type": "password", "username": "doctor", "password": "no"}
    )
    assert wrong.status_code in (400, 401)

    # The doctor's list: diagnoses of the patients they treat (FORBIDDEN for the others).
    listed = (await _gql(demo, doctor, PATIENTS)).json()
    patients = [edge["node"] for edge in listed["data"]["patients"]["edges"]]
    treated = [p for p in patients if (p.get("treatmentPlans") or {}).get("edges")]
    assert treated, "no diagnosis read"
    touched = (treated + [p for p in patients if p not in treated])[:5]
    for patient in touched:
        await _gql(demo, doctor, PATIENT, id=patient["id"])
        await _gql(demo, admin, PATIENT, id=patient["id"])  # identity only: clinical refused
    first, second = touched[0], touched[1]
    # A write, then one refused for bad input carrying a patient's name.
    contact = {"contact": {"phone": "+44 20 7946 0000"}}
    written = (await _gql(demo, admin, UPDATE, id=first["id"], input=contact)).json()
    assert "errors" not in written, written
    bad = {"nationalId": "x", "firstName": second["firstName"], "lastName": second["lastName"]}
    refused = (await _gql(demo, admin, UPDATE, id=second["id"], input=bad)).json()
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Refused access: the patient account reads someone else's record.
    other = (await _gql(demo, patient_account, PATIENT, id=second["id"])).json()
    assert other.get("errors") or other["data"]["patient"] is None
    # An unexpected error whose message names a patient: logged with its traceback.
    named = f"{first['firstName']} {first['lastName']} {first.get('nationalId')}"

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(named)

    monkeypatch.setattr(departments, "list_departments", broken)
    failed = await _gql(demo, admin, "{ departments { totalCount } }")
    assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL"

    text = captured.text()
    assert captured.records, "the session logged nothing at all"
    leaked = sorted(value for value in _sensitive(touched) if value in text)
    assert not leaked, f"patient data in the logs: {leaked}"

    # The unexpected error's line says where, with the request id the client was given.
    internal = [line for line in captured.json_lines() if "unexpected" in line["message"]]
    assert internal, captured.json_lines()
    assert internal[0]["request_id"] == failed.headers["x-request-id"]
    assert "RuntimeError (message not logged)" in internal[0]["exc_info"]
    assert internal[0]["level"] == "ERROR" and internal[0]["logger"] == "shms.errors"


def test_json_lines_carry_the_request_and_trace_ids() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from observability import tracing

    stream = io.StringIO()
    handler = logs.handler("json", stream)
    log = logging.getLogger("shms.test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    token = logs.REQUEST_ID.set("abc123")
    tracing.install(TracerProvider())
    try:
        with tracing.span("work"):
            log.info("inside %s", "a request")
        log.info("no span")
    finally:
        tracing.uninstall()
        logs.REQUEST_ID.reset(token)
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "inside a request"
    assert inside["request_id"] == "abc123" and outside["request_id"] == "abc123"
    assert len(inside["trace_id"]) == 32 and len(inside["span_id"]) == 16
    assert outside["trace_id"] is None
    assert {"timestamp", "level", "logger"} <= inside.keys()


def test_access_lines_drop_the_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", '/graphql?query={patients(search:"Lefèvre")}', "1.1", 200),
        None,
    )
    assert logs.QueryStringDropped().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /graphql HTTP/1.1" 200'
