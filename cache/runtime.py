"""The process's shared Redis-backed parts, installed by the app's lifespan.

Services reach the document cache, the result cache and the event bus through here, so a service
call made outside a running app (a script, a service test) simply has none: writes still work,
from MongoDB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from events.types import DomainEvent
from models.base import Entity


class DocumentCache(Protocol):
    async def store(self, doc: Entity) -> int:
        """Put the just-written ``doc`` in the cache, bump its version, return the version."""
        ...


class ResultCache(Protocol):
    async def touched(self, collection: str) -> None:
        """A write of ``collection`` landed: drop every cached result computed over it."""
        ...

    async def remember(
        self,
        operation: str,
        params: Mapping[str, Any],
        scope: str,
        inputs: Collection[str],
        compute: Callable[[], Awaitable[dict[str, Any]]],
    ) -> tuple[dict[str, Any], bool]: ...


class EventBus(Protocol):
    async def publish(self, event: DomainEvent) -> None: ...

    def subscribe(self, entities: Collection[str]) -> AsyncIterator[DomainEvent]: ...


@dataclass
class Runtime:
    cache: DocumentCache | None = None
    bus: EventBus | None = None
    results: ResultCache | None = None


_current = Runtime()


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    return _current
