"""Persisted GraphQL operations: documents front ends send by hash instead of by text."""

from __future__ import annotations

from beanie import Document
from pydantic import Field

from models.base import UtcDatetime, utcnow


class PersistedOperation(Document):
    """Written and read only by ``services.persisted``.

    Content-addressed: the id is the sha256 (lowercase hex) of ``document``, so a row never
    changes once written and any process may cache it forever. Not an ``Entity``: it is no
    domain data, feeds no cache or result, and is never updated.
    """

    id: str  # type: ignore[assignment]  # the sha256 (hex) of the document text
    document: str
    registered_by: str | None = None  # the registering caller's token subject, or "cli"
    registered_at: UtcDatetime = Field(default_factory=utcnow)

    class Settings:
        name = "persisted_operations"
