"""The one step every service write ends with: refresh the caches, then publish the event.

Keys and events are derived from the written document itself (its collection, id and
references), so no mutation carries a hand-written list of keys to forget.
"""

from __future__ import annotations

from cache import runtime
from events.types import DomainEvent
from models.base import Entity


async def changed(doc: Entity, change: str) -> None:
    """Call after MongoDB accepted a write of ``doc`` (the document as now stored)."""
    rt = runtime.current()
    version = await rt.cache.store(doc) if rt.cache is not None else 0
    if rt.results is not None:  # before the event: a subscriber re-running an aggregate is fresh
        await rt.results.touched(doc.get_collection_name())
    if rt.bus is not None:
        await rt.bus.publish(DomainEvent.of(doc, change, version))
