"""Gives every GraphQL error an ``extensions.code``; unexpected ones become ``INTERNAL``.

Expected errors keep their message. Anything else is logged server-side with the request id and
reaches the client as a bare ``INTERNAL`` carrying that id, never the exception text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from errors import ShmsError

log = logging.getLogger("shms.errors")


def _request_id(context: Any) -> str | None:
    return getattr(context, "request_id", None)


_COERCION_PREFIXES = ("Variable '$", "Expected value of type", "Argument '")


def classify(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, ShmsError):
        extensions = {"code": original.code, **original.extensions}
        return _rebuild(error, original.message, extensions)
    # graphql-core's input coercion wraps a scalar's ValueError (say, a Long out of range) in
    # errors of these shapes: the client's values are wrong, not our code.
    client_side = error.path is None and error.message.startswith(_COERCION_PREFIXES)
    if original is None or isinstance(original, GraphQLError) or client_side:
        if (error.extensions or {}).get("code"):
            return error
        if error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        elif error.path:
            code = "INTERNAL"  # e.g. a null for a non-null field: our bug, not the client's
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return _rebuild(error, error.message, {**(error.extensions or {}), "code": code})
    # Never log str(exception): it may carry patient data; the traceback shows where it failed.
    log.error(
        "unexpected %s at %s (request %s)",
        type(original).__name__,
        ".".join(str(p) for p in error.path or ()),
        request_id,
        exc_info=(type(original), original, original.__traceback__),
    )
    return _rebuild(error, "Internal server error", {"code": "INTERNAL", "requestId": request_id})


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            request_id = _request_id(self.execution_context.context)
            result.errors = [classify(e, request_id) for e in errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A subscription sends each result before its operation ends: code them one by one."""
        errors = getattr(result, "errors", None)
        if errors:
            request_id = _request_id(self.execution_context.context)
            result.errors = [classify(e, request_id) for e in errors]
        yield
