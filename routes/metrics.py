"""``GET /metrics``: Prometheus exposition, for a ``service`` (or ``admin``) token only, or for
anyone with ``SHMS_METRICS_PUBLIC=true``; and, with ``SHMS_METRICS_ADDRESS`` (``host:port``), a
second small server there answering ``/metrics`` to whoever can reach that address (bind it to
a private interface: the address is its protection, as is usual for scrape targets).

The outbox depth is counted at scrape time: it is a fact of the store, not of one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import db
import metrics
from auth.identity import authenticate
from auth.roles import Role
from config import Settings
from models.notifications import Notification, NotificationStatus

log = logging.getLogger("shms.metrics")

SCRAPE_ROLES = (Role.SERVICE, Role.ADMIN)
OUTBOX_STATUSES = (NotificationStatus.PENDING, NotificationStatus.SENDING)
COUNT_SECONDS = 2.0


async def count_outbox() -> None:
    """Set the outbox depth gauge; on a store error (or a slow one) the last value stays."""
    try:
        collection = db.collection(Notification)
    except Exception:  # Beanie not bound (an app that never started)
        return
    for status in OUTBOX_STATUSES:
        try:
            depth = await asyncio.wait_for(
                collection.count_documents({"status": status.value}), COUNT_SECONDS
            )
        except Exception:
            log.warning("could not count the notification outbox (%s)", status.value)
            return
        metrics.OUTBOX_DEPTH.labels(status.value).set(depth)


async def exposition() -> Response:
    await count_outbox()
    return PlainTextResponse(metrics.render(), media_type=metrics.CONTENT_TYPE)


def _refused(status: int, code: str, message: str) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def routes(settings: Settings) -> list[Route]:
    async def scrape(request: Request) -> Response:
        if not settings.shms_metrics_public:
            principal, _ = await authenticate(
                request.app.state.tokens,
                settings,
                request.headers.get("authorization"),
                request.app.state.status,
            )
            if principal is None:
                return _refused(401, "UNAUTHENTICATED", "/metrics needs a bearer token")
            if not principal.has(*SCRAPE_ROLES):
                return _refused(403, "FORBIDDEN", "/metrics needs the service or admin role")
        return await exposition()

    return [Route("/metrics", scrape)]


class _Server(uvicorn.Server):
    """uvicorn inside the app's server: the main server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bound(address: str) -> socket.socket | None:
    """A listening socket on ``host:port``; None when another worker holds it already."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, int(port)))
    except OSError:
        sock.close()
        if metrics.multiprocess_mode():  # a sibling worker serves the shared view
            log.info("metrics address %s is served by another worker", address)
            return None
        raise
    sock.listen(64)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def separate(settings: Settings) -> AsyncIterator[None]:
    """The second server, while the app runs (``SHMS_METRICS_ADDRESS``; nothing when empty)."""
    address = settings.shms_metrics_address
    sock = _bound(address) if address else None
    if sock is None:
        yield
        return

    async def scrape(request: Request) -> Response:
        return await exposition()

    app = Starlette(routes=[Route("/metrics", scrape)])
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task: asyncio.Task[Any] = asyncio.create_task(server.serve([sock]))
    log.info("metrics on http://%s/metrics", address)
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        sock.close()
