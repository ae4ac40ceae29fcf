"""Shapes shared by every domain: connections, money, input conversion, id parsing."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import strawberry
from bson import ObjectId
from strawberry.types.base import has_object_definition

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


@strawberry.type(description="An amount of money in integer minor units (cents) of a currency.")
class Money:
    amount: int
    currency: str


def oid(value: strawberry.ID | str, field: str = "id") -> ObjectId:
    return parse_id(str(value), field)


def oids(values: Iterable[strawberry.ID | str], field: str) -> list[ObjectId]:
    return [parse_id(str(v), f"{field}.{i}") for i, v in enumerate(values)]


def to_data(value: Any, id_fields: frozenset[str] = frozenset(), path: str = "") -> Any:
    """Strawberry input -> plain dict for services; unset fields are left out (partial update).

    Fields named in ``id_fields`` (snake_case, or ending ``_id``/``_ids``) are parsed as
    ObjectIds so a malformed id is reported against its input field.
    """
    if has_object_definition(value):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is strawberry.UNSET:
                continue
            sub = f"{path}.{camel(f.name)}" if path else camel(f.name)
            if item is not None and (f.name in id_fields or f.name.endswith("_id")):
                out[f.name] = parse_id(str(item), sub)
            elif item is not None and f.name.endswith("_ids"):
                out[f.name] = [parse_id(str(v), f"{sub}.{i}") for i, v in enumerate(item)]
            else:
                out[f.name] = to_data(item, id_fields, sub)
        return out
    if isinstance(value, list):
        return [to_data(v, id_fields, f"{path}.{i}") for i, v in enumerate(value)]
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
    return doc  # type: ignore[no-any-return]


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
