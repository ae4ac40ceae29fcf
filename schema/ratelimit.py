"""Rate limits per viewer and per client address, weighted by each operation's cost.

``RateLimit`` (a schema extension) runs after validation — so ``QueryLimits`` has put the
operation's estimated cost on the context — and before execution. It charges the cost (at
least 1) to two fixed-window counters in Redis, taken together in one MULTI/EXEC pipeline
(INCRBY, then EXPIRE NX so the key dies with its window):

* the viewer: the principal's subject, or the client address for anonymous callers, with
  ``SHMS_RATE_LIMIT_POINTS`` per ``SHMS_RATE_LIMIT_WINDOW_SECONDS``;
* the client address, across every viewer behind it, with ``SHMS_RATE_LIMIT_ADDRESS_POINTS``.

An operation that would go over either is refused before it executes (so it reads nothing)
with ``RATE_LIMITED`` (HTTP 200, like every other GraphQL error) and its points are given back.
HTTP responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (the
tighter of the two counters) and, when refused, ``Retry-After``.

If Redis fails, ordinary operations go ahead unlimited (fail open): the failure is logged (at
most once per ``_LOG_EVERY`` seconds) and counted in ``FAILED_OPEN``. Sign-in has its own
throttle (``auth.oauth.LoginThrottle``), which fails closed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import ExecutionResult, GraphQLError
from redis.exceptions import RedisError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

import metrics
from config import Settings, get_settings
from errors import RateLimited

log = logging.getLogger("shms.ratelimit")

clock: Callable[[], float] = time.time
"""The limiter's clock (tests replace it to move between windows)."""

FAILED_OPEN = {"count": 0}
"""How many operations went ahead unlimited because Redis failed."""

_LOG_EVERY = 60.0
_last_log = {"at": -math.inf}


def _keys(settings: Settings, context: Any, window: int) -> list[tuple[str, int]]:
    """The counters to charge, each with its limit, for the current window."""
    base = f"{settings.shms_cache_namespace or settings.shms_cache_prefix}:{settings.mongodb_db}"
    address = getattr(context, "client_address", None) or "unknown"
    principal = getattr(context, "principal", None)
    keys = [(f"{base}:rate:{window}:addr:{address}", settings.shms_rate_limit_address_points)]
    if principal is not None:
        subject = hashlib.sha256(principal.subject.encode("utf-8")).hexdigest()[:32]
        keys.insert(0, (f"{base}:rate:{window}:sub:{subject}", settings.shms_rate_limit_points))
    else:  # anonymous: the viewer is the address, held to the viewer limit
        keys[0] = (keys[0][0], min(settings.shms_rate_limit_points, keys[0][1]))
    return keys


def redis_of(context: Any) -> Any:
    request = getattr(context, "request", None)
    app = getattr(request, "app", None) if request is not None else None
    state = getattr(app, "state", None)
    return getattr(state, "redis", None)


def failed_open() -> None:
    FAILED_OPEN["count"] += 1
    metrics.RATE_LIMIT_FAILED_OPEN.inc()
    now = time.monotonic()
    if now - _last_log["at"] >= _LOG_EVERY:
        _last_log["at"] = now
        log.warning(
            "the rate limiter cannot reach Redis; operations run unlimited (%d so far)",
            FAILED_OPEN["count"],
            exc_info=True,
        )


async def charge(
    settings: Settings, redis: Any, context: Any, cost: int
) -> tuple[dict[str, str], str | None]:
    """Charge ``cost`` to the caller's counters: the headers to send, and ``None`` — or, when a
    counter would go over, the refusal's message (the points are then given back)."""
    span = settings.shms_rate_limit_window_seconds
    now = clock()
    window = int(now // span)
    reset = max(1, math.ceil((window + 1) * span - now))
    keys = _keys(settings, context, window)
    async with redis.pipeline(transaction=True) as pipe:
        for key, _ in keys:
            pipe.incrby(key, cost)
            pipe.expire(key, span + 1, nx=True)
        replies = await pipe.execute()
    counts = [int(replies[2 * i]) for i in range(len(keys))]
    remaining = [limit - count for (_, limit), count in zip(keys, counts, strict=True)]
    tightest = min(range(len(keys)), key=lambda i: remaining[i])
    limit = keys[tightest][1]
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining[tightest])),
        "RateLimit-Reset": str(reset),
    }
    if remaining[tightest] >= 0:
        return headers, None
    left = max(0, remaining[tightest] + cost)
    headers["RateLimit-Remaining"] = str(left)
    headers["Retry-After"] = str(reset)
    try:  # a refused operation costs nothing
        async with redis.pipeline(transaction=True) as pipe:
            for key, _ in keys:
                pipe.decrby(key, cost)
            await pipe.execute()
    except (RedisError, OSError, TimeoutError):
        log.warning("could not give back refused rate-limit points", exc_info=True)
    message = (
        f"Rate limit exceeded: this operation costs {cost} points and {left} of {limit} are "
        "left in this window (SHMS_RATE_LIMIT_POINTS per SHMS_RATE_LIMIT_WINDOW_SECONDS); "
        f"retry in {reset} s."
    )
    return headers, message


class RateLimit(SchemaExtension):
    """Charges each query and mutation its cost before it executes; refuses it when over."""

    async def on_execute(self) -> AsyncIterator[None]:
        await self._check()
        yield

    async def _check(self) -> None:
        ec = self.execution_context
        context = ec.context
        settings = getattr(context, "settings", None)
        if not isinstance(settings, Settings):
            settings = get_settings()
        if not settings.shms_rate_limit_enabled or ec.result is not None:
            return
        if ec.operation_type == OperationType.SUBSCRIPTION:
            return  # held to the document limits; not charged per event
        redis = redis_of(context)
        if redis is None:
            return
        cost = max(1, int(getattr(context, "query_cost", 0) or 0))
        try:
            headers, refused = await charge(settings, redis, context, cost)
        except (RedisError, OSError, TimeoutError):
            failed_open()
            return
        sink = getattr(context, "rate_headers", None)  # the HTTP reply's headers, if any
        if sink is not None:
            for name, value in headers.items():
                sink[name] = value
        if refused is not None:
            metrics.RATE_LIMIT_REFUSALS.labels("operation").inc()
            error = RateLimited(refused, retryAfter=int(headers["Retry-After"]), cost=cost)
            ec.result = ExecutionResult(
                data=None, errors=[GraphQLError(refused, original_error=error)]
            )
