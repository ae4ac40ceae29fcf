"""bedOccupancy and lengthOfStay: exact figures from hand-made stays, buckets clipped to the
range, transfers splitting a stay between wards, small wards withheld from analysts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from errors import BadUserInput
from services import inpatient_analytics as ia
from services.analytics import analytics_filter
from services.buckets import Interval
from services.deidentify import Disclosure
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by
from tests.analytics.inpatient import admission, ward

BERLIN = ZoneInfo("Europe/Berlin")
TWO_DAYS = ("2026-03-01T00:00:00+01:00", "2026-03-03T00:00:00+01:00")
"""1 and 2 March 2026 in Berlin (UTC+1): two day buckets of 24 hours."""


def local(text: str) -> datetime:
    return at(text + "+01:00")


async def wards() -> dict[str, Any]:
    """W1 (2 beds) and W2 (1 bed) of one department, W3 (4 beds, empty), W4 inactive and empty.

    - p1: W1 from 28 Feb 12:00 to 1 Mar 12:00, transferred to W2 until 2 Mar 06:00, discharged;
    - p2: W1 from 2 Mar 18:00, still there (runs past `to`);
    - p3: W1 from 1 Mar 06:00, moved to another W1 bed at 10:00, until 3 Mar 06:00;
    - p4: W1 in February only."""
    dept = await f.department(name="Medicine")
    w1, w2 = await ward(dept, 2), await ward(dept, 1)
    w3 = await ward(dept, 4)
    await ward(dept, 3, active=False)
    p = [await f.patient() for _ in range(4)]
    await admission(
        p[0],
        [(w1, local("2026-02-28T12:00"), local("2026-03-01T12:00")),
         (w2, local("2026-03-01T12:00"), local("2026-03-02T06:00"))],
    )  # fmt: skip
    await admission(p[1], [(w1, local("2026-03-02T18:00"), None)])
    await admission(
        p[2],
        [(w1, local("2026-03-01T06:00"), local("2026-03-01T10:00")),
         (w1, local("2026-03-01T10:00"), local("2026-03-03T06:00"))],
    )  # fmt: skip
    await admission(p[3], [(w1, local("2026-02-20T08:00"), local("2026-02-25T08:00"))])
    return {"dept": str(dept.id), "w1": str(w1.id), "w2": str(w2.id), "w3": str(w3.id)}


def cells(answer: dict[str, Any], ward_id: str) -> list[dict[str, Any]]:
    group = by(answer["groups"], "ward_id")[ward_id]
    return [
        {k: c[k] for k in ("label", *ia.OCCUPANCY_MEASURES, "available_bed_hours", "patients")}
        for c in group["buckets"]
    ]


async def occupancy(
    span: tuple[str, str], interval: Interval = Interval.DAY, threshold: int | None = None
) -> dict[str, Any]:
    filt = analytics_filter(at(span[0]), at(span[1]), None)
    return await ia.bed_occupancy(filt, interval, Disclosure(threshold), BERLIN, 400)


async def test_occupied_bed_hours_per_ward_and_day(database: Any) -> None:
    w = await wards()
    answer = await occupancy(TWO_DAYS)
    assert [g["ward_id"] for g in answer["groups"]] == [w["w1"], w["w2"], w["w3"]]  # by code
    # W1, 1 Mar: p1 00:00-12:00 (12 h) + p3 06:00-24:00 across its bed change (18 h) = 30 h of
    # 2 beds x 24 h; census 30 / 24. 2 Mar: p3 all day (24 h) + p2 from 18:00 (6 h) = 30 h.
    day = {"occupied_bed_hours": 30.0, "occupancy": 0.625, "average_daily_census": 1.25}
    assert cells(answer, w["w1"]) == [
        {"label": "2026-03-01", **day, "available_bed_hours": 48.0, "patients": 2},
        {"label": "2026-03-02", **day, "available_bed_hours": 48.0, "patients": 2},
    ]
    # W2: p1 after the transfer, 12:00-24:00 on 1 Mar and 00:00-06:00 on 2 Mar.
    assert cells(answer, w["w2"]) == [
        {"label": "2026-03-01", "occupied_bed_hours": 12.0, "occupancy": 0.5,
         "average_daily_census": 0.5, "available_bed_hours": 24.0, "patients": 1},
        {"label": "2026-03-02", "occupied_bed_hours": 6.0, "occupancy": 0.25,
         "average_daily_census": 0.25, "available_bed_hours": 24.0, "patients": 1},
    ]  # fmt: skip
    assert [c["occupied_bed_hours"] for c in cells(answer, w["w3"])] == [0.0, 0.0]
    group = by(answer["groups"], "ward_id")[w["w1"]]
    assert (group["capacity"], group["department_id"]) == (2, w["dept"])
    assert answer["suppressed_groups"] == 0 and answer["deidentified"] is False


async def test_buckets_are_clipped_to_the_range(database: Any) -> None:
    w = await wards()
    # From noon on 1 Mar to noon on 2 Mar: each day bucket holds 12 hours of the range.
    answer = await occupancy(("2026-03-01T12:00:00+01:00", "2026-03-02T12:00:00+01:00"))
    # W1: 1 Mar p3 12:00-24:00 (p1 left W1 at 12:00); 2 Mar p3 00:00-12:00 (p2 comes later).
    assert cells(answer, w["w1"]) == [
        {"label": "2026-03-01", "occupied_bed_hours": 12.0, "occupancy": 0.5,
         "average_daily_census": 1.0, "available_bed_hours": 24.0, "patients": 1},
        {"label": "2026-03-02", "occupied_bed_hours": 12.0, "occupancy": 0.5,
         "average_daily_census": 1.0, "available_bed_hours": 24.0, "patients": 1},
    ]  # fmt: skip
    # 1 Mar 2026 is a Sunday: the ISO week buckets 2026-W09 (from 23 Feb) and 2026-W10 hold
    # one day of the range each, so they equal the day buckets of the first test.
    weeks = await occupancy(TWO_DAYS, Interval.WEEK)
    first, second = cells(weeks, w["w1"])
    assert (first["label"], second["label"]) == ("2026-W09", "2026-W10")
    assert (first["occupied_bed_hours"], first["available_bed_hours"]) == (30.0, 48.0)
    assert (second["occupied_bed_hours"], second["occupancy"]) == (30.0, 0.625)


async def test_an_open_stay_counts_until_now(database: Any, monkeypatch: Any) -> None:
    w = await wards()
    monkeypatch.setattr(ia, "utcnow", lambda: local("2026-03-02T21:00"))
    # p2 has been in W1 from 18:00 to "now", 21:00: 3 hours, not 6.
    (_, second) = cells(await occupancy(TWO_DAYS), w["w1"])
    assert second["occupied_bed_hours"] == 27.0


async def test_analysts_see_small_cells_withheld(database: Any) -> None:
    w = await wards()
    dept = await f.department()
    busy = await ward(dept, 5)
    for _ in range(5):
        await admission(await f.patient(), [(busy, local("2026-03-01T00:00"), None)])
    answer = await occupancy(TWO_DAYS, threshold=5)
    assert answer["deidentified"] is True and answer["suppression_threshold"] == 5
    # W1 and W2 cells hold 1-2 patients (withheld); W3's are empty (shown); busy is full.
    assert answer["suppressed_groups"] == 4
    (first, _) = by(answer["groups"], "ward_id")[w["w1"]]["buckets"]
    assert first["suppressed"] is True and first["patients"] is None
    assert first["occupied_bed_hours"] is None and first["occupancy"] is None
    assert first["available_bed_hours"] == 48.0  # capacity is not about patients
    full = by(answer["groups"], "ward_id")[str(busy.id)]["buckets"]
    assert [(c["occupancy"], c["patients"]) for c in full] == [(1.0, 5), (1.0, 5)]
    only = analytics_filter(at(TWO_DAYS[0]), at(TWO_DAYS[1]), str(dept.id))
    scoped = await ia.bed_occupancy(only, Interval.DAY, Disclosure(5), BERLIN, 400)
    assert [g["ward_id"] for g in scoped["groups"]] == [str(busy.id)]


async def test_too_many_buckets_is_bad_user_input(database: Any) -> None:
    filt = analytics_filter(at("2026-01-01T00:00:00Z"), at("2026-03-01T00:00:00Z"), None)
    with pytest.raises(BadUserInput):
        await ia.bed_occupancy(filt, Interval.DAY, Disclosure(), BERLIN, 30)


# -- length of stay --------------------------------------------------------------------------


async def stays() -> dict[str, Any]:
    """D1: W1 discharges p0..p4 after 1, 2, 3, 4 and 10 days (p4 after a transfer from W3);
    W2 discharges q0, q1 after 0.5 and 1.5 days. D2: W3 discharges r0 after 2 days. Around
    them: a discharge in February and an admission still open, which do not count."""
    d1, d2 = await f.department(name="Medicine"), await f.department(name="Surgery")
    w1, w2, w3 = await ward(d1, 10), await ward(d1, 4), await ward(d2, 4)
    p = [await f.patient() for _ in range(5)]
    q = [await f.patient() for _ in range(2)]
    r = await f.patient()
    for who, days in zip(p[:4], (1, 2, 3, 4), strict=True):
        start = at("2026-03-05T10:00:00Z")
        await admission(who, [(w1, start, start + timedelta(days=days))])
    await admission(
        p[4],
        [(w3, at("2026-03-05T10:00:00Z"), at("2026-03-07T10:00:00Z")),
         (w1, at("2026-03-07T10:00:00Z"), at("2026-03-15T10:00:00Z"))],
    )  # fmt: skip
    await admission(q[0], [(w2, at("2026-03-10T00:00:00Z"), at("2026-03-10T12:00:00Z"))])
    await admission(q[1], [(w2, at("2026-03-10T00:00:00Z"), at("2026-03-11T12:00:00Z"))])
    await admission(r, [(w3, at("2026-03-20T00:00:00Z"), at("2026-03-22T00:00:00Z"))])
    await admission(r, [(w1, at("2026-02-01T00:00:00Z"), at("2026-02-03T00:00:00Z"))])
    await admission(q[0], [(w1, at("2026-03-25T00:00:00Z"), None)])
    ids = {"d1": d1.id, "d2": d2.id, "w1": w1.id, "w2": w2.id, "w3": w3.id}
    return {k: str(v) for k, v in ids.items()}


async def los(threshold: int | None = None, dept: str | None = None) -> dict[str, Any]:
    filt = analytics_filter(at(MARCH["from"]), at(MARCH["to"]), dept)
    return await ia.length_of_stay(filt, Disclosure(threshold))


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in (*ia.LOS_MEASURES, "patients", "suppressed"))


async def test_length_of_stay_per_department_and_ward_of_discharge(database: Any) -> None:
    s = await stays()
    answer = await los()
    groups = by(answer["groups"], "department_id")
    one = groups[s["d1"]]
    # D1: 0.5, 1, 1.5, 2, 3, 4, 10 days. Mean 22 / 7 = 3.14; median x[3] = 2;
    # p90: h = 6 x 0.9 = 5.4 -> 4 + 0.4 x (10 - 4) = 6.4.
    assert figures(one) == (7, 3.14, 2.0, 6.4, 7, False)
    wards_of = by(one["wards"], "ward_id")
    # W1: 1, 2, 3, 4, 10 (p4's whole stay, transfer included): mean 4, median 3,
    # p90: h = 3.6 -> 4 + 0.6 x 6 = 7.6.
    assert figures(wards_of[s["w1"]]) == (5, 4.0, 3.0, 7.6, 5, False)
    # W2: 0.5, 1.5: mean 1, median 1, p90 0.5 + 0.9 x 1 = 1.4.
    assert figures(wards_of[s["w2"]]) == (2, 1.0, 1.0, 1.4, 2, False)
    assert figures(groups[s["d2"]]) == (1, 2.0, 2.0, 2.0, 1, False)
    assert [g["department_id"] for g in answer["groups"]] == sorted([s["d1"], s["d2"]])


async def test_small_wards_are_withheld_and_left_out_of_their_department(
    database: Any,
) -> None:
    s = await stays()
    answer = await los(threshold=5)
    groups = by(answer["groups"], "department_id")
    one = groups[s["d1"]]
    wards_of = by(one["wards"], "ward_id")
    assert wards_of[s["w1"]]["suppressed"] is False
    assert figures(wards_of[s["w2"]]) == (None, None, None, None, None, True)
    # D1 over its visible ward only: W2's two stays cannot be had by subtraction.
    assert figures(one) == (5, 4.0, 3.0, 7.6, 5, False)
    # D2: one patient; its ward and the department are both withheld.
    assert figures(groups[s["d2"]]) == (None, None, None, None, None, True)
    assert answer["suppressed_groups"] == 3
    only = await los(threshold=5, dept=s["d2"])
    assert [g["department_id"] for g in only["groups"]] == [s["d2"]]
