"""labTurnaround: order to first verification per test, medians and 90th percentiles by hand,
corrections, range edges, the ordering doctor's department, suppression, roles, bad input, and
operations that do not grow with the orders."""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

import db
from models.laboratory import (
    LabOrder,
    LabOrderStatus,
    LabStatusChange,
    OrderedTest,
    SpecimenType,
)
from models.patients import Patient
from models.staff import Doctor
from services import analytics
from services.deidentify import Disclosure
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

TURNAROUND = """query($f: AnalyticsFilter!) { analytics { labTurnaround(filter: $f) {
  deidentified suppressionThreshold suppressedGroups cached
  groups { testId code name tests medianMinutes p90Minutes patients suppressed }
} } }"""

CBC = OrderedTest(
    test_id=ObjectId(), code="CBC", name="Blood count", specimen_type=SpecimenType.WHOLE_BLOOD,
    price=1200,
)  # fmt: skip
BMP = OrderedTest(
    test_id=ObjectId(), code="BMP", name="Basic metabolic panel", specimen_type=SpecimenType.SERUM,
    price=1500,
)  # fmt: skip
CRP = OrderedTest(
    test_id=ObjectId(), code="CRP", name="C-reactive protein", specimen_type=SpecimenType.SERUM,
    price=900,
)  # fmt: skip


async def order(
    patient: Patient,
    doctor: Doctor,
    ordered: datetime,
    tests: list[OrderedTest],
    verified_after: float | None,
    corrected_after: float | None = None,
    history: bool = True,
) -> LabOrder:
    """An order placed at ``ordered``, first verified ``verified_after`` minutes later (None:
    not verified yet); ``corrected_after``: corrected and verified again then (the order's
    ``verified_at`` is the last verification); ``history`` False: no status history, as
    orders written before it was kept."""
    steps = [LabStatusChange(status=LabOrderStatus.ORDERED, at=ordered, by="doctor")]
    verified = None
    if verified_after is not None:
        verified = ordered + timedelta(minutes=verified_after)
        steps.append(LabStatusChange(status=LabOrderStatus.VERIFIED, at=verified, by="lab"))
    if corrected_after is not None:
        verified = ordered + timedelta(minutes=corrected_after)
        back = verified - timedelta(minutes=10)
        steps.append(LabStatusChange(status=LabOrderStatus.RESULTED, at=back, by="lab"))
        steps.append(LabStatusChange(status=LabOrderStatus.VERIFIED, at=verified, by="lab2"))
    made = LabOrder(
        patient_id=patient.id,
        ordering_doctor_id=doctor.id,
        tests=tests,
        status=LabOrderStatus.RECEIVED if verified is None else LabOrderStatus.VERIFIED,
        status_history=steps if history else [],
        ordered_at=ordered,
        verified_at=verified,
        charge_amount=sum(t.price for t in tests),
    )
    return await made.insert()


async def laboratory() -> dict[str, Any]:
    """Alpha's doctor orders CBC for p0..p4 (p0 twice) and BMP for p0 and p2; Beta's doctor
    orders CRP for q0. Around them, orders that must not count."""
    alpha, beta = await f.department(name="Alpha"), await f.department(name="Beta")
    da, db_ = await f.doctor(alpha), await f.doctor(beta)
    p = [await f.patient() for _ in range(5)]
    q0 = await f.patient()
    await order(p[0], da, at("2026-03-01T00:00:00Z"), [CBC, BMP], 40)  # at `from`: counted
    await order(p[1], da, at("2026-03-02T09:00:00Z"), [CBC], 60)
    # First verified after 90 minutes, corrected and verified again after 300: 90 counts.
    await order(p[2], da, at("2026-03-03T09:00:00Z"), [CBC, BMP], 90, corrected_after=300)
    await order(p[3], da, at("2026-03-04T09:00:00Z"), [CBC], 120, history=False)
    await order(p[4], da, at("2026-03-31T23:50:00Z"), [CBC], 30 + 29 / 60)  # 30 min 29 s: 30
    await order(p[0], da, at("2026-03-20T09:00:00Z"), [CBC], 45)
    await order(p[1], da, at("2026-03-21T09:00:00Z"), [CBC], None)  # not verified: not counted
    await order(p[2], da, at("2026-04-01T00:00:00Z"), [CBC], 5)  # at `to`: not counted
    await order(p[3], da, at("2026-02-28T23:59:00Z"), [CBC], 5)  # before `from`: not counted
    await order(q0, db_, at("2026-03-10T09:00:00Z"), [CRP], 15)
    return {"alpha": str(alpha.id), "beta": str(beta.id)}


