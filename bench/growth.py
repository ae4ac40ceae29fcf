"""How four everyday requests grow with the number of patients: the measured curve of
docs/scaling.md.

    .venv/bin/python -m bench.growth --patients 10000,100000
    MONGODB_URL=mongodb://127.0.0.1:27017/?directConnection=true \
        .venv/bin/python -m bench.growth --patients 10000,100000

Each size gets a fresh database filled by ``demo.bulk.seed_bulk`` (five appointments per
patient, the bulk facility's doctors and devices), then the app runs in process and each
request goes through the whole ASGI stack (token, policy, audit) as an admin:

- ``search``: ``patients(search: <a last name>, first: 20)``, the front desk's look-up;
- ``appointments``: one patient's ``appointments(first: 20)`` page, from ``patient(id)``;
- ``booking``: ``scheduleAppointment`` of a free slot in 2027 (after the bulk data's two
  years, so nothing overlaps): the reservation path, a write;
- ``board``: ``departmentEquipmentStatus``, a department's live equipment board (Redis).

Without ``MONGODB_URL`` the store is the embedded one (mongomock): it has no indexes, so every
filtered read scans its collection in Python; the curve then shows which requests touch a large
collection, not what MongoDB would take. ``REDIS_URL`` defaults to in-process fakeredis.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app import create_app
from cache import equipment as live_equipment
from config import Settings
from demo.bulk import seed_bulk
from demo.ids import department_id, doctor_id, patient_id

SEARCH = "query($s: String!) { patients(search: $s, first: 20) { nodes { id lastName } } }"
APPOINTMENTS = """query($id: ID!) { patient(id: $id) {
  appointments(first: 20) { nodes { id startAt status doctor { lastName } } } } }"""
BOOK = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id status } }"""
BOARD = "query($d: ID!) { departmentEquipmentStatus(departmentId: $d) { id name status } }"

FIRST_FREE_DAY = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
"""A Monday after the bulk data's last day: bookings here overlap no bulk appointment."""


def _settings(url: str, redis_url: str) -> Settings:
    return Settings(
        mongodb_url=url,
        redis_url=redis_url,
        mongodb_db=f"growth_{uuid.uuid4().hex[:8]}",
        shms_seed_demo=False,
        shms_rate_limit_enabled=False,
        shms_jobs_enabled=False,  # the scheduler would scan every appointment mid-run
        shms_operation_timeout_seconds=3600,
        shms_state_dir=".state",
        shms_log_level="WARNING",
    )


async def _time(http: httpx.AsyncClient, document: str, variables: dict[str, Any]) -> float:
    began = time.perf_counter()
    response = await http.post("/graphql", json={"query": document, "variables": variables})
    elapsed = time.perf_counter() - began
    answer = response.json()
    assert "errors" not in answer, response.text
    return elapsed


async def measure(patients: int, repeats: int, url: str, redis_url: str) -> dict[str, Any]:
    """Seed ``patients`` patients into a fresh database and time each request ``repeats``
    times; the medians and 95th percentiles in milliseconds."""
    settings = _settings(url, redis_url)
    app = create_app(settings)
    row: dict[str, Any] = {"patients": patients}
    async with app.router.lifespan_context(app):
        began = time.perf_counter()
        counts = await seed_bulk(patients * 5)
        row["seed_s"] = time.perf_counter() - began
        row["appointments"] = counts["appointments"]
        live = live_equipment.current()
        if live is not None:  # seeded after start-up: rebuild the board as a restart would
            await live.rebuild()
        gc.collect()
        token = app.state.tokens.issue({"sub": "bench:growth", "roles": ["admin"]}, 3600)
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers, timeout=None
        ) as http:
            names = await _last_names(http, repeats)
            timings: dict[str, list[float]] = {k: [] for k in ("search", "page", "book", "board")}
            doctors = counts["doctors"]
            for n in range(repeats):
                timings["search"].append(await _time(http, SEARCH, {"s": names[n]}))
                someone = str(patient_id(1 + (n * 7919) % patients))
                timings["page"].append(await _time(http, APPOINTMENTS, {"id": someone}))
                start = FIRST_FREE_DAY + timedelta(days=n // 16, minutes=30 * (n % 16))
                booking = {
                    "patientId": someone,
                    "doctorId": str(doctor_id(1 + n % doctors)),
                    "startAt": start.isoformat(),
                    "endAt": (start + timedelta(minutes=20)).isoformat(),
                    "reason": "Follow-up",
                }
                timings["book"].append(await _time(http, BOOK, {"input": booking}))
                unit = str(department_id(1 + n % 8))
                timings["board"].append(await _time(http, BOARD, {"d": unit}))
        await app.state.mongo.drop_database(settings.mongodb_db)
    for name, values in timings.items():
        values.sort()
        row[f"{name}_p50"] = statistics.median(values) * 1000
        row[f"{name}_p95"] = values[max(0, round(0.95 * len(values)) - 1)] * 1000
    row["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


async def _last_names(http: httpx.AsyncClient, count: int) -> list[str]:
    """Last names that exist, to search for (the first page of patients, cycled)."""
    document = "{ patients(first: 100) { nodes { lastName } } }"
    response = await http.post("/graphql", json={"query": document})
    names = [p["lastName"] for p in response.json()["data"]["patients"]["nodes"]]
    return [names[n % len(names)] for n in range(count)]


HEADER = (
    f"{'patients':>9} {'appts':>9} {'seed s':>7} {'search':>13} {'appts page':>13} "
    f"{'booking':>13} {'board':>13} {'max RSS MB':>10}"
)


def _line(row: dict[str, Any]) -> str:
    cells = [f"{row[k + '_p50']:6.1f}/{row[k + '_p95']:<6.1f}" for k in ("search", "page", "book")]
    cells.append(f"{row['board_p50']:6.1f}/{row['board_p95']:<6.1f}")
    return (
        f"{row['patients']:>9,} {row['appointments']:>9,} {row['seed_s']:>7.0f} "
        + " ".join(f"{c:>13}" for c in cells)
        + f" {row['rss_mb']:>10.0f}"
    )


async def main(sizes: list[int], repeats: int) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = os.environ.get("MONGODB_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    store = url or "embedded (mongomock, no indexes)"
    print(f"store: {store}; Redis: {redis_url or 'embedded (fakeredis)'}; {repeats} runs each")
    print("milliseconds, p50/p95, one request at a time through the ASGI app")
    print(HEADER, flush=True)
    for patients in sizes:
        print(_line(await measure(patients, repeats, url, redis_url)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--repeats", type=int, default=20, help="runs of each request")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.patients.split(",")], args.repeats))
