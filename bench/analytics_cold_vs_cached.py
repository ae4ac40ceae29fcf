"""Analytics aggregates over a large facility: computed (cold) versus served from the result cache.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.analytics_cold_vs_cached
    .venv/bin/python -m bench.analytics_cold_vs_cached --appointments 2000   # quick smoke run

The app runs in process on the embedded store (mongomock), filled by ``demo.bulk.seed_bulk``
with ``--appointments`` appointments over 2025-2026, and the real Redis holding the result
cache. Every aggregate runs over the whole two years, for all departments and for one, as an
administrator (full answers) and as an analyst (de-identified: a cache scope of its own),
through the full ASGI stack (authentication, limits, policy, audit).

Cold: the generations of the collections the aggregates read are bumped first (what any write
does), so the answer is computed by the MongoDB pipeline; the response must say
``cached: false``. Cached: the same request ``--repeats`` times more, each ``cached: true``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from app import create_app
from cache import runtime
from config import Settings
from demo import ids
from demo.bulk import seed_bulk

RANGE = {"from": "2025-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
DEPARTMENT = str(ids.department_id(1))
INPUTS = ("appointments", "treatment_plans", "doctors", "equipment", "billing_accounts")
"""Every collection an aggregate reads: bumping them makes the next answer a computed one."""

HEADER = "cached deidentified suppressedGroups"
SELECTIONS: dict[str, tuple[str, str]] = {
    "appointmentsPerDoctor": (
        "",
        "groups { doctorId appointments completed cancelled noShows patients suppressed }",
    ),
    "appointmentsOverTime (MONTH)": (
        "interval: MONTH",
        "groups { label start end appointments patients suppressed }",
    ),
    "appointmentsOverTime (WEEK)": (
        "interval: WEEK",
        "groups { label start end appointments patients suppressed }",
    ),
    "conditionsBySpecialty": (
        "top: 5",
        "groups { specialty patients suppressed"
        " conditions { code description plans patients suppressed } }",
    ),
    "appointmentsPerPatient": (
        "",
        "overall { appointments patients average suppressed }"
        " groups { departmentId appointments patients average suppressed }",
    ),
    "noShowRate": (
        "",
        "overall { noShows attended rate patients suppressed }"
        " groups { departmentId noShows attended rate patients suppressed }",
    ),
    "equipmentUtilisation": (
        "",
        "groups { departmentId devices availableMinutes bookedMinutes utilisation"
        " patients suppressed }",
    ),
    "revenue": (
        "",
        "groups { departmentId month currency charged outstanding patients suppressed }",
    ),
}


def query(name: str) -> str:
    field = name.split(" ")[0]
    more, selection = SELECTIONS[name]
    args = ", ".join(a for a in ("filter: $f", more) if a)
    body = f"{field}({args}) {{ {HEADER} {selection} }}"
    return f"query($f: AnalyticsFilter!) {{ analytics {{ {body} }} }}"


@dataclass
class Row:
    aggregate: str
    department: str
    viewer: str
    cold: list[float]
    cached: list[float]
    groups: int

    @property
    def cold_ms(self) -> float:
        return statistics.median(self.cold) * 1000

    @property
    def cached_ms(self) -> float:
        return statistics.median(self.cached) * 1000


def chosen(only: str, skip: str) -> list[str]:
    """The rows of SELECTIONS named (by their GraphQL field) in ``only`` and not in ``skip``."""
    names = {n.split(" ")[0] for n in SELECTIONS}
    wanted = {w for w in only.split(",") if w} or names
    unwanted = {w for w in skip.split(",") if w}
    unknown = (wanted | unwanted) - names
    if unknown:
        raise SystemExit(f"unknown aggregates: {', '.join(sorted(unknown))}")
    return [n for n in SELECTIONS if n.split(" ")[0] in wanted - unwanted]


async def main(appointments: int, repeats: int, cold_runs: int, aggregates: list[str]) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongodb_db=f"bench_{uuid.uuid4().hex[:8]}",
        shms_seed_demo=False,
        shms_result_cache=True,
        shms_rate_limit_enabled=False,
        shms_jobs_enabled=False,  # the scheduler would scan 100,000 appointments mid-run
        shms_operation_timeout_seconds=3600,
        shms_state_dir=".state",
        shms_log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        results: Any = runtime.current().results
        assert results is not None, "the result cache needs a real Redis (REDIS_URL)"
        try:
            start = time.perf_counter()
            counts = await seed_bulk(appointments)
            seeded = time.perf_counter() - start
            runs = f"{cold_runs} cold run(s), {repeats} cached runs per row"
            _describe(counts, seeded, settings, runs)
            rows = await _measure(app, results, aggregates, repeats, cold_runs)
        finally:
            await _drop_entries(results)  # also when interrupted: leave nothing in Redis

    cold_total = sum(r.cold_ms for r in rows)
    cached_total = sum(r.cached_ms for r in rows)
    print(
        f"{'all rows (sum)':<29} {'':<4} {'':<7} {'':>6} {cold_total:>9.1f} "
        f"{cached_total:>13.1f} {cold_total / cached_total:>10.1f}x"
    )


async def _measure(
    app: Any, results: Any, aggregates: list[str], repeats: int, cold_runs: int
) -> list[Row]:
    rows: list[Row] = []
    tokens = {
        role: app.state.tokens.issue({"sub": f"bench:{role}", "roles": [role]}, 3600)
        for role in ("admin", "analyst")
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", timeout=None
    ) as http:

        async def once(document: str, variables: dict[str, Any], token: str) -> tuple[float, Any]:
            headers = {"authorization": f"Bearer {token}"}
            body = {"query": document, "variables": variables}
            began = time.perf_counter()
            response = await http.post("/graphql", json=body, headers=headers)
            elapsed = time.perf_counter() - began
            answer = response.json()
            assert "errors" not in answer, response.text
            return elapsed, next(iter(answer["data"]["analytics"].values()))

        for name in aggregates:
            for department in (None, DEPARTMENT):
                variables = {"f": {**RANGE, "departmentId": department}}
                for viewer, token in tokens.items():
                    cold, cached = [], []
                    report: Any = None
                    for _ in range(cold_runs):
                        for collection in INPUTS:
                            await results.touched(collection)
                        elapsed, report = await once(query(name), variables, token)
                        assert report["cached"] is False, (name, viewer)
                        assert report["deidentified"] is (viewer == "analyst")
                        cold.append(elapsed)
                    for _ in range(repeats):
                        elapsed, again = await once(query(name), variables, token)
                        assert again["cached"] is True, (name, viewer)
                        cached.append(elapsed)
                    where = "all" if department is None else "one"
                    rows.append(Row(name, where, viewer, cold, cached, len(report["groups"])))
                    _print(rows[-1])
    return rows


def _describe(counts: dict[str, int], seeded: float, settings: Settings, runs: str) -> None:
    print(
        f"{counts['appointments']} appointments, {counts['patients']} patients, "
        f"{counts['treatment_plans']} treatment plans, {counts['billing_accounts']} billing "
        f"accounts, {counts['doctors']} doctors, {counts['equipment']} devices"
    )
    print(
        f"seeded in {seeded:.1f} s (demo.bulk, embedded store); Redis at {settings.redis_url}; "
        f"{runs}; range {RANGE['from']} .. {RANGE['to']}; 'one' = department {DEPARTMENT}"
    )
    print(
        f"{'aggregate':<29} {'dept':<4} {'viewer':<7} {'groups':>6} {'cold ms':>9} "
        f"{'cached p50 ms':>13} {'cold/cached':>11}",
        flush=True,
    )


def _print(row: Row) -> None:
    """Rows are printed as they are measured: at 100,000 appointments a run takes minutes."""
    print(
        f"{row.aggregate:<29} {row.department:<4} {row.viewer:<7} {row.groups:>6} "
        f"{row.cold_ms:>9.1f} {row.cached_ms:>13.1f} {row.cold_ms / row.cached_ms:>10.1f}x",
        flush=True,
    )


async def _drop_entries(results: Any) -> None:
    """Leave nothing behind in Redis: this run's namespace is never used again."""
    redis, pattern = results.redis, f"{results.namespace}:*"
    batch = [name async for name in redis.scan_iter(match=pattern, count=500)]
    for first in range(0, len(batch), 500):
        await redis.delete(*batch[first : first + 500])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20, help="cached runs per row")
    parser.add_argument("--cold-runs", type=int, default=1, help="cold runs per row (median)")
    parser.add_argument("--only", default="", help="comma-separated aggregates to run")
    parser.add_argument("--skip", default="", help="comma-separated aggregates to leave out")
    args = parser.parse_args()
    aggregates = chosen(args.only, args.skip)
    asyncio.run(main(args.appointments, args.repeats, args.cold_runs, aggregates))
