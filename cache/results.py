"""Redis cache of computed results (aggregates, saved-query runs), dropped by the writes they read.

An entry's key hashes what was computed (``operation``, ``params``), who may share the answer
(``scope``: a viewer class for de-identified aggregates, a viewer for saved queries) and the
current *generation* of every collection it read (``inputs``). Every service write ends in
``services.changes.changed``, which calls ``touched`` to replace the written collection's
generation with a fresh random token: from then on every entry computed over the old data has an
unreachable key, whichever process reads next. The TTL (``SHMS_RESULT_CACHE_TTL_SECONDS``) then
reclaims the memory, and bounds staleness should a bump ever be lost.

Why generations rather than deleting entries: a reader that computed over the old data while a
write landed would store its stale answer *after* a delete; with generations it stores it under
the old generation, which nobody asks for again. Why random tokens rather than counters: a
counter key lost to eviction restarts at values old entries were stored under; a token never
repeats. A reader that finds no generation sets one (``SET NX``) before computing.

Only writes through ``changed`` bump generations, so only ``tracked()`` collections may be inputs;
an entry naming any other collection (the audit trail, the notification outbox) is not cached.
``ANY`` as an input means "any tracked write drops it" (for documents whose inputs are unknown).

Failing open, like the document cache: a Redis failure is counted, logged without content, and
the result computed from MongoDB; a breaker skips Redis for a while. A bump that could not reach
Redis is remembered, and this process serves nothing from the cache until it has replayed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import metrics
from auth.policy import REGISTRY
from cache import keys, runtime
from cache.documents import Breaker
from config import Settings
from crypto.fields import open_value, seal_value
from crypto.keyring import CACHED_ONLY

log = logging.getLogger(__name__)

Result = dict[str, Any]

ANY = "*"
"""An input meaning: any tracked write invalidates the entry."""


def tracked() -> frozenset[str]:
    """Collections whose every write goes through ``services.changes.changed`` (declared
    entities that do not say otherwise)."""
    return frozenset(d.collection for d in REGISTRY if d.published and d.collection)


MAX_VALUE_BYTES = 8 * 1024 * 1024
"""Larger answers are returned but not cached: one entry should not crowd out the rest."""
LOG_EVERY_SECONDS = 30.0
KINDS = ("hit", "miss", "error", "bypass", "uncacheable")

RESULT_STATS: dict[str, int] = {kind: 0 for kind in KINDS}
"""Process-wide counters for ``/metrics``: lookups served (``hit``), computed (``miss``), Redis
failures (``error``), computed without Redis (``bypass``), never cacheable (``uncacheable``)."""


def _count(kind: str) -> None:
    RESULT_STATS[kind] = RESULT_STATS.get(kind, 0) + 1
    metrics.RESULT_CACHE.labels(kind).inc()


class _Unavailable(Exception):
    """Redis did not answer, or is being skipped."""


class ResultCache:
    """One per app, shared by every request; installed in ``cache.runtime``."""

    def __init__(
        self,
        redis: Any,
        settings: Settings,
        *,
        namespace: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.namespace = namespace or keys.namespace(settings)
        self.ttl = settings.shms_result_cache_ttl_seconds
        self.timeout = settings.shms_cache_timeout_seconds
        self.clock = clock
        self.breaker = Breaker(settings.shms_cache_breaker_seconds, lambda: self.clock())
        self.pending: set[str] = set()
        """Collections whose bump did not reach Redis; replayed before the cache is used."""
        self._flights: dict[str, asyncio.Future[Result]] = {}
        self._logged = 0.0

    def _generation_key(self, collection: str) -> str:
        return f"{self.namespace}:gen:{collection}"

    def _entry_key(self, digest: str) -> str:
        return f"{self.namespace}:result:{digest}"

    async def _call(self, command: Awaitable[Any]) -> Any:
        if not self.breaker.allows():
            if asyncio.iscoroutine(command):
                command.close()
            raise _Unavailable
        try:
            value = await asyncio.wait_for(command, self.timeout)
        except Exception as exc:
            self._failed(exc)
            raise _Unavailable from None
        self.breaker.reset()
        return value

    def _failed(self, exc: Exception) -> None:
        _count("error")
        self.breaker.trip()
        now = self.clock()
        if now - self._logged >= LOG_EVERY_SECONDS:
            self._logged = now
            log.warning("result cache unavailable (%s); computing from MongoDB", type(exc).__name__)

    async def touched(self, collection: str) -> None:
        """A write of ``collection`` landed in MongoDB: drop every result computed over it."""
        self.pending.update((collection, ANY))
        await self._replay()

    async def _replay(self) -> bool:
        """Bump every pending generation; ``True`` when none is left."""
        if not self.pending:
            return True
        bumps = sorted(self.pending)
        mapping = {self._generation_key(c): uuid.uuid4().hex for c in bumps}
        try:
            await self._call(self.redis.mset(mapping))
        except _Unavailable:
            return False
        self.pending.difference_update(bumps)
        return not self.pending

    async def _generations(self, inputs: Collection[str]) -> list[str]:
        names = sorted(set(inputs))
        gen_keys = [self._generation_key(name) for name in names]
        values = await self._call(self.redis.mget(gen_keys))
        missing = [key for key, value in zip(gen_keys, values, strict=True) if value is None]
        if missing:
            # A generation must exist before we compute: "none" would be shared by every
            # reader that ran before the key was lost, however the data changed in between.
            pipe = self.redis.pipeline(transaction=False)
            for key in missing:
                pipe.set(key, uuid.uuid4().hex, nx=True)
            await self._call(pipe.execute())
            values = await self._call(self.redis.mget(gen_keys))
        return [f"{name}={_text(value)}" for name, value in zip(names, values, strict=True)]

    async def remember(
        self,
        operation: str,
        params: Mapping[str, Any],
        scope: str,
        inputs: Collection[str],
        compute: Callable[[], Awaitable[Result]],
    ) -> tuple[Result, bool]:
        """The cached answer and ``True``, or ``compute()``'s (cached now) and ``False``."""
        if not inputs or any(name not in tracked() and name != ANY for name in inputs):
            _count("uncacheable")
            return await compute(), False
        try:
            if not await self._replay():
                raise _Unavailable
            generations = await self._generations(inputs)
            digest = _digest(operation, params, scope, generations)
            raw = await self._call(self.redis.get(self._entry_key(digest)))
        except _Unavailable:
            _count("bypass")
            return await compute(), False
        if raw is not None:
            try:
                value: Result = json.loads(open_value(SEALED_AS, "entry", digest, _text(raw)))
            except (ValueError, LookupError):  # Unreadable is a ValueError
                _count("error")
            else:
                _count("hit")
                return value, True
        _count("miss")
        return await self._compute_once(digest, compute), False

    async def _compute_once(self, digest: str, compute: Callable[[], Awaitable[Result]]) -> Result:
        """Concurrent misses of one key in this process share one computation."""
        flight = self._flights.get(digest)
        if flight is not None:
            return await asyncio.shield(flight)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._flights[digest] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters, if any, re-raise it themselves
            raise
        finally:
            self._flights.pop(digest, None)
        future.set_result(value)
        await self._store(digest, value)
        return value

    async def _store(self, digest: str, value: Result) -> None:
        try:
            text = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            log.error("result of %s is not JSON; not cached", digest[:12])
            _count("uncacheable")
            return
        if len(text) > MAX_VALUE_BYTES:
            _count("uncacheable")
            return
        try:
            sealed = seal_value(SEALED_AS, "entry", digest, text)
        except LookupError:  # no data key loaded (no database opened): nothing is cached
            _count("uncacheable")
            return
        with contextlib.suppress(_Unavailable):  # counted and logged; the answer still goes out
            await self._call(self.redis.set(self._entry_key(digest), sealed, ex=self.ttl))


SEALED_AS = CACHED_ONLY[0]
"""Entries are encrypted (AES-GCM, bound to their key's digest) under this data key: a saved
query's answer may hold whatever its GraphQL selects, names included."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(operation: str, params: Mapping[str, Any], scope: str, generations: list[str]) -> str:
    material = json.dumps(
        [operation, params, scope, generations], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()


async def remember(
    operation: str,
    params: Mapping[str, Any],
    scope: str,
    inputs: Collection[str],
    compute: Callable[[], Awaitable[Result]],
) -> tuple[Result, bool]:
    """``ResultCache.remember`` on the app's cache; with none (off, or no app), just compute."""

    cache = runtime.current().results
    if cache is None:
        return await compute(), False
    return await cache.remember(operation, params, scope, inputs, compute)
