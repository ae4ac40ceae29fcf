"""Per-request loaders. Build a fresh set for every request (and every subscription event).

Loaders are derived from the declared entities, by name, the first time a request asks:
``<entity>_by_id`` (documents by id, through the Redis cache when the entity is cached),
``<entity>_by_<ref>`` (the one document whose ``<ref>_id`` is the key, e.g.
``billing_account_by_patient``) and ``<collection>_by_<ref>`` (each parent's page of children,
e.g. ``appointments_by_patient``, in the entity's declared order and within the caller's row
scope). A new entity gets its loaders by being declared; nothing here lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from auth.policy import REGISTRY, Declaration, Kind
from cache import runtime
from cache.documents import DocumentCache
from loaders.base import ById, ChildPages, Scope


def _find(name: str) -> tuple[Declaration, str, bool] | None:
    """(declaration, key field, one-or-many) for a loader name, or None."""
    target, sep, key = name.rpartition("_by_")
    if not sep or not key:
        return None
    field = "_id" if key == "id" else f"{key}_id"
    for d in REGISTRY:
        if d.model is None:
            continue
        if target == d.collection and key != "id":
            return d, field, False
        if target == d.name:
            return d, field, True
    return None


class Loaders:
    """Every relation the schema resolves, named ``<target>_by_<key>`` after the saleor habit."""

    def __init__(
        self,
        scope: Callable[[Kind], Awaitable[dict[str, Any]]] | None = None,
        cache: DocumentCache | None = None,
    ) -> None:
        """``scope`` gives the caller's row filter per entity; nested lists apply it. ``cache``
        defaults to the one the app installed (``cache.runtime``), if any."""
        if cache is None:
            installed = runtime.current().cache
            cache = installed if isinstance(installed, DocumentCache) else None
        self._cache = cache
        self._scope = scope

    def _scoped(self, kind: Kind) -> Scope:
        async def scoped() -> dict[str, Any]:
            return await self._scope(kind) if self._scope is not None else {}

        return scoped

    def __getattr__(self, name: str) -> Any:
        found = _find(name)
        if found is None:
            raise AttributeError(f"no loader {name!r}: no declared entity matches it")
        declaration, field, single = found
        model = declaration.model
        loader: Any
        if single:
            loader = ById(model, field, cache=self._cache)  # type: ignore[arg-type]
        else:
            loader = ChildPages(
                model,  # type: ignore[arg-type]
                field,
                declaration.order,
                self._scoped(declaration.kind),
            )
        setattr(self, name, loader)  # one instance per request: it batches and memoises
        return loader
