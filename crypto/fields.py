"""Sealed fields: which fields of a document are encrypted, and sealing and opening them.

A model opts in with ``sealed(Model, fields, derived=...)`` beside its declaration. A sealed
field is stored as one string, ``enc1:<data key id>:<base64url(nonce | AES-GCM ciphertext)>``,
of the BSON of its stored value, with associated data naming the collection, the field and the
document's id: a ciphertext copied to another field or another document does not open.

``derived`` fields are keyed hashes (blind indexes) of a sealed field's clear value, computed
whenever the field is written, so exact matches (a national id, a condition code to group
by) query an indexed clear field that reveals nothing but equality.

Sealing happens at the driver boundary (``db`` wraps the collections of sealed models), so
every write path is covered, Beanie's and raw ones alike; opening happens when a document is
built (``models.trusted`` and model validation), after the Redis cache, which therefore holds
what MongoDB holds.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from functools import lru_cache
from typing import Any

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions
from cryptography.exceptions import InvalidTag

from crypto.keyring import KEYRING, digest
from crypto.keys import NONCE_BYTES

PREFIX = "enc1:"
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=UTC)

Text = Callable[[Any], str | None]
"""The clear text a blind index hashes, from a field's stored value (``None``: no index)."""


class Unreadable(ValueError):
    """A sealed value that does not open: another field's or document's, altered, or its key
    is not loaded."""


@dataclass(frozen=True)
class Sealing:
    collection: str
    fields: frozenset[str]
    derived: Mapping[str, tuple[str, Text]] = field(default_factory=dict)
    """blind index field -> (the sealed field it hashes, the clear text it hashes)"""
    items: Mapping[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    """array field -> (the key naming each element, the element fields sealed): for arrays
    that grow by ``$push`` (a bill's charges), sealed element by element"""

    @property
    def written(self) -> frozenset[str]:
        """Fields a write may not touch piecewise: the sealed ones and their indexes."""
        return self.fields | set(self.derived)


SEALED: dict[type, Sealing] = {}
BY_COLLECTION: dict[str, Sealing] = {}


def sealed(
    model: type,
    collection: str,
    fields: tuple[str, ...],
    derived: Mapping[str, tuple[str, Text]],
    items: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> Sealing:
    """Declare ``model``'s sealed fields (stored names), blind indexes and sealed fields of
    array elements (``{"charges": ("id", ("description",))}``: each element's ``description``,
    bound to the element's ``id``)."""
    elements = {a: (key, frozenset(names)) for a, (key, names) in (items or {}).items()}
    sealing = Sealing(collection, frozenset(fields), dict(derived), elements)
    SEALED[model] = BY_COLLECTION[collection] = sealing
    return sealing


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _context(collection: str, name: str, doc_id: Any) -> bytes:
    return f"{collection}.{name}/{doc_id}".encode()


def seal_value(collection: str, name: str, doc_id: Any, value: Any) -> str:
    key_id, key = KEYRING.key_for(collection)
    nonce = os.urandom(NONCE_BYTES)
    plain = bson.encode({"v": value}, codec_options=_CODEC)
    sealed_bytes = key.encrypt(nonce, plain, _context(collection, name, doc_id))
    return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed_bytes).decode()}"


OPENED_CACHE_SIZE = 50_000


def open_value(collection: str, name: str, doc_id: Any, text: str) -> Any:
    """The clear value of a sealed one. Plaintexts are remembered per process (bounded LRU),
    keyed by the ciphertext with its context (a copy moved elsewhere misses and fails): a
    ciphertext is unique to one write, so a hot document is decrypted once, not on every read,
    and only its BSON decoding is paid again (a fresh value each time, never shared)."""
    return bson.decode(_opened(collection, name, doc_id, text), codec_options=_CODEC)["v"]


@lru_cache(maxsize=OPENED_CACHE_SIZE)
def _opened(collection: str, name: str, doc_id: Any, text: str) -> bytes:
    try:
        key_id, body = text[len(PREFIX) :].split(":", 1)
        blob = base64.urlsafe_b64decode(body)
        plain = KEYRING.keys[key_id].decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], _context(collection, name, doc_id)
        )
    except (KeyError, ValueError, InvalidTag) as exc:
        raise Unreadable(f"{collection}.{name} of {doc_id} does not decrypt") from exc
    return plain


def blind(collection: str, purpose: str, text: str) -> str:
    """The keyed hash of ``text`` for the blind index ``purpose`` of ``collection``."""
    return digest(KEYRING.derived(collection, purpose), text)


