"""Subscriptions over WebSocket are validated against the same limits."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

import db
from app import create_app
from tests.conftest import token_for

PROTOCOL = "graphql-transport-ws"


def _subscribe(settings: Any, query: str, roles: list[str]) -> tuple[dict[str, Any], int]:
    with TestClient(create_app(settings)) as client:
        token = token_for(client.app, roles=roles)
        with client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert ws.receive_json() == {"type": "connection_ack"}
            with db.operations.measure() as ops:
                ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
                message: dict[str, Any] = ws.receive_json()
            return message, ops.total


def test_a_deep_subscription_is_refused(settings: Any) -> None:
    inner = "id"
    for _ in range(10):
        inner = f"doctors(first: 1) {{ nodes {{ department {{ {inner} }} }} }}"
    query = f"subscription {{ appointmentChanged {{ appointment {{ doctor {{ department {{ {inner} }} }} }} }} }}"  # noqa: E501
    message, ops = _subscribe(settings, query, ["admin"])
    assert message["type"] == "error", message
    assert {e["extensions"]["code"] for e in message["payload"]} == {"DEPTH_LIMIT"}
    assert ops == 0


def test_an_aliased_subscription_flood_is_refused(settings: Any) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(31))
    message, ops = _subscribe(
        settings, f"subscription {{ appointmentChanged {{ {fields} }} }}", ["admin"]
    )
    assert message["type"] == "error", message
    assert "ALIAS_LIMIT" in {e["extensions"]["code"] for e in message["payload"]}
    assert ops == 0


def test_production_subscriptions_get_no_introspection(settings: Any) -> None:
    prod = settings.model_copy(update={"shms_env": "production"})
    query = "subscription { appointmentChanged { change } __schema { queryType { name } } }"
    message, ops = _subscribe(prod, query, ["doctor"])
    assert message["type"] == "error", message
    assert "INTROSPECTION_DISABLED" in {e["extensions"]["code"] for e in message["payload"]}
    assert ops == 0
