"""Bucket boundaries in the facility's zone, across daylight-saving changes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from errors import BadUserInput
from services.buckets import Interval, buckets
from tests.analytics.conftest import at

BERLIN = ZoneInfo("Europe/Berlin")


def spans(
    start: str, end: str, interval: Interval, limit: int | None = None
) -> list[tuple[str, str, str]]:
    found = buckets(at(start), at(end), interval, BERLIN, limit)
    return [(b.label, b.start.isoformat(), b.end.isoformat()) for b in found]


def test_the_week_of_the_spring_change_has_167_hours() -> None:
    # Clocks go forward on Sunday 2026-03-29: Monday 23 March 00:00 CET is 22 March 23:00 UTC,
    # Monday 30 March 00:00 CEST is 29 March 22:00 UTC.
    assert spans("2026-03-25T00:00:00Z", "2026-04-02T00:00:00Z", Interval.WEEK) == [
        ("2026-W13", "2026-03-22T23:00:00+00:00", "2026-03-29T22:00:00+00:00"),
        ("2026-W14", "2026-03-29T22:00:00+00:00", "2026-04-05T22:00:00+00:00"),
    ]


def test_days_and_months_follow_local_midnight() -> None:
    assert spans("2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z", Interval.DAY) == [
        ("2026-03-28", "2026-03-27T23:00:00+00:00", "2026-03-28T23:00:00+00:00"),
        ("2026-03-29", "2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00"),  # 23 hours
        ("2026-03-30", "2026-03-29T22:00:00+00:00", "2026-03-30T22:00:00+00:00"),
    ]
    # Autumn: October 2026 is one hour longer (clocks go back on the 25th).
    assert spans("2026-10-10T00:00:00Z", "2026-11-01T00:00:00Z", Interval.MONTH) == [
        ("2026-10", "2026-09-30T22:00:00+00:00", "2026-10-31T23:00:00+00:00"),
        ("2026-11", "2026-10-31T23:00:00+00:00", "2026-11-30T23:00:00+00:00"),
    ]
    # A range ending exactly on a boundary ends there; December rolls into the next year.
    assert [
        s[0] for s in spans("2026-11-30T23:00:00Z", "2027-01-31T23:00:00Z", Interval.MONTH)
    ] == [
        "2026-12",
        "2027-01",
    ]


def test_iso_weeks_take_the_iso_year() -> None:
    # Monday 29 December 2025 starts ISO week 1 of 2026.
    assert spans("2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z", Interval.WEEK)[0][0] == "2026-W01"


def test_too_many_buckets_is_bad_input() -> None:
    assert len(spans("2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z", Interval.DAY, 11)) == 11
    with pytest.raises(BadUserInput) as error:
        spans("2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z", Interval.DAY, 10)
    assert "filter" in error.value.fields
