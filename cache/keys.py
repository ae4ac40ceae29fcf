"""Redis key names of the document cache, in one place so no caller spells a key by hand.

Every key lives under a namespace naming the database it caches: two deployments (or two test
databases) sharing one Redis never read each other's documents. An embedded store lives and
dies with its process, so its namespace also carries a token drawn at start-up: a restarted
process must not be served what its previous, now vanished, store held.
"""

from __future__ import annotations

import uuid

from bson import ObjectId

from config import Settings

FORMAT = "v1"
"""Bumped when the stored value format changes, so old values are simply never read again."""


def namespace(settings: Settings) -> str:
    if settings.shms_cache_namespace:
        return f"{settings.shms_cache_namespace}:{FORMAT}"
    base = f"{settings.shms_cache_prefix}:{settings.mongodb_db}:{FORMAT}"
    return f"{base}:{uuid.uuid4().hex[:12]}" if settings.embedded_mongo else base


def document(ns: str, entity: str, id: ObjectId) -> str:
    """The cached raw document (BSON-faithful JSON), with a TTL."""
    return f"{ns}:doc:{entity}:{id}"


def version(ns: str, entity: str, id: ObjectId) -> str:
    """How many writes the document has seen; a backfill only lands if it has not moved."""
    return f"{ns}:ver:{entity}:{id}"


def every_document(ns: str) -> str:
    """A SCAN pattern matching every cached document of the namespace (versions excluded)."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in ns)
    return f"{escaped}:doc:*"
