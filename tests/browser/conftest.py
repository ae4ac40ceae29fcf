"""Real-browser fixtures: Debian's Chromium driven by Playwright against a real uvicorn.

Every request the browser makes to a host other than the servers these tests started is aborted
and recorded (``blocked``), so a page that still needs the internet fails here as it would on a
hospital network. Playwright never downloads a browser: it drives ``/usr/bin/chromium``
(``apt-get install chromium``). Without it the tests skip, except in CI (``CI`` set), where a
missing browser is a failure: the point is that they run there.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.servers import Server, servers

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

CALLER_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A front end on another origin</title></head>
<body>
<script>
  // What a front end served from its own origin does: sign in, then query.
  async function signIn(api) {
    try {
      const form = {grant_type: "password", username: "frontdesk", password: "demo-frontdesk-pass"};
      const body = new URLSearchParams(form);
      const response = await fetch(api + "/oauth/token", {method: "POST", body});
      return {ok: true, body: await response.json()};
    } catch (error) {
      return {ok: false, error: String(error)};
    }
  }
  async function whoAmI(api, token) {
    try {
      const response = await fetch(api + "/graphql", {
        method: "POST",
        headers: {"content-type": "application/json", authorization: "Bearer " + token},
        body: JSON.stringify({query: "{ viewer { roles } }"}),
      });
      return {ok: true, body: await response.json()};
    } catch (error) {
      return {ok: false, error: String(error)};
    }
  }
</script>
</body></html>
"""
"""Served by the other-origin servers: a page whose scripts call SHMS across origins."""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run there)")
    pytest.skip(reason)


class _CallerPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(CALLER_PAGE)))
        self.end_headers()
        self.wfile.write(CALLER_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for an access log."""


@dataclass
class Origin:
    """A tiny static server on its own port: another origin, as browsers count them."""

    server: ThreadingHTTPServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@dataclass
class Origins:
    allowed: Origin
    refused: Origin


@pytest.fixture(scope="session")
def origins() -> Iterator[Origins]:
    started = [ThreadingHTTPServer(("127.0.0.1", 0), _CallerPage) for _ in range(2)]
    for server in started:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Origins(allowed=Origin(started[0]), refused=Origin(started[1]))
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="session")
def shms(tmp_path_factory: pytest.TempPathFactory, origins: Origins) -> Iterator[Server]:
    """One SHMS as ``make serve`` runs it (embedded store, demo data), whose CORS setting lets
    the ``allowed`` origin in."""
    env = {
        "SHMS_ENV": "development",
        "MONGODB_URL": "",  # embedded: in-process store and Redis, nothing shared with others
        "REDIS_URL": "",
        "MONGODB_DB": f"shms_browser_{uuid.uuid4().hex[:10]}",
        "SHMS_STATE_DIR": str(tmp_path_factory.mktemp("browser-state")),
        "SHMS_DEMO_PATIENTS": "20",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_CORS_ORIGINS": origins.allowed.url,
    }
    with servers(1, env) as started:
        yield started[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API runs an event loop in this thread while it is open,
    and async tests elsewhere in the suite could not start theirs."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Network:
    """The hosts the browser may reach (``host:port``), and what it tried beyond them."""

    allowed: set[str]
    blocked: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc in self.allowed:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")


@pytest.fixture
def network(shms: Server, origins: Origins) -> Network:
    return Network({urlsplit(s.url).netloc for s in (shms, origins.allowed, origins.refused)})


@pytest.fixture
def context(browser: Browser, network: Network) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.route("**/*", network.route)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def sign_in(server: Server, username: str) -> str:
    """An access token for a demo account, as README's "Signing in" gets one."""
    response = httpx.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "password", "username": username, "password": f"demo-{username}-pass"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def graphql(server: Server, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """The ``data`` of a request that must succeed, over HTTP as any client sends it."""
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data
