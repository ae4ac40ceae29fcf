"""outpatientWaitingTime: check-in to seen per clinic, medians and 90th percentiles by hand,
range edges, suppression, roles, bad input, and operations that do not grow with the data."""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from bson import ObjectId

import db
from models.departments import Department
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from models.patients import Patient
from services import analytics
from services.changes import changed
from services.deidentify import Disclosure
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

WAITING = """query($f: AnalyticsFilter!) { analytics { outpatientWaitingTime(filter: $f) {
  deidentified suppressionThreshold suppressedGroups cached
  groups { departmentId department { name } visits medianMinutes p90Minutes patients suppressed }
} } }"""

_numbers = count(1)


async def visit(
    patient: Patient, dept: Department, checked_in: datetime, waited: float | None
) -> OutpatientVisit:
    """A visit checked in at ``checked_in`` and seen ``waited`` minutes later (None: it left
    the waiting room unseen)."""
    seen = None if waited is None else checked_in + timedelta(minutes=waited)
    made = OutpatientVisit(
        patient_id=patient.id,
        department_id=dept.id,
        arrival=Arrival.WALK_IN,
        status=VisitStatus.LEFT if seen is None else VisitStatus.COMPLETED,
        queue_date=checked_in.date().isoformat(),
        queue_number=next(_numbers),
        checked_in_at=checked_in,
        seen_at=seen,
        status_at=seen or checked_in,
    )
    return await made.insert()


async def clinics() -> dict[str, Any]:
    """Clinic A: p0..p4, six visits seen after 5, 12.5, 20, 30, 45 and 95 minutes; clinic B:
    q0 and q1, seen after 7 and 9 minutes. Around them, visits that must not count."""
    a = await f.department(name="Alpha")
    b = await f.department(name="Beta")
    p = [await f.patient() for _ in range(5)]
    q = [await f.patient() for _ in range(2)]
    await visit(p[0], a, at("2026-03-01T00:00:00Z"), 5)  # at `from`: counted
    await visit(p[0], a, at("2026-03-02T09:00:00Z"), 12.5)  # 12 min 30 s: binned to 13
    await visit(p[1], a, at("2026-03-03T09:00:00Z"), 20)
    await visit(p[2], a, at("2026-03-04T09:00:00Z"), 30)
    await visit(p[3], a, at("2026-03-05T09:00:00Z"), 45)
    await visit(p[4], a, at("2026-03-31T23:00:00Z"), 95)  # seen after `to`: checked in before
    await visit(p[1], a, at("2026-03-06T09:00:00Z"), None)  # left unseen: not counted
    await visit(p[2], a, at("2026-04-01T00:00:00Z"), 1)  # at `to`: not counted
    await visit(p[3], a, at("2026-02-28T23:59:59Z"), 1)  # before `from`: not counted
    await visit(q[0], b, at("2026-03-10T09:00:00Z"), 7)
    await visit(q[1], b, at("2026-03-11T09:00:00Z"), 9)
    return {"a": str(a.id), "b": str(b.id)}


