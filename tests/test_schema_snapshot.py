"""The committed SDL is the front ends' contract: it must match the schema the server builds."""

from __future__ import annotations

from pathlib import Path

from api.schema import schema

SDL = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_is_current() -> None:
    assert SDL.exists(), "schema.graphql is missing: run `make schema` and commit it"
    assert SDL.read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `make schema` and commit the result"
    )
