"""What the encryption tests read around the application: raw stored documents and every value
Redis holds for a test's deployment."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from redis.asyncio import Redis

import db
from crypto.fields import is_sealed
from tests.conftest import TEST_REDIS_URL

Raw = dict[str, Any]


async def raw_doc(model: Any, id: Any) -> Raw:
    """The document as MongoDB holds it (sealed fields as ciphertext)."""
    found: Raw | None = await db.collection(model).find_one({"_id": ObjectId(str(id))})
    assert found is not None
    return found


def sealed(document: Raw, *fields: str) -> None:
    """Each of ``fields`` is stored, as ciphertext."""
    for name in fields:
        assert is_sealed(document.get(name)), (name, document.get(name))


async def redis_values(settings: Any) -> list[str]:
    """Every key and value Redis holds under this test's database or cache namespace."""
    redis = Redis.from_url(TEST_REDIS_URL)
    values: list[str] = []
    patterns = {f"*{settings.mongodb_db}*"}  # keys name the database, or the shared namespace
    if settings.shms_cache_namespace:
        patterns.add(f"*{settings.shms_cache_namespace}*")
    try:
        for pattern in patterns:
            async for name in redis.scan_iter(match=pattern, count=500):
                answer: Any = await redis.type(name)
                kind = answer.decode() if isinstance(answer, bytes) else str(answer)
                if kind == "string":
                    values.append(repr(await redis.get(name)))
                elif kind == "hash":
                    values.append(repr(await redis.hgetall(name)))
                elif kind == "set":
                    values.append(repr(await redis.smembers(name)))
                elif kind == "zset":
                    values.append(repr(await redis.zrange(name, 0, -1)))
                elif kind == "list":
                    values.append(repr(await redis.lrange(name, 0, -1)))
                values.append(repr(name))
    finally:
        await redis.aclose()
    return values


async def redis_text(settings: Any) -> str:
    return "".join(await redis_values(settings))


def assert_absent(secrets: list[str], *stores: str) -> None:
    """None of ``secrets`` in any store, in any spelling a serialiser may have used."""
    everything = "".join(stores)
    for secret in secrets:
        for spelling in {secret, secret.casefold(), secret.encode("unicode_escape").decode()}:
            assert spelling not in everything, spelling
