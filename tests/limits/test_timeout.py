"""A query that runs too long is answered TIMEOUT; the work is abandoned, not the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import metrics
from services import departments
from tests.limits.conftest import bearer


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(update={"shms_operation_timeout_seconds": 0.2})


async def test_a_slow_query_times_out(app: Any, http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    never = asyncio.Event()

    async def stuck(*args: Any) -> Any:
        await never.wait()

    monkeypatch.setattr(departments, "list_departments", stuck)
    before = metrics.sample("shms_operation_timeouts_total")
    response = await http.post(
        "/graphql", json={"query": "{ departments { totalCount } }"}, headers=bearer(app, "admin")
    )
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert "SHMS_OPERATION_TIMEOUT_SECONDS" in body["errors"][0]["message"]
    assert metrics.sample("shms_operation_timeouts_total") == before + 1
    scraped = await http.get("/metrics", headers=bearer(app, "service"))
    assert "shms_operation_timeouts_total" in scraped.text
    ok = await http.post(
        "/graphql", json={"query": "{ viewer { roles } }"}, headers=bearer(app, "admin")
    )
    assert ok.json() == {"data": {"viewer": {"roles": ["ADMIN"]}}}
