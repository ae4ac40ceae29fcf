"""Helpers for live-update tests: a subscriber speaking either WebSocket protocol, metrics.

Every wait is bounded: a message that never comes fails the test after ``TIMEOUT`` seconds
instead of hanging it, and nothing sleeps to let time pass.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
TIMEOUT = 10.0

T = TypeVar("T")


def call(client: TestClient, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run an async function (a factory, a query) on the app's event loop."""
    assert client.portal is not None
    return client.portal.call(functools.partial(fn, *args, **kwargs))


def post(client: TestClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL request over HTTP, as the writer in these tests makes it."""
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: TestClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    body = post(client, token, query, **variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


class Subscriber:
    """One WebSocket connection, speaking ``graphql-transport-ws`` or legacy ``graphql-ws``."""

    def __init__(self, ws: WebSocketTestSession, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.last_raw = ""  # the text of the last message, to prove what it did not contain

    @property
    def data_type(self) -> str:
        return "next" if self.protocol == TRANSPORT_WS else "data"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_json(message)

    def receive(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next message, or a failure after ``timeout`` seconds."""

        async def next_message() -> Any:
            # TestClient's own receive() waits forever; its queue, read here, can time out.
            with anyio.fail_after(timeout):
                return await self.ws._send_rx.receive()

        message = self.ws.portal.call(next_message)
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
        parsed: dict[str, Any] = json.loads(message["text"])
        self.last_raw = message["text"]
        return parsed

    def subscribe(self, id: str, query: str, **variables: Any) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        self.send({"type": kind, "id": id, "payload": {"query": query, "variables": variables}})

    def stop(self, id: str) -> None:
        self.send({"type": "complete" if self.protocol == TRANSPORT_WS else "stop", "id": id})

    def next(self, id: str) -> dict[str, Any]:
        """The payload (``data`` and maybe ``errors``) of the next result of ``id``."""
        message = self.receive()
        assert message.get("type") == self.data_type and message.get("id") == id, message
        payload: dict[str, Any] = message["payload"]
        return payload

    def completed(self, id: str) -> None:
        message = self.receive()
        assert message == {"type": "complete", "id": id}, message


@contextmanager
def subscriber(client: TestClient, protocol: str, token: str) -> Iterator[Subscriber]:
    """A connection signed in at ``connection_init``."""
    with client.websocket_connect("/graphql", subprotocols=[protocol]) as ws:
        live = Subscriber(ws, protocol)
        live.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert live.receive() == {"type": "connection_ack"}
        yield live


# Label values are quoted and may hold any character, braces included (a route's
# "/fhir/Patient/{id}/$everything", say).
_SAMPLE = re.compile(
    r'^(?P<name>[a-z_]+)(?:\{(?P<labels>(?:[^}"]|"(?:[^"\\]|\\.)*")*)\})? (?P<value>\S+)$'
)


def scrape(client: TestClient) -> Any:
    """``GET /metrics`` as a scraper sends it: with a ``service`` token."""
    app: Any = client.app
    token = app.state.tokens.issue({"sub": "test:scraper", "roles": ["service"]}, 600)
    return client.get("/metrics", headers={"authorization": f"Bearer {token}"})


def metrics(client: TestClient) -> dict[str, float]:
    """``/metrics`` as ``{'name{labels}': value}``."""
    response = scrape(client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        labels = match["labels"]
        samples[f"{match['name']}{{{labels}}}" if labels else match["name"]] = float(match["value"])
    return samples


def metric(client: TestClient, name: str) -> float:
    return metrics(client).get(name, 0.0)


def open_subscriptions(field: str) -> str:
    return f'shms_subscriptions_open{{field="{field}"}}'


def wait_for_metric(client: TestClient, name: str, value: float) -> None:
    """Until ``/metrics`` shows ``value`` for ``name`` (a subscription registered, say).

    The subscribe message has no acknowledgement in either protocol, so this is how a test
    knows the server is listening before it writes.
    """
    deadline = time.monotonic() + TIMEOUT
    while (current := metric(client, name)) != value:
        assert time.monotonic() < deadline, f"{name} stayed {current}, expected {value}"
