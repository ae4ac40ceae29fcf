"""Clients and queries shared by the aggregate tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import GraphQLClient

MARCH = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
"""The default filter: March 2026 in UTC."""


def at(text: str) -> datetime:
    """An instant from ISO text ending in Z."""
    return datetime.fromisoformat(text).astimezone(UTC)


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


@pytest.fixture
def admin(client_as: Any) -> GraphQLClient:
    client: GraphQLClient = client_as(roles=["admin"])
    return client


@pytest.fixture
def analyst(client_as: Any) -> GraphQLClient:
    client: GraphQLClient = client_as(roles=["analyst"])
    return client
