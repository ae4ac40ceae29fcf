"""Opens Redis: a real server from ``REDIS_URL``, or in-process fakeredis when embedded."""

from __future__ import annotations

import logging
from typing import Any

import fakeredis
import redis.asyncio as redis

log = logging.getLogger(__name__)


def connect_redis(url: str, connect_timeout: float = 5.0) -> Any:
    """``connect_timeout`` (SHMS_CONNECT_TIMEOUT_SECONDS) bounds each connection attempt, so
    an unreachable Redis is reported within it instead of hanging."""
    if not url:
        return fakeredis.FakeAsyncRedis()
    return redis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=2, health_check_interval=30
    )


async def ping(client: Any) -> bool:
    try:
        return bool(await client.ping())
    except Exception:  # health checks report, they do not raise
        log.warning("Redis ping failed", exc_info=True)
        return False
