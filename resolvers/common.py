"""The shape most mutations share: ask the policy, run the service, record the write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from auth.policy import Kind
from schema.context import Info

T = TypeVar("T")


async def perform(
    info: Info,
    kind: Kind,
    action: str,
    run: Callable[[], Awaitable[T]],
    fields: Iterable[str] = (),
    note: str | None = None,
    **target: Any,
) -> T:
    """``run`` only if the policy allows ``action`` (``target``: ``row=`` or ``patient=``), then
    put the write in the audit trail; the service itself validates and writes."""
    await info.context.access.require(kind, action, **target)
    done = await run()
    info.context.access.wrote(kind, done, action, fields, note=note)
    return done
