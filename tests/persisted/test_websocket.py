"""The allow-list holds over WebSockets too: a restricted caller cannot go around it there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from starlette.testclient import TestClient

from app import create_app
from schema import persisted_documents
from tests.conftest import token_for
from tests.events.live import LEGACY_WS, PROTOCOLS, TRANSPORT_WS, call, subscriber

VIEWER = "query Me { viewer { roles } }"
EVENTS = "subscription { equipmentStatusChanged { change equipmentId } }"

pytestmark = pytest.mark.parametrize("overrides", [{"shms_allowlist_roles": "patient"}])


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _codes(message: dict[str, Any], id: str) -> list[str]:
    """The codes of an ``error`` message (a list in one protocol, one error in the other)."""
    assert (message["type"], message["id"]) == ("error", id), message
    payload = message["payload"]
    return [e["extensions"]["code"] for e in (payload if isinstance(payload, list) else [payload])]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_ad_hoc_operation_is_refused(client: TestClient, protocol: str) -> None:
    token = token_for(client.app, roles=["patient"], pid=str(ObjectId()))
    with subscriber(client, protocol, token) as live:
        live.subscribe("adhoc", EVENTS)
        assert _codes(live.receive(), "adhoc") == ["OPERATION_NOT_ALLOWED"]


def test_a_persisted_document_passes_on_legacy_graphql_ws(client: TestClient) -> None:
    """Legacy graphql-ws runs subscriptions only: this one fails validation, past the gate."""
    token = token_for(client.app, roles=["patient"], pid=str(ObjectId()))
    wrong = "subscription { viewer { roles } }"
    call(client, persisted_documents.register, wrong, "cli")
    with subscriber(client, LEGACY_WS, token) as live:
        live.subscribe("known", wrong)
        assert _codes(live.receive(), "known") == ["GRAPHQL_VALIDATION_FAILED"]


def test_a_persisted_query_runs_over_graphql_transport_ws(client: TestClient) -> None:
    token = token_for(client.app, roles=["patient"], pid=str(ObjectId()))
    call(client, persisted_documents.register, VIEWER, "cli")
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.subscribe("known", VIEWER)
        assert live.next("known") == {"data": {"viewer": {"roles": ["PATIENT"]}}}
        live.completed("known")


def test_a_persisted_query_runs_by_hash_over_graphql_transport_ws(client: TestClient) -> None:
    token = token_for(client.app, roles=["patient"], pid=str(ObjectId()))
    sha = call(client, persisted_documents.register, VIEWER, "cli")
    with subscriber(client, TRANSPORT_WS, token) as live:
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
        live.send({"type": "subscribe", "id": "1", "payload": {"extensions": extensions}})
        assert live.next("1") == {"data": {"viewer": {"roles": ["PATIENT"]}}}
        live.completed("1")
