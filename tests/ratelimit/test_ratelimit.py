"""Cost-weighted rate limits per viewer and per address, in a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import schema.ratelimit as ratelimit
from cache.connection import connect_redis
from schema import fhir_export
from tests.limits.conftest import bearer, measured

LIGHT = "{ departments(first: 1) { totalCount } }"
HEAVY = "{ departments(first: 10) { totalCount nodes { id name code } } }"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit, "clock", fake)
    return fake


def _settings(settings: Any, **update: Any) -> Any:
    return settings.model_copy(
        update={
            "shms_cache_prefix": f"rl-{uuid.uuid4().hex[:12]}",
            "shms_rate_limit_points": 100,
            "shms_rate_limit_address_points": 1000,
            "shms_rate_limit_window_seconds": 60,
            **update,
        }
    )


@pytest.fixture
async def limited(settings: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    from app import create_app

    overrides = getattr(request, "param", {})
    application = create_app(_settings(settings, **overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as c:
            c.app = application  # type: ignore[attr-defined]
            yield c


async def _post(http: Any, query: str, headers: dict[str, str]) -> tuple[httpx.Response, int]:
    response, ops = await measured(http.post("/graphql", json={"query": query}, headers=headers))
    assert response.status_code == 200, response.text
    return response, ops


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["RateLimit-Remaining"])


def _codes(response: httpx.Response) -> set[str]:
    return {e["extensions"]["code"] for e in response.json().get("errors", [])}


async def test_headers_decrease_by_the_cost(limited: Any, clock: Clock) -> None:
    who = bearer(limited.app, "admin")
    first, _ = await _post(limited, LIGHT, who)
    assert "errors" not in first.json(), first.json()
    assert first.headers["RateLimit-Limit"] == "100"
    assert first.headers["RateLimit-Reset"] == "20"  # 1_000_000 % 60 == 40: 20 s are left
    second, _ = await _post(limited, LIGHT, who)
    light = _remaining(first) - _remaining(second)
    assert light >= 1
    third, _ = await _post(limited, HEAVY, who)
    assert _remaining(second) - _remaining(third) > light  # heavier queries cost more


async def test_a_viewer_over_the_limit_is_refused_before_any_read(
    limited: Any, clock: Clock
) -> None:
    greedy, other = bearer(limited.app, "admin"), bearer(limited.app, "admin")
    refused = None
    for _ in range(100):
        response, ops = await _post(limited, HEAVY, greedy)
        if "RATE_LIMITED" in _codes(response):
            refused = response, ops
            break
    assert refused is not None, "never limited"
    response, ops = refused
    assert ops == 0 and response.json().get("data") is None
    assert int(response.headers["Retry-After"]) >= 1
    assert "SHMS_RATE_LIMIT_POINTS" in response.json()["errors"][0]["message"]
    again, ops = await _post(limited, HEAVY, greedy)
    assert _codes(again) == {"RATE_LIMITED"} and ops == 0
    fine, _ = await _post(limited, HEAVY, other)
    assert "errors" not in fine.json(), fine.json()


@pytest.mark.parametrize(
    "limited",
    [{"shms_rate_limit_points": 1000, "shms_rate_limit_address_points": 60}],
    indirect=True,
)
async def test_the_address_limit_applies_across_viewers(limited: Any, clock: Clock) -> None:
    codes: set[str] = set()
    for _ in range(60):  # a fresh viewer every time: only the address counter fills up
        response, _ = await _post(limited, HEAVY, bearer(limited.app, "admin"))
        codes = _codes(response)
        if codes:
            break
    assert codes == {"RATE_LIMITED"}
    assert response.headers["RateLimit-Limit"] == "60"


async def test_anonymous_callers_are_counted_by_address(limited: Any, clock: Clock) -> None:
    first, _ = await _post(limited, LIGHT, {})
    second, _ = await _post(limited, LIGHT, {})
    assert _remaining(second) < _remaining(first) <= 100


async def test_the_window_resets(limited: Any, clock: Clock) -> None:
    who = bearer(limited.app, "admin")
    for _ in range(100):
        response, _ = await _post(limited, HEAVY, who)
        if _codes(response) == {"RATE_LIMITED"}:
            break
    assert _codes(response) == {"RATE_LIMITED"}
    clock.now += int(response.headers["Retry-After"])
    fresh, _ = await _post(limited, HEAVY, who)
    assert "errors" not in fresh.json(), fresh.json()
    assert fresh.headers["RateLimit-Reset"] == "60"  # a whole new window


async def test_redis_down_fails_open(limited: Any, clock: Clock) -> None:
    app = limited.app
    working = app.state.redis
    app.state.redis = broken = connect_redis("redis://127.0.0.1:1/0")
    before = ratelimit.FAILED_OPEN["count"]
    try:
        response, _ = await _post(limited, LIGHT, bearer(app, "admin"))
    finally:
        app.state.redis = working
        await broken.aclose()
    assert "errors" not in response.json(), response.json()
    assert "RateLimit-Remaining" not in response.headers
    assert ratelimit.FAILED_OPEN["count"] == before + 1


EXPORT = "query($p: ID!) { patientFhirBundle(patientId: $p) }"


@pytest.mark.parametrize("limited", [{"shms_rate_limit_points": 300}], indirect=True)
async def test_a_record_export_costs_its_weight_on_graphql_and_rest_alike(
    limited: Any, clock: Clock
) -> None:
    """One scalar answer that reads a whole record is charged as the work it is; the REST
    route of the same export is no way around the limiter."""
    who = bearer(limited.app, "admin")
    patient = "0" * 24
    response = await limited.post(
        "/graphql", json={"query": EXPORT, "variables": {"p": patient}}, headers=who
    )
    spent = 300 - _remaining(response)
    assert spent > fhir_export.EXPORT_COST
    refused = await limited.get(f"/fhir/Patient/{patient}/$everything", headers=who)
    assert refused.status_code == 429, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
