"""Fixtures: a fresh database per test (embedded, or a real MongoDB via SHMS_TEST_MONGODB_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId

import db

TEST_MONGODB_URL = os.environ.get("SHMS_TEST_MONGODB_URL", "")


@pytest.fixture(autouse=True)
def single_process_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """``shms serve --workers N`` sets PROMETHEUS_MULTIPROC_DIR for the workers it starts; in
    the test process it must not outlive the test that ran it (later scrapes would read the
    multi-process files instead of this process's metrics)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored (unset) after the test
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")


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


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One signing key for the whole run: generating RSA keys per test would be slow."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture
def settings(state_dir: Any) -> Any:
    from config import Settings

    return Settings(
        mongodb_url=TEST_MONGODB_URL,
        mongodb_db=f"shms_test_{uuid.uuid4().hex[:12]}",
        redis_url=TEST_REDIS_URL,
        shms_seed_demo=False,
        shms_state_dir=str(state_dir),
    )


class GraphQLClient:
    """Posts GraphQL documents to the app over HTTP, as a front end would, with a token."""

    def __init__(self, http: Any, token: str | None = None) -> None:
        self.http = http
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
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


# The staff member the domain tests act as: every role but patient, and the treating clinician
# of every patient the factories make (tests/factories.py), so domain rules can be exercised
# without each test arranging a care relationship. Access control has its own tests.
TEST_CLINICIAN = ObjectId("0000000000000000000000c1")
TEST_CLINICIAN_SUBJECT = "test:staff"
TEST_DEPARTMENT = ObjectId("0000000000000000000000d1")
EVERY_STAFF_ROLE = [
    "admin", "doctor", "nurse", "admin_staff", "billing", "analyst", "service", "compliance"
]  # fmt: skip


def token_for(app: Any, **claims: Any) -> str:
    """A token the app accepts, with the given claims (``roles``, ``sid``, ``pid``, ...)."""
    full = {"sub": f"test:{uuid.uuid4().hex[:8]}", **claims}
    token: str = app.state.tokens.issue(full, 600)
    return token


def random_address() -> str:
    """A client address no other test uses (sign-in limits count per address)."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


@pytest.fixture
async def client_from(app: Any) -> AsyncIterator[Any]:
    """HTTP clients of the app that appear to come from a given (by default unique) address."""
    import httpx

    opened: list[httpx.AsyncClient] = []

    def make(address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address or random_address(), 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://shms.test")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def gql(app: Any, http: Any) -> GraphQLClient:
    token = token_for(
        app,
        sub=TEST_CLINICIAN_SUBJECT,
        roles=EVERY_STAFF_ROLE,
        sid=str(TEST_CLINICIAN),
        did=str(TEST_DEPARTMENT),
    )
    return GraphQLClient(http, token)


@pytest.fixture
def client_as(app: Any, http: Any) -> Any:
    """``client_as(roles=[...], pid=..., sid=..., did=...)``: a GraphQL client for that caller."""

    def make(**claims: Any) -> GraphQLClient:
        return GraphQLClient(http, token_for(app, **claims))

    return make
