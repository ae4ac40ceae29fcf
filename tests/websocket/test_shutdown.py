"""Graceful shutdown: open subscriptions complete and their connections close with 1001; and
opening and closing many subscriptions leaves nothing behind."""

from __future__ import annotations

import logging
import tracemalloc
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import WS_GOING_AWAY, create_app
from events.bus import LocalBus
from tests.conftest import token_for
from tests.events.live import PROTOCOLS, open_subscriptions, subscriber, wait_for_metric

FIELD = "equipmentStatusChanged"
EVENTS = "subscription { equipmentStatusChanged { change equipmentId } }"


async def _no_second_shutdown() -> None:
    """The lifespan already shut down (below); exiting the TestClient must not ask again."""


def test_shutdown_completes_open_subscriptions_and_closes_1001(
    settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(settings)) as client, ExitStack() as sockets:
        token = token_for(client.app, roles=["admin"])
        lives = [sockets.enter_context(subscriber(client, p, token)) for p in PROTOCOLS]
        for n, live in enumerate(lives, start=1):
            live.subscribe("board", EVENTS)
            wait_for_metric(client, open_subscriptions(FIELD), n)

        # Exiting a TestClient runs the lifespan shutdown and then stops its event loop, which
        # first waits for every WebSocket session to end; so this test runs that same shutdown
        # step while the sockets are still open, and reads what they were sent.
        assert client.portal is not None
        client.portal.call(client.wait_shutdown)
        monkeypatch.setattr(client, "wait_shutdown", _no_second_shutdown)

        for live in lives:
            live.completed("board")
            with pytest.raises(WebSocketDisconnect) as closed:
                live.receive(5.0)
            assert closed.value.code == WS_GOING_AWAY
        app: Any = client.app
        assert app.state.bus.subscriber_count == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_thousand_subscriptions_leave_nothing_behind() -> None:
    bus = LocalBus()

    async def open_and_close(count: int) -> None:
        for _ in range(count):
            stream = bus.subscribe(["medical_equipment"])
            await stream.aclose()

    await open_and_close(50)  # warm-up: first-use allocations are not a leak
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        await open_and_close(1000)
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bus.subscriber_count == 0
    assert end - start < 20_000, f"{end - start} bytes still held after 1,000 subscriptions"
