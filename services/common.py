"""Shared steps of every service: find or fail, insert under unique indexes, partial updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import Entity
from services.changes import changed
from services.validation import camel, merged

E = TypeVar("E", bound=Entity)

_encoder = Encoder()


async def get_or_404(model: type[E], id: ObjectId, entity: str) -> E:
    doc = await model.get(id)
    if doc is None:
        raise NotFound(entity, str(id))
    return doc


async def ensure_exists(model: type[Entity], id: ObjectId | None, field: str, entity: str) -> None:
    """A reference given in input must point at a real document: ``BAD_USER_INPUT`` otherwise."""
    if id is None:
        return
    if await model.find({"_id": id}).count() == 0:
        raise BadUserInput(f"{field}: no {entity} with id {id}", {field: f"no such {entity}"})


def _conflict(exc: DuplicateKeyError, entity: str) -> Conflict:
    details: Mapping[str, Any] = exc.details or {}
    keys = [camel(k) for k in (details.get("keyValue") or details.get("keyPattern") or {})]
    what = ", ".join(keys) or "a unique field"
    return Conflict(f"Another {entity} already has this {what}", fields=keys)


async def insert(doc: E, entity: str) -> E:
    """Insert ``doc``; a unique-index violation is a ``CONFLICT`` naming the field."""
    try:
        await doc.insert()
    except DuplicateKeyError as exc:
        raise _conflict(exc, entity) from None
    await changed(doc, "created")
    return doc


async def update(
    doc: E,
    changes: Mapping[str, Any],
    entity: str,
    expected: Mapping[str, Any] | None = None,
    change: str = "updated",
) -> E:
    """Validate ``changes`` against the whole document, then ``$set`` only those fields.

    ``expected`` makes it a compare-and-set: if the stored document no longer matches (say, its
    status moved meanwhile) nothing is written and the caller gets ``CONFLICT``.
    """
    candidate, fields = merged(doc, changes)
    sets = {k: _encoder.encode(v) for k, v in fields.items() if v is not None}
    unsets = {k: "" for k, v in fields.items() if v is None}
    operation: dict[str, Any] = {"$set": sets}
    if unsets:
        operation["$unset"] = unsets
    try:
        result = await db.collection(type(doc)).update_one(
            {"_id": doc.id, **(expected or {})}, operation
        )
    except DuplicateKeyError as exc:
        raise _conflict(exc, entity) from None
    if result.matched_count == 0:
        if expected and await type(doc).find({"_id": doc.id}).count():
            raise Conflict(f"The {entity} changed meanwhile; read it again and retry")
        raise NotFound(entity, str(doc.id))
    await changed(candidate, change)
    return candidate
