"""The pharmacy and revenue aggregates over GraphQL: who may read them, that no patient id comes
out, the filter's limits (calendar ends included), the result cache and its invalidation."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from graphql import parse

from api.schema import schema
from models.insurance import ClaimOutcome as O
from models.insurance import ClaimStatus as S
from schema.saved_documents import inputs_of
from services.changes import changed
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.analytics.revenue import account, batch, claim, dispense, drug, payer
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

REPORTS = {
    "dispensingVolume": """dispensingVolume(filter: $f, interval: WEEK) { deidentified cached
      suppressedGroups groups { drugId departmentId dispenses units value patients suppressed
      buckets { label dispenses patients suppressed } } }""",
    "claimsByPayer": """claimsByPayer(filter: $f) { deidentified cached suppressedGroups
      groups { payerId claims billed patients suppressed statuses { status claims patients } } }""",
    "daysInAccountsReceivable": """daysInAccountsReceivable(filter: $f) { deidentified cached
      suppressedGroups groups { currency outstanding days patients suppressed
      segments { payerId outstanding patients } aging { bucket outstanding patients } } }""",
}
STOCK = """pharmacyStock(expiringWithinDays: 90) { deidentified cached
  groups { drugId units value } }"""
ALL = "query($f: AnalyticsFilter!) { analytics { " + " ".join(REPORTS.values()) + " } }"


def query(name: str) -> str:
    if name == "pharmacyStock":
        return "query { analytics { " + STOCK + " } }"
    return "query($f: AnalyticsFilter!) { analytics { " + REPORTS[name] + " } }"


async def hospital() -> list[str]:
    """Six patients with dispenses, claims and accounts owing in March; their ids."""
    dept = await f.department()
    doctor, product, insurer = await f.doctor(dept), await drug(), await payer("P")
    people = [await f.patient() for _ in range(6)]
    t = at("2026-03-02T10:00:00Z")
    for i, who in enumerate(people):
        await dispense(product, who, doctor, t + timedelta(days=i), 2)
        await claim(insurer, who, 500, 400, S.ADJUDICATED, t, outcome=O.APPROVED, approved=400,
                    decided=t + timedelta(days=3))  # fmt: skip
        await account(who, [(500, t + timedelta(days=i))], insurer_due=400)
    await batch(product, date(2030, 1, 1), 10, 5)
    return [str(p.id) for p in people]


@pytest.mark.parametrize(
    "roles", [["doctor"], ["nurse"], ["admin_staff"], ["patient"], ["pharmacist"], ["billing"]]
)
@pytest.mark.parametrize("name", [*REPORTS, "pharmacyStock"])
async def test_clinicians_and_others_are_refused(
    client_as: Any, roles: list[str], name: str
) -> None:
    error = await client_as(roles=roles).error(query(name), f=MARCH)
    assert code(error) == "FORBIDDEN", error
    assert error["path"] == ["analytics"]


async def test_no_patient_id_leaves_the_reports(
    analyst: GraphQLClient, admin: GraphQLClient
) -> None:
    ids = await hospital()
    for client in (analyst, admin):
        data = (await client.data(ALL, f=MARCH))["analytics"]
        for name in REPORTS:
            assert data[name]["groups"], name
            assert data[name]["deidentified"] is (client is analyst)
        stock = (await client.data(query("pharmacyStock")))["analytics"]["pharmacyStock"]
        assert stock["groups"][0]["value"] == 50
        text = json.dumps([data, stock])
        assert not any(pid in text for pid in ids)
    # Six patients each: the analyst sees the figures.
    volume = (await analyst.data(query("dispensingVolume"), f=MARCH))["analytics"]
    (group,) = volume["dispensingVolume"]["groups"]
    assert (group["dispenses"], group["units"], group["patients"]) == (6, 12, 6)
    claims = (await analyst.data(query("claimsByPayer"), f=MARCH))["analytics"]
    (payer_row,) = claims["claimsByPayer"]["groups"]
    assert (payer_row["claims"], payer_row["billed"], payer_row["suppressed"]) == (6, 3000, False)


EDGES = [
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:00:00Z",
    "0001-01-01T00:00:00Z",
]


@pytest.mark.parametrize("name", list(REPORTS))
@pytest.mark.parametrize("edge", EDGES)
async def test_calendar_ends_are_bad_user_input(admin: GraphQLClient, name: str, edge: str) -> None:
    near = "9999-06-01T00:00:00Z" if edge.startswith("9999") else "0001-06-01T00:00:00Z"
    window = {"from": edge, "to": near} if edge.startswith("0001") else {"from": near, "to": edge}
    error = await admin.error(query(name), f=window)
    assert code(error) == "BAD_USER_INPUT", error
    assert "filter." in error["message"]


@pytest.mark.parametrize("name", ["claimsByPayer", "daysInAccountsReceivable"])
async def test_a_department_filter_is_refused_where_money_has_none(
    admin: GraphQLClient, name: str
) -> None:
    dept = await f.department()
    error = await admin.error(query(name), f={**MARCH, "departmentId": str(dept.id)})
    assert code(error) == "BAD_USER_INPUT"
    assert "filter.departmentId" in error["extensions"]["fields"]


async def twice(client: GraphQLClient, name: str) -> dict[str, Any]:
    """The report asked twice: the second answer comes from the cache; the first's body."""
    first = (await client.data(query(name), f=MARCH))["analytics"][name]
    second = (await client.data(query(name), f=MARCH))["analytics"][name]
    assert (first["cached"], second["cached"]) == (False, True), name
    return first


