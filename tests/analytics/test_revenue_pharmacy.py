"""dispensingVolume and pharmacyStock: exact figures on hand-made dispenses and batches."""

from __future__ import annotations

from datetime import date
from typing import Any

from bson import ObjectId

from models.pharmacy import DispenseStatus as S
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.analytics.revenue import batch, dispense, drug
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

CELL = "label dispenses units returnedUnits value patients suppressed"
VOLUME = f"""query($f: AnalyticsFilter!) {{ analytics {{ dispensingVolume(filter: $f,
  interval: MONTH) {{ deidentified suppressedGroups
  groups {{ drugId drugName atcCode departmentId currency dispenses units returnedUnits value
    patients suppressed buckets {{ {CELL} }} }} }} }} }}"""
STOCK = """query($asOf: DateTime, $days: Int!) { analytics {
  pharmacyStock(asOf: $asOf, expiringWithinDays: $days) { asOf expiringWithinDays deidentified
    suppressedGroups
    groups { drugName location wardId wardCode batches units value expiringUnits expiringValue
      expiredUnits expiredValue earliestUsableExpiry }
    totals { currency batches units value expiringUnits expiringValue expiredUnits
      expiredValue } } } }"""


async def pharmacy() -> dict[str, Any]:
    """Amoxicillin from department A: six patients, 7 dispenses, 65 units (2 returned); from
    B: two patients, 8 units; ibuprofen from A: one patient. Dispenses that did not happen or
    fall outside March do not count."""
    a, b = await f.department(), await f.department()
    doc_a, doc_b = await f.doctor(a), await f.doctor(b)
    amox, ibu = await drug("amoxicillin", 50), await drug("ibuprofen", 20)
    people = [await f.patient() for _ in range(6)]
    mid = at("2026-03-10T09:00:00Z")
    for who in people:
        await dispense(amox, who, doc_a, mid, 10)
    await dispense(amox, people[0], doc_a, mid, 5, S.PARTIALLY_RETURNED, returned=2)
    for who in people[:2]:
        await dispense(amox, who, doc_b, mid, 4)
    await dispense(ibu, people[0], doc_a, mid, 3)
    for status in (S.FAILED, S.PENDING, S.AWAITING_CONFIRMATION, S.EXPIRED):
        await dispense(amox, people[1], doc_a, mid, 9, status)
    await dispense(amox, people[1], doc_a, at("2026-02-28T22:59:59Z"), 9)  # Feb in Berlin
    await dispense(amox, people[1], doc_a, at("2026-04-01T00:00:00Z"), 9)  # at `to`
    return {"a": a, "b": b, "amox": amox, "ibu": ibu}


def key(group: dict[str, Any]) -> tuple[str, str]:
    return group["drugId"], group["departmentId"]


async def test_dispensing_volume_for_admin(admin: GraphQLClient) -> None:
    w = await pharmacy()
    report = (await admin.data(VOLUME, f=MARCH))["analytics"]["dispensingVolume"]
    groups = {key(g): g for g in report["groups"]}
    amox, ibu, a, b = (str(w[k].id) for k in ("amox", "ibu", "a", "b"))
    assert list(groups) == [(amox, a), (amox, b), (ibu, a)]  # by drug name
    first = groups[(amox, a)]
    figures = ("dispenses", "units", "returnedUnits", "value", "patients")
    assert tuple(first[k] for k in figures) == (7, 65, 2, 3250, 6)
    assert first["drugName"].endswith("capsule 500 mg") and first["atcCode"] == "J01CA04"
    # Berlin months: March (with everything) and April (the range's last hour, empty).
    march, april = first["buckets"]
    assert (march["label"], march["dispenses"], march["units"], march["value"]) == (
        "2026-03", 7, 65, 3250,
    )  # fmt: skip
    assert (april["label"], april["dispenses"], april["patients"]) == ("2026-04", 0, 0)
    assert tuple(groups[(amox, b)][k] for k in figures) == (2, 8, 0, 400, 2)
    assert tuple(groups[(ibu, a)][k] for k in figures) == (1, 3, 0, 60, 1)
    assert report["deidentified"] is False and report["suppressedGroups"] == 0
    # The prescriber's department narrows it.
    only_b = (await admin.data(VOLUME, f={**MARCH, "departmentId": b}))["analytics"]
    assert [key(g) for g in only_b["dispensingVolume"]["groups"]] == [(amox, b)]


