"""Reading the audit trail for compliance reviews: newest first, filtered, paged by cursor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from bson import ObjectId

from models.audit import AuditAction, AuditEvent, AuditOutcome
from services.pagination import DESC, Page, PageArgs, Query, Sort, paginate
from services.validation import require

NEWEST_FIRST: Sort = (("at", DESC), ("_id", DESC))

# ``paginate`` is typed for ``Entity`` documents, but it only needs ``id``, ``find`` and the
# sort fields; an audit event has no ``updated_at`` on purpose, so it is not an ``Entity``.
_paginate = cast(
    Callable[[type[AuditEvent], Query, Sort, PageArgs], Awaitable[Page[Any]]], paginate
)


def audit_filter(
    patient_id: ObjectId | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    action: AuditAction | None = None,
    outcome: AuditOutcome | None = None,
) -> Query:
    """The Mongo filter for the given criteria; the time window is [since, before)."""
    for name, value in (("from", since), ("to", before)):
        if value is not None:
            require(value.utcoffset() is not None, name, "must include a time zone offset")
    if since and before:
        require(before > since, "to", "must be after from")
    query: Query = {}
    if patient_id is not None:
        query["patient_ids"] = patient_id  # any event covering the patient (multikey index)
    if actor is not None:
        query["actor_subject"] = actor
    window: Query = {}
    if since:
        window["$gte"] = since
    if before:
        window["$lt"] = before
    if window:
        query["at"] = window
    if action is not None:
        query["action"] = action.value
    if outcome is not None:
        query["outcome"] = outcome.value
    return query


async def list_audit_events(query: Query, args: PageArgs) -> Page[Any]:
    """One page of events matching ``query`` (see ``audit_filter``), newest first.

    ``Page[Any]`` because ``Page`` is bound to ``Entity``; its items are ``AuditEvent``s.
    """
    return await _paginate(AuditEvent, query, NEWEST_FIRST, args)