async def fresh(client: GraphQLClient, name: str) -> dict[str, Any]:
    report: dict[str, Any] = (await client.data(query(name), f=MARCH))["analytics"][name]
    assert report["cached"] is False, name
    return report


async def test_writes_refresh_the_cached_reports(admin: GraphQLClient) -> None:
    await hospital()
    doctor, product, insurer = await f.doctor(), await drug(), await payer("Q")
    who = await f.patient()
    t = at("2026-03-20T10:00:00Z")

    await twice(admin, "dispensingVolume")
    await changed(await dispense(product, who, doctor, t, 7), "completed")
    volume = await fresh(admin, "dispensingVolume")
    assert sum(g["units"] for g in volume["groups"]) == 19

    await twice(admin, "pharmacyStock")
    await changed(await batch(product, date(2030, 1, 1), 4, 100), "received")
    stock = await fresh(admin, "pharmacyStock")
    assert sorted(g["value"] for g in stock["groups"]) == [50, 400]

    await twice(admin, "claimsByPayer")
    await changed(await claim(insurer, who, 250, 200, S.SUBMITTED, t), "submitted")
    claims = await fresh(admin, "claimsByPayer")
    assert sorted(g["claims"] for g in claims["groups"]) == [1, 6]

    before = await twice(admin, "daysInAccountsReceivable")
    await changed(await account(who, [(1000, t)]), "charged")
    ar = await fresh(admin, "daysInAccountsReceivable")
    self_pay = [s["outstanding"] for r in (before, ar) for s in r["groups"][0]["segments"]
                if s["payerId"] is None]  # fmt: skip
    assert self_pay == [6 * 100, 6 * 100 + 1000]


@pytest.mark.parametrize(
    ("name", "reads"),
    [
        ("dispensingVolume", {"dispenses", "doctors", "drugs"}),
        ("pharmacyStock", {"stock_batches", "drugs", "wards"}),
        ("claimsByPayer", {"claims", "payers"}),
        ("daysInAccountsReceivable", {"billing_accounts", "claims", "payers"}),
    ],
)
def test_saved_queries_of_a_report_are_dropped_by_writes_to_what_it_reads(
    name: str, reads: set[str]
) -> None:
    head = {
        "dispensingVolume": "dispensingVolume(filter: $f, interval: DAY)",
        "pharmacyStock": "pharmacyStock",
        "claimsByPayer": "claimsByPayer(filter: $f)",
        "daysInAccountsReceivable": "daysInAccountsReceivable(filter: $f)",
    }[name]
    args = "" if name == "pharmacyStock" else "($f: AnalyticsFilter!)"
    shallow = f"query{args} {{ analytics {{ {head} {{ cached groups {{ __typename }} }} }} }}"
    assert reads <= inputs_of(schema, parse(shallow))
