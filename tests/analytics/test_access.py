"""Who may read aggregates, what bad filters get, and what the audit trail keeps."""

from __future__ import annotations

from typing import Any

import pytest

from models.audit import AuditEvent, AuditOutcome
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

PER_DOCTOR = """query($f: AnalyticsFilter!) { analytics {
  appointmentsPerDoctor(filter: $f) { deidentified cached groups { appointments patients } }
} }"""
TWO = """query($f: AnalyticsFilter!) { analytics {
  noShowRate(filter: $f) { cached } revenue(filter: $f) { cached }
} }"""


async def analytics_events() -> list[AuditEvent]:
    return await AuditEvent.find({"entity": "Analytics"}).sort("at").to_list()


@pytest.mark.parametrize(
    "roles",
    [["doctor"], ["nurse"], ["patient"], ["admin_staff"], ["billing"], ["compliance"], ["service"]],
)
async def test_only_admin_and_analyst_may_read(client_as: Any, roles: list[str]) -> None:
    client: GraphQLClient = client_as(roles=roles)
    error = await client.error(PER_DOCTOR, f=MARCH)
    assert code(error) == "FORBIDDEN", error
    (denied,) = await analytics_events()
    assert denied.outcome == AuditOutcome.DENIED and denied.patient_id is None


async def test_signed_out_callers_are_unauthenticated(http: Any) -> None:
    error = await GraphQLClient(http).error(PER_DOCTOR, f=MARCH)
    assert code(error) == "UNAUTHENTICATED"


async def test_admin_who_is_also_analyst_gets_full_answers(client_as: Any) -> None:
    doc = await f.doctor()
    await f.appointment(doc=doc, start=at("2026-03-10T10:00:00Z"))
    both: GraphQLClient = client_as(roles=["analyst", "admin"])
    report = (await both.data(PER_DOCTOR, f=MARCH))["analytics"]["appointmentsPerDoctor"]
    assert report["deidentified"] is False
    assert report["groups"] == [{"appointments": 1, "patients": 1}]


@pytest.mark.parametrize(
    ("filt", "field"),
    [
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "filter.to"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "filter.to"),
        # 1097 days: a day more than three years (2023 + 2024 + 2025 = 365 + 366 + 365 days).
        ({"from": "2023-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "filter.to"),
        ({**MARCH, "departmentId": "not-an-id"}, "filter.departmentId"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00Z"}, "filter.from"),
    ],
)
async def test_bad_filters_are_refused_and_read_nothing(
    analyst: GraphQLClient, filt: dict[str, Any], field: str
) -> None:
    error = await analyst.error(PER_DOCTOR, f=filt)
    assert code(error) == "BAD_USER_INPUT", error
    assert field in error["extensions"]["fields"], error
    assert await analytics_events() == []


async def test_three_years_is_the_longest_range(admin: GraphQLClient) -> None:
    # 2023-01-01 .. 2026-01-01 is 1096 days, three years with their leap day: allowed (one
    # more day is refused above).
    filt = {"from": "2023-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    assert (await admin.data(PER_DOCTOR, f=filt))["analytics"]["appointmentsPerDoctor"]


async def test_every_aggregate_read_is_audited_cache_hits_too(analyst: GraphQLClient) -> None:
    doc = await f.doctor()
    await f.appointment(doc=doc, start=at("2026-03-10T10:00:00Z"))
    first = (await analyst.data(PER_DOCTOR, f=MARCH))["analytics"]["appointmentsPerDoctor"]
    second = (await analyst.data(PER_DOCTOR, f=MARCH))["analytics"]["appointmentsPerDoctor"]
    assert (first["cached"], second["cached"]) == (False, True)
    events = await analytics_events()
    assert len(events) == 2
    for event in events:
        assert event.outcome == AuditOutcome.ALLOWED and event.action == "read"
        assert event.fields == ["appointmentsPerDoctor"]
        assert event.patient_id is None and event.entity_id is None
    await analyst.data(TWO, f=MARCH)
    last = (await analytics_events())[-1]
    assert last.fields == ["noShowRate", "revenue"]  # one request: the trail merges its reads
