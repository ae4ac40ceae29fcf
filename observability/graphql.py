"""What the GraphQL layer reports: each operation's name and type (for the latency histogram,
timed by ``app.GraphQLApp.execute_single``), its span, and spans for root fields.

Only root Query and Mutation fields get spans, not every field: they are where a request's work
starts (the services and their store calls nest under them), and wrapping every resolver would
cost each of thousands of fields per page. No span holds the query text or its variables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from inspect import isawaitable
from typing import Any

from graphql import GraphQLSchema
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from strawberry.extensions import SchemaExtension

from observability import tracing

OPERATION: ContextVar[dict[str, str] | None] = ContextVar("shms_operation", default=None)
"""A holder the HTTP layer sets before executing; the extension fills in name and type."""


def _type_of(execution_context: Any) -> str:
    try:
        return str(execution_context.operation_type.value)
    except Exception:  # not parsed (a syntax error) or no such operation
        return "unknown"


def _codes(result: Any) -> list[str]:
    return [
        str((error.extensions or {}).get("code", "INTERNAL"))
        for error in getattr(result, "errors", None) or ()
    ]


class OperationObserved(SchemaExtension):
    """Names the operation for the metrics; while tracing, its span is current throughout
    (first in the schema's extensions, so parsing, limits and execution nest in it)."""

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        span = token = None
        if tracing.active():
            span = tracing.tracer().start_span("GraphQL operation", kind=SpanKind.INTERNAL)
            token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        finally:
            name, kind = ec.operation_name, _type_of(ec)
            holder = OPERATION.get()
            if holder is not None:
                holder["name"], holder["type"] = name or "", kind
            if span is not None and token is not None:
                span.update_name(f"{kind} {name or 'anonymous'}")
                span.set_attribute("graphql.operation.type", kind)
                span.set_attribute("graphql.operation.name", name or "")
                codes = _codes(ec.result)
                if codes:
                    span.set_attribute("graphql.error.codes", codes)
                    span.set_status(Status(StatusCode.ERROR, codes[0]))
                span.end()
                otel_context.detach(token)


def _traced(resolve: Callable[..., Any], label: str) -> Callable[..., Any]:
    @functools.wraps(resolve)  # keeps the resolver's marks (schema.enforce's guards)
    def traced(root: Any, info: Any, **args: Any) -> Any:
        if not tracing.active():
            return resolve(root, info, **args)
        return _in_span(resolve, label, root, info, args)

    return traced


async def _in_span(
    resolve: Callable[..., Any], label: str, root: Any, info: Any, args: dict[str, Any]
) -> Any:
    with tracing.tracer().start_as_current_span(label, attributes={"graphql.field": label}):
        result = resolve(root, info, **args)
        if isawaitable(result):
            result = await result
        return result


def trace_root_fields(schema: GraphQLSchema) -> None:
    """Wrap each root Query and Mutation resolver in a span (a check only while tracing is off)."""
    for root in (schema.query_type, schema.mutation_type):
        if root is None:
            continue
        for name, field in root.fields.items():
            if field.resolve is not None and not getattr(field.resolve, "_shms_traced", False):
                field.resolve = _traced(field.resolve, f"{root.name}.{name}")
                field.resolve._shms_traced = True
