"""theatreUtilisation and emergencyTimes: exact figures from hand-made cases and visits, the
session minutes of a range, turnover and late starts, suppression of small groups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.emergency import DispositionKind as Kind
from models.theatre import SurgeryStatus
from services import inpatient_analytics as ia
from services.analytics import analytics_filter
from services.deidentify import Disclosure
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by
from tests.analytics.inpatient import ed_visit, surgery, theatre

BERLIN = ZoneInfo("Europe/Berlin")
MON_TUE = ("2026-03-02T00:00:00+01:00", "2026-03-04T00:00:00+01:00")
"""Monday and Tuesday, 2 and 3 March 2026, in Berlin (UTC+1)."""


def local(text: str) -> Any:
    return at(text + "+01:00")


def test_session_minutes_are_weekday_sessions_inside_the_range() -> None:
    week = analytics_filter(local("2026-03-02T00:00"), local("2026-03-09T00:00"), None)
    assert ia.session_minutes(week, BERLIN) == 5 * 600
    # From Friday 17:00 to Monday 09:00: one hour on Friday, one on Monday.
    weekend = analytics_filter(local("2026-03-06T17:00"), local("2026-03-09T09:00"), None)
    assert ia.session_minutes(weekend, BERLIN) == 120
    # Summer time (UTC+2) from 29 March: the session is still 08:00-18:00 local.
    summer = analytics_filter(at("2026-03-30T06:00:00Z"), at("2026-03-30T16:00:00Z"), None)
    assert ia.session_minutes(summer, BERLIN) == 600


async def theatres() -> dict[str, Any]:
    """OT-A on Monday: c1 booked 08:00 +60, in 08:00-09:10; c2 booked 09:30 +90, in 09:40
    (late) - 11:00; c3 booked 11:30 +60, in 11:33 (within grace) - 12:30. Tuesday: c4 booked
    08:00 +120, in 08:20 (late) - 10:00; c5 booked 14:00 +30, not started; a cancelled case.
    Wednesday (after `to`): one more. OT-B: one case of one patient."""
    dept = await f.department(name="Theatres")
    a, b = await theatre(dept), await theatre(dept)
    p = [await f.patient() for _ in range(6)]
    await surgery(
        a, p[0], local("2026-03-02T08:00"), 60, local("2026-03-02T08:00"), local("2026-03-02T09:10")
    )
    await surgery(
        a, p[1], local("2026-03-02T09:30"), 90, local("2026-03-02T09:40"), local("2026-03-02T11:00")
    )
    await surgery(
        a, p[2], local("2026-03-02T11:30"), 60, local("2026-03-02T11:33"), local("2026-03-02T12:30")
    )
    await surgery(
        a,
        p[3],
        local("2026-03-03T08:00"),
        120,
        local("2026-03-03T08:20"),
        local("2026-03-03T10:00"),
    )
    await surgery(a, p[4], local("2026-03-03T14:00"), 30, status=SurgeryStatus.SCHEDULED)
    await surgery(a, p[5], local("2026-03-03T13:00"), 60, status=SurgeryStatus.CANCELLED)
    await surgery(
        a, p[5], local("2026-03-04T08:00"), 60, local("2026-03-04T08:00"), local("2026-03-04T09:00")
    )
    await surgery(
        b, p[0], local("2026-03-02T10:00"), 45, local("2026-03-02T10:00"), local("2026-03-02T10:50")
    )
    return {"dept": str(dept.id), "a": str(a.id), "b": str(b.id)}  # fmt: skip


async def utilisation(threshold: int | None = None) -> dict[str, Any]:
    filt = analytics_filter(at(MON_TUE[0]), at(MON_TUE[1]), None)
    return await ia.theatre_utilisation(filt, Disclosure(threshold), BERLIN)


async def test_theatre_utilisation_turnover_and_late_starts(database: Any) -> None:
    t = await theatres()
    answer = await utilisation()
    assert [g["theatre_id"] for g in answer["groups"]] == [t["a"], t["b"]]  # by code
    a = by(answer["groups"], "theatre_id")[t["a"]]
    # Booked 60 + 90 + 60 + 120 + 30 = 360 of 2 x 600 session minutes; actual 70 + 80 + 57 +
    # 100 = 307. Turnovers on Monday: 09:10 -> 09:40 (30) and 11:00 -> 11:33 (33); median
    # 31.5, p90 30 + 0.9 x 3 = 32.7. Late: c2 (10 min) and c4 (20 min); c3's 3 min is grace.
    assert {k: a[k] for k in (*ia.THEATRE_MEASURES, "available_minutes", "started")} == {
        "cases": 5,
        "booked_minutes": 360,
        "actual_minutes": 307,
        "booked_utilisation": 0.3,
        "actual_utilisation": 0.2558,
        "late_starts": 2,
        "turnovers": 2,
        "median_turnover_minutes": 31.5,
        "p90_turnover_minutes": 32.7,
        "available_minutes": 1200,
        "started": 4,
    }
    assert (a["patients"], a["suppressed"], a["department_id"]) == (5, False, t["dept"])
    b = by(answer["groups"], "theatre_id")[t["b"]]
    assert (b["cases"], b["actual_minutes"], b["turnovers"], b["median_turnover_minutes"]) == (
        1,
        50,
        0,
        None,
    )


async def test_small_theatres_are_withheld_from_analysts(database: Any) -> None:
    t = await theatres()
    answer = await utilisation(threshold=5)
    groups = by(answer["groups"], "theatre_id")
    assert groups[t["a"]]["suppressed"] is False and groups[t["a"]]["cases"] == 5
    b = groups[t["b"]]
    assert b["suppressed"] is True and b["available_minutes"] == 1200
    assert all(b[k] is None for k in (*ia.THEATRE_MEASURES, "started", "patients"))
    assert answer["suppressed_groups"] == 1


# -- emergency department --------------------------------------------------------------------


async def emergency() -> dict[str, Any]:
    """ED level 2: five patients triaged after 2, 4 (re-triaged at 30), 6, 8 and 10 minutes,
    disposed after 60 (discharged), 90 (discharged), 120 (admitted), 180 (admitted) and 300
    (transferred). Never triaged: one left without being seen after 45 minutes. Level 4: one
    triaged after 20 minutes, still open. A February arrival does not count."""
    ed = await f.department(name="Emergency", code="ER")
    p = [await f.patient() for _ in range(7)]
    start = at("2026-03-10T20:00:00Z")
    for i, (tri, out, kind) in enumerate(
        [(2, 60, Kind.DISCHARGED), (4, 90, Kind.DISCHARGED), (6, 120, Kind.ADMITTED),
         (8, 180, Kind.ADMITTED), (10, 300, Kind.TRANSFERRED)]
    ):  # fmt: skip
        await ed_visit(
            ed,
            p[i],
            start + timedelta(hours=i),
            tri,
            2,
            out,
            kind,
            retriaged_after=30 if i == 1 else None,
        )
    await ed_visit(ed, p[5], start, disposed_after=45, kind=Kind.LEFT_WITHOUT_BEING_SEEN)
    await ed_visit(ed, p[6], start, 20, 4)
    await ed_visit(ed, p[6], at("2026-02-27T10:00:00Z"), 5, 4, 30, Kind.DISCHARGED)
    return {"ed": str(ed.id)}


async def times(threshold: int | None = None) -> list[dict[str, Any]]:
    filt = analytics_filter(at(MARCH["from"]), at(MARCH["to"]), None)
    answer = await ia.emergency_times(filt, Disclosure(threshold))
    groups: list[dict[str, Any]] = answer["groups"]
    return groups


async def test_time_to_triage_and_disposition_per_level(database: Any) -> None:
    e = await emergency()
    two, four, untriaged = await times()
    assert [g["triage_level"] for g in (two, four, untriaged)] == [2, 4, None]
    assert {two["department_id"], four["department_id"]} == {e["ed"]}
    # Triage 2, 4 (the first triage, not the re-triage at 30), 6, 8, 10: median 6,
    # p90 h = 3.6 -> 8 + 0.6 x 2 = 9.2. Disposition 60, 90, 120, 180, 300: median 120,
    # p90 180 + 0.6 x 120 = 252.
    assert {k: two[k] for k in ia.EMERGENCY_MEASURES} == {
        "visits": 5,
        "triaged": 5,
        "median_minutes_to_triage": 6.0,
        "p90_minutes_to_triage": 9.2,
        "disposed": 5,
        "median_minutes_to_disposition": 120.0,
        "p90_minutes_to_disposition": 252.0,
        "discharged": 2,
        "admitted": 2,
        "transferred": 1,
        "left_without_being_seen": 0,
        "left_without_being_seen_rate": 0.0,
    }
    assert (two["patients"], two["suppressed"]) == (5, False)
    assert (four["visits"], four["triaged"], four["median_minutes_to_triage"]) == (1, 1, 20.0)
    assert (four["disposed"], four["median_minutes_to_disposition"]) == (0, None)
    assert (untriaged["triaged"], untriaged["median_minutes_to_triage"]) == (0, None)
    assert untriaged["median_minutes_to_disposition"] == 45.0
    assert (untriaged["left_without_being_seen"], untriaged["left_without_being_seen_rate"]) == (
        1,
        1.0,
    )


async def test_small_levels_are_withheld_from_analysts(database: Any) -> None:
    await emergency()
    two, four, untriaged = await times(threshold=5)
    assert two["suppressed"] is False and two["median_minutes_to_triage"] == 6.0
    for hidden in (four, untriaged):
        assert hidden["suppressed"] is True and hidden["patients"] is None
        assert all(hidden[k] is None for k in ia.EMERGENCY_MEASURES)
    assert untriaged["triage_level"] is None and four["triage_level"] == 4  # keys stay
