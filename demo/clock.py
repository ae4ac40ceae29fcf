"""The demo's fixed "now" and its grid of bookable 30-minute slots.

Everything is measured from ``ANCHOR`` instead of the wall clock, so every seed writes the same
timestamps. Slots are numbered across the working days of the window, so a calendar is a bytearray.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ANCHOR = datetime(2026, 11, 16, tzinfo=UTC)
"""The demo's "now": appointments before it are history, after it are still to come."""

WINDOW_START = ANCHOR - timedelta(days=60)
WINDOW_END = ANCHOR + timedelta(days=30)
SLOT = timedelta(minutes=30)
DAY_START = timedelta(hours=8)
SLOTS_PER_DAY = 18  # 08:00 to 17:00
WORKDAYS: tuple[datetime, ...] = tuple(
    day
    for day in (WINDOW_START + timedelta(days=i) for i in range((WINDOW_END - WINDOW_START).days))
    if day.weekday() < 5
)
SLOT_COUNT = len(WORKDAYS) * SLOTS_PER_DAY


def slot_start(slot: int) -> datetime:
    day, index = divmod(slot, SLOTS_PER_DAY)
    return WORKDAYS[day] + DAY_START + index * SLOT


def minutes(value: datetime) -> datetime:
    """Drop seconds and below: stored timestamps then round-trip exactly through MongoDB."""
    return value.replace(second=0, microsecond=0)
