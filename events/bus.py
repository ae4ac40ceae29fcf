"""The event bus: every service write publishes a ``DomainEvent``; subscribers receive them.

``RedisBus`` publishes to Redis pub/sub (one channel per entity), so an event written by one
worker process reaches subscribers in every process attached to the same Redis. Each process
runs one reader task that fans events out to its local subscribers. ``LocalBus`` fans out in
process only: the embedded default, where no other process could listen anyway.

Neither raises into the write path: a failed publish is logged and counted, and the write
stands. A subscriber gets a bounded queue; one that falls behind loses its oldest events (they
are counted) rather than holding the whole process's memory hostage. Pub/sub is fire-and-forget:
events published while the reader is disconnected from Redis are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import SpanKind

import metrics
from config import Settings
from events.types import DomainEvent
from observability import tracing

log = logging.getLogger(__name__)

Hook = Callable[[DomainEvent], Awaitable[None]]
"""Runs in the process that wrote, for every event it publishes, before the event leaves."""

DEFAULT_QUEUE_SIZE = 1000
POLL_SECONDS = 1.0  # how long one read waits on Redis before checking for close
MAX_BACKOFF_SECONDS = 5.0


class Subscription:
    """One subscriber's events, as an async iterator; it ends when it or the bus is closed.

    It is registered when created (not at the first ``__anext__``), so every event published
    after ``subscribe()`` returned is delivered.
    """

    def __init__(self, bus: Bus, entities: Collection[str], limit: int) -> None:
        self.entities = frozenset(entities)
        self.dropped = 0
        self.overflowed = False
        self._bus = bus
        self._items: deque[DomainEvent] = deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self._closed = False

    def offer(self, event: DomainEvent) -> None:
        """Queue ``event``; a subscriber already ``limit`` events behind is ended instead
        (``overflowed``): silently losing events would show a screen a state that never was,
        and holding them would let one slow client grow the process without bound."""
        if self._closed or event.entity not in self.entities:
            return
        if len(self._items) >= self._limit:
            self.dropped += len(self._items) + 1
            metrics.EVENTS_DROPPED.labels(event.entity).inc(len(self._items) + 1)
            self._items.clear()
            self.overflowed = True
            self.end()
            return
        self._items.append(event)
        metrics.EVENTS_DELIVERED.labels(event.entity).inc()
        self._wake.set()

    def end(self) -> None:
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> DomainEvent:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        if self._closed:
            raise StopAsyncIteration
        event = self._items.popleft()
        _delivered(event)
        return event

    async def aclose(self) -> None:
        """Stop receiving; safe to call more than once, and needs no I/O (so it is cancel-safe)."""
        self.end()
        self._bus.forget(self)


class Bus:
    """What both buses share: publish hooks, local subscribers, close."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._hooks: list[Hook] = []
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def on_publish(self, hook: Hook) -> None:
        """Run ``hook`` for every event this process publishes, before it is sent.

        For work that must follow every write exactly once, in the writer's process (keeping the
        live equipment status in Redis): a hook cannot be forgotten by a new service, since
        every write ends in ``services.changes.changed`` and so in ``publish``.
        """
        self._hooks.append(hook)

    async def _run_hooks(self, event: DomainEvent) -> None:
        for hook in self._hooks:
            try:
                await hook(event)
            except Exception:  # a hook must not fail the write that already happened
                log.warning(
                    "publish hook %r failed for %s %s", hook, event.entity, event.id, exc_info=True
                )

    async def publish(self, event: DomainEvent) -> None:
        raise NotImplementedError

    def subscribe(self, entities: Collection[str]) -> Subscription:
        """Events of the given entities (collection names) published from now on."""
        subscription = Subscription(self, entities, self.queue_size)
        if self._closed:
            subscription.end()
        else:
            self._subscribers.add(subscription)
        return subscription

    def forget(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def _deliver(self, event: DomainEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    async def start(self) -> None:
        """Nothing to start in process; ``RedisBus`` starts its reader."""

    async def aclose(self) -> None:
        """End every subscription (their GraphQL subscriptions complete) and stop delivering."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.end()
        self._subscribers.clear()


def _delivered(event: DomainEvent) -> None:
    """A subscriber took ``event``: its lag since the write, and (tracing) a delivery span
    continuing the publisher's trace."""
    try:
        lag = time.time() - event.happened_at.timestamp()
    except ValueError:  # a foreign timestamp
        return
    metrics.EVENT_DELIVERY_LAG.labels(event.entity).observe(max(0.0, lag))
    if event.trace:
        attributes = {"messaging.destination.name": event.entity, "shms.event.change": event.change}
        with tracing.span(f"deliver {event.entity}", SpanKind.CONSUMER, attributes, event.trace):
            pass


def _traced(event: DomainEvent) -> DomainEvent:
    """``event`` carrying the current trace (the publish span's), when tracing is on."""
    parent = tracing.traceparent()
    return dataclasses.replace(event, trace=parent) if parent else event


def _publishing(event: DomainEvent) -> AbstractContextManager[Any]:
    attributes = {"messaging.destination.name": event.entity, "shms.event.change": event.change}
    return tracing.span(f"publish {event.entity}", SpanKind.PRODUCER, attributes)


class LocalBus(Bus):
    """In-process delivery: for the embedded default, where one process is the whole world."""

    async def publish(self, event: DomainEvent) -> None:
        with _publishing(event):
            await self._run_hooks(event)
            metrics.EVENTS_PUBLISHED.labels(event.entity).inc()
            self._deliver(_traced(event))


class RedisBus(Bus):
    """Delivery through Redis pub/sub, so every process attached to one Redis sees every event.

    Channels are ``<namespace>:events:<entity>``; the reader subscribes to the pattern covering
    all of them once, so a new subscriber never waits for a channel subscription to land.
    """

    def __init__(
        self, redis: Any, namespace: str = "shms", queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        super().__init__(queue_size)
        self._redis = redis
        self._prefix = f"{namespace}:events:"
        self._reader: asyncio.Task[None] | None = None
        self._connections = 0
        self._connected = asyncio.Condition()

    def channel(self, entity: str) -> str:
        return self._prefix + entity

    async def publish(self, event: DomainEvent) -> None:
        with _publishing(event):
            await self._run_hooks(event)
            try:
                await self._redis.publish(self.channel(event.entity), _traced(event).to_json())
            except Exception:  # never into the write path: the write already happened
                metrics.EVENT_PUBLISH_ERRORS.labels(event.entity).inc()
                log.warning("could not publish %s %s %s", event.entity, event.id, event.change)
            else:
                metrics.EVENTS_PUBLISHED.labels(event.entity).inc()

    async def start(self, ready_within: float = 5.0) -> None:
        """Start the reader and wait (a bounded time) until it listens.

        An unreachable Redis does not stop the app from starting: the reader keeps retrying in
        the background, and writes keep working meanwhile.
        """
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="shms-event-bus-reader")
        try:
            await asyncio.wait_for(self.wait_connected(), ready_within)
        except TimeoutError:
            log.warning("event bus: Redis not reachable yet; retrying in the background")

    async def wait_connected(self, after: int = 0) -> None:
        """Wait until the reader has subscribed more than ``after`` times (1 = first time)."""
        async with self._connected:
            await self._connected.wait_for(lambda: self._connections > after)

    @property
    def connections(self) -> int:
        return self._connections

    async def _listening(self, pubsub: Any) -> None:
        await pubsub.psubscribe(self._prefix + "*")
        # Only once Redis confirmed does "connected" promise delivery of what follows.
        while True:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            if message is not None and message.get("type") == "psubscribe":
                break
        async with self._connected:
            self._connections += 1
            metrics.BUS_CONNECTIONS.inc()
            self._connected.notify_all()
        if self._connections > 1:
            log.info("event bus: reconnected to Redis")

    async def _read(self) -> None:
        backoff = 0.1
        while not self._closed:
            pubsub = self._redis.pubsub()
            try:
                await self._listening(pubsub)
                backoff = 0.1
                while not self._closed:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=POLL_SECONDS
                    )
                    if message is not None:
                        self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event bus: lost Redis (%r); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage" or not self._subscribers:
            return
        try:
            event = DomainEvent.from_json(message["data"])
        except Exception:  # a foreign or malformed message on our channels
            log.warning("event bus: ignored an unreadable message on %r", message.get("channel"))
            return
        self._deliver(event)

    async def aclose(self) -> None:
        await super().aclose()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


def namespace(settings: Settings) -> str:
    """Shared by every process serving the same database, so their events meet in Redis."""
    return f"{settings.shms_cache_prefix}:{settings.mongodb_db}"


def create_bus(settings: Settings, redis: Any) -> LocalBus | RedisBus:
    """In process with fakeredis (embedded: no other process to reach), else Redis pub/sub."""
    if settings.embedded_redis:
        return LocalBus(settings.shms_event_queue_size)
    return RedisBus(redis, namespace(settings), settings.shms_event_queue_size)
