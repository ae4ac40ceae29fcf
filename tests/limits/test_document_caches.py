"""Parsed and validated documents are reused by query text, never at the cost of a check."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema

from tests.limits.conftest import bearer


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document graphql-core validates, by its first line."""
    seen: list[str] = []
    real = strawberry_schema.validate_document

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document.loc.source.body)
        return real(schema, document, rules)

    monkeypatch.setattr(strawberry_schema, "validate_document", counting)
    return seen


async def _post(http: Any, app: Any, query: str, role: str = "admin") -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query}, headers=bearer(app, role))
    body: dict[str, Any] = response.json()
    return body


async def test_a_valid_document_is_validated_once(
    app: Any, http: Any, validations: list[str]
) -> None:
    query = f"query Once{uuid.uuid4().hex} {{ departments(first: 1) {{ nodes {{ id }} }} }}"
    for _ in range(3):
        assert "errors" not in await _post(http, app, query)
    assert validations.count(query) == 1


async def test_an_invalid_document_is_validated_and_refused_every_time(
    app: Any, http: Any, validations: list[str]
) -> None:
    query = f"query Bad{uuid.uuid4().hex} {{ departments(first: 1) {{ nodes {{ nope }} }} }}"
    for _ in range(2):
        body = await _post(http, app, query)
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert validations.count(query) == 2


async def test_a_cached_document_is_still_measured_by_the_limits(
    app: Any, http: Any, validations: list[str]
) -> None:
    """The limits run on every request: a document valid once is not waved through later
    for a caller or setting that refuses it (here: the cost ceiling of a lesser role)."""
    query = "{ departments(first: 30) { nodes { doctors(first: 30) { nodes { id lastName } } } } }"
    admin = await _post(http, app, query)
    assert "errors" not in admin, admin  # within SHMS_MAX_COST, and now validated and cached
    service = await _post(http, app, query, role="service")
    assert {e["extensions"]["code"] for e in service["errors"]} == {"COST_LIMIT"}
    assert validations.count(query) == 1
