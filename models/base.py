"""What every stored document shares: ObjectId references and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from beanie import Document, PydanticObjectId
from pydantic import AfterValidator, Field, StringConstraints

Ref = PydanticObjectId
"""A reference to another document, stored as a plain ObjectId and resolved by loaders."""


def utcnow() -> datetime:
    # Mongo keeps milliseconds; truncating here makes the value we return equal the one stored.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a time zone offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_aware)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Entity(Document):
    """Base of every collection: timestamps are set by the services on each write."""

    created_at: UtcDatetime = Field(default_factory=utcnow)
    # The same instant as created_at on a new document, not a second clock reading.
    updated_at: UtcDatetime = Field(default_factory=lambda data: data["created_at"])
