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
                 "--log-level", "warning", *args],
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