def _sealed_here(collection: str, name: str, doc_id: Any, value: Any) -> bool:
    """Whether ``value`` is this field's own ciphertext (written back as read): text a client
    typed may start with the prefix too, and is sealed like any other, never stored clear
    where every read of the document would then fail to open it."""
    if not is_sealed(value):
        return False
    try:
        _opened(collection, name, doc_id, value)
    except Unreadable:
        return False
    return True


def seal_fields(sealing: Sealing, doc_id: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (top-level stored fields) with sealed fields encrypted and their blind
    indexes set (``None`` when the index does not apply: the caller unsets it)."""
    out = dict(values)
    for target, (source, text) in sealing.derived.items():
        if source in values and not _sealed_here(
            sealing.collection, source, doc_id, values[source]
        ):
            clear = text(values[source]) if values[source] is not None else None
            out[target] = None if clear is None else blind(sealing.collection, target, clear)
    for name in sealing.fields:
        value = values.get(name)
        if value is not None and not _sealed_here(sealing.collection, name, doc_id, value):
            out[name] = seal_value(sealing.collection, name, doc_id, value)
    return out


def _element_id(sealing: Sealing, array: str, element: Mapping[str, Any]) -> Any:
    key = sealing.items[array][0]
    if element.get(key) is None:
        raise ValueError(f"{sealing.collection}.{array}: a sealed element needs its {key!r}")
    return element[key]


def seal_element(sealing: Sealing, array: str, element: Any) -> Any:
    """One element of a sealed array, its sealed fields encrypted (bound to its id)."""
    if not isinstance(element, Mapping):
        return element
    out = dict(element)
    for name in sealing.items[array][1]:
        value, label = out.get(name), f"{array}[].{name}"
        if value is None:
            continue
        element_id = _element_id(sealing, array, out)
        if not _sealed_here(sealing.collection, label, element_id, value):
            out[name] = seal_value(sealing.collection, label, element_id, value)
    return out


def seal_elements(sealing: Sealing, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the elements of its sealed arrays sealed."""
    out = dict(values)
    for array in sealing.items:
        if isinstance(out.get(array), list):
            out[array] = [seal_element(sealing, array, e) for e in out[array]]
    return out


def open_elements(sealing: Sealing, doc: dict[str, Any]) -> None:
    for array, (key, names) in sealing.items.items():
        elements = doc.get(array)
        if not isinstance(elements, list):
            continue
        opened_elements = []
        for element in elements:
            if isinstance(element, Mapping) and any(is_sealed(element.get(n)) for n in names):
                element = dict(element)
                for name in names:
                    if is_sealed(element.get(name)):
                        label = f"{array}[].{name}"
                        element[name] = open_value(
                            sealing.collection, label, element[key], element[name]
                        )
            opened_elements.append(element)
        doc[array] = opened_elements


def _has_sealed(sealing: Sealing, data: Mapping[str, Any]) -> bool:
    if any(is_sealed(data.get(name)) for name in sealing.fields):
        return True
    for array, (_, names) in sealing.items.items():
        elements = data.get(array)
        if isinstance(elements, list) and any(
            isinstance(e, Mapping) and any(is_sealed(e.get(n)) for n in names) for e in elements
        ):
            return True
    return False


def seal_document(sealing: Sealing, document: Mapping[str, Any]) -> dict[str, Any]:
    """A document to insert or replace, sealed; it gets its ``_id`` now (the context needs
    it). A blind index whose source is absent or null is left out."""
    doc = dict(document)
    doc.setdefault("_id", ObjectId())
    sealed_doc = seal_elements(sealing, seal_fields(sealing, doc["_id"], doc))
    return {k: v for k, v in sealed_doc.items() if not (v is None and k in sealing.written)}


def open_document(sealing: Sealing, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document with its sealed fields opened (a copy; ``raw`` is left as stored)."""
    doc_id = raw.get("_id", raw.get("id"))
    out = dict(raw)
    for name in sealing.fields:
        value = raw.get(name)
        if isinstance(value, str) and value.startswith(PREFIX):
            out[name] = open_value(sealing.collection, name, doc_id, value)
    open_elements(sealing, out)
    return out


def opened(model: type, data: Any) -> Any:
    """For model validation: ``data`` with sealed fields opened if ``model`` has any."""
    sealing = SEALED.get(model)
    if sealing is None or not isinstance(data, Mapping):
        return data
    if data.get("_id", data.get("id")) is None:  # a new record's input: its text is as typed
        return data
    if not _has_sealed(sealing, data):
        return data
    return open_document(sealing, data)
