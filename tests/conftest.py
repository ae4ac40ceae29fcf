"""Fixtures: a fresh database per test (embedded, or a real MongoDB via SHMS_TEST_MONGODB_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import db

TEST_MONGODB_URL = os.environ.get("SHMS_TEST_MONGODB_URL", "")


@pytest.fixture
async def database() -> AsyncIterator[Any]:
    """Beanie bound to an empty database; dropped afterwards when it is a real server."""
    client = db.create_client(TEST_MONGODB_URL)
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    database = await db.init_database(client, name)
    try:
        yield database
    finally:
        if TEST_MONGODB_URL:
            await client.drop_database(name)
        db.close_client(client)


TEST_REDIS_URL = os.environ.get("SHMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def settings() -> Any:
    from config import Settings

    return Settings(
        mongodb_url=TEST_MONGODB_URL,
        mongodb_db=f"shms_test_{uuid.uuid4().hex[:12]}",
        redis_url=TEST_REDIS_URL,
        shms_seed_demo=False,
    )


class GraphQLClient:
    """Posts GraphQL documents to the app over HTTP, as a front end would."""

    def __init__(self, http: Any) -> None:
        self.http = http

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The ``data`` of a request that must succeed."""
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        """The single error of a request that must fail."""
        body = await self(query, **variables)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body["errors"]
        error: dict[str, Any] = body["errors"][0]
        return error


@pytest.fixture
async def app(settings: Any) -> AsyncIterator[Any]:
    """The real ASGI app with its lifespan run (so Beanie is bound to this test's database)."""
    from app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        if TEST_MONGODB_URL:
            await application.state.mongo.drop_database(settings.mongodb_db)


@pytest.fixture
async def http(app: Any) -> AsyncIterator[Any]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as client:
        yield client


@pytest.fixture
def gql(http: Any) -> GraphQLClient:
    return GraphQLClient(http)
