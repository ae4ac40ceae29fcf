"""The SHMS ASGI app: ``/graphql`` (HTTP and WebSocket), ``/oauth/token``, ``/health``,
``/metrics``; the lifespan owns the MongoDB and Redis clients, the bus and the token service.

``uvicorn app:app`` serves it; with no configuration it runs embedded with demo data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import multiprocessing
import socket
import tempfile
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, cast

import uvicorn
from cross_web import HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportError,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyError
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

import db
import metrics
from api.schema import schema
from auth import oauth, status
from auth.identity import authenticate
from auth.tokens import TokenService
from cache import live as live_views
from cache import runtime
from cache.beds import start as start_live_beds
from cache.connection import connect_redis
from cache.connection import ping as redis_ping
from cache.documents import DocumentCache
from cache.emergency import start as start_live_ed_boards
from cache.equipment import start as start_live_equipment
from cache.queues import start as start_live_queues
from cache.results import ResultCache
from config import Settings, describe, get_settings
from errors import BadRequest, RateLimited, ShmsError, Unauthenticated
from events.bus import create_bus
from jobs import create_scheduler
from observability import logs, tracing
from observability.graphql import OPERATION
from observability.requests import RequestObserved
from routes import fhir as fhir_routes
from routes import metrics as metrics_routes
from routes import patient_export as export_routes
from routes import queries as query_routes
from schema import persisted_documents, ratelimit
from schema.context import Context
from schema.limits import BodySizeLimit
from services import notifications
from static import pages

log = logging.getLogger("shms")

WS_GOING_AWAY = 1001
"""The close code every WebSocket still open at shutdown gets (RFC 6455 "going away")."""
WS_REFUSED = 4403
WS_TOO_BIG = 1009
"""The close code of a message over ``SHMS_MAX_BODY_BYTES`` (RFC 6455 "message too big")."""
"""The close code of a connection refused at ``connection_init``; the close reason says why."""
_CLOSE_REASONS = {
    "expired": "token_expired",
    "missing": "missing_token",
    "account_disabled": "account_disabled",
    "roles_revoked": "roles_revoked",
    "no_role": "no_role",
    "keys_unavailable": "keys_unavailable",
}
"""``extensions.reason`` -> close reason; any other reason (a forged, malformed or foreign
token) is ``invalid_token``: a client acts the same on all of them (sign in again)."""

_refused: ContextVar[str | None] = ContextVar("shms_ws_refused", default=None)
"""Why ``on_ws_connect`` refused the connection this task serves (one task per connection):
strawberry catches the refusal itself, so its close call learns the reason from here."""


def _close_reason(error: Unauthenticated | None) -> str:
    """What a client must do differs by reason: send a token, refresh it, or stop trying."""
    if error is None:
        return "missing_token"
    return _CLOSE_REASONS.get(str(error.extensions.get("reason")), "invalid_token")


class _WebSocket(ASGIWebSocketAdapter):
    """Closes a connection refused at ``connection_init`` with 4403 and the reason as the close
    reason (``missing_token``, ``token_expired``, ...) in both protocols: strawberry closes with
    a bare 4403 "Forbidden" (graphql-transport-ws) or 1011 (legacy graphql-ws) whatever the
    cause, so a client could not tell an expired token from a forged one."""

    def __init__(self, view: Any, request: WebSocket, response: WebSocket) -> None:
        """Every message is held to ``SHMS_MAX_BODY_BYTES`` like an HTTP body: a larger one
        closes the connection with 1009 (RFC 6455 "message too big") before it is parsed."""
        super().__init__(view, request, response)
        limit = cast("GraphQLApp", view).settings.shms_max_body_bytes
        receive = response.receive_text

        async def receive_text() -> str:
            text = await receive()
            if len(text) > limit // 4 and len(text.encode()) > limit:
                await response.close(code=WS_TOO_BIG, reason="Message exceeds SHMS_MAX_BODY_BYTES")
                raise WebSocketDisconnect(WS_TOO_BIG)  # strawberry ends the connection's loop
            return text

        response.receive_text = receive_text  # type: ignore[method-assign]

    async def close(self, code: int, reason: str) -> None:
        refused = _refused.get()
        if refused is not None and code in (WS_REFUSED, 1011):
            code, reason = WS_REFUSED, refused
            _refused.set(None)  # used once: this connection is over
        await super().close(code, reason)


LiveHandler = BaseGraphQLTransportWSHandler[Context, None] | BaseGraphQLWSHandler[Context, None]


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``, registered with the app while the connection is open."""

    async def handle_message(self, message: TransportMessage) -> None:
        """A message that is JSON but no object closes the connection (4400) like bad JSON;
        strawberry would fail on it with TypeError and drop the connection unannounced."""
        if isinstance(message, dict):
            await super().handle_message(message)
        else:
            await self.handle_invalid_message("WebSocket message must be a JSON object")

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        problem = _payload_problem(message.get("payload"))
        if problem is not None:  # strawberry would fail on it (TypeError): close as invalid
            await self.handle_invalid_message(problem)
            return
        error = await _ws_refusal(self, message["payload"])
        if error is None:
            await super().handle_subscribe(message)
        else:
            await self.send_message(
                TransportError(id=message["id"], type="error", payload=[error.formatted])
            )

    async def handle(self) -> None:
        live = cast("GraphQLApp", self.view).live
        live.add(self)
        try:
            await super().handle()
        finally:
            live.discard(self)


