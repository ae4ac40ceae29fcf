"""WebSocket hygiene over ``graphql-transport-ws``: the protocol's close codes for a client that
skips, repeats or confuses its steps, and a subscription that ends when its token does.

Every wait is bounded (``Subscriber.receive`` fails after a timeout); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import create_app
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    Subscriber,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)

FIELD = "equipmentStatusChanged"
EVENTS = "subscription { equipmentStatusChanged { change equipmentId } }"


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def closed_with(live: Subscriber, timeout: float = 5.0) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        live.receive(timeout)
    return closed.value.code


def test_the_init_timeout_comes_from_the_settings(settings: Any) -> None:
    quick = settings.model_copy(update={"shms_ws_init_timeout_seconds": 0.2})
    with (
        TestClient(create_app(quick)) as client,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        assert closed_with(Subscriber(ws, TRANSPORT_WS)) == 4408


def test_subscribe_before_connection_init_is_closed_4401(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        live = Subscriber(ws, TRANSPORT_WS)
        live.subscribe("1", EVENTS)
        assert closed_with(live) == 4401


def test_a_second_connection_init_is_closed_4429(client: TestClient) -> None:
    token = token_for(client.app, roles=["admin"])
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert closed_with(live) == 4429


def test_a_duplicate_operation_id_is_closed_4409(client: TestClient) -> None:
    with subscriber(client, TRANSPORT_WS, token_for(client.app, roles=["admin"])) as live:
        live.subscribe("same", EVENTS)
        live.subscribe("same", EVENTS)
        assert closed_with(live) == 4409


def test_a_subscription_ends_when_its_token_expires(client: TestClient) -> None:
    app: Any = client.app
    token = app.state.tokens.issue({"sub": "test:short", "roles": ["admin"]}, 1)
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.subscribe("short", EVENTS)
        # No event comes: the timer alone ends it, with an error naming the reason.
        payload = live.next("short")
        assert payload["data"] is None
        (error,) = payload["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["extensions"]["reason"] == "token_expired"
        live.completed("short")
        wait_for_metric(client, open_subscriptions(FIELD), 0)
        # The connection stays open, though signed in with the expired token: a client that
        # wants more opens a new connection with a fresh one.
        live.send({"type": "ping"})
        assert live.receive() == {"type": "pong"}
