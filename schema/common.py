"""Shapes shared by every domain: connections, money, input conversion, id parsing."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Generic, NewType, TypeVar

import strawberry
from bson import ObjectId
from strawberry.types.base import StrawberryList, StrawberryOptional, has_object_definition
from strawberry.types.scalar import ScalarDefinition

from errors import BadUserInput
from services.pagination import Page
from services.validation import camel, parse_id

T = TypeVar("T")
D = TypeVar("D")


@strawberry.type(description="Where a page ends, for fetching the next one with `after`.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list; pass `pageInfo.endCursor` as `after` for more.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items match in total (costs one count query).")
    async def total_count(self) -> int:
        return await self._count()


def connection(cls: type[T], page: Page[Any]) -> Connection[T]:
    """Wrap a page of documents as the connection of their Strawberry type ``cls``."""
    nodes: list[T] = list(page.items)
    edges = [Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)]
    end = page.cursors[-1] if page.cursors else None
    return Connection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=end),
        _count=page.count,
    )


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**53:
        raise ValueError("Long must be a whole number between -2^53 and 2^53")
    return value


Long = NewType("Long", int)
"""Money totals outgrow GraphQL ``Int`` (32 bits); registered in ``SCALARS`` below."""

SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A whole number beyond GraphQL Int's 32 bits; exact up to 2^53 in JSON.",
        serialize=int,
        parse_value=_parse_long,
    )
}


@strawberry.type(description="An amount of money in integer minor units (cents) of a currency.")
class Money:
    amount: Long
    currency: str


def oid(value: strawberry.ID | str, field: str = "id") -> ObjectId:
    return parse_id(str(value), field)


def oids(values: Iterable[strawberry.ID | str], field: str) -> list[ObjectId]:
    return [parse_id(str(v), f"{field}.{i}") for i, v in enumerate(values)]


def _id_kind(field_type: Any) -> str | None:
    """'one' or 'list' when an input field is declared as ID / [ID], else None."""
    while isinstance(field_type, StrawberryOptional):
        field_type = field_type.of_type
    if field_type is strawberry.ID:
        return "one"
    if isinstance(field_type, StrawberryList):
        inner = field_type.of_type
        while isinstance(inner, StrawberryOptional):
            inner = inner.of_type
        return "list" if inner is strawberry.ID else None
    return None


def to_data(value: Any, path: str = "") -> Any:
    """Strawberry input -> plain dict for services; unset fields are left out (partial update).

    Fields declared as ``ID`` are parsed to ObjectIds here, so a malformed id is reported
    against the input field that carried it.
    """
    if has_object_definition(value):
        out: dict[str, Any] = {}
        for f in value.__strawberry_definition__.fields:
            item = getattr(value, f.python_name)
            if item is strawberry.UNSET:
                continue
            sub = (
                f"{path}.{f.graphql_name or camel(f.python_name)}"
                if path
                else (f.graphql_name or camel(f.python_name))
            )
            kind = _id_kind(f.type) if item is not None else None
            if kind == "one":
                out[f.python_name] = parse_id(str(item), sub)
            elif kind == "list":
                out[f.python_name] = [parse_id(str(v), f"{sub}.{i}") for i, v in enumerate(item)]
            else:
                out[f.python_name] = to_data(item, sub)
        return out
    if isinstance(value, list):
        return [to_data(v, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def reject_empty(changes: dict[str, Any]) -> dict[str, Any]:
    if not changes:
        raise BadUserInput("Nothing to update: give at least one field", {"input": "is empty"})
    return changes


def entity_id(root: strawberry.Parent[Any]) -> strawberry.ID:
    """Documents keep ObjectIds; clients see their hex string."""
    return strawberry.ID(str(root.id))


def ref_id(value: ObjectId | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


def view(cls: type[T], doc: Any) -> T:
    """A Strawberry type is a read-only view over its document: fields resolve by attribute."""
    return doc


def create_data(value: Any) -> dict[str, Any]:
    """Creation input -> dict, leaving out what the client did not give so defaults apply."""

    def prune(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: prune(v) for k, v in item.items() if v is not None}
        if isinstance(item, list):
            return [prune(v) for v in item]
        return item

    result: dict[str, Any] = prune(to_data(value))
    return result


def update_data(value: Any) -> dict[str, Any]:
    """Update input -> only the fields the client set (``null`` included, meaning clear)."""
    return reject_empty(to_data(value))


IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="1-100 characters, unique per request and per caller: retries by the same "
        "caller with the same key and arguments take effect once and get the first answer "
        "for 24 hours; the same key with other arguments is refused with CONFLICT."
    ),
]
"""The ``idempotencyKey`` argument of mutations that create or move money or bookings."""
