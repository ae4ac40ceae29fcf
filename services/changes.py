"""The one step every service write ends with: refresh the caches, then publish the event.

Keys and events are derived from the written document itself (its collection, id and
references), so no mutation carries a hand-written list of keys to forget.
"""

from __future__ import annotations

from auth import status
from auth.policy import REGISTRY
from cache import runtime
from events.types import DomainEvent
from models.base import Entity
from services import care


async def changed(doc: Entity, change: str) -> None:
    """Call after MongoDB accepted a write of ``doc`` (the document as now stored)."""
    await status.current().forget(doc)  # first: a disabled account is refused from now on
    rt = runtime.current()
    version = await rt.cache.store(doc) if rt.cache is not None else 0
    declaration = REGISTRY.for_model(type(doc))
    if declaration is not None and declaration.care is not None:
        # The patient's care relations follow the fact at once (services.care).
        patient = await care.refresh(getattr(doc, declaration.patient or "patient_id", None))
        if patient is not None:
            await changed(patient, "care_changed")
    if rt.results is not None:  # before the event: a subscriber re-running an aggregate is fresh
        await rt.results.touched(doc.get_collection_name())
    if rt.bus is not None:
        await rt.bus.publish(DomainEvent.of(doc, change, version))
