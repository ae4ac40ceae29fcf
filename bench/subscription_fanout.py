"""Events per second and delivery latency from a mutation to many subscribers on one worker.

    .venv/bin/python -m bench.subscription_fanout --subscribers 500 --events 20
    .venv/bin/python -m bench.subscription_fanout --subscribers 1000 --events 100 --rate 10

Without ``--rate`` each change waits until every subscriber holds the previous one (latency per
event, nothing queued); with ``--rate N`` changes go out at N per second regardless, as the
issue's target puts it (1,000 subscribers at 10 events/s, publish -> receive p99 <= 150 ms).

Starts one uvicorn worker (embedded store, the real Redis at REDIS_URL carrying the events),
opens the subscribers over WebSocket (graphql-transport-ws), each watching one department's
equipment, then changes a device's status ``--events`` times over HTTP. Latency is measured from
just before each mutation is sent to each subscriber's receipt, on this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import websockets

from auth.tokens import TokenService
from config import Settings
from tests.e2e.servers import Server, servers

DEPARTMENT = "6955b9000100000000000001"
SUBSCRIPTION = """subscription($d: ID) { equipmentStatusChanged(departmentId: $d) {
  change equipmentId equipment { status } } }"""


async def subscriber(
    url: str,
    token: str,
    ready: asyncio.Event,
    arrivals: list[float],
    expect: int,
    progress: asyncio.Condition,
) -> None:
    protocols: Any = ["graphql-transport-ws"]
    async with websockets.connect(url, subprotocols=protocols, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": SUBSCRIPTION, "variables": {"d": DEPARTMENT}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        ready.set()
        while len(arrivals) < expect:
            message = json.loads(await ws.recv())
            if message["type"] == "next":
                arrivals.append(time.perf_counter())
                async with progress:
                    progress.notify_all()


def _all_hold(arrivals: list[list[float]], n: int) -> bool:
    return min(len(a) for a in arrivals) > n


async def wait_open(server: Server, count: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            text = (await client.get(f"{server.url}/metrics")).text
            open_now = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("shms_subscriptions_open")
            )
            if open_now >= count:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError("subscriptions did not open")


async def run(server: Server, subscribers: int, events: int, rate: float = 0.0) -> None:
    async with server.client() as http:
        signed = await http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "admin", "password": "demo-admin-pass"},
        )
        token = signed.json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        found = await http.post(
            "/graphql",
            headers=headers,
            json={
                "query": "query($d: ID) { equipmentList(departmentId: $d, first: 1) {"
                " nodes { id status allowedTransitions } } }",
                "variables": {"d": DEPARTMENT},
            },
        )
        device = found.json()["data"]["equipmentList"]["nodes"][0]
        states = [device["status"], device["allowedTransitions"][0]]

        arrivals: list[list[float]] = [[] for _ in range(subscribers)]
        url = f"ws://127.0.0.1:{server.port}/graphql"
        tasks = []
        progress = asyncio.Condition()
        for i in range(subscribers):
            ready = asyncio.Event()
            task = subscriber(url, token, ready, arrivals[i], events, progress)
            tasks.append(asyncio.create_task(task))
            await ready.wait()
        await wait_open(server, subscribers)

        sent: list[float] = []
        mutation = (
            "mutation($id: ID!, $s: EquipmentStatus!) {"
            " updateEquipmentStatus(id: $id, status: $s) { status } }"
        )
        start = time.perf_counter()
        for n in range(events):
            target = states[(n + 1) % 2]
            if rate:
                await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            sent.append(time.perf_counter())
            response = await http.post(
                "/graphql",
                headers=headers,
                json={"query": mutation, "variables": {"id": device["id"], "s": target}},
            )
            assert "errors" not in response.json(), response.text
            if not rate:
                # The next change waits for every subscriber to hold this one, so latencies
                # are per event rather than queueing behind each other.
                async with progress:
                    await progress.wait_for(partial(_all_hold, arrivals, n))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)

    latencies = [(a[n] - sent[n]) * 1000 for a in arrivals for n in range(events)]
    elapsed = max(a[-1] for a in arrivals) - sent[0]
    cuts = statistics.quantiles(latencies, n=100)
    pace = f" at {rate:g}/s" if rate else ", each after the last was delivered"
    print(f"{subscribers} subscribers on one worker, {events} status changes{pace}")
    print(
        f"deliveries: {len(latencies)} in {elapsed:.2f} s = {len(latencies) / elapsed:.0f} events/s"
    )
    print(f"latency mutation -> subscriber: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0, help="changes per second (0: lockstep)")
    args = parser.parse_args()
    state = Path(".state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))
    env = {
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "MONGODB_DB": f"bench_{uuid.uuid4().hex[:8]}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "50",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_METRICS_PUBLIC": "true",  # scraped without a token
    }
    # As ``shms serve`` runs it (SHMS_WS_COMPRESSION off by default).
    with servers(1, env, args=["--ws-per-message-deflate", "false"]) as (server,):
        asyncio.run(run(server, args.subscribers, args.events, args.rate))


if __name__ == "__main__":
    main()
