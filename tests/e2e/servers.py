"""Real uvicorn processes for tests that need more than one server sharing one Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEEP_ALIVE = 5  # seconds uvicorn keeps an idle connection open (passed explicitly below)
CLIENT_KEEP_ALIVE = 2  # well under KEEP_ALIVE: a client never reuses a socket the server is closing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30, connections: int = 100) -> httpx.AsyncClient:
        """A client whose idle connections expire before the server's do.

        With equal keep-alive times (httpx and uvicorn both default to 5 s) a request sent on a
        connection that has idled for just under 5 s can meet the server's close: the client sees
        ``ReadError`` for a request the server never read. Bursts after a quiet phase hit that.
        """
        limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=CLIENT_KEEP_ALIVE,
        )
        return httpx.AsyncClient(base_url=self.url, timeout=timeout, limits=limits)


@contextmanager
def servers(
    count: int, env: Mapping[str, str], ready_within: float = 60, args: Sequence[str] = ()
) -> Iterator[list[Server]]:
    """Start ``count`` uvicorn processes of ``app:app``; stop them (SIGTERM, then kill) after."""
    started: list[Server] = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port),
                 "--log-level", "warning", "--timeout-keep-alive", str(KEEP_ALIVE), *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            started.append(Server(port, process))
        deadline = time.monotonic() + ready_within
        for server in started:
            while True:
                if server.process.poll() is not None:
                    err = server.process.stderr.read().decode() if server.process.stderr else ""
                    raise RuntimeError(f"server on {server.port} exited: {err[-2000:]}")
                try:
                    if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server on {server.port} did not start")
                time.sleep(0.1)  # polling a starting process, not timing a result
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
