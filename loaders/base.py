"""Batch loaders: one database round trip per relation per query level, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader
from bson import ObjectId

import db
from cache.documents import DocumentCache
from models.base import Entity
from models.trusted import trusted
from services.pagination import Page, PageArgs, Sort, count_many, paginate_many

D = TypeVar("D", bound=Entity)
Filter = tuple[tuple[str, Any], ...]
"""A hashable extra filter, so it can be part of a loader key: ``((field, value), ...)``; a
tuple value means any of those values (``$in``)."""


def _and(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    if not second:
        return first
    return {"$and": [first, second]} if first else second


def filter_query(filt: Filter) -> dict[str, Any]:
    return {k: {"$in": list(v)} if isinstance(v, tuple) else v for k, v in filt}


class ById(DataLoader[Any, D | None], Generic[D]):
    """Documents by ``_id`` (or another unique field); ``None`` where none matches.

    ``$in`` answers in any order and skips what is missing, so results are mapped back by key.
    By ``_id`` it reads through ``cache`` when given (Redis, then MongoDB for the misses). By
    another field it always asks MongoDB: the cache is keyed by id alone, and a second index
    would have to learn of every document that starts or stops matching.
    """

    def __init__(
        self, model: type[D], field: str = "_id", cache: DocumentCache | None = None
    ) -> None:
        super().__init__()
        self.model, self.field = model, field
        cached = cache is not None and field == "_id" and cache.caches(model)
        self.documents = cache if cached else None

    async def batch_load_fn(self, keys: Sequence[ObjectId]) -> list[D | None]:
        if self.documents is not None:
            by_id = await self.documents.get_many(self.model, keys)
            return [by_id.get(k) for k in keys]
        where = self.model.find({self.field: {"$in": list(set(keys))}}).get_filter_query()
        docs = [trusted(self.model, raw) async for raw in db.collection(self.model).find(where)]
        attr = "id" if self.field == "_id" else self.field
        found = {getattr(doc, attr): doc for doc in docs}
        return [found.get(k) for k in keys]


ChildKey = tuple[Any, PageArgs, Filter]
"""(parent id, page arguments, extra filter)."""


Scope = Callable[[], Awaitable[dict[str, Any]]]
"""The caller's row filter for the child entity (from the access policy), awaited per batch."""


async def _everything() -> dict[str, Any]:
    return {}


class ChildPages(DataLoader[ChildKey, Page[D]], Generic[D]):
    """A page of children for each parent: one aggregation per distinct (page args, filter).

    The caller's ``scope`` is part of every query, so a nested list never shows a row the
    caller could not list at the top level. Pages are never cached (``cache.documents`` says
    why): a list read here is always MongoDB's current answer.
    """

    def __init__(
        self, model: type[D], key_field: str, sort: Sort, scope: Scope = _everything
    ) -> None:
        super().__init__()
        self.model, self.key_field, self.sort, self.scope = model, key_field, sort, scope
        self.counts = ChildCounts(model, key_field, scope)

    async def batch_load_fn(self, keys: Sequence[ChildKey]) -> list[Page[D]]:
        groups: dict[tuple[PageArgs, Filter], list[Hashable]] = defaultdict(list)
        for parent, args, filt in keys:
            groups[(args, filt)].append(parent)
        pages: dict[tuple[Hashable, PageArgs, Filter], Page[D]] = {}
        scope = await self.scope()
        for (args, filt), parents in groups.items():

            async def count(parent: Hashable, filt: Filter = filt) -> int:
                result: int = await self.counts.load((parent, filt))
                return result

            query = _and(filter_query(filt), scope)
            found = await paginate_many(
                self.model, self.key_field, parents, query, self.sort, args, count
            )
            pages.update({(p, args, filt): page for p, page in found.items()})
        return [pages[key] for key in keys]


class ChildCounts(DataLoader[tuple[Hashable, Filter], int], Generic[D]):
    """How many children each parent has, batched like the pages themselves."""

    def __init__(self, model: type[D], key_field: str, scope: Scope = _everything) -> None:
        super().__init__()
        self.model, self.key_field, self.scope = model, key_field, scope

    async def batch_load_fn(self, keys: Sequence[tuple[Hashable, Filter]]) -> list[int]:
        groups: dict[Filter, list[Hashable]] = defaultdict(list)
        for parent, filt in keys:
            groups[filt].append(parent)
        counts: dict[tuple[Hashable, Filter], int] = {}
        scope = await self.scope()
        for filt, parents in groups.items():
            query = _and(filter_query(filt), scope)
            found = await count_many(self.model, self.key_field, parents, query)
            counts.update({(p, filt): n for p, n in found.items()})
        return [counts[key] for key in keys]
