"""A Redis lease: at most one holder at a time, across every process sharing one Redis.

Taken with ``SET key token NX PX ttl``; renewed and released only by the holder, by a
compare-and-set on the token (WATCH/MULTI, so it needs no Lua and runs on fakeredis too). A
holder that dies simply stops renewing, and the lease expires for another to take. When Redis
cannot be reached nobody holds it: the work it guards does not run (and the caller says so).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import WatchError

log = logging.getLogger(__name__)


class LeaseUnavailable(Exception):
    """Redis could not be asked: whether anyone holds the lease is unknown."""


class RedisLease:
    def __init__(self, redis: Any, key: str, ttl_ms: int, token: str | None = None) -> None:
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        self.redis, self.key, self.ttl_ms = redis, key, ttl_ms
        self.token = token or uuid.uuid4().hex
        self.held = False

    async def acquire(self) -> bool:
        """Take the lease, or renew it if we hold it; False when another holds it.

        Raises ``LeaseUnavailable`` when Redis does not answer (``held`` is then False).
        """
        try:
            taken = await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms)
            self.held = bool(taken) or await self._if_mine(renew=True)
        except Exception as exc:
            self.held = False
            raise LeaseUnavailable(repr(exc)) from exc
        return self.held

    async def release(self) -> None:
        """Give the lease up if we hold it (never someone else's); errors are only logged."""
        try:
            await self._if_mine(renew=False)
        except Exception:
            log.warning("jobs: could not release the lease %s", self.key, exc_info=True)
        self.held = False

    async def holder(self) -> str | None:
        value = await self.redis.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def _if_mine(self, *, renew: bool) -> bool:
        """Renew (or delete) the key only if it still holds our token."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                value = await pipe.get(self.key)
                if value is None or (value.decode() if isinstance(value, bytes) else value) != (
                    self.token
                ):
                    return False
                pipe.multi()
                if renew:
                    pipe.pexpire(self.key, self.ttl_ms)
                else:
                    pipe.delete(self.key)
                await pipe.execute()
            except WatchError:  # changed under us: it expired and another took it
                return False
        return True
