"""What the cache tests measure: Redis round trips, MongoDB reads, and what Redis holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import ObjectId

import db
from cache import keys
from cache.documents import CACHE_STATS, CODEC_OPTIONS, DocumentCache
from models.base import Entity

READS = frozenset({"find", "find_one", "aggregate", "count_documents", "distinct"})


@dataclass
class Cost:
    round_trips: int = 0
    reads: Counter[str] = field(default_factory=Counter)
    """MongoDB reads per collection."""


@contextmanager
def cost(cache: DocumentCache) -> Iterator[Cost]:
    """Redis round trips and MongoDB reads spent inside the block."""
    result, start = Cost(), cache.round_trips
    with db.operations.measure() as ops:
        yield result
    result.round_trips = cache.round_trips - start
    for (collection, op), n in ops.counts.items():
        if op in READS:
            result.reads[collection] += n


def stat(entity: str, kind: str) -> int:
    return CACHE_STATS.get((entity, kind), 0)


async def cached(cache: DocumentCache, model: type[Entity], id: Any) -> dict[str, Any] | None:
    """The raw document Redis holds for ``id``, decoded; ``None`` if none."""
    name = keys.document(cache.namespace, model.get_collection_name(), ObjectId(id))
    value = await cache.redis.get(name)
    return None if value is None else dict(bson.decode(value, codec_options=CODEC_OPTIONS))


async def stored(model: type[Entity], id: Any) -> dict[str, Any] | None:
    raw: dict[str, Any] | None = await model.get_motor_collection().find_one({"_id": ObjectId(id)})
    return raw


async def assert_cached_as_stored(cache: DocumentCache, model: type[Entity], id: Any) -> None:
    """Redis holds exactly what MongoDB holds, types included (ObjectIds, aware datetimes)."""
    raw = await stored(model, id)
    assert raw is not None
    assert await cached(cache, model, id) == raw


def id_of(doc: Entity) -> ObjectId:
    """A stored document's id (Beanie types it optional, for documents not yet inserted)."""
    assert doc.id is not None
    return doc.id


class Clock:
    """A monotonic clock the test moves by hand, so breakers open and close without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