async def test_dispensing_volume_suppresses_small_cells_for_analysts(
    analyst: GraphQLClient,
) -> None:
    w = await pharmacy()
    report = (await analyst.data(VOLUME, f=MARCH))["analytics"]["dispensingVolume"]
    groups = {key(g): g for g in report["groups"]}
    amox, ibu, a, b = (str(w[k].id) for k in ("amox", "ibu", "a", "b"))
    shown = groups[(amox, a)]
    assert (shown["dispenses"], shown["patients"], shown["suppressed"]) == (7, 6, False)
    for small in (groups[(amox, b)], groups[(ibu, a)]):
        assert small["suppressed"] is True and small["units"] is None and small["value"] is None
        march, april = small["buckets"]
        assert march["suppressed"] is True and march["dispenses"] is None
        assert april["suppressed"] is False and april["dispenses"] == 0  # nobody to protect
    # Two withheld March cells and their two groups.
    assert report["deidentified"] is True and report["suppressedGroups"] == 4


async def test_pharmacy_stock_values_and_expiry(
    admin: GraphQLClient, analyst: GraphQLClient
) -> None:
    amox = await drug("amoxicillin")
    ward = ObjectId()
    await batch(amox, date(2026, 3, 10), 5, 10)  # expired on the day of asOf
    await batch(amox, date(2026, 4, 1), 20, 10)  # expiring within 30 days
    await batch(amox, date(2026, 12, 1), 100, 12)
    await batch(amox, date(2026, 1, 1), 0, 10)  # empty: not stock
    await batch(amox, date(2026, 4, 20), 7, 10, ward_id=ward)
    as_of = "2026-03-10T23:30:00+01:00"  # still 10 March in UTC
    report = (await admin.data(STOCK, asOf=as_of, days=30))["analytics"]["pharmacyStock"]
    assert (report["asOf"], report["expiringWithinDays"]) == ("2026-03-10", 30)
    store, ward_row = report["groups"]
    figures = ("batches", "units", "value", "expiringUnits", "expiringValue", "expiredUnits",
               "expiredValue")  # fmt: skip
    assert store["location"] == "pharmacy" and store["wardId"] is None
    assert tuple(store[k] for k in figures) == (3, 125, 1450, 20, 200, 5, 50)
    assert store["earliestUsableExpiry"] == "2026-04-01"
    assert ward_row["location"] == "ward" and ward_row["wardId"] == str(ward)
    assert tuple(ward_row[k] for k in figures) == (1, 7, 70, 0, 0, 0, 0)
    (total,) = report["totals"]
    assert tuple(total[k] for k in figures) == (4, 132, 1520, 20, 200, 5, 50)
    # 60 days reach the ward's batch too; analysts see the same figures (no patients here).
    longer = (await analyst.data(STOCK, asOf=as_of, days=60))["analytics"]["pharmacyStock"]
    assert [g["expiringUnits"] for g in longer["groups"]] == [20, 7]
    assert longer["suppressedGroups"] == 0


async def test_pharmacy_stock_refuses_bad_windows(admin: GraphQLClient) -> None:
    for days in (0, 3651):
        error = await admin.error(STOCK, asOf=None, days=days)
        assert code(error) == "BAD_USER_INPUT" and "expiringWithinDays" in error["message"]
    for edge in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00Z"):
        error = await admin.error(STOCK, asOf=edge, days=30)
        assert code(error) == "BAD_USER_INPUT", error
    error = await admin.error(STOCK, asOf="2026-03-10T10:00:00", days=30)
    assert code(error) == "BAD_USER_INPUT" and "asOf" in error["message"]
