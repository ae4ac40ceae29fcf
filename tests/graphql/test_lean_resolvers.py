"""Resolvers that only read their parent are called directly, and answer exactly as before."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import graphql, graphql_sync

from schema.enforce import _lean


@strawberry.type
class Thing:
    raw: strawberry.Private[int]

    @strawberry.field
    @staticmethod
    def doubled(root: strawberry.Parent[Any]) -> int:
        return int(root.raw) * 2

    @strawberry.field
    def tripled(self) -> int:
        return self.raw * 3

    @strawberry.field
    def caller(self, info: strawberry.Info) -> str:
        return str(info.field_name)

    @strawberry.field
    @staticmethod
    async def related(root: strawberry.Parent[Any], info: strawberry.Info) -> str:
        return f"{info.field_name}:{info.path.key}:{root.raw}"

    @strawberry.field
    def plus(self, n: int) -> int:
        return self.raw + n

    @strawberry.field
    async def later(self) -> int:
        return self.raw


@strawberry.type
class Query:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(raw=7)


async def test_parent_and_info_readers_get_strawberrys_info() -> None:
    schema = strawberry.Schema(Query)
    thing: Any = schema._schema.type_map["Thing"]
    fields = thing.fields
    query = "{ thing { related later } }"
    before = await graphql(schema._schema, query)
    for name in ("related", "later"):
        resolve = _lean(fields[name])
        assert resolve is not None
        fields[name].resolve = resolve
    after = await graphql(schema._schema, query)
    assert after.errors is None and after.data == before.data
    assert after.data == {"thing": {"related": "related:related:7", "later": 7}}


def test_only_parent_readers_are_made_lean_and_they_answer_the_same() -> None:
    schema = strawberry.Schema(Query)
    thing: Any = schema._schema.type_map["Thing"]
    fields = thing.fields
    query = "{ thing { doubled tripled caller plus(n: 1) } }"
    before = graphql_sync(schema._schema, query)
    lean = {name: _lean(field) for name, field in fields.items()}
    assert {name for name, resolve in lean.items() if resolve is not None} == {
        "doubled",
        "tripled",
        "caller",
        "related",
        "later",
    }
    for name, resolve in lean.items():
        if resolve is not None and name not in ("related", "later"):  # async: tested above
            fields[name].resolve = resolve
    after = graphql_sync(schema._schema, query)
    assert after.errors is None and after.data == before.data
    assert after.data == {"thing": {"doubled": 14, "tripled": 21, "caller": "caller", "plus": 8}}
