"""A WebSocket refused at ``connection_init`` says why in its close reason, in both protocols:
close code 4403 with ``missing_token``, ``invalid_token``, ``token_expired``,
``account_disabled``, ... (the legacy protocol's ``connection_error`` carries the same reason)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import WS_REFUSED, create_app
from auth.tokens import TokenService
from tests import factories
from tests.conftest import token_for
from tests.events.live import LEGACY_WS, PROTOCOLS, Subscriber, call

Payload = Callable[[TestClient], dict[str, Any]]


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def expired(client: TestClient) -> dict[str, Any]:
    tokens: Any = client.app.state.tokens  # type: ignore[attr-defined]
    an_hour_ago = TokenService(tokens.settings, tokens.keys, clock=lambda: time.time() - 3600)
    token = an_hour_ago.issue({"sub": "test:old", "roles": ["admin"]}, 60)
    return {"Authorization": f"Bearer {token}"}


def disabled(client: TestClient) -> dict[str, Any]:
    doctor = call(client, factories.doctor, active=False)
    return {"token": token_for(client.app, roles=["doctor"], sid=str(doctor.id))}


def no_role(client: TestClient) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token_for(client.app, roles=['astronaut'])}"}


CASES: dict[str, Payload] = {
    "missing_token": lambda client: {},
    "invalid_token": lambda client: {"Authorization": "Bearer not-a-jwt"},
    "token_expired": expired,
    "account_disabled": disabled,
    "no_role": no_role,
}


def refusal(client: TestClient, protocol: str, payload: dict[str, Any]) -> WebSocketDisconnect:
    """How the connection closes after ``connection_init`` with ``payload``."""
    with client.websocket_connect("/graphql", subprotocols=[protocol]) as ws:
        live = Subscriber(ws, protocol)
        live.send({"type": "connection_init", "payload": payload})
        if protocol == LEGACY_WS:  # the legacy protocol answers connection_error first
            error = live.receive()
            assert error["type"] == "connection_error"
            assert error["payload"]["code"] == "UNAUTHENTICATED"
            legacy_reason = error["payload"]["reason"]
        with pytest.raises(WebSocketDisconnect) as closed:
            live.receive()
    if protocol == LEGACY_WS:
        assert legacy_reason == closed.value.reason
    return closed.value


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("reason", list(CASES))
def test_a_refused_connection_closes_4403_with_its_reason(
    client: TestClient, protocol: str, reason: str
) -> None:
    closed = refusal(client, protocol, CASES[reason](client))
    assert (closed.code, closed.reason) == (WS_REFUSED, reason)


def test_the_legacy_connection_error_keeps_the_finer_cause(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"token": "a.b.c"}})
        error = ws.receive_json()
    assert error["payload"] == {
        "code": "UNAUTHENTICATED",
        "reason": "invalid_token",
        "detail": "malformed",
    }
