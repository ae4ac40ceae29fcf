"""Turns pydantic validation failures into ``BAD_USER_INPUT`` errors naming each field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, ValidationError

from errors import BadUserInput
from models.base import Entity, as_utc, utcnow

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=Entity)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_path(loc: Sequence[int | str]) -> str:
    return ".".join(camel(part) if isinstance(part, str) else str(part) for part in loc)


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def bad_input_from(exc: ValidationError, prefix: str = "") -> BadUserInput:
    fields: dict[str, str] = {}
    for error in exc.errors():
        path = field_path(error["loc"])
        fields[f"{prefix}{path}" if path else prefix.rstrip(".") or "input"] = _reason(error)
    listing = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return BadUserInput(f"Invalid input: {listing}", fields)


def build(model: type[M], data: Mapping[str, Any]) -> M:
    """Construct ``model`` from client data, or raise ``BAD_USER_INPUT`` with every reason."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise bad_input_from(exc) from None


def merged(doc: E, changes: Mapping[str, Any]) -> tuple[E, dict[str, Any]]:
    """Validate ``doc`` with ``changes`` applied; return the result and the fields to ``$set``.

    Validating the whole merged document keeps cross-field rules true after partial updates.
    """
    unknown = set(changes) - set(type(doc).model_fields)
    if unknown:
        raise BadUserInput("Unknown fields", {field_path([f]): "is not updatable" for f in unknown})
    data = doc.model_dump(by_alias=False)
    data.update(changes)
    data["updated_at"] = utcnow()
    candidate = build(type(doc), data)
    fields = [*changes, "updated_at"]
    return candidate, {name: getattr(candidate, name) for name in fields}


def parse_id(value: str, field: str) -> ObjectId:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise BadUserInput(f"{field}: not a valid id", {field: "is not a valid id"}) from None


def require(condition: bool, field: str, reason: str) -> None:
    if not condition:
        raise BadUserInput(f"{field}: {reason}", {field: reason})


def instant(value: datetime, field: str) -> datetime:
    """A client's instant in UTC, or ``BAD_USER_INPUT`` on ``field``: without an offset it names
    no instant, and near the calendar's ends the arithmetic after it would overflow."""
    try:
        return as_utc(value)
    except ValueError as exc:
        raise BadUserInput(f"{field}: {exc}", {field: str(exc)}) from None
