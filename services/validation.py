"""Turns pydantic validation failures into ``BAD_USER_INPUT`` errors naming each field, and
collects every problem of one input (``Problems``) so a client fixes them in one round trip."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, ValidationError

from errors import BadUserInput
from models.base import Entity, as_utc, utcnow

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=Entity)
T = TypeVar("T")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_path(loc: Sequence[int | str]) -> str:
    return ".".join(camel(part) if isinstance(part, str) else str(part) for part in loc)


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def invalid(fields: Mapping[str, str]) -> BadUserInput:
    """One ``BAD_USER_INPUT`` naming every field in ``fields`` (message and extensions)."""
    listing = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return BadUserInput(f"Invalid input: {listing}", fields)


def bad_input_from(exc: ValidationError, prefix: str = "") -> BadUserInput:
    fields: dict[str, str] = {}
    for error in exc.errors():
        path = field_path(error["loc"])
        key = f"{prefix}{path}" if path else prefix.rstrip(".") or "input"
        reason = _reason(error)
        fields[key] = f"{fields[key]}; {reason}" if key in fields else reason
    return invalid(fields)


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


class Problems:
    """Every problem found in one input, raised together as one ``BAD_USER_INPUT``.

    Services check an input's fields, its references and its rules with this instead of raising
    at the first problem, so ``extensions.fields`` lists them all and a client fixes them in one
    round trip. A single problem is raised as found (its own message); several are merged.
    """

    def __init__(self) -> None:
        self._found: list[BadUserInput] = []

    def __contains__(self, field: str) -> bool:
        """Whether ``field`` already has a problem (later checks of it would only repeat it)."""
        return any(field in found.fields for found in self._found)

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, problem: BadUserInput) -> None:
        self._found.append(problem)

    def require(self, condition: bool, field: str, reason: str) -> bool:
        """``require`` that records instead of raising; returns ``condition``."""
        if not condition:
            self.add(BadUserInput(f"{field}: {reason}", {field: reason}))
        return condition

    def build(self, model: type[M], data: Mapping[str, Any]) -> M | None:
        """``build`` that records every field error; None when the input does not validate."""
        try:
            return build(model, data)
        except BadUserInput as problem:
            self.add(problem)
            return None

    def instant(self, value: datetime, field: str) -> datetime | None:
        """``instant`` that records instead of raising; None when the value is refused."""
        try:
            return instant(value, field)
        except BadUserInput as problem:
            self.add(problem)
            return None

    def window(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[datetime | None, datetime | None]:
        """A half-open ``[from, to)`` filter: each end a valid instant, ``to`` after ``from``."""
        if start is not None:
            start = self.instant(start, "from")
        if end is not None:
            end = self.instant(end, "to")
        if start and end:
            self.require(end > start, "to", "must be after from")
        return start, end

    async def check(self, step: Awaitable[T]) -> T | None:
        """Await a check that raises ``BAD_USER_INPUT`` (a reference lookup), recording it."""
        try:
            return await step
        except BadUserInput as problem:
            self.add(problem)
            return None

    def raise_any(self) -> None:
        """Raise what was found, if anything: the one problem, or all of them merged."""
        if len(self._found) == 1:
            raise self._found[0]
        if self._found:
            fields: dict[str, str] = {}
            for found in self._found:
                for key, reason in (found.fields or {"input": found.message}).items():
                    fields[key] = f"{fields[key]}; {reason}" if key in fields else reason
            raise invalid(fields)