def report(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = data["analytics"]["outpatientWaitingTime"]
    return result


async def test_admin_gets_every_clinic_with_hand_computed_quantiles(
    admin: GraphQLClient,
) -> None:
    w = await clinics()
    answer = report(await admin.data(WAITING, f=MARCH))
    assert (answer["deidentified"], answer["suppressionThreshold"]) == (False, None)
    assert answer["suppressedGroups"] == 0
    assert [g["departmentId"] for g in answer["groups"]] == sorted([w["a"], w["b"]])
    groups = by(answer["groups"], "departmentId")
    # A, sorted: 5, 13, 20, 30, 45, 95 (n = 6).
    # median: h = (6 - 1) * 0.5 = 2.5 -> x[2] + 0.5 * (x[3] - x[2]) = 20 + 0.5 * 10 = 25.
    # p90:    h = (6 - 1) * 0.9 = 4.5 -> x[4] + 0.5 * (x[5] - x[4]) = 45 + 0.5 * 50 = 70.
    assert groups[w["a"]] == {
        "departmentId": w["a"],
        "department": {"name": "Alpha"},
        "visits": 6,
        "medianMinutes": 25.0,
        "p90Minutes": 70.0,
        "patients": 5,
        "suppressed": False,
    }
    # B: 7, 9. median: h = 0.5 -> 7 + 0.5 * 2 = 8. p90: h = 0.9 -> 7 + 0.9 * 2 = 8.8.
    beta = groups[w["b"]]
    assert (beta["visits"], beta["medianMinutes"], beta["p90Minutes"]) == (2, 8.0, 8.8)
    assert (beta["patients"], beta["suppressed"]) == (2, False)


async def test_analyst_sees_small_clinics_withheld(analyst: GraphQLClient) -> None:
    w = await clinics()
    answer = report(await analyst.data(WAITING, f=MARCH))
    assert (answer["deidentified"], answer["suppressionThreshold"]) == (True, 5)
    assert answer["suppressedGroups"] == 1
    groups = by(answer["groups"], "departmentId")
    assert groups[w["a"]]["medianMinutes"] == 25.0 and groups[w["a"]]["patients"] == 5
    # B has 2 patients (< 5): its key stays, every measure is null.
    assert groups[w["b"]] == {
        "departmentId": w["b"],
        "department": {"name": "Beta"},
        "visits": None,
        "medianMinutes": None,
        "p90Minutes": None,
        "patients": None,
        "suppressed": True,
    }


async def test_department_filter_and_range_edges(admin: GraphQLClient) -> None:
    w = await clinics()
    only_b = report(await admin.data(WAITING, f={**MARCH, "departmentId": w["b"]}))
    assert [g["departmentId"] for g in only_b["groups"]] == [w["b"]]
    # [2026-03-01T00:00:01, ...): the visit checked in at `from` (5 min) drops out of A:
    # 13, 20, 30, 45, 95 -> median x[2] = 30; p90 h = 4 * 0.9 = 3.6 -> 45 + 0.6 * 50 = 75.
    later = {"from": "2026-03-01T00:00:01Z", "to": "2026-04-01T00:00:00Z"}
    alpha = by(report(await admin.data(WAITING, f=later))["groups"], "departmentId")[w["a"]]
    assert (alpha["visits"], alpha["medianMinutes"], alpha["p90Minutes"]) == (5, 30.0, 75.0)
    # [2026-04-01T00:00, ...) holds the visit at the old `to` alone: 1 minute.
    april = {"from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    (only,) = report(await admin.data(WAITING, f=april))["groups"]
    assert (only["visits"], only["medianMinutes"], only["p90Minutes"]) == (1, 1.0, 1.0)
    nothing = {"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"}
    assert report(await admin.data(WAITING, f=nothing))["groups"] == []


async def test_long_waits_are_binned_to_three_significant_figures(database: Any) -> None:
    dept = await f.department()
    pat = await f.patient()
    start = at("2026-03-02T00:00:00Z")
    await visit(pat, dept, start, 999.6)  # whole minutes below 1000: rounds to 1000
    await visit(pat, dept, start + timedelta(days=1), 1234)  # 10-minute bins: 1230
    data = await analytics.outpatient_waiting_time(
        analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None), Disclosure.full()
    )
    (group,) = data["groups"]
    # 1000, 1230: median 1000 + 0.5 * 230 = 1115; p90 1000 + 0.9 * 230 = 1207.
    assert (group["visits"], group["median_minutes"], group["p90_minutes"]) == (2, 1115, 1207)
    assert group["patients"] == 1  # two visits, one patient


async def test_quantiles_match_pythons_inclusive_method(database: Any) -> None:
    rng = random.Random(14)
    depts = [await f.department() for _ in range(3)]
    people = [await f.patient() for _ in range(12)]
    waits: dict[str, list[int]] = {str(d.id): [] for d in depts}
    patients: dict[str, set[Any]] = {str(d.id): set() for d in depts}
    for i in range(150):
        dept, who, minutes = rng.choice(depts), rng.choice(people), rng.randrange(0, 400)
        await visit(who, dept, at("2026-03-01T08:00:00Z") + timedelta(hours=i), minutes)
        waits[str(dept.id)].append(minutes)
        patients[str(dept.id)].add(who.id)
    data = await analytics.outpatient_waiting_time(
        analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None), Disclosure(5)
    )
    for group in data["groups"]:
        values = waits[group["department_id"]]
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        assert group["visits"] == len(values)
        assert group["patients"] == len(patients[group["department_id"]])
        assert group["median_minutes"] == pytest.approx(statistics.median(values))
        assert group["p90_minutes"] == pytest.approx(deciles[8], abs=0.01)


