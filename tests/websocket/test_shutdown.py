"""Graceful shutdown: open subscriptions complete and their connections close with 1001, in the
app and under a real ``shms serve`` process sent SIGTERM; and opening and closing many
subscriptions leaves nothing behind."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from app import WS_GOING_AWAY, create_app
from auth.tokens import TokenService
from config import Settings
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


# -- a real server process -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SHMS = Path(sys.executable).with_name("shms")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``shms serve`` on a free port, embedded, unseeded; its output is read after it exits."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHMS_", "MONGODB", "REDIS"))}
    env |= {"SHMS_SEED_DEMO": "false", "SHMS_STATE_DIR": str(tmp_path / "state")}
    env |= {"SHMS_METRICS_PUBLIC": "true"}  # scraped without a token
    command = [str(SHMS), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{base}/health") is None:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "shms serve did not answer within 60 s"
            time.sleep(0.1)
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()


def _open_subscriptions(base: str) -> float:
    text = _get(f"{base}/metrics") or ""
    sample = f'shms_subscriptions_open{{field="{FIELD}"}} '
    lines = [line for line in text.splitlines() if line.startswith(sample)]
    return float(lines[0].removeprefix(sample)) if lines else 0.0


def test_a_real_server_completes_subscriptions_then_closes_1001_on_sigterm(
    served: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    server, base = served
    settings = Settings(mongodb_url="", redis_url="", shms_state_dir=str(tmp_path / "state"))
    token = TokenService.from_settings(settings).issue({"sub": "test:ops", "roles": ["admin"]}, 600)
    url = base.replace("http", "ws") + "/graphql"
    with ExitStack() as stack:
        sockets = []
        for protocol in PROTOCOLS:
            ws = stack.enter_context(connect(url, subprotocols=[Subprotocol(protocol)]))
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            ws.send(json.dumps(init))
            assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
            kind = "subscribe" if protocol == PROTOCOLS[0] else "start"
            ws.send(json.dumps({"type": kind, "id": "board", "payload": {"query": EVENTS}}))
            sockets.append(ws)
        deadline = time.monotonic() + 10
        while _open_subscriptions(base) != len(sockets):
            assert time.monotonic() < deadline, "the subscriptions never opened"
            time.sleep(0.05)

        server.send_signal(signal.SIGTERM)
        for ws in sockets:
            assert json.loads(ws.recv(timeout=10)) == {"type": "complete", "id": "board"}
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == WS_GOING_AWAY  # not uvicorn's 1012
    # uvicorn raises the signal again once shut down: the process ends as SIGTERM asked.
    assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    output = (tmp_path / "server.log").read_text()
    assert "Traceback" not in output and "ERROR" not in output, output


GRAPHQL_WS_CLIENT = """
const { createRequire } = require("node:module");
const { createClient } = createRequire(process.env.SHMS_ROOT + "/package.json")("graphql-ws");
const say = (event) => console.log(JSON.stringify(event));
const client = createClient({
  url: process.env.SHMS_URL,
  connectionParams: { Authorization: `Bearer ${process.env.SHMS_TOKEN}` },
  retryAttempts: 0,
  // Not lazy: a lazy client closes the socket itself (1000) once its last subscription
  // completes, racing the server's 1001 that this test is about.
  lazy: false,
  on: { closed: (event) => say({ closed: event.code, reason: event.reason }) },
});
client.subscribe(
  { query: "subscription { equipmentStatusChanged { change equipmentId } }" },
  { next: () => say("next"), error: (error) => say({ error: String(error) }),
    complete: () => say("complete") },
);
"""


def _node() -> list[str] | None:
    """Node.js with a global WebSocket (a flag before Node 22), and graphql-ws installed
    (``make assets``); None when either is missing."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "graphql-ws").is_dir():
        return None
    major = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    return [node] if int(major.stdout.strip().lstrip("v").split(".")[0]) >= 22 else [
        node, "--experimental-websocket", "--no-warnings"
    ]  # fmt: skip


def test_a_graphql_ws_client_sees_complete_then_1001_on_sigterm(
    served: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    """The standard JavaScript client, which reads its socket at its own pace: the server
    waits for it to answer the close instead of resetting a socket it still writes to."""
    node = _node()
    if node is None:
        pytest.skip("needs node and node_modules/graphql-ws (make assets)")
    server, base = served
    settings = Settings(mongodb_url="", redis_url="", shms_state_dir=str(tmp_path / "state"))
    token = TokenService.from_settings(settings).issue({"sub": "test:ops", "roles": ["admin"]}, 600)
    script = tmp_path / "client.cjs"
    script.write_text(GRAPHQL_WS_CLIENT)
    env = {**os.environ, "SHMS_ROOT": str(ROOT), "SHMS_TOKEN": token,
           "SHMS_URL": base.replace("http", "ws") + "/graphql"}  # fmt: skip
    client = subprocess.Popen([*node, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while _open_subscriptions(base) != 1:
            assert client.poll() is None, client.communicate()
            assert time.monotonic() < deadline, "the subscription never opened"
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        output, _ = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    events = [json.loads(line) for line in output.splitlines()]
    assert events == ["complete", {"closed": WS_GOING_AWAY, "reason": "Server shutting down"}]
