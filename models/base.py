"""What every stored document shares: ObjectId references and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from beanie import Document, PydanticObjectId
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from crypto.fields import opened

Ref = PydanticObjectId
"""A reference to another document, stored as a plain ObjectId and resolved by loaders."""


def utcnow() -> datetime:
    # Mongo keeps milliseconds; truncating here makes the value we return equal the one stored.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


EARLIEST = datetime(2, 1, 1)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999)
"""The UTC instants SHMS accepts: a year short of Python's calendar ends on either side, so
converting an offset, adding a booking's length or stepping through a report's buckets can
never leave the calendar (OverflowError, answered INTERNAL)."""


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC, or ``ValueError`` with the reason: no offset, or out of range."""
    offset = value.utcoffset() if value.tzinfo is not None else None
    if offset is None:
        raise ValueError("must include a time zone offset")
    # Compared on the wall clock, shifted by the offset: converting first could overflow.
    if not EARLIEST + offset <= value.replace(tzinfo=None) <= LATEST + offset:
        raise ValueError(
            f"must be between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Entity(Document):
    """Base of every collection: timestamps are set by the services on each write."""

    created_at: UtcDatetime = Field(default_factory=utcnow)
    # The same instant as created_at on a new document, not a second clock reading.
    updated_at: UtcDatetime = Field(default_factory=lambda data: data["created_at"])

    @model_validator(mode="before")
    @classmethod
    def _opened(cls, data: Any) -> Any:
        """A stored document's sealed fields opened (``crypto.fields``); inputs pass as given."""
        return opened(cls, data)
