"""Aggregates are cached per disclosure until a write to what they read; they run in MongoDB."""

from __future__ import annotations

from typing import Any

import db
from services import scheduling
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.conftest import GraphQLClient

PER_DOCTOR = """query($f: AnalyticsFilter!) { analytics { appointmentsPerDoctor(filter: $f) {
  cached computedAt deidentified groups { appointments cancelled patients }
} } }"""


async def report(client: GraphQLClient, filt: dict[str, Any] = MARCH) -> dict[str, Any]:
    data: dict[str, Any] = (await client.data(PER_DOCTOR, f=filt))["analytics"]
    return data["appointmentsPerDoctor"]


async def test_cached_until_a_service_write(admin: GraphQLClient, analyst: GraphQLClient) -> None:
    doc = await f.doctor()
    visits = [
        await f.appointment(await f.patient(), doc, start=at(f"2026-03-1{i}T10:00:00Z"))
        for i in range(6)
    ]
    first = await report(admin)
    assert first["cached"] is False and first["groups"] == [
        {"appointments": 6, "cancelled": 0, "patients": 6}
    ]
    second = await report(admin)
    assert second["cached"] is True and second["computedAt"] == first["computedAt"]
    assert second["groups"] == first["groups"]
    # Analysts never share an administrator's answer: their own is computed (and cached).
    assert (await report(analyst))["cached"] is False
    assert (await report(analyst))["cached"] is True
    # A cancellation through the service (which ends in changes.changed) drops both entries.
    assert visits[0].id is not None
    await scheduling.cancel_appointment(visits[0].id, "ill")
    third = await report(admin)
    assert third["cached"] is False
    # 5 non-cancelled + 1 cancelled; its patient still counts.
    assert third["groups"] == [{"appointments": 5, "cancelled": 1, "patients": 6}]
    assert (await report(analyst))["cached"] is False


async def test_the_pipeline_runs_in_the_database(admin: GraphQLClient) -> None:
    """One aggregate command per report, however many appointments it groups."""
    doc = await f.doctor()
    later = {**MARCH, "to": "2026-04-02T00:00:00Z"}  # another key: the cache cannot answer

    async def measured(added: int, filt: dict[str, Any]) -> tuple[dict[Any, int], int]:
        for _ in range(added):
            await f.appointment(doc=doc, start=at("2026-03-10T10:00:00Z"))
        with db.operations.measure() as ops:
            (row,) = (await report(admin, filt))["groups"]
        return dict(ops.counts), row["appointments"]

    few, three = await measured(3, MARCH)
    many, thirty_three = await measured(30, later)
    assert (three, thirty_three) == (3, 33)
    assert few == many
    # The appointments were read by one aggregate, never fetched row by row.
    assert {op for (collection, op) in few if collection == "appointments"} == {"aggregate"}
    assert few[("appointments", "aggregate")] == 1
