"""The live views SHMS keeps in Redis (equipment status, bed boards, outpatient queues, ED
boards) share one lifecycle: the app's lifespan starts each one, hooking it to every write this
process publishes and rebuilding it from MongoDB, and empties its slot at shutdown, after which
reads fall back to MongoDB (as they do in scripts and tests that run no app)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from events.bus import Bus
from events.types import DomainEvent

log = logging.getLogger(__name__)


class View(Protocol):
    async def on_event(self, event: DomainEvent) -> None: ...

    async def rebuild(self) -> int: ...


V = TypeVar("V", bound=View)


class Slot(Generic[V]):
    """Where one kind of live view is found while an app runs (``None`` otherwise)."""

    def __init__(self, name: str, unit: str) -> None:
        self.name, self.unit = name, unit
        self.current: V | None = None
        SLOTS.append(self)

    async def start(self, view: V, bus: Bus, failed: Callable[[], None] = lambda: None) -> V:
        """Hook ``view`` to every write this process publishes, install it, rebuild it. A
        Redis that is down at start-up is logged (``failed`` counts it): reads fall back to
        MongoDB and the view fills again as writes come."""
        bus.on_publish(view.on_event)
        self.current = view
        try:
            count = await view.rebuild()
            log.info("live %s loaded with %d %s", self.name, count, self.unit)
        except Exception:
            failed()
            log.warning("live %s not rebuilt at start-up", self.name, exc_info=True)
        return view


SLOTS: list[Slot[Any]] = []
"""Every slot, for the app to empty at shutdown."""


def stop_all() -> None:
    """The app is stopping: every read falls back to MongoDB from now on."""
    for slot in SLOTS:
        slot.current = None
