"""Clients per role and helpers to save and run queries, as the saved-query tests use them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient

SAVE = """
mutation Save($input: SaveQueryInput!) {
  saveQuery(input: $input) {
    name version latestVersion document description variableDefaults allowedRoles author
    versions { number document description variableDefaults allowedRoles author savedAt }
  }
}
"""

RUN = """
query Run($name: String!, $variables: JSON, $version: Int) {
  runSavedQuery(name: $name, variables: $variables, version: $version) {
    name version data errors durationMs cached ranAt
  }
}
"""

DEPARTMENTS = """
query Departments($first: Int = 10) {
  departments(first: $first) { edges { node { name code location } } }
}
"""


def save_input(
    name: str,
    document: str = DEPARTMENTS,
    allowed: list[str] | None = None,
    defaults: Any = None,
    description: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "document": document,
        "description": description,
        "variableDefaults": defaults,
        "allowedRoles": ["ANALYST"] if allowed is None else allowed,
    }


async def save(client: GraphQLClient, name: str, **fields: Any) -> dict[str, Any]:
    """Save a query that must be accepted; the ``saveQuery`` answer."""
    data = await client.data(SAVE, input=save_input(name, **fields))
    saved: dict[str, Any] = data["saveQuery"]
    return saved


async def run(client: GraphQLClient, name: str, **args: Any) -> dict[str, Any]:
    """Run a saved query that must not be refused; the ``runSavedQuery`` answer."""
    data = await client.data(RUN, name=name, **args)
    result: dict[str, Any] = data["runSavedQuery"]
    return result


@pytest.fixture
def analyst(client_as: Any) -> GraphQLClient:
    client: GraphQLClient = client_as(sub="test:analyst", roles=["analyst"])
    return client


@pytest.fixture
def admin(client_as: Any) -> GraphQLClient:
    client: GraphQLClient = client_as(sub="test:admin", roles=["admin"])
    return client


@pytest.fixture
def compliance(client_as: Any) -> GraphQLClient:
    client: GraphQLClient = client_as(sub="test:compliance", roles=["compliance"])
    return client
