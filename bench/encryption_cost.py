"""What encryption at rest costs on the nested read, sealed against clear, in one run.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.encryption_cost

The app runs in process (full ASGI stack: authentication, policy, audit, document cache) on
the embedded store seeded with the demo facility, alternately with every sealed field
sealed (as shipped) and stored as given (``crypto.fields.seal_value`` replaced by the
identity for that phase: the same code paths, blind indexes included, with no encryption and so
nothing to decrypt). The read is a page of 100 appointments
with their reason and their patients' names, national id and contact, each patient's
allergies and treatment plans' diagnoses: every level holds sealed fields.

Sealed reads are measured twice: with the per-process memory of opened plaintexts warm (a hot
record: BSON decoding only) and emptied before each request (every field decrypted again).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from app import create_app
from cache import runtime
from config import Settings
from crypto import fields

QUERY = """{ appointments(first: 100) { nodes { id startAt status reason
  patient { id firstName lastName nationalId contact { email phone } }
  doctor { id lastName department { id name } } } } }"""


async def phase(sealed: bool, runs: int, patients: int) -> dict[str, list[float]]:
    real_seal = fields.seal_value
    if not sealed:  # values are stored as given: nothing to open on the way back
        fields.seal_value = lambda collection, name, doc_id, value: value
    settings = Settings(
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongodb_db=f"bench_{uuid.uuid4().hex[:8]}",
        shms_demo_patients=patients,
        shms_state_dir=".state",
        shms_log_level="WARNING",
        shms_rate_limit_enabled=False,
    )
    app = create_app(settings)
    timings: dict[str, list[float]] = {}
    try:
        async with app.router.lifespan_context(app):
            token = app.state.tokens.issue({"sub": "bench", "roles": ["admin"]}, 3600)
            headers = {"authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

                async def once(before: Callable[[], object]) -> float:
                    before()
                    start = time.perf_counter()
                    response = await http.post("/graphql", json={"query": QUERY}, headers=headers)
                    elapsed = time.perf_counter() - start
                    body = response.json()
                    assert "errors" not in body, response.text
                    assert len(body["data"]["appointments"]["nodes"]) == 100
                    return elapsed

                for _ in range(3):  # warm the document cache and the plaintext memory
                    await once(lambda: None)
                label = "sealed" if sealed else "clear"
                timings[label] = [await once(lambda: None) for _ in range(runs)]
                if sealed:
                    timings["sealed, decrypting all"] = [
                        await once(fields._opened.cache_clear) for _ in range(runs)
                    ]
            cache: Any = runtime.current().cache
            if cache is not None:  # leave no clear copy of the demo behind in Redis
                await cache.clear()
    finally:
        fields.seal_value = real_seal
    return timings


async def main(runs: int, patients: int, rounds: int) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: dict[str, list[float]] = {}
    for n in range(rounds):  # alternated, so load from elsewhere and order fall on both alike
        for sealed in (False, True) if n % 2 == 0 else (True, False):
            for label, values in (await phase(sealed, runs, patients)).items():
                results.setdefault(label, []).extend(values)
    clear = statistics.median(results["clear"]) * 1000
    print(
        f"{rounds} rounds x {runs} reads of 100 appointments, {patients} demo patients, warm cache"
    )
    for label, values in results.items():
        p50 = statistics.median(values) * 1000
        print(f"{label:>24}: p50 {p50:7.1f} ms | / clear {p50 / clear:5.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.patients, args.rounds))
