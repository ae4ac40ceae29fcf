"""The demo's wards, theatres and emergency department give every inpatient aggregate data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from demo import ANCHOR, seed_demo
from services import inpatient_analytics as ia
from services.analytics import analytics_filter
from services.buckets import Interval
from services.deidentify import Disclosure

PATIENTS = 40


async def test_the_demo_fills_every_inpatient_report(database: Any) -> None:
    await seed_demo(PATIENTS)
    filt = analytics_filter(ANCHOR - timedelta(days=30), ANCHOR + timedelta(days=1), None)
    full, zone = Disclosure.full(), ZoneInfo("Europe/Berlin")
    beds = await ia.bed_occupancy(filt, Interval.WEEK, full, zone, 400)
    occupied = [c for g in beds["groups"] for c in g["buckets"] if c["occupied_bed_hours"]]
    assert occupied and all(0 < c["occupancy"] <= 1 for c in occupied if c["occupancy"])
    stays = await ia.length_of_stay(filt, full)
    assert stays["groups"] and all(g["admissions"] > 0 for g in stays["groups"])
    theatres = await ia.theatre_utilisation(filt, full, zone)
    assert sum(g["cases"] for g in theatres["groups"]) > 0
    assert any(g["actual_minutes"] for g in theatres["groups"])
    ed = await ia.emergency_times(filt, full)
    assert sum(g["visits"] for g in ed["groups"]) > 0
    assert any(g["median_minutes_to_triage"] is not None for g in ed["groups"])
    assert any(g["median_minutes_to_disposition"] is not None for g in ed["groups"])
