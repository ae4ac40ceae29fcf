"""The ward's overdue list, live: a task done leaves it, a task falling overdue joins it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from models.base import utcnow
from tests.conftest import token_for
from tests.events.live import TRANSPORT_WS, call, data, subscriber
from tests.orders.helpers import CREATE_ORDER, DONE, iso, once_now, ward

LIVE = """subscription($wardId: ID!) { nursingTasksChanged(wardId: $wardId) {
  change taskId task { id status } overdue { id dueAt overdue } } }"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _token(client: TestClient, staff: Any, role: str) -> str:
    return token_for(client.app, roles=[role], sid=str(staff.id), did=str(staff.department_id))


def _event(live: Any) -> dict[str, Any]:
    message = live.next("w")
    assert "errors" not in message, message
    event: dict[str, Any] = message["data"]["nursingTasksChanged"]
    return event


def test_the_overdue_list_follows_recordings_and_the_clock(client: TestClient) -> None:
    w = call(client, ward)
    doctor, nurse = _token(client, w.doctor, "doctor"), _token(client, w.nurse, "nurse")
    late = data(client, doctor, CREATE_ORDER, input=once_now(w))["createDoctorOrder"]
    late_task = late["tasks"]["nodes"][0]["id"]
    with subscriber(client, TRANSPORT_WS, nurse) as live:
        live.subscribe("w", LIVE, wardId=str(w.ward.id))
        snapshot = _event(live)
        assert snapshot["change"] == "snapshot"
        assert [t["id"] for t in snapshot["overdue"]] == [late_task]

        data(client, nurse, DONE, id=late_task)
        done = _event(live)
        assert done["change"] == "done" and done["taskId"] == late_task
        assert done["task"]["status"] == "DONE" and done["overdue"] == []

        # A task due in a moment: announced when created, then again when it falls overdue,
        # with no write in between (the subscription's timer).
        in_a_moment = iso(utcnow() + timedelta(seconds=1))
        soon = {**once_now(w), "schedule": {"pattern": "ONCE", "startAt": in_a_moment}}
        made = data(client, doctor, CREATE_ORDER, input=soon)["createDoctorOrder"]
        new_task = made["tasks"]["nodes"][0]["id"]
        created = _event(live)
        assert created["change"] == "created" and created["taskId"] == new_task
        if created["overdue"] == []:  # normally: it is not due yet
            overdue = _event(live)
            assert overdue["change"] == "overdue" and overdue["taskId"] is None
        else:  # a slow machine: already past when the list was read
            overdue = created
        assert [(t["id"], t["overdue"]) for t in overdue["overdue"]] == [(new_task, True)]


def test_a_nurse_of_another_ward_and_billing_cannot_follow_it(client: TestClient) -> None:
    w = call(client, ward)
    for token in (
        _token(client, w.other_nurse, "nurse"),
        token_for(client.app, roles=["billing"]),
        token_for(client.app, roles=["analyst"]),
    ):
        with subscriber(client, TRANSPORT_WS, token) as live:
            live.subscribe("w", LIVE, wardId=str(w.ward.id))
            message = live.receive()
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload["errors"]
            assert errors[0]["extensions"]["code"] == "FORBIDDEN", message
    with subscriber(client, TRANSPORT_WS, _token(client, w.nurse, "nurse")) as live:
        live.subscribe("w", LIVE, wardId="0000000000000000000000ab")
        payload = live.receive()["payload"]
        errors = payload if isinstance(payload, list) else payload["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
