"""The ED board over WebSocket: arrivals, triage and dispositions move it as they happen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from tests import factories
from tests.conftest import token_for
from tests.emergency.helpers import DISPOSE, REGISTER_DESK, START, TRIAGE, Ed
from tests.events.live import PROTOCOLS, call, data, subscriber

BOARD_EVENTS = """subscription($departmentId: ID!) {
  emergencyBoardChanged(departmentId: $departmentId) {
    change at
    board { departmentId awaitingTriage open
      entries { visitId level status waitingMinutes visit { patient { lastName } } } }
  }
}"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


async def _ed() -> Ed:
    dept = await factories.department(code="ER")
    return Ed(dept, await factories.nurse(dept), await factories.doctor(dept))


def entries(message: dict[str, Any]) -> list[tuple[str, int | None, str]]:
    payload = message.get("payload", message)
    assert "errors" not in payload, payload
    board = payload["data"]["emergencyBoardChanged"]["board"]
    return [(e["visitId"], e["level"], e["status"]) for e in board["entries"]]


def token(client: TestClient, ed: Ed, role: str) -> str:
    return token_for(client.app, **ed.claims(role))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_board_follows_arrival_triage_and_disposition(
    client: TestClient, protocol: str
) -> None:
    ed = call(client, _ed)
    first = call(client, factories.patient, last_name="Zzyzx")
    second = call(client, factories.patient)
    desk, nurse, doctor = (token(client, ed, r) for r in ("admin_staff", "nurse", "doctor"))
    with subscriber(client, protocol, nurse) as live:
        live.subscribe("ed", BOARD_EVENTS, departmentId=ed.id)
        snapshot = live.next("ed")
        assert snapshot["data"]["emergencyBoardChanged"]["change"] == "snapshot"
        assert entries(snapshot) == []

        arrival = {"departmentId": ed.id, "arrivalMode": "AMBULANCE", "chiefComplaint": "Fall"}
        one = data(client, desk, REGISTER_DESK, input={**arrival, "patientId": str(first.id)})
        one_id = one["registerEmergencyArrival"]["id"]
        event = live.next("ed")
        assert event["data"]["emergencyBoardChanged"]["change"] == "registered"
        assert entries(event) == [(one_id, None, "WAITING")]
        # The ED nurse sees who it is, through the visit's own policy.
        shown = event["data"]["emergencyBoardChanged"]["board"]["entries"][0]
        assert shown["visit"]["patient"]["lastName"] == "Zzyzx"

        data(client, nurse, TRIAGE, id=one_id, input={"level": 4})
        assert entries(live.next("ed")) == [(one_id, 4, "TRIAGED")]

        two = data(client, desk, REGISTER_DESK, input={**arrival, "patientId": str(second.id)})
        two_id = two["registerEmergencyArrival"]["id"]
        assert entries(live.next("ed")) == [(two_id, None, "WAITING"), (one_id, 4, "TRIAGED")]
        data(client, nurse, TRIAGE, id=two_id, input={"level": 1})
        event = live.next("ed")
        assert event["data"]["emergencyBoardChanged"]["change"] == "triaged"
        assert entries(event) == [(two_id, 1, "TRIAGED"), (one_id, 4, "TRIAGED")]

        data(client, doctor, START, id=one_id)
        assert entries(live.next("ed")) == [(two_id, 1, "TRIAGED"), (one_id, 4, "IN_TREATMENT")]
        data(client, doctor, DISPOSE, id=one_id, kind="DISCHARGED")
        event = live.next("ed")
        assert event["data"]["emergencyBoardChanged"]["change"] == "disposed_discharged"
        assert entries(event) == [(two_id, 1, "TRIAGED")]


def test_the_board_is_refused_to_outsiders_when_opened(client: TestClient) -> None:
    ed = call(client, _ed)
    elsewhere = call(client, factories.department)
    for claims in (
        {"roles": ["analyst"]},
        {"roles": ["patient"], "pid": "0000000000000000000000aa"},
        {"roles": ["billing"]},
        {"roles": ["nurse"], "did": str(elsewhere.id)},
    ):
        with subscriber(client, "graphql-transport-ws", token_for(client.app, **claims)) as live:
            live.subscribe("x", BOARD_EVENTS, departmentId=ed.id)
            message = live.receive()
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload["errors"]
            assert errors[0]["extensions"]["code"] == "FORBIDDEN", claims
