"""Browsers on other origins, over real HTTP against a uvicorn process: ``SHMS_CORS_ORIGINS``
decides CORS on the API paths and which pages may open a WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from auth.tokens import TokenService
from config import DEVELOPMENT_CORS_ORIGINS, Settings
from tests.conftest import TEST_REDIS_URL
from tests.deploy.processes import production_secrets
from tests.e2e.servers import Server, servers

ALLOWED = "https://app.example.org"
OTHER = "https://evil.example"
CLIENT_HEADERS = "authorization, content-type, x-request-id"
EXPOSED = {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The signing key, made before the server starts (it loads it) and used by the tests."""
    folder = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(folder)))
    return folder


@pytest.fixture(scope="module")
def server(state: Path) -> Iterator[Server]:
    env = {
        "MONGODB_URL": "",  # the embedded store: this is about the HTTP edge
        "REDIS_URL": TEST_REDIS_URL,  # real rate limiting, so RateLimit-* headers are sent
        "SHMS_ENV": "development",
        "SHMS_SEED_DEMO": "false",
        "SHMS_STATE_DIR": str(state),
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_CORS_ORIGINS": json.dumps([f"{ALLOWED}:443/"]),  # normalised as browsers send it
    }
    with servers(1, env) as [started]:
        yield started


@pytest.fixture(scope="module")
def token(state: Path) -> str:
    service = TokenService.from_settings(Settings(shms_state_dir=str(state)))
    issued: str = service.issue({"sub": "test:cors", "roles": ["admin"]}, 600)
    return issued


def _preflight(server: Server, path: str, origin: str, headers: str = CLIENT_HEADERS) -> Any:
    return httpx.options(
        f"{server.url}{path}",
        headers={
            "origin": origin,
            "access-control-request-method": "POST" if path != "/queries/daily" else "GET",
            "access-control-request-headers": headers,
        },
    )


@pytest.mark.parametrize("path", ["/graphql", "/oauth/token", "/queries/daily"])
def test_a_listed_origin_passes_the_preflight(server: Server, path: str) -> None:
    response = _preflight(server, path, ALLOWED)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert {"GET", "POST"} <= set(response.headers["access-control-allow-methods"].split(", "))
    allowed = set(response.headers["access-control-allow-headers"].lower().split(", "))
    assert {"authorization", "content-type", "x-request-id"} <= allowed
    assert "access-control-allow-credentials" not in response.headers  # bearer tokens only


def test_other_origins_and_headers_fail_the_preflight(server: Server) -> None:
    refused = _preflight(server, "/graphql", OTHER)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    odd_header = _preflight(server, "/graphql", ALLOWED, "authorization, x-something-else")
    assert odd_header.status_code == 400


def test_cors_covers_the_api_only(server: Server) -> None:
    """Health, metrics and pages are same-origin: no CORS answer, no grant."""
    response = _preflight(server, "/metrics", ALLOWED)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_simple_requests_expose_what_a_client_reads(server: Server, token: str) -> None:
    def post(origin: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/graphql",
            json={"query": "{ viewer { roles } }"},
            headers={"origin": origin, "authorization": f"Bearer {token}"},
        )

    listed = post(ALLOWED)
    assert listed.status_code == 200 and listed.json()["data"]["viewer"]["roles"] == ["ADMIN"]
    assert listed.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in listed.headers["vary"].lower()
    exposed = set(listed.headers["access-control-expose-headers"].lower().split(", "))
    assert {*EXPOSED, "x-request-id"} <= exposed
    assert "ratelimit-limit" in listed.headers and "x-request-id" in listed.headers

    other = post(OTHER)  # answered (the browser, not the server, withholds it) but not granted
    assert "access-control-allow-origin" not in other.headers


async def _handshake(server: Server, token: str, origin: str | None) -> dict[str, Any]:
    """Open ``/graphql`` as a page on ``origin`` would (None: a non-browser client)."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    protocol = Subprotocol("graphql-transport-ws")
    async with connect(url, origin=cast("Origin | None", origin), subprotocols=[protocol]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        answer: dict[str, Any] = json.loads(await ws.recv(decode=True))
        return answer


@pytest.mark.parametrize(
    "origin", [ALLOWED, None, "same"], ids=["listed", "no-origin", "same-origin"]
)
async def test_websockets_from_listed_or_own_origins_connect(
    server: Server, token: str, origin: str | None
) -> None:
    page = server.url if origin == "same" else origin
    assert (await _handshake(server, token, page))["type"] == "connection_ack"


async def test_websockets_from_other_origins_are_refused(server: Server, token: str) -> None:
    for origin in (OTHER, "http://localhost:5173"):  # a dev default, replaced by the setting
        with pytest.raises(InvalidStatus) as refused:
            await _handshake(server, token, origin)
        assert refused.value.response.status_code == 403, origin


async def test_development_defaults_allow_local_dev_servers(http: Any) -> None:
    """With no setting, development lets the usual dev servers in; production lets none."""
    assert "http://localhost:5173" in DEVELOPMENT_CORS_ORIGINS
    response = await http.options(
        "/graphql",
        headers={"origin": "http://localhost:5173", "access-control-request-method": "POST"},
    )
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    stores: dict[str, Any] = {
        "mongodb_url": "mongodb://db:27017",
        "redis_url": "redis://cache:6379/0",
    }
    assert Settings(shms_env="production", **stores, **production_secrets()).cors_origins == ()
