"""claimsByPayer and daysInAccountsReceivable: exact figures on hand-made claims and accounts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models.base import utcnow
from models.insurance import ClaimOutcome as O
from models.insurance import ClaimStatus as S
from services.deidentify import Disclosure
from services.revenue_analytics import _protect
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.analytics.revenue import account, claim, payer
from tests.conftest import GraphQLClient

MEASURES = """claims billed approved paid adjudicated denied denialRate
  averageDaysToAdjudication averageDaysToPayment patients suppressed"""
CLAIMS = f"""query($f: AnalyticsFilter!) {{ analytics {{ claimsByPayer(filter: $f) {{
  deidentified suppressedGroups
  groups {{ payerId payerCode payerName currency {MEASURES}
    statuses {{ status {MEASURES} }} }} }} }} }}"""
AR = """query($f: AnalyticsFilter!) { analytics { daysInAccountsReceivable(filter: $f) {
  asOf rangeDays deidentified suppressedGroups
  groups { currency charged averageDailyCharges outstanding insurerOutstanding days patients
    suppressed
    segments { payerId payerCode selfPay outstanding days patients suppressed }
    aging { bucket fromDays toDays outstanding patients suppressed } } } } }"""
FIGURES = ("claims", "billed", "approved", "paid", "adjudicated", "denied", "denialRate",
           "averageDaysToAdjudication", "averageDaysToPayment", "patients")  # fmt: skip


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in FIGURES)


async def test_claims_by_payer_for_admin(admin: GraphQLClient) -> None:
    x = await payer("X")
    p = [await f.patient() for _ in range(6)]
    day = timedelta(days=1)
    t1, t2, t3 = at("2026-03-02T10:00:00Z"), at("2026-03-03T10:00:00Z"), at("2026-03-04T10:00:00Z")
    t6 = at("2026-03-10T10:00:00Z")
    # Paid: decided after 4 days, paid 10 days after submission.
    await claim(x, p[1], 1000, 800, S.PAID, t1, outcome=O.APPROVED, approved=800,
                decided=t1 + 4 * day, paid=t1 + 10 * day, insurer_paid=800)  # fmt: skip
    # Denied after 2 days; partly approved after 1; one still with the payer.
    await claim(x, p[2], 500, 400, S.ADJUDICATED, t2, outcome=O.DENIED, approved=0,
                decided=t2 + 2 * day)  # fmt: skip
    await claim(x, p[3], 300, 240, S.SUBMITTED, t3)
    await claim(x, p[5], 400, 400, S.ADJUDICATED, t6, outcome=O.PARTIALLY_APPROVED,
                approved=300, decided=t6 + day)  # fmt: skip
    # First submitted in February, resubmitted in March: February's. A draft was never sent.
    await claim(x, p[4], 700, 700, S.RESUBMITTED, at("2026-02-20T10:00:00Z"),
                resubmitted=at("2026-03-05T10:00:00Z"))  # fmt: skip
    await claim(x, p[4], 900, 900, S.DRAFT, None)
    report = (await admin.data(CLAIMS, f=MARCH))["analytics"]["claimsByPayer"]
    (group,) = report["groups"]
    assert (group["payerId"], group["payerName"]) == (str(x.id), "Insurer X")
    assert group["currency"] == "EUR"
    assert figures(group) == (4, 2200, 1100, 800, 3, 1, 0.3333, 2.33, 10.0, 4)
    statuses = {s["status"]: s for s in group["statuses"]}
    assert [s["status"] for s in group["statuses"]] == ["submitted", "adjudicated", "paid"]
    assert figures(statuses["adjudicated"]) == (2, 900, 300, 0, 2, 1, 0.5, 1.5, None, 2)
    assert figures(statuses["submitted"]) == (1, 300, 0, 0, 0, 0, None, None, None, 1)
    assert figures(statuses["paid"]) == (1, 1000, 800, 800, 1, 0, 0.0, 4.0, 10.0, 1)


async def test_claims_by_payer_suppression(analyst: GraphQLClient) -> None:
    z = await payer("Z")
    t = at("2026-03-02T10:00:00Z")
    for _ in range(5):
        await claim(z, await f.patient(), 100, 80, S.SUBMITTED, t)
    day = timedelta(days=1)
    await claim(z, await f.patient(), 100, 80, S.PAID, t, outcome=O.APPROVED, approved=80,
                decided=t + day, paid=t + 2 * day, insurer_paid=80)  # fmt: skip
    report = (await analyst.data(CLAIMS, f=MARCH))["analytics"]["claimsByPayer"]
    (group,) = report["groups"]
    submitted, paid = group["statuses"]
    assert (submitted["claims"], submitted["patients"], submitted["suppressed"]) == (5, 5, False)
    assert paid["suppressed"] is True and paid["paid"] is None and paid["patients"] is None
    # The payer's figures are over the visible statuses: the paid claim's patient is not in them.
    assert (group["claims"], group["billed"], group["paid"], group["patients"]) == (5, 500, 0, 5)
    assert report["suppressedGroups"] == 1


async def receivables() -> dict[str, Any]:
    """Three accounts owing 600 (self-pay, aged 31-60 and 0-30 after payments applied oldest
    first), 1700 (1500 payer X, 200 self-pay; 61-90), 900 (payer Y; 90+); one in credit."""
    now = utcnow()

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    x, y = await payer("X"), await payer("Y")
    p = [await f.patient() for _ in range(4)]
    await account(p[0], [(1000, ago(100)), (500, ago(45)), (300, ago(5))], paid=1200)
    await account(p[1], [(2000, ago(70))], paid=200, insurer_due=1500, written_off=100)
    await claim(x, p[1], 2000, 1500, S.SUBMITTED, ago(60))
    await account(p[2], [(400, ago(2))], paid=500)  # 100 in credit: no receivable
    await account(p[3], [(900, ago(120))], insurer_due=900)
    await claim(y, p[3], 900, 900, S.ADJUDICATED, ago(110), outcome=O.APPROVED, approved=900,
                decided=ago(100))  # fmt: skip
    await claim(x, p[3], 50, 50, S.CLOSED, ago(110))  # closed: owes nothing
    window = {"from": ago(30).isoformat(), "to": now.isoformat()}
    return {"x": x, "y": y, "window": window}


async def test_days_in_accounts_receivable_for_admin(admin: GraphQLClient) -> None:
    w = await receivables()
    report = (await admin.data(AR, f=w["window"]))["analytics"]["daysInAccountsReceivable"]
    assert report["rangeDays"] == 30.0
    (group,) = report["groups"]
    # Charges in range: 300 + 400 over 30 days; owed now 600 + 1700 + 900.
    assert (group["charged"], group["averageDailyCharges"]) == (700, 23.33)
    assert (group["outstanding"], group["insurerOutstanding"], group["patients"]) == (3200, 2400, 3)
    assert group["days"] == round(3200 / (700 / 30), 2) == 137.14
    segments = [(s["payerId"], s["selfPay"], s["outstanding"], s["days"], s["patients"])
                for s in group["segments"]]  # fmt: skip
    assert segments == [
        (str(w["x"].id), False, 1500, 64.29, 1),
        (str(w["y"].id), False, 900, 38.57, 1),
        (None, True, 800, 34.29, 2),
    ]
    aging = [(a["bucket"], a["fromDays"], a["toDays"], a["outstanding"], a["patients"])
             for a in group["aging"]]  # fmt: skip
    assert aging == [
        ("0-30", 0, 30, 300, 1),
        ("31-60", 31, 60, 300, 1),
        ("61-90", 61, 90, 1700, 1),
        ("90+", 91, None, 900, 1),
    ]


async def test_days_in_accounts_receivable_for_analysts(analyst: GraphQLClient) -> None:
    w = await receivables()
    report = (await analyst.data(AR, f=w["window"]))["analytics"]["daysInAccountsReceivable"]
    (group,) = report["groups"]
    assert group["suppressed"] is True and group["outstanding"] is None and group["days"] is None
    assert all(s["suppressed"] and s["outstanding"] is None for s in group["segments"])
    assert all(a["suppressed"] and a["outstanding"] is None for a in group["aging"])


def test_a_lone_withheld_cell_takes_the_smallest_other_with_it() -> None:
    rows = [
        {"name": "a", "outstanding": 600, "patients": 6},
        {"name": "b", "outstanding": 900, "patients": 2},
        {"name": "c", "outstanding": 800, "patients": 7},
        {"name": "d", "outstanding": 0, "patients": 0},
    ]
    shown = _protect(rows, ("outstanding",), Disclosure(5))
    assert [(r["name"], r["suppressed"], r["outstanding"]) for r in shown] == [
        ("a", True, None), ("b", True, None), ("c", False, 800), ("d", False, 0),
    ]  # fmt: skip
    # Two withheld already: nothing more is needed; nothing withheld for administrators.
    two = _protect([*rows[:2], {**rows[2], "patients": 3}], ("outstanding",), Disclosure(5))
    assert [r["suppressed"] for r in two] == [False, True, True]
    assert not any(r["suppressed"] for r in _protect(rows, ("outstanding",), Disclosure.full()))
