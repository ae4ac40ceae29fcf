"""Input a client controls never becomes INTERNAL or an HTTP 500.

* Instants at the ends of the calendar (year 1 or 9999, with an offset that pushes them past
  Python's datetime range, or so close to it that the arithmetic after them would overflow) are
  ``BAD_USER_INPUT`` in bookings, availability, appointment filters and analytics, and change
  nothing.
* A GraphQL body that is not UTF-8 JSON holding an object, or whose ``query``, ``variables``
  or ``extensions`` have the wrong type, is HTTP 400 with a JSON body and ``BAD_REQUEST``;
  so are the refusals strawberry answered in plain text. WebSocket messages of the wrong
  shape close the connection (4400) instead of crashing it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import db
from models import Appointment, Reservation
from tests import factories
from tests.conftest import GraphQLClient, token_for
from tests.limits.conftest import bearer
from tests.scheduling.helpers import RESCHEDULE, SCHEDULE, START, booking, iso

EDGES = [
    "9999-12-31T23:59:59-05:00",  # past datetime.max once in UTC
    "0001-01-01T00:00:00+05:00",  # before datetime.min once in UTC
    "9999-12-31T23:00:00Z",  # in range, but a booking's end or a bucket after it is not
    "0001-01-01T00:00:00Z",
]


def _code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert len(codes) == 1, body
    return codes.pop()


async def _nothing_written(before: int) -> None:
    assert await Appointment.find_all().count() == before
    assert await Reservation.find_all().count() == 0


# -- calendar ends ---------------------------------------------------------------------------


@pytest.mark.parametrize("edge", EDGES)
async def test_booking_at_a_calendar_end_is_bad_user_input(gql: GraphQLClient, edge: str) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    payload = booking(patient, doctor, START)
    for field in ("startAt", "endAt"):
        body = await gql(SCHEDULE, input={**payload, field: edge})
        assert _code(body) == "BAD_USER_INPUT", body
        assert "between" in body["errors"][0]["message"] or "after" in body["errors"][0]["message"]
    both = {**payload, "startAt": edge, "endAt": edge}
    assert _code(await gql(SCHEDULE, input=both)) == "BAD_USER_INPUT"
    await _nothing_written(0)


@pytest.mark.parametrize("edge", EDGES)
async def test_rescheduling_to_a_calendar_end_is_bad_user_input(
    gql: GraphQLClient, edge: str
) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    booked = await gql.data(SCHEDULE, input=booking(patient, doctor, START))
    appointment_id = booked["scheduleAppointment"]["id"]
    before = await Appointment.get(appointment_id)
    held = await Reservation.find_all().count()
    for move in (
        {"startAt": edge, "endAt": iso(START + timedelta(minutes=30))},
        {"startAt": iso(START), "endAt": edge},
        {"startAt": edge, "endAt": edge},
    ):
        body = await gql(RESCHEDULE, id=appointment_id, input=move)
        assert _code(body) == "BAD_USER_INPUT", body
    after = await Appointment.get(appointment_id)
    assert after is not None and before is not None
    assert (after.start_at, after.end_at, after.reschedule_history) == (
        before.start_at,
        before.end_at,
        before.reschedule_history,
    )
    assert await Reservation.find_all().count() == held


async def test_a_keyed_booking_at_a_calendar_end_is_bad_user_input(gql: GraphQLClient) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    keyed = """mutation($input: ScheduleAppointmentInput!, $key: String) {
      scheduleAppointment(input: $input, idempotencyKey: $key) { id } }"""
    payload = {**booking(patient, doctor, START), "startAt": EDGES[0]}
    assert _code(await gql(keyed, input=payload, key="k-1")) == "BAD_USER_INPUT"
    await _nothing_written(0)


AVAILABILITY = """query($d: ID!, $from: DateTime!, $to: DateTime!, $t: ID!) {
  availability(doctorId: $d, from: $from, to: $to, appointmentType: $t) { startAt } }"""
CREATE_TYPE = """mutation($input: AppointmentTypeInput!) {
  createAppointmentType(input: $input) { id } }"""


@pytest.mark.parametrize("edge", EDGES)
async def test_availability_at_a_calendar_end_is_bad_user_input(
    gql: GraphQLClient, edge: str
) -> None:
    doctor = await factories.doctor()
    kind = await gql.data(
        CREATE_TYPE, input={"code": f"T{factories.n()}", "name": "Visit", "durationMinutes": 30}
    )
    variables = {"d": str(doctor.id), "t": kind["createAppointmentType"]["id"]}
    for window in ({"from": edge, "to": iso(START)}, {"from": iso(START), "to": edge}):
        body = await gql(AVAILABILITY, **variables, **window)
        assert _code(body) == "BAD_USER_INPUT", body
    # Inline in the document, not as variables: the same answer.
    inline = f"""query($d: ID!, $t: ID!) {{ availability(doctorId: $d, from: "{edge}",
      to: "{iso(START)}", appointmentType: $t) {{ startAt }} }}"""
    body = await gql(inline, **variables)
    assert _code(body) == "BAD_USER_INPUT", body


APPOINTMENTS = """query($f: AppointmentFilter) { appointments(filter: $f) { nodes { id } } }"""


@pytest.mark.parametrize("edge", EDGES[:2])  # in range, a filter bound is just a bound
async def test_an_appointment_filter_at_a_calendar_end_is_bad_user_input(
    gql: GraphQLClient, edge: str
) -> None:
    for window in ({"from": edge}, {"to": edge}, {"from": edge, "to": edge}):
        body = await gql(APPOINTMENTS, f=window)
        assert _code(body) == "BAD_USER_INPUT", body


ANALYTICS = {
    "appointmentsPerDoctor": "appointmentsPerDoctor(filter: $f) { suppressedGroups }",
    "appointmentsOverTime": "appointmentsOverTime(filter: $f, interval: DAY) { suppressedGroups }",
    "appointmentsOverTime-month": (
        "appointmentsOverTime(filter: $f, interval: MONTH) { suppressedGroups }"
    ),
    "conditionsBySpecialty": "conditionsBySpecialty(filter: $f) { suppressedGroups }",
    "appointmentsPerPatient": "appointmentsPerPatient(filter: $f) { suppressedGroups }",
    "noShowRate": "noShowRate(filter: $f) { suppressedGroups }",
    "equipmentUtilisation": "equipmentUtilisation(filter: $f) { suppressedGroups }",
    "revenue": "revenue(filter: $f) { suppressedGroups }",
}


@pytest.mark.parametrize("report", list(ANALYTICS))
@pytest.mark.parametrize("edge", EDGES)
async def test_an_analytics_filter_at_a_calendar_end_is_bad_user_input(
    client_as: Any, report: str, edge: str
) -> None:
    admin = client_as(roles=["admin"])
    query = f"query($f: AnalyticsFilter!) {{ analytics {{ {ANALYTICS[report]} }} }}"
    near = "9999-06-01T00:00:00Z" if edge.startswith("9999") else "0001-06-01T00:00:00Z"
    window = {"from": edge, "to": near} if edge.startswith("0001") else {"from": near, "to": edge}
    body = await admin(query, f=window)
    assert _code(body) == "BAD_USER_INPUT", body
    assert "filter." in body["errors"][0]["message"]


async def test_calendar_ends_as_anonymous_in_production_are_client_errors(
    production: Any,
) -> None:
    """Anonymous callers in production get a client error too, never INTERNAL, and no data."""
    edge = EDGES[0]
    for query, variables in (
        (APPOINTMENTS, {"f": {"from": edge}}),
        ("query($f: AnalyticsFilter!) { analytics { revenue(filter: $f) { suppressedGroups } } }",
         {"f": {"from": "9999-06-01T00:00:00Z", "to": edge}}),
    ):  # fmt: skip
        response = await production.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200
        codes = {e["extensions"]["code"] for e in response.json()["errors"]}
        assert "INTERNAL" not in codes and codes <= {"UNAUTHENTICATED", "BAD_USER_INPUT"}


# -- request bodies --------------------------------------------------------------------------

MALFORMED = {
    "invalid-utf8": b'{"query": "{ viewer { roles } }\xff"}',
    "latin-1": '{"query": "{ viewer { roles } } # café"}'.encode("latin-1"),
    "utf-16": '{"query": "{ viewer { roles } }"}'.encode("utf-16"),
    "truncated": b'{"query": ',
    "empty": b"",
    "string": b'"{ viewer { roles } }"',
    "number": b"5",
    "null": b"null",
    "true": b"true",
    "deeply-nested": b"[" * 40_000 + b"]" * 40_000,
    "query-number": b'{"query": 5}',
    "query-object": b'{"query": {"text": "{ viewer { roles } }"}}',
    "variables-list": b'{"query": "{ viewer { roles } }", "variables": [1]}',
    "variables-string": b'{"query": "{ viewer { roles } }", "variables": "x"}',
    "extensions-list": b'{"query": "{ viewer { roles } }", "extensions": [1]}',
    "operation-name-number": b'{"query": "{ viewer { roles } }", "operationName": 5}',
    "batch": b'[{"query": "{ viewer { roles } }"}]',
}


@pytest.fixture
async def production(settings: Any) -> Any:
    """An anonymous HTTP client on an app running with ``SHMS_ENV=production``."""
    from app import create_app

    application = create_app(settings.model_copy(update={"shms_env": "production"}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as client:
            yield client


@pytest.fixture
async def lenient(app: Any) -> Any:
    """A client that sees a 500 as a response instead of the app's exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as client:
        yield client


