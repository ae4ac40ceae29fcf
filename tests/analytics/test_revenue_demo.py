"""The demo's dispenses, stock, claims and accounts give every revenue aggregate data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from demo import ANCHOR, seed_demo
from services import revenue_analytics as ra
from services.analytics import analytics_filter
from services.buckets import Interval
from services.deidentify import Disclosure

PATIENTS = 40


async def test_the_demo_fills_every_revenue_report(database: Any) -> None:
    await seed_demo(PATIENTS)
    filt = analytics_filter(ANCHOR - timedelta(days=365), ANCHOR + timedelta(days=1), None)
    full, zone = Disclosure.full(), ZoneInfo("Europe/Berlin")
    volume = await ra.dispensing_volume(filt, Interval.MONTH, full, zone, 400)
    assert sum(g["dispenses"] for g in volume["groups"]) > 0
    assert all(g["value"] > 0 and g["department_id"] for g in volume["groups"])
    stock = await ra.pharmacy_stock(ANCHOR, 90, full)
    assert stock["groups"] and stock["totals"][0]["value"] > 0
    assert stock["totals"][0]["expiring_units"] > 0 and stock["totals"][0]["expired_units"] > 0
    claims = await ra.claims_by_payer(filt, full)
    assert sum(g["claims"] for g in claims["groups"]) > 0
    assert any(g["denied"] for g in claims["groups"])
    assert any(g["average_days_to_adjudication"] is not None for g in claims["groups"])
    ar = await ra.days_in_receivables(filt, full)
    (group,) = ar["groups"]
    assert group["outstanding"] > 0 and group["days"] is not None
    assert any(not s["self_pay"] and s["outstanding"] for s in group["segments"])
    assert sum(a["outstanding"] for a in group["aging"]) == group["outstanding"]
