"""WebSocket clients authenticate in ``connection_init``: no token, no connection."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import create_app
from tests.conftest import token_for

PROTOCOL = "graphql-transport-ws"


def _init(client: TestClient, payload: dict[str, Any]) -> dict[str, Any]:
    with client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as ws:
        ws.send_json({"type": "connection_init", "payload": payload})
        message: dict[str, Any] = ws.receive_json()
        return message


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer not-a-jwt"}, {"token": "eyJhbGciOiJub25lIn0.e30."}],
)
def test_connection_init_without_a_valid_token_is_closed(settings: Any, payload: Any) -> None:
    with TestClient(create_app(settings)) as client, pytest.raises(WebSocketDisconnect) as closed:
        _init(client, payload)
    assert closed.value.code == 4403


def test_connection_init_with_a_token_is_acknowledged(settings: Any) -> None:
    with TestClient(create_app(settings)) as client:
        token = token_for(client.app, roles=["admin"])
        assert _init(client, {"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}
        assert _init(client, {"token": token}) == {"type": "connection_ack"}
