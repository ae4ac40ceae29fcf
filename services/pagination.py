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

from bson import ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions

import db
from cache import runtime
from cache.documents import DocumentCache
from cache.results import tracked
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


_CANONICAL = CANONICAL_JSON_OPTIONS
"""Filters are keyed with their BSON types: an id and its hex string are different filters."""


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


async def _read_page(model: type[D], where: Query, sort: Sort, limit: int) -> list[D]:
    cursor = db.collection(model).find(where).sort(list(sort)).limit(limit)
    return [trusted(model, raw) for raw in await cursor.to_list(None)]


async def _cached_page(model: type[D], where: Query, sort: Sort, limit: int) -> list[D] | None:
    """The page from the caches: its ids from the result cache, under the generation of the
    collection (any write to it through ``services.changes`` makes the entry unreachable), and
    its documents from the document cache. ``None`` when there are no caches to use."""
    state = runtime.current()
    documents, results = state.cache, state.results
    collection = model.get_collection_name()
    if (
        not isinstance(documents, DocumentCache)
        or results is None
        or not documents.caches(model)
        or collection not in tracked()  # only writes through services.changes bump generations
    ):
        return None
    params = {"where": json_util.dumps(where, json_options=_CANONICAL), "sort": list(sort)}

    read: list[D] = []

    async def compute() -> dict[str, Any]:
        read.extend(await _read_page(model, where, sort, limit))
        return {"ids": [str(d.id) for d in read]}

    operation = f"page:{collection}:{limit}"
    found, _ = await results.remember(operation, params, "", [collection], compute)
    if read:  # computed by this call: the documents are at hand
        return read
    ids = [ObjectId(i) for i in found["ids"]]
    by_id = await documents.get_many(model, ids)
    return [by_id[i] for i in ids if i in by_id]


async def paginate(model: type[D], query: Query, sort: Sort, args: PageArgs) -> Page[D]:
    """One page of ``model`` matching ``query``; ``count`` runs only if a client asks for it.

    With the caches on, a page of a cached entity is its ids from the result cache and its
    documents from the document cache: the store is asked again only after a write to it."""
    docs: list[D] = []
    if args.first:
        # Beanie encodes the filter (enums, dates); the rows come back raw and are built
        # trusted: they are SHMS's own stored documents (models.trusted).
        where = dict(model.find(_with_after(query, args, sort)).get_filter_query())
        limit = args.first + 1
        cached = await _cached_page(model, where, sort, limit)
        docs = cached if cached is not None else await _read_page(model, where, sort, limit)

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
