"""The waiting-room screen over WebSocket: positions move as the queue moves, names never show."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from tests import factories
from tests.conftest import token_for
from tests.events.live import PROTOCOLS, call, data, subscriber
from tests.outpatient.helpers import CALL_NEXT, WALK_IN

BOARD_EVENTS = """subscription($departmentId: ID, $doctorId: ID) {
  outpatientBoardChanged(departmentId: $departmentId, doctorId: $doctorId) {
    change at
    board { departmentId doctorId entries { queueNumber priority status position calledTo } }
  }
}"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def desk(client: TestClient) -> str:
    return token_for(client.app, roles=["admin_staff"])


def entries(payload: dict[str, Any]) -> list[tuple[int, str, int | None]]:
    assert "errors" not in payload, payload
    board = payload["data"]["outpatientBoardChanged"]["board"]
    return [(e["queueNumber"], e["status"], e["position"]) for e in board["entries"]]


def refusal(message: dict[str, Any]) -> str:
    """The code of a subscription's refusal: its stream's first (and only) result."""
    assert message["type"] in ("next", "error"), message
    payload = message["payload"]
    errors = payload if isinstance(payload, list) else payload["errors"]
    assert (payload if isinstance(payload, list) else payload["data"]) in (None, errors)
    return str(errors[0]["extensions"]["code"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_screen_sees_positions_change_and_no_names(client: TestClient, protocol: str) -> None:
    dept = call(client, factories.department, code="OPD")
    first = call(client, factories.patient, first_name="Wilhelmina", last_name="Zzyzx")
    second = call(client, factories.patient)
    screen = token_for(client.app, roles=["service"])
    with subscriber(client, protocol, screen) as live:
        live.subscribe("opd", BOARD_EVENTS, departmentId=str(dept.id))
        snapshot = live.next("opd")
        assert snapshot["data"]["outpatientBoardChanged"]["change"] == "snapshot"
        assert entries(snapshot) == []

        walk_in = {"patientId": str(first.id), "departmentId": str(dept.id)}
        data(client, desk(client), WALK_IN, input=walk_in)
        assert entries(live.next("opd")) == [(1, "WAITING", 1)]
        urgent = {
            "patientId": str(second.id),
            "departmentId": str(dept.id),
            "priority": "EMERGENCY",
        }
        data(client, desk(client), WALK_IN, input=urgent)
        event = live.next("opd")
        assert event["data"]["outpatientBoardChanged"]["change"] == "checked_in"
        assert entries(event) == [(2, "WAITING", 1), (1, "WAITING", 2)]  # moved back a place

        data(client, desk(client), CALL_NEXT, room="Room 3", departmentId=str(dept.id))
        called = live.next("opd")
        assert entries(called) == [(2, "CALLED", None), (1, "WAITING", 1)]
        board = called["data"]["outpatientBoardChanged"]["board"]
        assert board["entries"][0]["calledTo"] == "Room 3"
        for raw in (live.last_raw,):
            for secret in ("Wilhelmina", "Zzyzx", str(first.id), str(second.id)):
                assert secret not in raw


def test_patients_and_analysts_cannot_watch_a_board(client: TestClient) -> None:
    dept = call(client, factories.department)
    for roles in (["patient"], ["analyst"]):
        with subscriber(client, "graphql-transport-ws", token_for(client.app, roles=roles)) as live:
            live.subscribe("x", BOARD_EVENTS, departmentId=str(dept.id))
            assert refusal(live.receive()) == "FORBIDDEN"


def test_an_unknown_clinic_is_not_found(client: TestClient) -> None:
    screen = token_for(client.app, roles=["service"])
    with subscriber(client, "graphql-transport-ws", screen) as live:
        live.subscribe("x", BOARD_EVENTS, departmentId="0000000000000000000000ab")
        assert refusal(live.receive()) == "NOT_FOUND"


def test_screens_of_one_clinic_share_one_queue_read_per_event(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three screens of one clinic: each change reads the queue once, not once per screen."""
    from cache import queues

    dept = call(client, factories.department, code="OPD2")
    patient = call(client, factories.patient)
    screen = token_for(client.app, roles=["service"])
    reads: list[Any] = []
    real = queues.queue

    async def counted(kind: Any, key: Any) -> Any:
        reads.append((kind, key))
        return await real(kind, key)

    monkeypatch.setattr(queues, "queue", counted)
    with subscriber(client, "graphql-transport-ws", screen) as live:
        for n in range(3):
            live.subscribe(f"s{n}", BOARD_EVENTS, departmentId=str(dept.id))
        for _ in range(3):
            live.receive()  # the three snapshots, one read each
        before = len(reads)
        data(
            client,
            desk(client),
            WALK_IN,
            input={"patientId": str(patient.id), "departmentId": str(dept.id)},
        )
        boards = [live.receive() for _ in range(3)]
        assert {m["id"] for m in boards} == {"s0", "s1", "s2"}
        assert all(entries(m["payload"]) == [(1, "WAITING", 1)] for m in boards)
        # One read for the walk-in's own answer (its position), one shared by the three screens.
        assert len(reads) - before == 2