async def test_a_write_refreshes_the_cached_answer(admin: GraphQLClient) -> None:
    w = await clinics()
    first = report(await admin.data(WAITING, f=MARCH))
    second = report(await admin.data(WAITING, f=MARCH))
    assert (first["cached"], second["cached"]) == (False, True)
    beta = await Department.get(ObjectId(w["b"]))
    assert beta is not None
    late = await visit(await f.patient(), beta, at("2026-03-12T09:00:00Z"), 11)
    await changed(late, "checked_in")  # as every service write ends
    third = report(await admin.data(WAITING, f=MARCH))
    assert third["cached"] is False
    # B: 7, 9, 11 -> median 9; p90 h = 2 * 0.9 = 1.8 -> 9 + 0.8 * 2 = 10.6.
    group = by(third["groups"], "departmentId")[w["b"]]
    assert (group["visits"], group["medianMinutes"], group["p90Minutes"]) == (3, 9.0, 10.6)


@pytest.mark.parametrize(
    "roles",
    [
        ["doctor"],
        ["nurse"],
        ["patient"],
        ["admin_staff"],
        ["billing"],
        ["compliance"],
        ["service"],
        ["lab_technician"],
    ],
)
async def test_other_roles_are_forbidden(client_as: Any, roles: list[str]) -> None:
    await clinics()
    error = await client_as(roles=roles).error(WAITING, f=MARCH)
    assert code(error) == "FORBIDDEN", error
    assert error["path"] == ["analytics"]


@pytest.mark.parametrize(
    ("filt", "field"),
    [
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "filter.to"),
        ({"from": "2023-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "filter.to"),
        ({**MARCH, "departmentId": "nope"}, "filter.departmentId"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00Z"}, "filter.from"),
    ],
)
async def test_bad_filters_are_bad_user_input(
    analyst: GraphQLClient, filt: dict[str, Any], field: str
) -> None:
    error = await analyst.error(WAITING, f=filt)
    assert code(error) == "BAD_USER_INPUT", error
    assert field in error["extensions"]["fields"], error


async def seed(visits: int) -> None:
    for model in (OutpatientVisit,):
        await model.get_motor_collection().delete_many({})
    depts = [await f.department() for _ in range(4)]
    people = [await f.patient() for _ in range(20)]  # 5 per clinic: every group visible
    docs = []
    for i in range(visits):
        checked_in = at("2026-03-01T06:00:00Z") + timedelta(minutes=7 * i)
        docs.append(
            OutpatientVisit(
                patient_id=people[i % 20].id,
                department_id=depts[i % 4].id,
                arrival=Arrival.WALK_IN,
                status=VisitStatus.COMPLETED,
                queue_date=checked_in.date().isoformat(),
                queue_number=next(_numbers),
                checked_in_at=checked_in,
                seen_at=checked_in + timedelta(minutes=i % 97),
                status_at=checked_in,
            )
        )
    await OutpatientVisit.insert_many(docs)


async def test_operations_do_not_grow_with_visits(database: Any) -> None:
    filt = analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None)
    counts = []
    for size in (200, 2000):
        await seed(size)
        with db.operations.measure() as ops:
            data = await analytics.outpatient_waiting_time(filt, Disclosure(5))
        assert sum(g["visits"] for g in data["groups"]) == size
        counts.append(dict(ops.counts))
    assert counts[0] == counts[1]
    assert {op for _, op in counts[0]} == {"aggregate"} and sum(counts[0].values()) == 1
