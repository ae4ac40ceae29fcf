"""Data keys: one per sealed collection, stored wrapped in ``data_keys``, held unwrapped here.

A data key encrypts a collection's sealed fields and, through keys derived from it, keys its
blind indexes; it never changes when a master key rotates (only its wrapping does), so nothing
but the ``data_keys`` documents is rewritten. One ``data_keys`` document per collection:
``{_id: collection, key_id, wrapped: {master key id: wrapped key}, created_at}``. Wrappings by
several master keys coexist during a rotation, so readers started with either key can unwrap.

The keys are loaded when the database is opened (``open``), before any document is read:
decrypting is then synchronous (it happens while documents are built). Per collection rather
than per patient: erasure cannot be a key deletion, it rewrites the patient's documents.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.keys import KEY_BYTES, KeyProvider

COLLECTION = "data_keys"
CACHED_ONLY = ("result_cache",)
"""Data keys of values that live only in Redis (computed results, ``cache.results``): opened
and rotated like the collections', so Redis holds no clear answer either."""


@dataclass
class Keyring:
    """The process's unwrapped data keys by id, and each collection's current one."""

    keys: dict[str, AESGCM] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)
    _derived: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def add(self, collection: str, key_id: str, secret: bytes) -> None:
        self.secrets[key_id] = secret
        self.keys[key_id] = AESGCM(secret)
        self.current[collection] = key_id

    def clear(self) -> None:
        """Forget every key (a process restarting, in tests)."""
        self.keys.clear()
        self.secrets.clear()
        self.current.clear()
        self._derived.clear()

    def key_for(self, collection: str) -> tuple[str, AESGCM]:
        try:
            key_id = self.current[collection]
        except KeyError:
            raise LookupError(
                f"no data key loaded for {collection!r}: open the database (db.init_database) first"
            ) from None
        return key_id, self.keys[key_id]

    def derived(self, collection: str, purpose: str) -> bytes:
        """A key for ``purpose`` (a blind index) derived from the collection's data key."""
        key_id = self.key_for(collection)[0]
        found = self._derived.get((key_id, purpose))
        if found is None:
            label = b"shms derive\0" + purpose.encode()
            found = hmac.new(self.secrets[key_id], label, "sha256").digest()
            self._derived[(key_id, purpose)] = found
        return found


KEYRING = Keyring()


def _context(key_id: str) -> str:
    return f"shms data key {key_id}"


def _unwrap(provider: KeyProvider, doc: dict[str, Any]) -> bytes:
    wrapped: dict[str, str] = doc.get("wrapped") or {}
    for master_id in provider.ids():
        if master_id in wrapped:
            return provider.unwrap(master_id, wrapped[master_id], _context(doc["key_id"]))
    raise RuntimeError(
        f"no configured master key unwraps the data key of {doc['_id']!r} (wrapped by "
        f"{sorted(wrapped)}; configured {list(provider.ids())}): set SHMS_MASTER_KEY"
    )


def _embedded_key(seed: bytes, collection: str) -> tuple[str, bytes]:
    """The embedded store's data key of ``collection``, derived from the development master
    key: embedded processes sharing a state dir (and a Redis) share no ``data_keys``
    collection, yet must open each other's cached ciphertext as processes sharing a MongoDB
    do. Development only: production refuses the embedded store."""
    secret = hmac.new(seed, f"shms embedded data key {collection}".encode(), "sha256").digest()
    return f"{collection}-{hashlib.sha256(secret).hexdigest()[:12]}", secret


async def open_keys(
    store: Any,
    provider: KeyProvider,
    collections: Iterable[str],
    *,
    embedded_seed: bytes | None = None,
) -> None:
    """Load (creating on first use) the data key of each collection into ``KEYRING``.

    Creation is an upsert on the collection's id: processes starting together agree on the
    first one's key. ``embedded_seed`` (the embedded store's master key): new data keys are
    derived from it rather than random (``_embedded_key``)."""
    for collection in sorted(set(collections)):
        doc = await store.find_one({"_id": collection})
        if doc is None:
            key_id = f"{collection}-{os.urandom(6).hex()}"
            secret = os.urandom(KEY_BYTES)
            if embedded_seed is not None:
                key_id, secret = _embedded_key(embedded_seed, collection)
            master_id, wrapped = provider.wrap(secret, _context(key_id))
            await store.update_one(
                {"_id": collection},
                {
                    "$setOnInsert": {
                        "key_id": key_id,
                        "wrapped": {master_id: wrapped},
                        "created_at": datetime.now(UTC),
                    }
                },
                upsert=True,
            )
            doc = await store.find_one({"_id": collection})
            assert doc is not None
        KEYRING.add(collection, doc["key_id"], _unwrap(provider, doc))


@dataclass(frozen=True)
class KeyStatus:
    collection: str
    key_id: str
    wrapped_by: tuple[str, ...]


async def status(store: Any) -> list[KeyStatus]:
    return [
        KeyStatus(d["_id"], d["key_id"], tuple(sorted(d.get("wrapped") or {})))
        async for d in store.find({}).sort("_id", 1)
    ]


async def rotate(store: Any, provider: KeyProvider, *, retire: bool = False) -> int:
    """Wrap every data key under the provider's primary master key as well; with ``retire``,
    drop the wrappings by every other key. Each document changes by one compare-and-set on
    its wrappings (concurrent rotations cannot lose one); data is never re-encrypted.
    Returns how many data keys changed."""
    changed = 0
    async for doc in store.find({}):
        wrapped: dict[str, str] = doc.get("wrapped") or {}
        secret = _unwrap(provider, doc)
        master_id, rewrapped = provider.wrap(secret, _context(doc["key_id"]))
        new = {**wrapped, master_id: rewrapped} if master_id not in wrapped else dict(wrapped)
        if retire:
            new = {master_id: new[master_id]}
        if new == wrapped:
            continue
        result = await store.update_one(
            {"_id": doc["_id"], "wrapped": wrapped}, {"$set": {"wrapped": new}}
        )
        changed += int(result.modified_count)
    return changed


def digest(key: bytes, text: str) -> str:
    """A keyed hash for blind indexes: HMAC-SHA256, truncated to 128 bits, hex."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
