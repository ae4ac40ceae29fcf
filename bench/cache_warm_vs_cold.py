"""Latency of a nested page served with the document cache warm versus cold, in one run.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.cache_warm_vs_cold

The app runs in process on the embedded store seeded with the demo facility; requests go
through the full ASGI stack (authentication, policy, audit). Cold: the cache is emptied before
each request, so every relation level is a Redis miss plus a MongoDB read and a backfill. Warm:
the same request again, served from Redis.

Two shapes: fifty appointments by id with their relations (every level a by-id batch, which
is what the cache holds) and a list page of 100 (the list query itself is not cached: with the
embedded store it scans the collection in Python and dominates both timings).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from typing import Any

import httpx

from app import create_app
from cache import runtime
from config import Settings

NESTED = """id startAt status patient { lastName dateOfBirth } equipment { name status }
  doctor { lastName specialty department { name } }"""
PAGE = "{ appointments(first: 100) { nodes { " + NESTED + " } } }"


def by_ids(ids: list[str]) -> str:
    """Fifty appointments fetched by id (aliases): every level is a by-id batch the cache holds."""
    fields = " ".join(f'a{i}: appointment(id: "{id}") {{ {NESTED} }}' for i, id in enumerate(ids))
    return "{ " + fields + " }"


async def main(runs: int, patients: int) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongodb_db=f"bench_{uuid.uuid4().hex[:8]}",
        shms_demo_patients=patients,
        shms_state_dir=".state",
        shms_log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        cache: Any = runtime.current().cache
        assert cache is not None, "the cache needs a real Redis (REDIS_URL)"
        token = app.state.tokens.issue({"sub": "bench", "roles": ["admin"]}, 3600)
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def once(query: str) -> float:
                start = time.perf_counter()
                response = await http.post("/graphql", json={"query": query}, headers=headers)
                elapsed = time.perf_counter() - start
                assert "errors" not in response.json(), response.text
                return elapsed

            page = await http.post("/graphql", json={"query": PAGE}, headers=headers)
            ids = [n["id"] for n in page.json()["data"]["appointments"]["nodes"][:50]]
            results = {}
            for name, query in (("50 by id", by_ids(ids)), ("list page of 100", PAGE)):
                cold, warm = [], []
                for _ in range(runs):
                    await cache.clear()
                    cold.append(await once(query))
                    warm.append(await once(query))
                results[name] = (cold, warm)
        await cache.clear()

    print(
        f"{runs} runs each, {patients} demo patients, embedded store, Redis at {settings.redis_url}"
    )
    for name, (cold, warm) in results.items():
        c50, w50 = statistics.median(cold) * 1000, statistics.median(warm) * 1000
        print(
            f"{name:>18}: cold p50 {c50:7.1f} ms | warm p50 {w50:7.1f} ms | "
            f"cold/warm ratio {c50 / w50:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.patients))
