"""Helpers for the persisted-operation tests: settings per test, and APQ requests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import db
from services import persisted
from tests.conftest import token_for


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes; parametrize it (``SHMS_ALLOWLIST_ROLES`` and the like)."""
    return {}


@pytest.fixture
def settings(settings: Any, overrides: dict[str, Any]) -> Any:
    return settings.model_copy(update=overrides)


@pytest.fixture(autouse=True)
def empty_lru() -> None:
    """Each test's database is new: start without another test's documents in the LRU."""
    persisted.recent.clear()


def bearer(app: Any, *roles: str, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(app, roles=list(roles), **claims)}"}


def extension(sha: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha}}


async def apq(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    query: str | None = None,
    sha: str | None = None,
    version: Any = 1,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    """POST as Apollo's persisted-query link does: the hash, and the text only when given."""
    body: dict[str, Any] = {"variables": variables or {}}
    if sha is not None:
        body["extensions"] = extension(sha, version)
    if query is not None:
        body["query"] = query
    response = await http.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def apq_get(http: httpx.AsyncClient, headers: dict[str, str], sha: str) -> httpx.Response:
    params = {"extensions": json.dumps(extension(sha))}
    return await http.get("/graphql", params=params, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


async def stored() -> dict[str, dict[str, Any]]:
    """Every persisted row by hash, read straight from the collection."""
    from models.persisted import PersistedOperation

    rows = await db.collection(PersistedOperation).find({}).to_list(None)
    return {row["_id"]: row for row in rows}


async def measured(request: Any) -> tuple[httpx.Response, dict[tuple[str, str], int]]:
    """The response to an awaited request, and its database operations per (collection, op)."""
    with db.operations.measure() as ops:
        response: httpx.Response = await request
    return response, dict(ops.counts)


LOOKUP = ("persisted_operations", "find_one")
"""The one read a persisted-query decision may need: a row by its id."""
