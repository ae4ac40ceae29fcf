"""The result cache: shared answers, dropped by writes to what they read, never served stale.

These drive ``ResultCache`` directly against the real Redis (the suite's), with ``compute``
functions that count their calls; the app-level paths (aggregates, saved queries) have their own
tests next to those features.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from cache.results import ANY, RESULT_STATS, ResultCache
from config import Settings
from crypto.fields import is_sealed
from tests.cache.helpers import Clock


class Counter:
    """A ``compute`` that returns a fresh answer each call and counts them."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"answer": self.calls}


class Flaky:
    """The real client, except that every command fails while ``down`` is set."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.redis, name)
        if name == "pipeline":
            return attr
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionError("Redis is down")
            return await attr(*args, **kwargs)

        return call


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def results(redis_client: Redis, settings: Settings, clock: Clock, database: Any) -> ResultCache:
    """Over an opened database: entries are sealed under its ``result_cache`` data key."""
    return ResultCache(redis_client, settings, namespace=settings.shms_cache_prefix, clock=clock)


async def test_second_lookup_is_served_from_redis(results: ResultCache) -> None:
    compute = Counter()
    first = await results.remember("op", {"a": 1}, "full", ["appointments"], compute)
    second = await results.remember("op", {"a": 1}, "full", ["appointments"], compute)
    assert first == ({"answer": 1}, False)
    assert second == ({"answer": 1}, True)
    assert compute.calls == 1


async def test_operation_params_and_scope_each_separate_entries(results: ResultCache) -> None:
    compute = Counter()
    await results.remember("op", {"a": 1}, "full", ["appointments"], compute)
    _, hit_params = await results.remember("op", {"a": 2}, "full", ["appointments"], compute)
    _, hit_scope = await results.remember("op", {"a": 1}, "deidentified", ["appointments"], compute)
    _, hit_op = await results.remember("other", {"a": 1}, "full", ["appointments"], compute)
    assert (hit_params, hit_scope, hit_op) == (False, False, False)
    assert compute.calls == 4


async def test_a_write_to_an_input_drops_the_entry_and_others_stay(results: ResultCache) -> None:
    appointments, billing = Counter(), Counter()
    await results.remember("a", {}, "full", ["appointments", "doctors"], appointments)
    await results.remember("b", {}, "full", ["billing_accounts"], billing)

    await results.touched("doctors")

    value, hit = await results.remember("a", {}, "full", ["appointments", "doctors"], appointments)
    assert (value, hit) == ({"answer": 2}, False)
    _, billing_hit = await results.remember("b", {}, "full", ["billing_accounts"], billing)
    assert billing_hit is True


async def test_any_input_is_dropped_by_every_tracked_write(results: ResultCache) -> None:
    compute = Counter()
    await results.remember("q", {}, "user", [ANY], compute)
    await results.touched("departments")
    _, hit = await results.remember("q", {}, "user", [ANY], compute)
    assert hit is False and compute.calls == 2


async def test_untracked_inputs_are_never_cached(results: ResultCache) -> None:
    """The audit trail is written without ``changed``: nothing would ever drop such an entry."""
    compute = Counter()
    await results.remember("audit", {}, "admin", ["patients", "audit_events"], compute)
    _, hit = await results.remember("audit", {}, "admin", ["patients", "audit_events"], compute)
    assert hit is False and compute.calls == 2


async def test_entries_are_sealed_and_bound_to_their_key(
    results: ResultCache, redis_client: Redis
) -> None:
    async def answer() -> dict[str, Any]:
        return {"patient": "Ingrid Valtonen", "diagnosis": "Migraine"}

    await results.remember("saved", {"q": 1}, "viewer-1", ["patients"], answer)
    await results.remember("saved", {"q": 2}, "viewer-1", ["patients"], answer)
    keys = [k async for k in redis_client.scan_iter(match=f"{results.namespace}:result:*")]
    values: list[bytes] = [await redis_client.get(k) for k in keys]  # type: ignore[misc]
    assert len(values) == 2 and all(is_sealed(v.decode()) for v in values)
    assert not any(b"Valtonen" in v or b"Migraine" in v for v in values)
    await redis_client.set(keys[0], values[1])  # each entry's ciphertext under the other's key
    await redis_client.set(keys[1], values[0])
    compute = Counter()
    for q in (1, 2):
        await results.remember("saved", {"q": q}, "viewer-1", ["patients"], compute)
    assert compute.calls == 2  # neither moved entry opened: both computed again


async def test_entries_expire_at_the_configured_ttl(
    results: ResultCache, redis_client: Redis, settings: Settings
) -> None:
    await results.remember("op", {}, "full", ["appointments"], Counter())
    [key] = [k async for k in redis_client.scan_iter(match=f"{results.namespace}:result:*")]
    ttl = await redis_client.ttl(key)
    assert 0 < ttl <= settings.shms_result_cache_ttl_seconds


async def test_a_reader_overtaken_by_a_write_cannot_publish_its_stale_answer(
    results: ResultCache,
) -> None:
    """The reader computes over the old data while a write lands; its answer is stored under the
    old generation, so the next reader computes again instead of being served the stale one."""
    reading, write_landed = asyncio.Event(), asyncio.Event()

    async def slow_stale() -> dict[str, Any]:
        reading.set()
        await write_landed.wait()
        return {"answer": "before the write"}

    async def fresh() -> dict[str, Any]:
        return {"answer": "after the write"}

    reader = asyncio.create_task(results.remember("op", {}, "full", ["appointments"], slow_stale))
    await reading.wait()
    await results.touched("appointments")
    write_landed.set()
    assert await reader == ({"answer": "before the write"}, False)

    assert await results.remember("op", {}, "full", ["appointments"], fresh) == (
        {"answer": "after the write"},
        False,
    )


async def test_a_lost_generation_key_never_revives_old_entries(
    results: ResultCache, redis_client: Redis
) -> None:
    compute = Counter()
    await results.remember("op", {}, "full", ["appointments"], compute)
    await redis_client.delete(f"{results.namespace}:gen:appointments")  # evicted, say
    _, hit = await results.remember("op", {}, "full", ["appointments"], compute)
    assert hit is False and compute.calls == 2


async def test_concurrent_misses_share_one_computation(results: ResultCache) -> None:
    misses = RESULT_STATS["miss"]
    release = asyncio.Event()
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"answer": 42}

    tasks = [
        asyncio.create_task(results.remember("op", {}, "full", ["appointments"], compute))
        for _ in range(10)
    ]
    # A miss is counted and joins the flight table in one step (no await between), so once ten
    # are counted all ten share the flight. This waits on that condition, not on a clock.
    for _ in range(10_000):
        if RESULT_STATS["miss"] == misses + 10:
            break
        await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*tasks)
    assert calls == 1
    assert sorted(hit for _, hit in answers) == [False] * 10
    assert all(value == {"answer": 42} for value, _ in answers)


async def test_redis_down_computes_and_a_missed_bump_is_replayed_before_reuse(
    redis_client: Redis, settings: Settings, clock: Clock
) -> None:
    flaky = Flaky(redis_client)
    results = ResultCache(flaky, settings, namespace=settings.shms_cache_prefix, clock=clock)
    compute = Counter()
    await results.remember("op", {}, "full", ["appointments"], compute)  # cached: answer 1

    flaky.down = True
    bypassed = RESULT_STATS["bypass"]
    await results.touched("appointments")  # the write's bump cannot reach Redis
    value, hit = await results.remember("op", {}, "full", ["appointments"], compute)
    assert (value, hit) == ({"answer": 2}, False)  # computed from MongoDB, not an error
    assert RESULT_STATS["bypass"] == bypassed + 1
    assert results.pending

    flaky.down = False
    clock.now += settings.shms_cache_breaker_seconds + 1
    value, hit = await results.remember("op", {}, "full", ["appointments"], compute)
    assert (value, hit) == ({"answer": 3}, False)  # the bump was replayed: answer 1 is gone
    assert not results.pending
