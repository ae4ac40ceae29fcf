"""Time buckets of the facility's calendar (days, ISO weeks, months) as UTC boundaries.

MongoDB cannot be trusted with time zones here (mongomock has no ``$dateTrunc``, and ``$bucket``
only compares instants), so the boundaries are computed in Python with zoneinfo: a local
midnight becomes the right UTC instant on either side of a daylight-saving change, and the
pipeline groups by plain instant comparisons.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from errors import BadUserInput
from services.validation import instant


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday to Monday
    MONTH = "month"


@dataclass(frozen=True)
class Bucket:
    """``[start, end)`` in UTC, and its local calendar name."""

    start: datetime
    end: datetime
    label: str


def _first_day(day: date, interval: Interval) -> date:
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def _next_day(day: date, interval: Interval) -> date:
    if interval is Interval.DAY:
        return day + timedelta(days=1)
    if interval is Interval.WEEK:
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def label(day: date, interval: Interval) -> str:
    """``2026-03-01``, ``2026-W09`` (ISO week-numbering year) or ``2026-03``."""
    if interval is Interval.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if interval is Interval.MONTH:
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _days(start: datetime, end: datetime, interval: Interval, zone: ZoneInfo) -> Iterator[date]:
    """Local first days of the buckets covering ``[start, end)``, and the day after the last."""
    day = _first_day(start.astimezone(zone).date(), interval)
    yield day
    while _midnight(day, zone) < end:
        day = _next_day(day, interval)
        yield day


def buckets(
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: ZoneInfo,
    limit: int | None = None,
    field: str = "filter",
) -> list[Bucket]:
    """The local buckets covering ``[start, end)``: the first begins at the local start of the
    day, week or month holding ``start``, the last ends at or after ``end``.

    More than ``limit`` buckets is ``BAD_USER_INPUT`` on ``field``; the walk stops there, so a
    huge range costs no more than the limit. Ends outside SHMS's calendar are refused too: the
    walk steps a bucket past ``end`` and converts local midnights, which would overflow there.
    """
    start, end = instant(start, f"{field}.from"), instant(end, f"{field}.to")
    out: list[Bucket] = []
    days = _days(start, end, interval, zone)
    first = next(days)
    for following in days:
        if limit is not None and len(out) == limit:
            raise BadUserInput(
                f"{field}: more than {limit} {interval.value} buckets; use a longer interval "
                "or a shorter range",
                {field: f"spans more than {limit} {interval.value} buckets"},
            )
        out.append(
            Bucket(_midnight(first, zone), _midnight(following, zone), label(first, interval))
        )
        first = following
    return out
