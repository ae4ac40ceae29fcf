"""appointmentsOverTime: local buckets across the spring DST change, edges, suppression."""

from __future__ import annotations

from typing import Any

from models.scheduling import AppointmentStatus as S
from tests import factories as f
from tests.analytics.conftest import at
from tests.graphql.helpers import code

QUERY = """query($f: AnalyticsFilter!, $i: TimeInterval!) { analytics {
  appointmentsOverTime(filter: $f, interval: $i) {
    suppressedGroups groups { label start end appointments patients suppressed }
  }
} }"""
WEEKS = {"from": "2026-03-25T00:00:00Z", "to": "2026-04-02T00:00:00Z"}


async def test_weeks_across_the_spring_change(admin: Any) -> None:
    doc = await f.doctor()
    for start in (
        "2026-03-24T10:00:00Z",  # in W13 but before `from`: not counted
        "2026-03-25T00:00:00Z",  # `from` itself: W13
        "2026-03-29T21:30:00Z",  # Sunday 23:30 CEST: still W13
        "2026-03-29T22:30:00Z",  # Monday 00:30 CEST: W14
        "2026-04-02T00:00:00Z",  # `to` itself: not counted
    ):
        await f.appointment(doc=doc, start=at(start))
    await f.appointment(doc=doc, start=at("2026-03-30T10:00:00Z"), status=S.CANCELLED)
    report = (await admin.data(QUERY, f=WEEKS, i="WEEK"))["analytics"]["appointmentsOverTime"]
    assert report["groups"] == [
        {
            "label": "2026-W13",
            "start": "2026-03-22T23:00:00+00:00",  # Monday 00:00 CET
            "end": "2026-03-29T22:00:00+00:00",  # Monday 00:00 CEST
            "appointments": 2,
            "patients": 2,
            "suppressed": False,
        },
        {
            "label": "2026-W14",
            "start": "2026-03-29T22:00:00+00:00",
            "end": "2026-04-05T22:00:00+00:00",
            "appointments": 1,  # the cancelled one is not counted
            "patients": 1,
            "suppressed": False,
        },
    ]


async def test_months_split_at_local_midnight_and_list_empty_ones(admin: Any) -> None:
    dept = await f.department()
    doc = await f.doctor(dept)
    other = await f.doctor()
    await f.appointment(doc=doc, start=at("2026-03-31T21:55:00Z"))  # 23:55 CEST, 31 March
    await f.appointment(doc=doc, start=at("2026-03-31T22:00:00Z"))  # 00:00 CEST, 1 April
    await f.appointment(doc=other, start=at("2026-03-31T22:00:00Z"))  # another department
    span = {"from": "2026-03-15T00:00:00Z", "to": "2026-05-15T00:00:00Z"}
    filt = {**span, "departmentId": str(dept.id)}
    report = (await admin.data(QUERY, f=filt, i="MONTH"))["analytics"]["appointmentsOverTime"]
    rows = [(g["label"], g["start"], g["appointments"], g["patients"]) for g in report["groups"]]
    assert rows == [
        ("2026-03", "2026-02-28T23:00:00+00:00", 1, 1),
        ("2026-04", "2026-03-31T22:00:00+00:00", 1, 1),
        ("2026-05", "2026-04-30T22:00:00+00:00", 0, 0),  # empty: zeros, not suppressed
    ]
    everyone = (await admin.data(QUERY, f=span, i="MONTH"))["analytics"]["appointmentsOverTime"]
    assert [g["appointments"] for g in everyone["groups"]] == [1, 2, 0]


async def test_analyst_buckets_of_four_patients_are_withheld(analyst: Any) -> None:
    doc = await f.doctor()
    patients = [await f.patient() for _ in range(5)]
    # Day 1 (25 March): 5 patients -> shown. Day 2: 4 patients, 6 visits -> withheld.
    for p in patients:
        await f.appointment(p, doc, start=at("2026-03-25T09:00:00Z"))
    for p in patients[:4] + patients[:2]:
        await f.appointment(p, doc, start=at("2026-03-26T09:00:00Z"))
    filt = {"from": "2026-03-25T00:00:00Z", "to": "2026-03-28T00:00:00Z"}
    report = (await analyst.data(QUERY, f=filt, i="DAY"))["analytics"]["appointmentsOverTime"]
    rows = [
        (g["label"], g["appointments"], g["patients"], g["suppressed"]) for g in report["groups"]
    ]
    assert rows == [
        ("2026-03-25", 5, 5, False),
        ("2026-03-26", None, None, True),
        ("2026-03-27", 0, 0, False),
        ("2026-03-28", 0, 0, False),  # 28 March 00:00 UTC is 01:00 local: its day is listed
    ]
    assert report["suppressedGroups"] == 1


async def test_more_buckets_than_allowed_is_bad_input(admin: Any) -> None:
    # 400 buckets at most by default; two years of days are 730.
    filt = {"from": "2025-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    error = await admin.error(QUERY, f=filt, i="DAY")
    assert code(error) == "BAD_USER_INPUT" and "filter" in error["extensions"]["fields"]
    weeks = (await admin.data(QUERY, f=filt, i="WEEK"))["analytics"]["appointmentsOverTime"]
    # Monday 30 Dec 2024 .. Monday 4 Jan 2027 (the week of Friday 1 January): 735 days / 7.
    assert len(weeks["groups"]) == 105
