"""The bed board over WebSocket: a ward's screen sees admission, transfer, discharge and
cleaning as they happen, with who lies where only for those the policy lets see it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from tests.admissions.helpers import ADMIT, CLEANED, DISCHARGE, NOTE, TRANSFER, admit_input
from tests.admissions.helpers import inpatient as make_inpatient
from tests.conftest import token_for
from tests.events.live import PROTOCOLS, call, data, subscriber

BOARD_EVENTS = """subscription($wardId: ID, $departmentId: ID) {
  bedBoardChanged(wardId: $wardId, departmentId: $departmentId) {
    change bedId
    board { wardId counts { available occupied incoming cleaning total }
            beds { label status patientId } } } }"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def board(message: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in message, message
    found: dict[str, Any] = message["data"]["bedBoardChanged"]
    return found


def states(message: dict[str, Any]) -> dict[str, str]:
    return {b["label"]: b["status"] for b in board(message)["board"]["beds"]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_ward_screen_follows_a_stay(client: TestClient, protocol: str) -> None:
    f = call(client, make_inpatient, 1, 3)
    admin = token_for(client.app, roles=["admin"])
    desk = token_for(client.app, roles=["admin_staff"])
    patient = str(f.patients[0].id)
    with subscriber(client, protocol, desk) as live:
        live.subscribe("ward", BOARD_EVENTS, wardId=str(f.ward.id))
        snapshot = board(live.next("ward"))
        assert snapshot["change"] == "snapshot"
        assert snapshot["board"]["counts"] == {
            "available": 3, "occupied": 0, "incoming": 0, "cleaning": 0, "total": 3
        }  # fmt: skip

        made = data(client, admin, ADMIT, input=admit_input(f, f.patients[0], f.beds[0]))
        event = live.next("ward")
        assert board(event)["change"] == "occupied" and states(event)["B1"] == "OCCUPIED"
        assert board(event)["board"]["beds"][0]["patientId"] == patient  # the front desk may

        admission = made["admitPatient"]["id"]
        data(client, admin, TRANSFER, id=admission, bedId=str(f.beds[1].id))
        seen = [states(live.next("ward")), states(live.next("ward"))]
        assert seen[-1] == {"B1": "CLEANING", "B2": "OCCUPIED", "B3": "AVAILABLE"}
        assert all(list(s.values()).count("OCCUPIED") >= 1 for s in seen)  # never zero beds

        data(client, admin, DISCHARGE, id=admission, note=NOTE, d="HOME")
        gone = live.next("ward")
        assert board(gone)["change"] == "vacated" and states(gone)["B2"] == "CLEANING"
        data(client, admin, CLEANED, id=str(f.beds[1].id))
        assert states(live.next("ward"))["B2"] == "AVAILABLE"


def test_patients_and_analysts_cannot_watch_a_bed_board(client: TestClient) -> None:
    f = call(client, make_inpatient, 0, 1)
    for roles in (["patient"], ["analyst"]):
        with subscriber(client, "graphql-transport-ws", token_for(client.app, roles=roles)) as live:
            live.subscribe("x", BOARD_EVENTS, wardId=str(f.ward.id))
            message = live.receive()
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload["errors"]
            assert errors[0]["extensions"]["code"] == "FORBIDDEN"
