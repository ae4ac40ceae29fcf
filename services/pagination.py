"""Keyset pagination: opaque cursors over a stable sort, one query per page or per batch.

Offsets get slower and skip rows as data changes; a cursor that encodes the last row's sort key
does neither. Every sort ends with ``_id`` so the order is total.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Generic, TypeVar

from bson import json_util
from bson.json_util import JSONOptions

import db
from errors import BadUserInput
from models.base import Entity
from models.trusted import trusted

_JSON = JSONOptions(tz_aware=True, tzinfo=UTC)
D = TypeVar("D", bound=Entity)
Sort = Sequence[tuple[str, int]]
Query = dict[str, Any]

ASC, DESC = 1, -1
BY_ID: Sort = (("_id", ASC),)


@dataclass(frozen=True)
class PageArgs:
    first: int
    after: str | None = None

    @classmethod
    def of(cls, first: int | None, after: str | None, *, default: int, cap: int) -> PageArgs:
        size = default if first is None else first
        if size < 0:
            raise BadUserInput("first must not be negative", {"first": "must not be negative"})
        if size > cap:
            raise BadUserInput(f"first may be at most {cap}", {"first": f"must be at most {cap}"})
        return cls(size, after or None)


@dataclass
class Page(Generic[D]):
    items: list[D]
    has_next: bool
    cursors: list[str]
    count: Callable[[], Awaitable[int]] = field(repr=False)


def _sort_value(doc: Entity, name: str) -> Any:
    return doc.id if name == "_id" else getattr(doc, name)


def encode_cursor(doc: Entity, sort: Sort) -> str:
    raw = json_util.dumps([_sort_value(doc, name) for name, _ in sort])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: Sort) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json_util.loads(
            base64.urlsafe_b64decode(padded.encode()).decode(), json_options=_JSON
        )
    except (ValueError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != len(sort):
        raise BadUserInput("after: not a cursor of this list", {"after": "is not a valid cursor"})
    return values


def after_filter(cursor: str, sort: Sort) -> Query:
    """Rows strictly after the cursor's row in ``sort`` order."""
    values = _decode_cursor(cursor, sort)
    branches: list[Query] = []
    for i, (name, direction) in enumerate(sort):
        branch: Query = {prev: values[j] for j, (prev, _) in enumerate(sort[:i])}
        branch[name] = {"$gt" if direction == ASC else "$lt": values[i]}
        branches.append(branch)
    return {"$or": branches}


def _with_after(query: Query, args: PageArgs, sort: Sort) -> Query:
    if not args.after:
        return query
    return (
        {"$and": [query, after_filter(args.after, sort)]}
        if query
        else after_filter(args.after, sort)
    )


def both(query: Query, scope: Query | None) -> Query:
    """``query`` restricted to ``scope`` (a caller's row filter); either may be empty."""
    if not scope:
        return query
    return {"$and": [query, scope]} if query else scope


def _page(model: type[D], docs: list[D], args: PageArgs, sort: Sort, count: Any) -> Page[D]:
    items = docs[: args.first]
    return Page(items, len(docs) > args.first, [encode_cursor(d, sort) for d in items], count)


async def paginate(model: type[D], query: Query, sort: Sort, args: PageArgs) -> Page[D]:
    """One page of ``model`` matching ``query``; ``count`` runs only if a client asks for it."""
    docs: list[D] = []
    if args.first:
        # Beanie encodes the filter (enums, dates); the rows come back raw and are built
        # trusted: they are SHMS's own stored documents (models.trusted).
        where = model.find(_with_after(query, args, sort)).get_filter_query()
        cursor = db.collection(model).find(where).sort(list(sort)).limit(args.first + 1)
        docs = [trusted(model, raw) for raw in await cursor.to_list(None)]

    async def count() -> int:
        return await model.find(query).count()

    return _page(model, docs, args, sort, count)


async def paginate_many(
    model: type[D],
    key_field: str,
    keys: Sequence[Hashable],
    query: Query,
    sort: Sort,
    args: PageArgs,
    counter: Callable[[Hashable], Awaitable[int]],
) -> dict[Hashable, Page[D]]:
    """The same page of children for many parents in one aggregation (one round trip)."""
    match: Query = {key_field: {"$in": list(keys)}, **query}
    grouped: Mapping[Any, list[Any]] = {}
    if args.first:
        pipeline: list[Query] = [
            {"$match": _with_after(match, args, sort)},
            {"$sort": dict(sort)},
            {"$group": {"_id": f"${key_field}", "items": {"$push": "$$ROOT"}}},
            {"$project": {"items": {"$slice": ["$items", args.first + 1]}}},
        ]
        rows = await db.collection(model).aggregate(pipeline).to_list(None)
        grouped = {row["_id"]: row["items"] for row in rows}
    pages: dict[Hashable, Page[D]] = {}
    for key in keys:
        docs = [trusted(model, raw) for raw in grouped.get(key, [])]

        async def count(key: Hashable = key) -> int:
            return await counter(key)

        pages[key] = _page(model, docs, args, sort, count)
    return pages


async def count_many(
    model: type[D], key_field: str, keys: Sequence[Hashable], query: Query
) -> dict[Hashable, int]:
    """How many children each parent has, in one aggregation."""
    pipeline: list[Query] = [
        {"$match": {key_field: {"$in": list(keys)}, **query}},
        {"$group": {"_id": f"${key_field}", "n": {"$sum": 1}}},
    ]
    rows = await db.collection(model).aggregate(pipeline).to_list(None)
    counts = {row["_id"]: int(row["n"]) for row in rows}
    return {key: counts.get(key, 0) for key in keys}
