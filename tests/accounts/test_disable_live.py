"""``disableAccount`` ends a live subscription at its next event, as deactivation does
(``tests/security/test_deactivation.py``), and refuses the account's token at connection_init."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import create_app
from auth import status as auth_status
from auth.roles import Role
from config import Settings
from services import accounts
from tests import factories
from tests.accounts.conftest import PASSWORD, unique
from tests.conftest import token_for
from tests.events.live import (
    PROTOCOLS,
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)

EVENTS = """subscription($departmentId: ID) {
  equipmentStatusChanged(departmentId: $departmentId) { change equipmentId } }"""
STATUS = """mutation($id: ID!, $status: EquipmentStatus!) {
  updateEquipmentStatus(id: $id, status: $status) { status } }"""
DISABLE = "mutation($id: ID!) { disableAccount(id: $id) { active } }"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_disabling_an_account_ends_its_live_subscription_at_the_next_event(
    client: TestClient, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_status, "RECHECK_SECONDS", 0.0)  # every event looks again
    dept = call(client, factories.department)
    device = call(client, factories.equipment, dept)
    doctor = call(client, factories.doctor, dept)
    account = call(
        client, accounts.create_account, unique("dr"), PASSWORD, [Role.DOCTOR], staff_id=doctor.id
    )
    form = {"grant_type": "password", "username": account.username, "password": PASSWORD}
    token = client.post("/oauth/token", data=form).json()["access_token"]
    admin = token_for(client.app, roles=["admin"])
    writer = token_for(client.app, roles=["admin", "admin_staff"])
    field = open_subscriptions("equipmentStatusChanged")
    with subscriber(client, protocol, token) as live:
        live.subscribe("board", EVENTS, departmentId=str(dept.id))
        wait_for_metric(client, field, 1)
        data(client, writer, STATUS, id=str(device.id), status="MAINTENANCE")
        assert "errors" not in live.next("board")

        assert data(client, admin, DISABLE, id=str(account.id))["disableAccount"] == {
            "active": False
        }
        data(client, writer, STATUS, id=str(device.id), status="AVAILABLE")
        ended = live.next("board")
        assert ended["data"] is None
        (error,) = ended["errors"]
        assert error["extensions"]["reason"] == "account_disabled"
        live.completed("board")
        wait_for_metric(client, field, 0)

    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        ws.send_json(init)
        ws.receive_json()
    assert closed.value.code == 4403