def report(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = data["analytics"]["labTurnaround"]
    return result


async def test_admin_gets_every_test_with_hand_computed_quantiles(admin: GraphQLClient) -> None:
    await laboratory()
    answer = report(await admin.data(TURNAROUND, f=MARCH))
    assert (answer["deidentified"], answer["suppressedGroups"]) == (False, 0)
    assert [g["code"] for g in answer["groups"]] == ["BMP", "CBC", "CRP"]
    groups = by(answer["groups"], "code")
    # CBC, sorted: 30, 40, 45, 60, 90, 120 (n = 6; the corrected order counts 90, not 300).
    # median: h = 5 * 0.5 = 2.5 -> x[2] + 0.5 * (x[3] - x[2]) = 45 + 0.5 * 15 = 52.5.
    # p90:    h = 5 * 0.9 = 4.5 -> x[4] + 0.5 * (x[5] - x[4]) = 90 + 0.5 * 30 = 105.
    assert groups["CBC"] == {
        "testId": str(CBC.test_id),
        "code": "CBC",
        "name": "Blood count",
        "tests": 6,
        "medianMinutes": 52.5,
        "p90Minutes": 105.0,
        "patients": 5,
        "suppressed": False,
    }
    # BMP: 40, 90. median: h = 0.5 -> 40 + 0.5 * 50 = 65. p90: h = 0.9 -> 40 + 0.9 * 50 = 85.
    bmp = groups["BMP"]
    assert (bmp["tests"], bmp["medianMinutes"], bmp["p90Minutes"], bmp["patients"]) == (
        2,
        65.0,
        85.0,
        2,
    )
    # CRP: one value, 15: every quantile is 15.
    crp = groups["CRP"]
    assert (crp["tests"], crp["medianMinutes"], crp["p90Minutes"], crp["patients"]) == (
        1,
        15.0,
        15.0,
        1,
    )


async def test_analyst_sees_small_tests_withheld(analyst: GraphQLClient) -> None:
    await laboratory()
    answer = report(await analyst.data(TURNAROUND, f=MARCH))
    assert (answer["deidentified"], answer["suppressionThreshold"]) == (True, 5)
    assert answer["suppressedGroups"] == 2
    # Withheld groups keep their place by code: the order tells nothing about their size.
    assert [(g["code"], g["suppressed"]) for g in answer["groups"]] == [
        ("BMP", True),
        ("CBC", False),
        ("CRP", True),
    ]
    groups = by(answer["groups"], "code")
    assert (groups["CBC"]["medianMinutes"], groups["CBC"]["patients"]) == (52.5, 5)
    for small in ("BMP", "CRP"):
        withheld = groups[small]
        assert [withheld[k] for k in ("tests", "medianMinutes", "p90Minutes", "patients")] == [
            None
        ] * 4


async def test_department_is_the_ordering_doctors(admin: GraphQLClient) -> None:
    w = await laboratory()
    beta = report(await admin.data(TURNAROUND, f={**MARCH, "departmentId": w["beta"]}))
    assert [g["code"] for g in beta["groups"]] == ["CRP"]
    alpha = report(await admin.data(TURNAROUND, f={**MARCH, "departmentId": w["alpha"]}))
    assert [g["code"] for g in alpha["groups"]] == ["BMP", "CBC"]
    nobody = report(await admin.data(TURNAROUND, f={**MARCH, "departmentId": str(ObjectId())}))
    assert nobody["groups"] == []


async def test_range_edges(admin: GraphQLClient) -> None:
    await laboratory()
    # From one second later, p0's order at `from` (CBC 40, BMP 40) drops out.
    # CBC: 30, 45, 60, 90, 120 -> median x[2] = 60; p90 h = 3.6 -> 90 + 0.6 * 30 = 108.
    later = {"from": "2026-03-01T00:00:01Z", "to": "2026-04-01T00:00:00Z"}
    groups = by(report(await admin.data(TURNAROUND, f=later))["groups"], "code")
    cbc = groups["CBC"]
    assert (cbc["tests"], cbc["medianMinutes"], cbc["p90Minutes"]) == (5, 60.0, 108.0)
    assert groups["BMP"]["tests"] == 1  # 90 alone
    # April holds the order placed at the old `to` alone: CBC, 5 minutes.
    april = {"from": "2026-04-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    (only,) = report(await admin.data(TURNAROUND, f=april))["groups"]
    assert (only["code"], only["tests"], only["medianMinutes"]) == ("CBC", 1, 5.0)


async def test_quantiles_match_pythons_inclusive_method(database: Any) -> None:
    rng = random.Random(7)
    doctor = await f.doctor()
    people = [await f.patient() for _ in range(10)]
    durations: dict[str, list[int]] = {"BMP": [], "CBC": [], "CRP": []}
    for i in range(120):
        tests = rng.sample([CBC, BMP, CRP], rng.randint(1, 3))
        minutes = rng.randrange(5, 900)
        placed = at("2026-03-01T06:00:00Z") + timedelta(hours=5 * i)
        await order(rng.choice(people), doctor, placed, tests, minutes)
        for test in tests:
            durations[test.code].append(minutes)
    filt = analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None)
    data = await analytics.lab_turnaround(filt, Disclosure.full())
    assert [g["code"] for g in data["groups"]] == ["BMP", "CBC", "CRP"]
    for group in data["groups"]:
        values = durations[group["code"]]
        assert group["tests"] == len(values)
        assert group["median_minutes"] == pytest.approx(statistics.median(values))
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        assert group["p90_minutes"] == pytest.approx(deciles[8], abs=0.01)


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
        ["radiologist"],
    ],
)
async def test_other_roles_are_forbidden(client_as: Any, roles: list[str]) -> None:
    await laboratory()
    error = await client_as(roles=roles).error(TURNAROUND, f=MARCH)
    assert code(error) == "FORBIDDEN", error


