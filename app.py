"""The SHMS ASGI app: ``/graphql`` (HTTP and WebSocket), ``/oauth/token``, ``/health``,
``/metrics``; the lifespan owns the MongoDB and Redis clients, the bus and the token service.

``uvicorn app:app`` serves it; with no configuration it runs embedded with demo data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

from cross_web import HTTPException
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
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
from cache import runtime
from cache.connection import connect_redis
from cache.connection import ping as redis_ping
from cache.documents import DocumentCache
from cache.equipment import install as install_live_equipment
from cache.equipment import start as start_live_equipment
from cache.results import ResultCache
from config import Settings, get_settings
from errors import BadRequest, RateLimited, ShmsError
from events.bus import create_bus
from jobs import create_scheduler
from routes import queries as query_routes
from schema import persisted_documents, ratelimit
from schema.context import Context
from schema.limits import BodySizeLimit
from services import notifications

log = logging.getLogger("shms")

WS_GOING_AWAY = 1001
"""The close code every WebSocket still open at shutdown gets (RFC 6455 "going away")."""

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

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            allow_queries_via_get=settings.shms_env != "production",  # never mutations
            multipart_uploads_enabled=False,  # batching stays off too (no batching_config)
            # No connection_init in time: closed with 4408 (graphql-transport-ws).
            connection_init_wait_timeout=timedelta(seconds=settings.shms_ws_init_timeout_seconds),
        )
        self.settings = settings
        self.live: set[LiveHandler] = set()  # the WebSocket connections open right now

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
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
            metrics.metrics.operation_timeouts += 1
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

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if isinstance(result, _Refused):
            response.pop("data", None)  # refused before execution: no ``data`` at all
        return response

    async def close_websockets(self, within: float) -> None:
        """At shutdown, after the bus ended every subscription: let their operations send
        ``complete`` (at most ``within`` seconds), then close each connection with 1001."""
        handlers = list(self.live)
        tasks = [task for handler in handlers for task in _operation_tasks(handler)]
        if tasks:
            await asyncio.wait(tasks, timeout=within)
        for handler in handlers:
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await handler.websocket.close(code=WS_GOING_AWAY, reason="Server shutting down")

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = uuid.uuid4().hex  # ours, unique; the client's is kept beside it
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
        headers on WebSockets); a missing or invalid one closes the connection (4403)."""
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
            reason = error.extensions.get("reason", "missing_token") if error else "missing_token"
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "reason": reason})
        context.sign_in(principal)
        return UNSET


async def _seed_if_wanted(settings: Settings) -> None:
    if not settings.seed_demo_enabled:
        return
    from demo import is_empty, seed_demo

    if await is_empty():
        summary = await seed_demo(patients=settings.shms_demo_patients)
        log.info("seeded the demo facility: %s", summary)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    logging.basicConfig(
        level=settings.shms_log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        mongo = db.create_client(settings.mongodb_url)
        await db.init_database(mongo, settings.mongodb_db)
        redis = connect_redis(settings.redis_url)
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
        app.state.scheduler = scheduler = create_scheduler(settings, redis)
        if settings.shms_jobs_enabled:
            scheduler.start()  # runs only while this worker holds the Redis lease
        try:
            yield
        finally:
            await scheduler.stop()  # releases the lease: another worker takes over at once
            await bus.aclose()  # open subscriptions complete cleanly; the Redis reader stops
            await graphql.close_websockets(settings.shms_shutdown_timeout_seconds)  # then 1001
            install_live_equipment(None)
            runtime.install(runtime.Runtime())  # services outside an app see no cache, no bus
            status.install(None)
            await app.state.tokens.aclose()
            await redis.aclose()
            db.close_client(mongo)

    async def health(request: Request) -> JSONResponse:
        mongo_ok = await db.ping(request.app.state.mongo)
        redis_ok = await redis_ping(request.app.state.redis)
        body = {
            "status": "ok" if mongo_ok and redis_ok else "degraded",
            "mongodb": mongo_ok,
            "redis": redis_ok,
        }
        return JSONResponse(body, status_code=200 if mongo_ok else 503)

    async def metrics_text(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=metrics.CONTENT_TYPE)

    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    graphql = GraphQLApp(settings)
    return Starlette(
        routes=[
            Route("/", root),
            Route("/health", health),
            Route("/metrics", metrics_text),
            Route(
                "/graphql",
                BodySizeLimit(graphql, settings.shms_max_body_bytes),
                methods=["GET", "POST"],
            ),
            WebSocketRoute("/graphql", graphql),
            *oauth.routes,  # /oauth/token and the /.well-known issuer documents
            *query_routes.routes(settings),  # GET /queries/{name}: saved queries by name
        ],
        lifespan=lifespan,
    )


app = create_app()
