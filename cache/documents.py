"""Redis cache-aside for the hot documents, kept consistent with every write and failing open.

What is cached: the raw stored document (its BSON) of the declared entities with
``cached=True``, keyed by id; never a per-viewer answer, so it cannot leak across viewers
(access is decided after loading). Other collections, and the per-parent lists, are read from
MongoDB every time: a list changes with any of its children and with their reference fields (a
device moving department leaves one list and joins another), so caching lists would need every
write to know every list it left; one indexed query per relation level is cheap enough.

Consistency. Each cached document has a version counter next to it.
- A write (``store``, called by ``services.changes.changed`` after MongoDB accepted it) deletes
  the cached copy and bumps the version in one atomic script, then refills the copy from what
  MongoDB holds *now*. Refilling from MongoDB rather than from the document in hand is
  deliberate: a service may hold a merge that misses a concurrent write to other fields, and two
  writers may reach Redis in the opposite order to the one MongoDB applied them in; a read made
  after the bump is ordered after the write, so the newest state always wins.
- A reader notes each version *before* reading MongoDB, and its backfill is a compare-and-set
  on that version: a reader that loaded an older state while a write landed is refused.

Failing open. Any Redis failure (refused, timed out, anything) is counted and logged (at most
once per ``LOG_EVERY_SECONDS`` per kind, never with document content) and the request goes on
from MongoDB. A short circuit breaker then skips Redis for ``shms_cache_breaker_seconds``; the
next call after that tries again, so Redis coming back is used without a restart. A write whose
invalidation could not reach Redis is remembered and replayed before this process uses the
cache again. The window left open: another process sharing the Redis (which it can still reach)
may serve the old copy until the replay or the copy's TTL, whichever comes first; and if more
than ``MAX_PENDING`` such writes pile up during one outage, the extra ones rely on the TTL alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC
from functools import partial
from typing import Any, TypeVar

import bson
from bson import ObjectId
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

import db
from auth.policy import REGISTRY
from cache import keys
from config import Settings
from models.base import Entity
from models.trusted import trusted

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Entity)
T = TypeVar("T")
Raw = dict[str, Any]


def cached_collections() -> frozenset[str]:
    """The collections whose declarations say ``cached=True``."""
    return frozenset(d.collection for d in REGISTRY if d.cached and d.collection)


VERSION_TTL_SECONDS = 3600
"""Versions outlive any read in flight by far; they are refreshed by every write."""
MAX_PENDING = 10_000
REPLAY_CHUNK = 500
LOG_EVERY_SECONDS = 30.0
KINDS = ("hit", "miss", "error", "bypass")

CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD
)
"""Cached documents are the stored BSON itself: every type round-trips exactly (ObjectIds, aware
UTC datetimes to the millisecond, decimals, binary), and decoding it is far cheaper than
parsing Extended JSON."""

CACHE_STATS: dict[tuple[str, str], int] = {}
"""Process-wide counters: (collection, kind) -> count, kind one of ``KINDS``: ``hit`` and
``miss`` per document looked up, ``error`` per failed Redis call (or unreadable value), ``bypass``
per document read from MongoDB alone because Redis failed or the breaker was open."""


def cache_stats() -> dict[str, dict[str, int]]:
    """``{collection: {"hit": n, "miss": n, "error": n, "bypass": n}}``, zeros included."""
    entities = sorted(cached_collections() | {entity for entity, _ in CACHE_STATS})
    return {e: {kind: CACHE_STATS.get((e, kind), 0) for kind in KINDS} for e in entities}


def _count(entity: str, kind: str, n: int = 1) -> None:
    if n:
        CACHE_STATS[(entity, kind)] = CACHE_STATS.get((entity, kind), 0) + n


# KEYS: doc1, ver1, doc2, ver2, ...; ARGV: version TTL. Deleting first means a copy written
# before the write is gone even if Redis refuses the INCR (out of memory).
_INVALIDATE = """
local versions = {}
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  versions[#versions + 1] = redis.call('INCR', KEYS[i + 1])
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
end
return versions
"""

# KEYS: doc1, ver1, ...; ARGV: TTL, expected1, value1, expected2, value2, ...
_FILL = """
local filled = 0
for i = 1, #KEYS, 2 do
  if (redis.call('GET', KEYS[i + 1]) or '0') == ARGV[i + 1] then
    redis.call('SET', KEYS[i], ARGV[i + 2], 'EX', ARGV[1])
    filled = filled + 1
  end
end
return filled
"""


class _Unavailable(Exception):
    """Redis did not answer (or is being skipped): go on from MongoDB."""


class Breaker:
    """After a Redis failure, skip Redis for ``seconds``; the first call after that tries again.

    Never a lasting "broken" flag: redis-py reconnects on its own, so one success closes it.
    """

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds, self.clock = seconds, clock
        self.retry_at: float | None = None

    @property
    def closed(self) -> bool:
        return self.retry_at is None

    def allows(self) -> bool:
        return self.retry_at is None or self.clock() >= self.retry_at

    def trip(self) -> None:
        self.retry_at = self.clock() + self.seconds

    def reset(self) -> bool:
        """Close it; ``True`` if it was open (Redis just came back)."""
        was_open, self.retry_at = self.retry_at is not None, None
        return was_open


async def _read_mongo(model: type[D], ids: Sequence[Any]) -> list[Raw]:
    if not ids:
        return []
    raws: list[Raw] = await db.collection(model).find({"_id": {"$in": list(ids)}}).to_list(None)
    return raws


def _parse(model: type[D], raw: Raw) -> D:
    """A stored document, built without validating it again (``models.trusted``)."""
    return trusted(model, raw)


class DocumentCache:
    """Implements ``cache.runtime.DocumentCache``; one per app, shared by every request.

    ``clock`` drives the breaker and the log rate limit (tests pass a fake one); ``namespace``
    defaults to the one derived from ``settings`` (see ``cache.keys``).
    """

    def __init__(
        self,
        redis: Any,
        settings: Settings,
        *,
        namespace: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        collections: Collection[str] | None = None,
    ) -> None:
        self.redis = redis
        self.namespace = namespace or keys.namespace(settings)
        self.ttl = settings.shms_cache_ttl_seconds
        self.timeout = settings.shms_cache_timeout_seconds
        self.collections = frozenset(cached_collections() if collections is None else collections)
        self.clock = clock
        self.breaker = Breaker(settings.shms_cache_breaker_seconds, lambda: self.clock())
        self.round_trips = 0
        """Redis round trips attempted; tests use it to prove batching."""
        self.pending: dict[tuple[str, ObjectId], None] = {}
        """Writes whose invalidation did not reach Redis, in order, replayed before reuse."""
        self._overflowed = False
        self._logged: dict[str, float] = {}

    def caches(self, model: type[Entity]) -> bool:
        return model.get_collection_name() in self.collections

    # Reads

    async def get_many(self, model: type[D], ids: Iterable[Any]) -> dict[ObjectId, D]:
        """The documents with these ids that exist: Redis first (one MGET of values and versions),
        then one MongoDB ``$in`` for the misses, then one compare-and-set backfill."""
        wanted = list(dict.fromkeys(ids))
        entity = model.get_collection_name()
        cacheable = [i for i in wanted if isinstance(i, ObjectId)] if self.caches(model) else []
        found: dict[ObjectId, D] = {}
        expected: dict[ObjectId, int] = {}
        if cacheable:
            try:
                answers = await self._round_trip([entity], lambda: self._mget(entity, cacheable))
            except _Unavailable:
                _count(entity, "bypass", len(cacheable))
                cacheable = []
            else:
                for id, value, version in zip(
                    cacheable, answers[: len(cacheable)], answers[len(cacheable) :], strict=True
                ):
                    doc = None if value is None else self._decode(model, value)
                    if doc is None:
                        expected[id] = int(version or 0)
                    else:
                        found[id] = doc
                _count(entity, "hit", len(found))
                _count(entity, "miss", len(expected))
        misses = [i for i in wanted if i not in found]
        raws = await _read_mongo(model, misses)
        found.update({raw["_id"]: _parse(model, raw) for raw in raws})
        await self._fill(entity, [(r, expected[r["_id"]]) for r in raws if r["_id"] in expected])
        return found

    async def _mget(self, entity: str, ids: Sequence[ObjectId]) -> list[Any]:
        docs = [keys.document(self.namespace, entity, i) for i in ids]
        versions = [keys.version(self.namespace, entity, i) for i in ids]
        answers: list[Any] = await self.redis.mget(docs + versions)
        return answers

    def _decode(self, model: type[D], value: bytes | str) -> D | None:
        """A cached document, or ``None`` (read MongoDB instead) if it no longer parses."""
        try:
            raw = value if isinstance(value, bytes) else value.encode()
            return _parse(model, bson.decode(raw, codec_options=CODEC_OPTIONS))
        except Exception as exc:  # a value from an older model, say: never fatal
            entity = model.get_collection_name()
            _count(entity, "error")
            # The class name only: a validation message would quote the document's content.
            self._warn(
                "decode", "unreadable cached %s (%s); read MongoDB", entity, type(exc).__name__
            )
            return None

    async def _fill(self, entity: str, entries: Sequence[tuple[Raw, int]]) -> int:
        """Write each raw document only if its version is still the one noted before it was
        read from MongoDB; returns how many were written."""
        if not entries:
            return 0
        names: list[str] = []
        args: list[Any] = [self.ttl]
        for raw, version in entries:
            names += [
                keys.document(self.namespace, entity, raw["_id"]),
                keys.version(self.namespace, entity, raw["_id"]),
            ]
            args += [version, bson.encode(raw, codec_options=CODEC_OPTIONS)]
        try:
            filled = await self._round_trip(
                [entity], lambda: self.redis.eval(_FILL, len(names), *names, *args)
            )
        except _Unavailable:
            return 0
        return int(filled)

    # Writes

    async def store(self, doc: Entity) -> int:
        """After MongoDB accepted a write of ``doc``: drop the cached copy and bump its version
        atomically, then refill it from MongoDB. Returns the new version, 0 if Redis failed or
        the collection is not cached."""
        entity = doc.get_collection_name()
        if entity not in self.collections or doc.id is None:
            return 0
        versions = await self._invalidate([(entity, doc.id)])
        if not versions:
            return 0
        try:
            raw = await db.collection(type(doc)).find_one({"_id": doc.id})
        except Exception as exc:  # the write succeeded: the copy is simply left out
            self._warn("reread", "could not refill a cached %s (%s)", entity, type(exc).__name__)
            return versions[0]
        if raw is not None:
            await self._fill(entity, [(raw, versions[0])])
        return versions[0]

    async def forget(self, model: type[Entity], id: ObjectId) -> int:
        """Drop a deleted (or erased) document; its bumped version refuses any backfill in
        flight, and misses are never cached, so it cannot come back. Returns the version."""
        entity = model.get_collection_name()
        if entity not in self.collections:
            return 0
        versions = await self._invalidate([(entity, id)])
        return versions[0] if versions else 0

    async def _invalidate(self, items: Sequence[tuple[str, ObjectId]]) -> list[int]:
        """Versions after the bump; empty if Redis failed (the items are then remembered)."""
        try:
            versions = await self._round_trip(
                {e for e, _ in items}, lambda: self._invalidate_call(items)
            )
        except _Unavailable:
            for item in items:
                self._remember(item)
            return []
        return [int(v) for v in versions]

    async def _invalidate_call(self, items: Sequence[tuple[str, ObjectId]]) -> list[Any]:
        names: list[str] = []
        for entity, id in items:
            names += [
                keys.document(self.namespace, entity, id),
                keys.version(self.namespace, entity, id),
            ]
        versions: list[Any] = await self.redis.eval(
            _INVALIDATE, len(names), *names, VERSION_TTL_SECONDS
        )
        return versions

    async def clear(self) -> int:
        """Drop every cached document of this namespace, for tests and operators; returns how
        many. Versions stay, so a backfill in flight still cannot land an older state. Unlike
        the request path this raises if Redis fails: whoever asked must know it did not happen.
        """
        pattern = keys.every_document(self.namespace)
        dropped = 0
        batch: list[Any] = []
        async for name in self.redis.scan_iter(match=pattern, count=500):
            batch.append(name)
            if len(batch) >= 500:
                dropped += int(await self.redis.delete(*batch))
                batch.clear()
        if batch:
            dropped += int(await self.redis.delete(*batch))
        return dropped

    def _remember(self, item: tuple[str, ObjectId]) -> None:
        if item in self.pending or len(self.pending) < MAX_PENDING:
            self.pending[item] = None
            return
        self._overflowed = True
        self._warn("overflow", "too many writes missed the cache; the rest rely on its TTL")

    # Fail open

    async def _round_trip(self, entities: Iterable[str], call: Callable[[], Awaitable[T]]) -> T:
        """One Redis round trip, unless the breaker is open; first replays missed writes."""
        if not self.breaker.allows() or (self.pending and not await self._replay()):
            raise _Unavailable
        return await self._attempt(entities, call)

    async def _attempt(self, entities: Iterable[str], call: Callable[[], Awaitable[T]]) -> T:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self.timeout):
                result = await call()
        except Exception as exc:  # whatever Redis did, the request goes on from MongoDB
            for entity in set(entities):
                _count(entity, "error")
            self.breaker.trip()
            self._warn(
                "redis",
                "Redis cache unavailable (%s: %s); using MongoDB alone for %ss",
                type(exc).__name__,
                exc,
                self.breaker.seconds,
            )
            raise _Unavailable from exc
        if self.breaker.reset():
            log.info("Redis cache reachable again")
        return result

    async def _replay(self) -> bool:
        """Invalidate what writes during the outage could not; ``False`` if Redis still fails."""
        items = list(self.pending)
        for start in range(0, len(items), REPLAY_CHUNK):
            chunk = items[start : start + REPLAY_CHUNK]
            try:
                await self._attempt({e for e, _ in chunk}, partial(self._invalidate_call, chunk))
            except _Unavailable:
                return False
            for item in chunk:
                self.pending.pop(item, None)
        if self._overflowed:
            self._overflowed = False
            log.warning("writes beyond the replay limit may be served stale until the cache TTL")
        return True

    def _warn(self, topic: str, message: str, *args: Any) -> None:
        """Log at most once per ``LOG_EVERY_SECONDS`` per topic: an outage is not a log flood."""
        now = self.clock()
        last = self._logged.get(topic)
        if last is None or now - last >= LOG_EVERY_SECONDS:
            self._logged[topic] = now
            log.warning(message, *args)