class _LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy ``graphql-ws``, registered with the app while the connection is open."""

    async def handle_message(self, message: OperationMessage) -> None:
        """The legacy protocol ignores messages it cannot parse: so too those that are no
        object or have no ``type`` (strawberry would fail on them and drop the connection)."""
        if isinstance(message, dict) and "type" in message:
            await super().handle_message(message)

    async def handle_start(self, message: StartMessage) -> None:
        problem = _payload_problem(message.get("payload"))
        if problem is not None:
            if isinstance(message.get("id"), str):  # no id: nothing to answer to, ignored
                refusal = GraphQLError(problem, extensions={"code": BadRequest.code})
                await self.send_message(
                    LegacyError(type="error", id=message["id"], payload=refusal.formatted)
                )
            return
        error = await _ws_refusal(self, message["payload"])
        if error is None:
            await super().handle_start(message)
        else:
            formatted = error.formatted
            await self.send_message(LegacyError(type="error", id=message["id"], payload=formatted))

    async def handle(self) -> None:
        live = cast("GraphQLApp", self.view).live
        live.add(self)
        try:
            await super().handle()
        finally:
            live.discard(self)


def _operation_tasks(handler: LiveHandler) -> list[asyncio.Task[Any]]:
    if isinstance(handler, BaseGraphQLTransportWSHandler):
        return [op.task for op in handler.operations.values() if op.task is not None]
    return list(handler.tasks.values())


def _runs_mutation(text: str, operation_name: Any, max_tokens: int) -> bool:
    """Whether the operation that will run is a mutation, read from the parsed document (the
    one ``operationName`` names, else the only one): the text alone can say "mutation" in a
    comment or a string. A document that does not parse runs nothing, so it is no mutation."""
    if "mutation" not in text:
        return False  # the keyword is always spelled out: nothing to parse
    try:
        document = parse(text, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False
    name = operation_name if isinstance(operation_name, str) else None
    operation = get_operation_ast(document, name)
    return operation is not None and operation.operation is OperationType.MUTATION


def _payload_problem(payload: Any) -> str | None:
    """Why a WebSocket operation's payload cannot run, as HTTP refuses such a body; None if
    it can (a ``query`` may be missing: a persisted query's text is looked up)."""
    if not isinstance(payload, dict):
        return "The operation's payload must be a JSON object."
    for key, kind, name in (
        ("query", str, "a string"),
        ("operationName", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
    ):
        if payload.get(key) is not None and not isinstance(payload[key], kind):
            return f"The operation's `{key}` must be {name} or null."
    return None


def _http_error(exc: BadRequest | HTTPException) -> JSONResponse:
    """A request refused before GraphQL runs, answered as GraphQL errors are: JSON, coded."""
    if isinstance(exc, BadRequest):
        http_status, message, code = 400, exc.message, exc.code
    else:
        http_status, message = exc.status_code, exc.reason
        code = "NOT_FOUND" if http_status == 404 else BadRequest.code
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=http_status)


class _Refused(ExecutionResult):
    """A request refused before execution (persisted-query and allow-list errors)."""


def _refusal(refusal: ShmsError) -> GraphQLError:
    return GraphQLError(refusal.message, extensions={"code": refusal.code, **refusal.extensions})


async def _charge_lookup(context: Any, settings: Settings) -> None:
    """A request that makes us look a persisted operation up pays one rate-limit point first,
    so unknown hashes (answered before the operation's own charge) cannot be sent unmetered."""
    redis = ratelimit.redis_of(context)
    if not settings.shms_rate_limit_enabled or redis is None:
        return
    try:
        headers, refused = await ratelimit.charge(settings, redis, context, 1)
    except (RedisError, OSError, TimeoutError):
        ratelimit.failed_open()
        return
    if refused is not None:
        metrics.RATE_LIMIT_REFUSALS.labels("lookup").inc()
        raise RateLimited(refused, retryAfter=int(headers["Retry-After"]), cost=1)


async def _persisted_text(
    query: Any, extensions: Any, context: Any, settings: Settings
) -> str | None:
    """The text the request runs (APQ, allow-list mode: see ``services.persisted``)."""
    principal = getattr(context, "principal", None)
    roles = principal.roles if principal is not None else ()
    if (isinstance(extensions, dict) and "persistedQuery" in extensions) or (
        query and settings.allowlisted(roles)
    ):
        await _charge_lookup(context, settings)
    return await persisted_documents.resolve(
        query,
        extensions if isinstance(extensions, dict) else None,
        subject=principal.subject if principal is not None else None,
        roles=principal.roles if principal is not None else (),
        settings=settings,
    )


async def _ws_refusal(handler: LiveHandler, payload: Any) -> GraphQLError | None:
    """A WebSocket operation passes the same gate as an HTTP one; a persisted one gets its text
    put into ``payload``. Before ``connection_ack`` the handler itself closes the socket."""
    if not handler.connection_acknowledged or not isinstance(payload, dict):
        return None
    settings = cast("GraphQLApp", handler.view).settings
    try:
        text = await _persisted_text(
            payload.get("query"), payload.get("extensions"), handler.context, settings
        )
    except ShmsError as refusal:
        return _refusal(refusal)
    if text is not None:
        payload["query"] = text
    return None


class GraphQLApp(GraphQL[Context, None]):
    """Builds a fresh context (and so fresh loaders) for every request."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler
    websocket_adapter_class = _WebSocket

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            allow_queries_via_get=settings.shms_env != "production",  # never mutations
            multipart_uploads_enabled=False,  # batching stays off too (no batching_config)
            # No connection_init in time: closed with 4408 (graphql-transport-ws).
            connection_init_wait_timeout=timedelta(seconds=settings.shms_ws_init_timeout_seconds),
            # A page on another origin may open a WebSocket only if SHMS_CORS_ORIGINS lists it
            # (else 403); same-origin pages and clients sending no Origin are always let in.
            allowed_origins=settings.cors_origins,
        )
        self.settings = settings
        self.live: set[LiveHandler] = set()  # the WebSocket connections open right now
        _SERVING.add(self)  # for the server to close its WebSockets first (ShmsServer)

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        """One HTTP operation, timed for ``shms_graphql_request_duration_seconds`` by the name
        and type ``observability.graphql`` found (refused before parsing: the name asked for,
        type ``unknown``), its errors counted by code."""
        data = kwargs.get("request_data")
        label = {"name": str(getattr(data, "operation_name", None) or ""), "type": "unknown"}
        token = OPERATION.set(label)
        started = time.perf_counter()
        result: Any = None
        try:
            result = await self._execute_within_limits(*args, **kwargs)
            return result
        finally:
            OPERATION.reset(token)
            codes = [
                str((error.extensions or {}).get("code", "INTERNAL"))
                for error in getattr(result, "errors", None) or ()
            ]
            metrics.observe_operation(
                label["name"], label["type"], time.perf_counter() - started, codes
            )

    async def _execute_within_limits(self, *args: Any, **kwargs: Any) -> Any:
        """Queries answer within ``SHMS_OPERATION_TIMEOUT_SECONDS`` or get ``TIMEOUT``.

        Mutations are not cut short: a write stopped between its steps could leave work half
        done (each step is bounded by the store's own timeouts instead).
        """
        data = kwargs.get("request_data")
        try:  # a persisted query runs as its text: limits, rate limit and timeout alike
            text = await _persisted_text(
                getattr(data, "query", None),
                getattr(data, "extensions", None),
                kwargs.get("context"),
                self.settings,
            )
        except ShmsError as refusal:
            return _Refused(data=None, errors=[_refusal(refusal)])
        if data is not None and text != data.query:
            kwargs["request_data"] = dataclasses.replace(data, query=text)
        operation_name = getattr(data, "operation_name", None)
        if _runs_mutation(text or "", operation_name, self.settings.shms_max_tokens):
            return await super().execute_single(*args, **kwargs)
        limit = self.settings.shms_operation_timeout_seconds
        try:
            return await asyncio.wait_for(super().execute_single(*args, **kwargs), limit)
        except TimeoutError:
            metrics.OPERATION_TIMEOUTS.inc()
            message = f"The operation took longer than {limit:g} s (SHMS_OPERATION_TIMEOUT_SECONDS)"
            error = GraphQLError(message, extensions={"code": "TIMEOUT"})
            return ExecutionResult(data=None, errors=[error])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP requests refused before GraphQL runs (a bad body, a batch, a mutation over GET)
        get JSON with ``extensions.code``, like every other error, not strawberry's plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except (BadRequest, HTTPException) as exc:
            response = _http_error(exc)
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """JSON nested too deeply for Python's parser is malformed JSON, not a crash: over
        WebSocket too, where strawberry then closes the connection as for any bad message."""
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        """A request body (bytes) or a GET parameter (text) as JSON; strawberry would let
        bad UTF-8 (UnicodeDecodeError) and a body that is not an object (AttributeError)
        through as HTTP 500. A JSON array is a batch, refused by strawberry with 400."""
        text = data
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8-sig")  # RFC 8259: UTF-8; json.loads would guess
            except UnicodeDecodeError:
                raise BadRequest("The request body is not valid UTF-8.") from None
        try:
            value = self.decode_json(text)
        except ValueError:
            raise BadRequest("The request is not valid JSON.") from None
        if isinstance(data, bytes) and not isinstance(value, dict | list):
            raise BadRequest("The request body must be a JSON object.")
        return value

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET carrying only ``extensions`` is a persisted query, not a visit to the IDE."""
        if "extensions" in request.query_params:
            return False
        return bool(super().should_render_graphql_ide(request))

    async def render_graphql_ide(self, request: Any) -> HTMLResponse:
        """GraphiQL from SHMS's own files (``make assets``), as CDNs are often blocked; the
        CDN page with a note saying so when they are not installed (see ``static.pages``)."""
        return HTMLResponse(pages.graphiql(self.graphql_ide_html))

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if isinstance(result, _Refused):
            response.pop("data", None)  # refused before execution: no ``data`` at all
        return response

    async def close_websockets(self, within: float) -> None:
        """At shutdown: end every subscription (through its app's bus, so each operation sends
        ``complete``; at most ``within`` seconds), then close each connection with 1001.

        ``ShmsServer`` runs this before uvicorn closes connections itself (with 1012); the
        lifespan runs it too, for servers that shut the app down with connections still open.
        """
        handlers = list(self.live)
        buses = {id(bus): bus for h in handlers if (bus := _bus_of(h)) is not None}
        for bus in buses.values():
            await bus.aclose()  # idempotent: the lifespan closes it again later
        tasks = [task for handler in handlers for task in _operation_tasks(handler)]
        if tasks:
            await asyncio.wait(tasks, timeout=within)
        for handler in handlers:
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await handler.websocket.close(code=WS_GOING_AWAY, reason="Server shutting down")

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        # ours, unique (the request middleware's, as in the logs); the client's is kept beside it
        request_id = logs.request_id() or uuid.uuid4().hex
        given = request.headers.get("x-request-id")
        client_request_id = given[:64] if given and given.isprintable() else None
        # A WebSocket signs in later, from its connection_init payload (see on_ws_connect).
        authorization = (
            None if isinstance(request, WebSocket) else request.headers.get("authorization")
        )
        principal, error = await authenticate(
            request.app.state.tokens, self.settings, authorization, request.app.state.status
        )
        sink = getattr(response, "headers", None)  # strawberry's sub-response (HTTP only)
        # RateLimit-* headers set on it are merged into the reply; a WebSocket gets none.
        if isinstance(sink, MutableHeaders):
            sink["X-Request-Id"] = request_id
        return Context(
            settings=self.settings,
            request=request,
            principal=principal,
            auth_error=error,
            request_id=request_id,
            client_request_id=client_request_id,
            client_address=request.client.host if request.client else None,
            rate_headers=sink if isinstance(sink, MutableHeaders) else {},
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Take the bearer token from the ``connection_init`` payload (browsers cannot set
        headers on WebSockets); a missing or invalid one closes the connection with 4403 and
        why (``missing_token``, ``token_expired``, ``invalid_token``, ``account_disabled``...)."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        if not header and params.get("token"):
            header = f"Bearer {params['token']}"
        principal, error = await authenticate(
            context.request.app.state.tokens,
            self.settings,
            header if isinstance(header, str) else None,
            context.request.app.state.status,  # a disabled account is refused here too (4403)
        )
        if principal is None:
            reason = _close_reason(error)
            _refused.set(reason)  # the close reason (``_WebSocket``)
            payload: dict[str, object] = {"code": "UNAUTHENTICATED", "reason": reason}
            detail = error.extensions.get("reason") if error else None
            if detail is not None and detail != reason:
                payload["detail"] = str(detail)  # the finer cause, for the client's logs
            raise ConnectionRejectionError(payload)
        context.sign_in(principal)
        return UNSET


_SERVING: weakref.WeakSet[GraphQLApp] = weakref.WeakSet()
"""Every GraphQL endpoint of this process, for ``close_all_websockets``."""


def _bus_of(handler: LiveHandler) -> Any:
    """The event bus of the app a WebSocket connection belongs to (None before its lifespan)."""
    request = getattr(handler.context, "request", None)
    state = getattr(getattr(request, "app", None), "state", None)
    return getattr(state, "bus", None)


async def close_all_websockets() -> None:
    """Every open subscription of this process sends ``complete``, then its WebSocket closes
    with 1001: what the server must do before it closes connections itself."""
    apps = list(_SERVING)
    await asyncio.gather(
        *(a.close_websockets(a.settings.shms_shutdown_timeout_seconds) for a in apps)
    )


CLOSING_HANDSHAKE_SECONDS = 2.0
"""How long clients get to answer the 1001 close frames at shutdown."""


def _is_websocket(connection: object) -> bool:
    scope = getattr(connection, "scope", None)
    return isinstance(scope, dict) and scope.get("type") == "websocket"


class ShmsServer(uvicorn.Server):
    """uvicorn, with SHMS's WebSocket shutdown first (``shms serve`` runs it).

    uvicorn's own shutdown closes every WebSocket with 1012 at once and runs the app's lifespan
    shutdown only afterwards, so subscribers would never get ``complete``. Here new connections
    are refused first, then every subscription completes and its connection closes with 1001
    (``close_all_websockets``), clients get to answer the close, then uvicorn's shutdown runs
    as usual for the rest.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # uvicorn's first step, taken early: nobody connects while we close
        await close_all_websockets()
        await self._closing_handshakes()
        await super().shutdown(sockets)

    async def _closing_handshakes(self) -> None:
        """Wait (briefly) for clients to answer our close frames: uvicorn would close their
        sockets at once, and a client still writing to a closed socket is reset, which can
        lose it the frames before (its ``complete`` and the 1001)."""
        step = 0.02  # uvicorn signals no event for a closed connection: look again this often
        for _ in range(int(CLOSING_HANDSHAKE_SECONDS / step)):
            if not any(map(_is_websocket, self.server_state.connections)):
                return
            await asyncio.sleep(step)


async def _seed_if_wanted(settings: Settings) -> None:
    if not settings.seed_demo_enabled:
        return
    from demo import is_empty, seed_demo

    if await is_empty():
        summary = await seed_demo(patients=settings.shms_demo_patients)
        log.info("seeded the demo facility: %s", summary)


CORS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "x-request-id",
    "apollographql-client-name",
    "apollographql-client-version",
)
"""Headers a GraphQL client sends (Apollo's client-awareness pair included). Persisted queries
(APQ, saved queries) travel in the body or the query string, so they need no header."""
CORS_EXPOSED_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "X-Request-Id",
)


class _CrossOrigin:
    """Starlette's CORSMiddleware on the API only (``/graphql``, ``/oauth/*``,
    ``/queries/*``): health, metrics and pages stay same-origin. ``SHMS_CORS_ORIGINS`` decides
    it, as it decides WebSocket origins (``GraphQLApp``), so HTTP and WebSocket agree.
    Credentials (cookies) are not allowed: the API reads bearer tokens only."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=("GET", "POST"),
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
        api = path in ("/graphql", "/oauth/token") or path.startswith(("/queries/", "/oauth/"))
        await (self.cors if scope["type"] == "http" and api else self.app)(scope, receive, send)


_frozen = False
YOUNG_COLLECTION_THRESHOLD = 10_000


def _freeze_start_up_heap() -> None:
    """What the first start-up built (schema, demo data, caches) lives as long as the process:
    move it out of the collector's way once, so full collections stop walking it (they set the
    p99). Later apps in the same process (tests) skip it: a full collection each is costly."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        # A request allocates thousands of short-lived objects: at the default 700 the young
        # collections ran several times per request, and under load each was slower than the
        # last (the 100-row read fell from 31 to 22 req/s over 1,000 requests); at 10,000
        # throughput holds steady. Older generations keep their defaults.
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


class StartupError(Exception):
    """Start-up refused for a reason stated in one line (what to set): reported as that line."""


class _StartupReport:
    """Reports a ``StartupError`` to the server as its message alone: Starlette would send its
    whole traceback, burying the one line that says what to fix (uvicorn then exits 3)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def send_or_hold(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # sent below, once the reason is known
            else:
                await send(message)

        try:
            await self.app(scope, receive, send_or_hold)
        except StartupError as refusal:
            await send({"type": "lifespan.startup.failed", "message": str(refusal)})
            raise  # after startup.failed, uvicorn reports nothing more
        except BaseException:
            for message in held:
                await send(message)
            raise


def _claim_embedded_store(settings: Settings) -> IO[bytes] | None:
    """Refuse the embedded store in the second of several workers of one server: each would
    hold its own in-process data. ``shms serve --workers N`` refuses before starting; uvicorn
    sets no variable saying how many workers it runs, so each worker it starts (through
    ``multiprocessing``: ``--workers``, ``--reload``) locks a file named after their common
    parent, which only one can hold. Servers that fork (gunicorn) or unrelated processes are
    not detected (README, Production)."""
    problem = settings.several_workers_problem()
    parent = multiprocessing.parent_process()
    if problem is None or parent is None:
        return None
    import fcntl  # POSIX, as uvicorn's multi-worker mode is in practice

    path = Path(tempfile.gettempdir()) / f"shms-embedded-{parent.pid}.lock"
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StartupError(f"this server runs several workers: {problem}") from None
    return handle  # kept in app.state: closing it releases the lock (so does the process's end)


def _release_embedded_store(claim: IO[bytes] | None) -> None:
    """At shutdown: remove the lock file (``--reload``'s next worker makes it anew)."""
    if claim is not None:
        Path(claim.name).unlink(missing_ok=True)
        claim.close()


def _reason(error: BaseException) -> str:
    """A driver error's first clause (pymongo appends its whole topology description)."""
    text = str(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
    return (text.splitlines() or [type(error).__name__])[0][:200]


async def _must_answer(variable: str, store: str, ping: Awaitable[Any], seconds: float) -> None:
    """Start-up waits for a configured store at most ``seconds``, then fails naming the
    variable to fix, instead of hanging (pymongo's default is 30 s) or printing a traceback."""
    try:  # the driver gives up at ``seconds`` with its reason; this bounds a driver that hangs
        await asyncio.wait_for(ping, seconds + 1)
    except TimeoutError:
        reason = "no answer"
    except Exception as error:  # the driver's own, usually within the same timeout
        reason = _reason(error)
    else:
        return
    raise StartupError(
        f"{variable}: {store} did not answer within {seconds:g} s "
        f"(SHMS_CONNECT_TIMEOUT_SECONDS): {reason}"
    )


async def _open_stores(settings: Settings) -> tuple[Any, Any]:
    """MongoDB and Redis clients whose server answered a ping, or ``StartupError``."""
    timeout = settings.shms_connect_timeout_seconds
    try:
        mongo = db.create_client(settings.mongodb_url, timeout)
    except Exception as error:  # pymongo: a URL it cannot parse
        raise StartupError(f"MONGODB_URL: not a usable MongoDB URL: {_reason(error)}") from None
    try:
        await _must_answer("MONGODB_URL", "MongoDB", mongo.admin.command("ping"), timeout)
        try:
            redis = connect_redis(settings.redis_url, timeout)
        except ValueError as error:
            raise StartupError(f"REDIS_URL: not a usable Redis URL: {error}") from None
        try:
            await _must_answer("REDIS_URL", "Redis", redis.ping(), timeout)
        except StartupError as refusal:
            if settings.shms_env != "production":
                # Development runs degraded rather than not at all: the caches, the bus and
                # the limits fail open or closed as each documents, and recover when it answers.
                log.warning("%s; starting without it until it answers", refusal)
            else:
                await redis.aclose()
                raise
    except StartupError:
        db.close_client(mongo)
        raise
    return mongo, redis


async def _answers(check: Awaitable[bool], seconds: float) -> bool:
    try:
        return await asyncio.wait_for(check, seconds)
    except TimeoutError:
        return False


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    logs.configure(settings.shms_log_level, settings.shms_log_format)
    tracing.configure()  # only if the OTEL_* variables name an exporter

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.embedded_claim = _claim_embedded_store(settings)  # one worker only
        mongo, redis = await _open_stores(settings)  # both answer, or a one-line StartupError
        await db.init_database(mongo, settings.mongodb_db, settings)
        app.state.mongo, app.state.redis = mongo, redis
        cache = DocumentCache(redis, settings) if settings.cache_enabled else None
        app.state.bus = bus = create_bus(settings, redis)
        bus.on_publish(notifications.on_event)  # confirmations follow every write
        await bus.start()  # listening before the first request: no event is missed
        results = ResultCache(redis, settings) if settings.result_cache_enabled else None
        runtime.install(runtime.Runtime(cache=cache, bus=bus, results=results))
        app.state.status = statuses = status.StatusCache(redis, settings)
        status.install(statuses)  # accounts' live standing, for requests and every write
        app.state.tokens = TokenService.from_settings(settings)  # verifies (and issues) JWTs
        where = "embedded store" if settings.embedded_mongo else "MongoDB"
        log.info("SHMS ready on %s (%s mode)", where, settings.shms_env)
        await _seed_if_wanted(settings)
        await start_live_equipment(redis, settings, bus)
        await start_live_beds(redis, settings, bus)  # the bed board (cache/beds.py)
        await start_live_queues(redis, settings, bus)  # outpatient queues (cache/queues.py)
        await start_live_ed_boards(redis, settings, bus)  # ED boards (cache/emergency.py)
        app.state.scheduler = scheduler = create_scheduler(settings, redis)
        if settings.shms_jobs_enabled:
            scheduler.start()  # runs only while this worker holds the Redis lease
        _freeze_start_up_heap()
        try:
            async with metrics_routes.separate(settings):  # SHMS_METRICS_ADDRESS, if set
                yield
        finally:
            metrics.worker_exited()  # its open subscriptions leave the multi-process sum
            await scheduler.stop()  # releases the lease: another worker takes over at once
            await bus.aclose()  # open subscriptions complete cleanly; the Redis reader stops
            await graphql.close_websockets(settings.shms_shutdown_timeout_seconds)  # then 1001
            live_views.stop_all()  # reads fall back to MongoDB
            runtime.install(runtime.Runtime())  # services outside an app see no cache, no bus
            status.install(None)
            await app.state.tokens.aclose()
            await redis.aclose()
            db.close_client(mongo)
            _release_embedded_store(app.state.embedded_claim)

    async def live(request: Request) -> JSONResponse:
        """Liveness: the process serves. Asks no store: restarting it would not bring one back."""
        return JSONResponse({"status": "ok", "store": settings.store_kind})

    async def ready(request: Request) -> JSONResponse:
        """Readiness (also ``/health``): 200 only while MongoDB answers. Redis is reported but
        not required: without it the API fails open (README, Security)."""
        timeout = settings.shms_connect_timeout_seconds
        mongo_ok, redis_ok = await asyncio.gather(
            _answers(db.ping(request.app.state.mongo), timeout),
            _answers(redis_ping(request.app.state.redis), timeout),
        )
        body = {
            "status": "ok" if mongo_ok and redis_ok else "degraded",
            "store": settings.store_kind,
            "mongodb": mongo_ok,
            "redis": redis_ok,
        }
        return JSONResponse(body, status_code=200 if mongo_ok else 503)

    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    async def dashboard(request: Request) -> HTMLResponse:
        return HTMLResponse(pages.dashboard())  # the live operations board (static/dashboard.*)

    graphql = GraphQLApp(settings)
    routes: list[BaseRoute] = [
        Route("/", root),
        Route("/dashboard", dashboard),
        Mount("/static", pages.PublicFiles(directory=pages.STATIC_DIR), name="static"),
        Route("/health", ready),
        Route("/health/live", live),
        Route("/health/ready", ready),
        *metrics_routes.routes(settings),  # GET /metrics: a service token, or public
        Route(
            "/graphql",
            BodySizeLimit(graphql, settings.shms_max_body_bytes),
            methods=["GET", "POST"],
        ),
        WebSocketRoute("/graphql", graphql),
        *oauth.routes,  # /oauth/token and the /.well-known issuer documents
        *query_routes.routes(settings),  # GET /queries/{name}: saved queries by name
        *fhir_routes.routes(settings),  # GET /fhir/Patient/{id}/$everything
        *export_routes.routes(settings),  # GET /patients/{id}/export (GDPR Art. 15)
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(_StartupReport),
            *_traced(),  # the request's span first: the request id's log lines carry its trace
            Middleware(RequestObserved, routes=routes),  # request id, HTTP metrics
            Middleware(_CrossOrigin, origins=settings.cors_origins),
        ],
    )


def _traced() -> list[Middleware]:
    """OpenTelemetry's ASGI middleware while tracing is on (``traceparent`` in, a span per
    request and WebSocket, ``traceresponse`` out); nothing at all while it is off."""
    if not tracing.active():
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return [
        Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=tracing.provider(),
            exclude_spans=["receive", "send"],  # one span per request, not one per message
        )
    ]


def _app_from_environment() -> Starlette:
    """``app:app``, configured by the environment. Invalid settings (production without its
    stores) become a one-line start-up failure: raised at import, uvicorn would print a
    traceback instead."""
    try:
        settings = get_settings()
    except ValidationError as error:
        refusal = StartupError(f"invalid settings: {describe(error)}")

        @asynccontextmanager
        async def refuse(app: Starlette) -> AsyncIterator[None]:
            raise refusal
            yield  # a generator, as lifespans are

        return Starlette(lifespan=refuse, middleware=[Middleware(_StartupReport)])
    return create_app(settings)


app = _app_from_environment()
