"""The nastiest documents that fit in SHMS_MAX_TOKENS, against the limit analysis.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.limits_worst_case

For each document: the time ``schema.limits.check`` takes (best of ``--runs``), the steps it
counted, what it decided, and the time of a whole HTTP request (in process, through the full
ASGI stack, anonymous in production and as an analyst, whose cost ceiling is the highest);
for a document the analysis lets through, also the time graphql-core's own validation takes,
which is what the analysis exists to bound. Every document is checked to parse within the
token limit first: none is bigger than an attacker may send.
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
from dataclasses import dataclass, field
from typing import Any

import httpx
from graphql import DocumentNode, GraphQLSchema, parse, validate

from api.schema import schema as served
from app import create_app
from config import Settings
from schema.limits import Verdict, check

TOKENS = Settings().shms_max_tokens
ANALYST = ("analyst",)  # the highest cost ceiling: the analysis goes furthest for them


def _fill(make: Callable[[int], str], start: int = 1) -> str:
    """The largest ``make(n)`` that still parses within the token limit."""
    n, best = start, make(start)
    while True:
        candidate = make(n * 2)
        try:
            parse(candidate, max_tokens=TOKENS)
        except Exception:
            break
        n, best = n * 2, candidate
    step = n // 2
    while step:
        try:
            parse(make(n + step), max_tokens=TOKENS)
            n += step
            best = make(n)
        except Exception:
            pass
        step //= 2
    return best


def exponential(levels: int, leaf: str = "id name", on: str = "Department") -> str:
    defs = [f"fragment F0 on {on} {{ {leaf} }}"]
    defs += [f"fragment F{i} on {on} {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return " ".join(defs)


def documents() -> dict[str, tuple[str, dict[str, Any]]]:
    """name: (document, variables)."""
    docs: dict[str, tuple[str, dict[str, Any]]] = {}

    def nodes(inner: str) -> str:
        return f"{{ departments(first: 1) {{ nodes {{ {inner} }} }} }}"

    docs["exponential fragments x20"] = (nodes("...F20") + " " + exponential(20), {})
    docs["exponential fragments, longest"] = (
        _fill(lambda n: nodes(f"...F{n}") + " " + exponential(n)),
        {},
    )
    docs["exponential __typename fragments"] = (
        _fill(lambda n: nodes(f"...F{n}") + " " + exponential(n, "__typename")),
        {},
    )
    docs["exponential nested fragments"] = (
        _fill(
            lambda n: (
                nodes(f"...F{n}")
                + " fragment F0 on Department { id } "
                + " ".join(
                    f"fragment F{i} on Department {{ headDoctor {{ department {{ ...F{i - 1} }} }} "
                    f"headDoctor {{ department {{ ...F{i - 1} }} }} }}"
                    for i in range(1, n + 1)
                )
            )
        ),
        {},
    )
    docs["wide fragment spread by many unused"] = (
        _fill(
            lambda n: (
                nodes("...W")
                + " fragment W on Department { "
                + " ".join(f"a{i}: id" for i in range(25))
                + " headDoctor { id firstName lastName } } "
                + " ".join(f"fragment G{i} on Department {{ name ...W }}" for i in range(n))
            )
        ),
        {},
    )
    docs["wide fragment spread everywhere"] = (
        _fill(
            lambda n: (
                nodes(" ".join("headDoctor { department { ...W } }" for _ in range(n)))
                + " fragment W on Department { id name code description location createdAt }"
            )
        ),
        {},
    )
    docs["same field repeated (objects)"] = (_fill(lambda n: nodes("headDoctor { id } " * n)), {})
    docs["same field repeated (leaves)"] = (_fill(lambda n: nodes("id " * n)), {})
    docs["repeated nested k^d"] = (
        nodes(
            " ".join(
                ["headDoctor { department { " + " ".join(["headDoctor { id }"] * 12) + " } }"] * 12
            )
        ),
        {},
    )
    docs["distinct fragments side by side"] = (
        _fill(
            lambda n: (
                nodes(" ".join(f"...F{i}" for i in range(n)))
                + " "
                + " ".join(f"fragment F{i} on Department {{ id }}" for i in range(n))
            )
        ),
        {},
    )
    docs["fragments on every level, pairwise"] = (
        _fill(
            lambda n: (
                nodes(" ".join(f"...F{i}" for i in range(n)))
                + " "
                + " ".join(
                    f"fragment F{i} on Department {{ headDoctor {{ department {{ id }} }} }}"
                    for i in range(n)
                )
            )
        ),
        {},
    )
    docs["many aliases"] = (_fill(lambda n: nodes(" ".join(f"a{i}: id" for i in range(n)))), {})
    docs["deepest nesting the parser allows"] = (
        _fill(
            lambda n: nodes("headDoctor { department { " * n + "id" + " } }" * n),
        ),
        {},
    )
    docs["nested inline fragments"] = (
        _fill(lambda n: nodes("... on Department { " * n + "id" + " }" * n)),
        {},
    )
    docs["directives everywhere"] = (
        _fill(
            lambda n: nodes(" ".join("id @include(if: true) @skip(if: false)" for _ in range(n)))
        ),
        {},
    )
    docs["many operations, one big fragment"] = (
        _fill(
            lambda n: (
                " ".join(
                    f"query Q{i}($n: Int = {i + 1}) "
                    "{ departments(first: $n) { nodes { ...B } } }"
                    for i in range(n)
                )
                + " fragment B on Department { "
                + " ".join(f"doctors(first: $n) {{ nodes {{ id }} }} d{i}: id" for i in range(8))
                + " }"
            )
        ),
        {},
    )
    variables = {f"v{i}": i for i in range(6000)}  # the body stays under SHMS_MAX_BODY_BYTES
    docs["huge list of variables"] = (
        _fill(
            lambda n: (
                "query("
                + ", ".join(f"$v{i}: Int = {i}" for i in range(n))
                + ") { departments(first: $v0) { totalCount } }"
            )
        ),
        variables,
    )
    docs["fragment cycles"] = (
        _fill(
            lambda n: (
                nodes("...C0")
                + " "
                + " ".join(
                    f"fragment C{i} on Department {{ id ...C{(i + 1) % n} }}" for i in range(n)
                )
            )
        ),
        {},
    )
    docs["long argument lists"] = (
        _fill(
            lambda n: (
                "{ appointments(filter: {status: ["
                + ", ".join(["SCHEDULED"] * n)
                + "]}) { totalCount } }"
            )
        ),
        {},
    )
    return docs


def best(action: Callable[[], Any], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings) * 1000


@dataclass
class Row:
    name: str
    size: int
    steps: int
    decision: str
    analysis_ms: float
    validation_ms: float | None
    request_ms: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)


async def measure(http: httpx.AsyncClient, token: str, settings: Settings, runs: int) -> list[Row]:
    graphql_schema: GraphQLSchema = served._schema
    rows = []
    for name, (text, variables) in documents().items():
        document = parse(text, max_tokens=TOKENS)  # it fits: an attacker may send it

        def analyse(d: DocumentNode = document, v: dict[str, Any] = variables) -> Verdict:
            return check(graphql_schema, d, settings, variables=v, roles=ANALYST)

        def validated(d: DocumentNode = document) -> object:
            return validate(graphql_schema, d)

        verdict = analyse()
        row = Row(
            name,
            len(text.encode()),
            verdict.steps,
            ",".join(sorted({str((e.extensions or {})["code"]) for e in verdict.errors})) or "ok",
            best(analyse, runs),
            None if verdict.errors else best(validated, 3),
        )
        for who, headers in (("anonymous", {}), ("analyst", {"authorization": f"Bearer {token}"})):
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                response = await http.post(
                    "/graphql", json={"query": text, "variables": variables}, headers=headers
                )
                timings.append((time.perf_counter() - start) * 1000)
            row.request_ms[who] = statistics.median(timings)
            codes = {e["extensions"]["code"] for e in response.json().get("errors", [])}
            row.answers[who] = ",".join(sorted(codes)) or "ok"
        rows.append(row)
    return rows


async def main(runs: int) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(
        shms_env="production",
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongodb_db=f"bench_{uuid.uuid4().hex[:8]}",
        shms_seed_demo=False,
        shms_state_dir=".state",
        shms_log_level="WARNING",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        token = app.state.tokens.issue({"sub": "bench", "roles": list(ANALYST)}, 3600)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            rows = await measure(http, token, settings, runs)

    print(
        f"SHMS_MAX_TOKENS={TOKENS}, SHMS_MAX_ANALYSIS_STEPS={settings.shms_max_analysis_steps}; "
        f"analysis: best of {runs}; validation (when the analysis lets a document through): "
        "best of 3; request: median of 3 HTTP POSTs in process, production"
    )
    print(
        f"{'document':<38} {'bytes':>6} {'steps':>6} {'analysis':>9} {'validate':>9} "
        f"{'anonymous':>10} {'analyst':>9}  analysis decides (analyst is answered)"
    )
    for row in rows:
        validation = "-" if row.validation_ms is None else f"{row.validation_ms:.2f}ms"
        print(
            f"{row.name:<38} {row.size:>6} {row.steps:>6} {row.analysis_ms:7.2f}ms "
            f"{validation:>9} {row.request_ms['anonymous']:8.2f}ms "
            f"{row.request_ms['analyst']:7.2f}ms  {row.decision} ({row.answers['analyst']})"
        )
    slowest = max(rows, key=lambda row: row.analysis_ms)
    refused = [row for row in rows if row.decision != "ok"]
    slowest_refusal = max(refused, key=lambda row: max(row.request_ms.values()))
    print(f"slowest analysis: {slowest.name}, {slowest.analysis_ms:.2f} ms")
    print(
        f"slowest refusal (whole request): {slowest_refusal.name}, "
        f"{max(slowest_refusal.request_ms.values()):.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.runs))