@pytest.mark.parametrize(
    ("filt", "field"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "filter.to"),
        ({"from": "2023-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "filter.to"),
        ({**MARCH, "departmentId": "not-an-id"}, "filter.departmentId"),
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00"}, "filter.to"),
    ],
)
async def test_bad_filters_are_bad_user_input(
    admin: GraphQLClient, filt: dict[str, Any], field: str
) -> None:
    error = await admin.error(TURNAROUND, f=filt)
    assert code(error) == "BAD_USER_INPUT", error
    assert field in error["extensions"]["fields"], error


async def seed(orders: int, doctors: list[Doctor], people: list[Patient]) -> None:
    await LabOrder.get_motor_collection().delete_many({})
    docs = []
    for i in range(orders):
        placed = at("2026-03-01T06:00:00Z") + timedelta(minutes=11 * i)
        verified = placed + timedelta(minutes=20 + i % 300)
        docs.append(
            LabOrder(
                patient_id=people[i % len(people)].id,
                ordering_doctor_id=doctors[i % len(doctors)].id,
                tests=[CBC, BMP] if i % 2 else [CRP],
                status=LabOrderStatus.VERIFIED,
                status_history=[
                    LabStatusChange(status=LabOrderStatus.VERIFIED, at=verified, by="lab")
                ],
                ordered_at=placed,
                verified_at=verified,
                charge_amount=100,
            )
        )
    await LabOrder.insert_many(docs)


async def test_operations_do_not_grow_with_orders(database: Any) -> None:
    dept = await f.department()
    doctors = [await f.doctor(dept), await f.doctor()]
    people = [await f.patient() for _ in range(12)]
    filters = [
        analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None),
        analytics.analytics_filter(at(MARCH["from"]), at(MARCH["to"]), str(dept.id)),
    ]
    counts = []
    for size in (150, 1500):
        await seed(size, doctors, people)
        measured = []
        for filt in filters:
            with db.operations.measure() as ops:
                data = await analytics.lab_turnaround(filt, Disclosure(5))
            assert all(not g["suppressed"] for g in data["groups"])
            measured.append(dict(ops.counts))
        counts.append(measured)
        # Every order of the unfiltered read: CRP on even ones, CBC and BMP on odd ones.
        everything = await analytics.lab_turnaround(filters[0], Disclosure.full())
        assert sum(g["tests"] for g in everything["groups"]) == size // 2 * 3
    assert counts[0] == counts[1]
    for read in counts[0]:
        assert {op for _, op in read} == {"aggregate"} and sum(read.values()) == 1