@pytest.mark.parametrize("who", ["admin", "anonymous"])
@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_body_is_400_with_a_code(
    app: Any, lenient: Any, raw: bytes, who: str
) -> None:
    headers = {"content-type": "application/json"}
    if who == "admin":
        headers.update(bearer(app, "admin"))
    with db.operations.measure() as ops:
        response = await lenient.post("/graphql", content=raw, headers=headers)
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"} and error["message"], body
    assert "Traceback" not in response.text and ops.total == 0


async def test_a_malformed_body_is_400_in_production(production: Any) -> None:
    for raw in (MALFORMED["invalid-utf8"], MALFORMED["null"], MALFORMED["truncated"]):
        response = await production.post(
            "/graphql", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_the_messages_say_what_is_wrong(app: Any, lenient: Any) -> None:
    async def message(raw: bytes) -> str:
        response = await lenient.post(
            "/graphql", content=raw, headers={"content-type": "application/json"}
        )
        text: str = response.json()["errors"][0]["message"]
        return text

    assert "UTF-8" in await message(MALFORMED["invalid-utf8"])
    assert "not valid JSON" in await message(MALFORMED["truncated"])
    assert "JSON object" in await message(MALFORMED["number"])
    assert "`query`" in await message(MALFORMED["query-number"])
    assert "`variables`" in await message(MALFORMED["variables-list"])


async def test_a_utf8_body_with_a_byte_order_mark_still_works(app: Any, http: Any) -> None:
    raw = '\ufeff{"query": "{ viewer { roles } }"}'.encode()
    response = await http.post(
        "/graphql",
        content=raw,
        headers={"content-type": "application/json", **bearer(app, "admin")},
    )
    assert response.json() == {"data": {"viewer": {"roles": ["ADMIN"]}}}


async def test_other_http_refusals_are_coded_json_too(app: Any, http: Any) -> None:
    cases = [
        http.post("/graphql", content=b"{}", headers={"content-type": "text/plain"}),
        http.get("/graphql", params={"query": "{ viewer { roles } }", "variables": "[1]"}),
        http.get("/graphql", params={"query": "{ viewer { roles } }", "variables": "{"}),
        http.post("/graphql", json={"variables": {}}),  # no query at all
    ]
    for request in cases:
        response = await request
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# -- WebSocket messages ----------------------------------------------------------------------

WS_MALFORMED = {
    "number": "42",
    "null": "null",
    "list": "[1]",
    "deeply-nested": "[" * 40_000 + "]" * 40_000,
    "payload-number": '{"id": "1", "type": "subscribe", "payload": 5}',
    "query-number": '{"id": "1", "type": "subscribe", "payload": {"query": 5}}',
    "variables-list": (
        '{"id": "1", "type": "subscribe", "payload": '
        '{"query": "subscription { appointmentChanged { change } }", "variables": [1]}}'
    ),
}


@pytest.mark.parametrize("frame", list(WS_MALFORMED.values()), ids=list(WS_MALFORMED))
def test_a_malformed_websocket_message_closes_with_4400(settings: Any, frame: str) -> None:
    from app import create_app

    with TestClient(create_app(settings)) as client:
        token = token_for(client.app, roles=["admin"])
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_text(frame)
            message = ws.receive()
    assert message["type"] == "websocket.close" and message["code"] == 4400, message


def test_the_legacy_protocol_survives_malformed_messages(settings: Any) -> None:
    from app import create_app

    with TestClient(create_app(settings)) as client:
        token = token_for(client.app, roles=["admin"])
        with client.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert ws.receive_json()["type"] == "connection_ack"
            for frame in ("42", "null", "[1]", "{}", '{"id": "1", "type": "start", "payload": 5}'):
                ws.send_text(frame)
            reply = ws.receive_json()  # only the start with an id is answered
            assert reply["type"] == "error" and reply["id"] == "1", reply
            assert reply["payload"]["extensions"]["code"] == "BAD_REQUEST"
            ws.send_json({"type": "connection_terminate"})
