"""Aggregates over the bulk facility: a fixed number of database operations however many
appointments they group, and distinct-patient totals that match the documents themselves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import db
from demo import bulk
from services import analytics
from services.buckets import Interval
from services.deidentify import Disclosure

FILTER = analytics.AnalyticsFilter(
    datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
)
"""Every bulk appointment, plan and charge: they fall in 2025-2026."""
ZONE = ZoneInfo("Europe/Berlin")
ANALYST = Disclosure(5)
DISCLOSURES = (Disclosure.full(), ANALYST)

Aggregate = Callable[[Disclosure], Awaitable[analytics.Report]]
AGGREGATES: dict[str, Aggregate] = {
    "appointmentsPerDoctor": lambda d: analytics.appointments_per_doctor(FILTER, d),
    "appointmentsOverTime": lambda d: analytics.appointments_over_time(
        FILTER, Interval.WEEK, d, ZONE, 400
    ),
    "conditionsBySpecialty": lambda d: analytics.conditions_by_specialty(FILTER, 5, d),
    "appointmentsPerPatient": lambda d: analytics.appointments_per_patient(FILTER, d),
    "noShowRate": lambda d: analytics.no_show_rate(FILTER, d),
    "equipmentUtilisation": lambda d: analytics.equipment_utilisation(FILTER, d),
    "revenue": lambda d: analytics.revenue(FILTER, d, ZONE),
}


async def reseed(appointments: int) -> None:
    for model in bulk.SEEDED_MODELS:
        await model.get_motor_collection().delete_many({})
    await bulk.seed_bulk(appointments)


async def operations() -> dict[str, dict[tuple[str, str], int]]:
    """The database operations of each aggregate, de-identified: the longer pipelines (the
    full answers run the same stages with a threshold of zero)."""
    out = {}
    for name, run in AGGREGATES.items():
        with db.operations.measure() as ops:
            report = await run(ANALYST)
        assert report["cached"] is False  # no result cache outside an app
        out[name] = dict(ops.counts)
    return out


async def test_operations_do_not_grow_with_appointments(database: Any) -> None:
    await reseed(2000)
    small = await operations()
    await reseed(4000)
    large = await operations()
    assert small == large
    for counts in small.values():
        # Grouped in the database: aggregate commands only, never documents fetched.
        assert {op for _, op in counts} == {"aggregate"} and sum(counts.values()) <= 2


def conditions_oracle(appointments: int) -> dict[str, set[Any]]:
    """Per specialty, the patients of its conditions with 5+ patients, from the documents."""
    docs = bulk.build(appointments)
    specialty = {d["_id"]: d["specialty"] for d in docs["doctors"]}
    conditions: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for plan in docs["treatment_plans"]:
        key = (specialty[plan["doctor_id"]], plan["diagnosis"]["code"])
        conditions[key].add(plan["patient_id"])
    shown = {key: p for key, p in conditions.items() if len(p) >= ANALYST.minimum}
    visible: dict[str, set[Any]] = {name: set() for name, _ in conditions}
    for (name, _), patients in shown.items():
        visible[name] |= patients
    # The data exercises what totals must get right: withheld conditions, and patients seen
    # under two visible conditions of one specialty (counted once).
    assert len(shown) < len(conditions)
    assert sum(map(len, shown.values())) > sum(map(len, visible.values()))
    return visible


async def test_totals_count_each_visible_patient_once(database: Any) -> None:
    await reseed(2000)
    docs = bulk.build(2000)
    kept = [a for a in docs["appointments"] if a["status"] != "cancelled"]
    everyone = {a["patient_id"] for a in kept}
    seen: dict[str, set[Any]] = defaultdict(set)
    for a in kept:
        seen[str(a["department_id"])].add(a["patient_id"])
    for disclosure in DISCLOSURES:  # every department has hundreds of patients: all visible
        report = await analytics.appointments_per_patient(FILTER, disclosure)
        assert report["overall"]["patients"] == len(everyone) < sum(map(len, seen.values()))
        assert report["overall"]["appointments"] == len(kept)
        per_department = {g["department_id"]: g["patients"] for g in report["groups"]}
        assert per_department == {k: len(v) for k, v in seen.items()}

    expected = conditions_oracle(2000)
    report = await analytics.conditions_by_specialty(FILTER, 5, ANALYST)
    totals = {g["specialty"]: g["patients"] for g in report["groups"]}
    assert totals == {name: len(p) if p else None for name, p in expected.items()}
