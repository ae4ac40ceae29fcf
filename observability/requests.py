"""The request middleware: a request id for every HTTP request and WebSocket connection (the
``X-Request-Id`` answered, and every log line's ``request_id``), and HTTP metrics by route."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import metrics
from observability.logs import REQUEST_ID

METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


class RouteNames:
    """A request path to its route's template (``/queries/{name}``), so label values are the
    app's routes, not whatever paths clients send."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.exact: dict[str, str] = {}
        self.patterns: list[tuple[Any, str]] = []
        for route in routes:
            path = getattr(route, "path", None)
            regex = getattr(route, "path_regex", None)
            if path is None or regex is None:
                continue
            template = f"{path}/{{path}}" if isinstance(route, Mount) else path
            if "{" in template:
                self.patterns.append((regex, template))
            else:
                self.exact.setdefault(path, path)

    def __call__(self, path: str) -> str:
        found = self.exact.get(path)
        if found is not None:
            return found
        for regex, template in self.patterns:
            if regex.match(path):
                return template
        return "unmatched"


class RequestObserved:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.route = RouteNames(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("X-Request-Id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
            route = self.route(path)
            method = str(scope.get("method", "GET"))
            method = method if method in METHODS else "other"
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_DURATION.labels(route).observe(time.perf_counter() - started)
            metrics.fold_document_cache()
