"""Cache tests run against the real Redis, each under its own key prefix, removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from cache import runtime
from cache.documents import DocumentCache
from config import Settings
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with a key prefix no other test (or process) uses."""
    return settings.model_copy(update={"shms_cache_prefix": f"shms-test-{uuid.uuid4().hex[:12]}"})


@pytest.fixture(autouse=True)
async def redis_client(settings: Settings) -> AsyncIterator[Redis]:
    """A connection of the test's own to the test Redis; every key the test made is deleted
    when it ends (autouse, so this runs after the app has stopped)."""
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        yield client
    finally:
        names = [n async for n in client.scan_iter(match=f"{settings.shms_cache_prefix}:*")]
        if names:
            await client.delete(*names)
        await client.aclose()


@pytest.fixture
def cache(app: Any) -> DocumentCache:
    """The cache the app installed for its services and loaders."""
    installed = runtime.current().cache
    assert isinstance(installed, DocumentCache)
    return installed
