"""OpenTelemetry tracing: configured by the standard ``OTEL_*`` variables alone, off by default.

With no exporter named (``OTEL_TRACES_EXPORTER`` unset or ``none``, and no
``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT``), or ``OTEL_SDK_DISABLED=true``, nothing is installed:
``span()`` is a null context and the app adds no middleware, so tracing costs one check.

Once on, a process exports spans for: each HTTP request and WebSocket (the ASGI
instrumentation, which reads an incoming W3C ``traceparent`` and answers with a
``traceresponse`` header), each GraphQL operation and its root fields (``observability.graphql``),
MongoDB commands and Redis calls (the pymongo and redis instrumentations; the embedded store is
no pymongo, so ``db`` opens its spans itself), event publication and delivery (the event carries
its ``traceparent`` across processes) and notification sends. Spans carry no query text, no
variables and no statement: patient data stays out of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Tracer

log = logging.getLogger(__name__)

_provider: TracerProvider | None = None
_tracer: Tracer = trace.NoOpTracer()
_instrumented: list[Any] = []

EXPORTER_ALIASES = {"otlp": "otlp_proto_http"}
"""``otlp`` means OTLP over HTTP/protobuf here (the exporter SHMS installs; no gRPC)."""


def active() -> bool:
    return _provider is not None


def tracer() -> Tracer:
    return _tracer


def provider() -> TracerProvider | None:
    return _provider


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; none means tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER")
    if named is None:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    return [n.strip() for n in named.split(",") if n.strip() and n.strip() != "none"]


def _exporter(name: str) -> SpanExporter:
    wanted = EXPORTER_ALIASES.get(name, name)
    for point in entry_points(group="opentelemetry_traces_exporter"):
        if point.name == wanted:
            exporter: SpanExporter = point.load()()  # configured by its own OTEL_* variables
            return exporter
    raise ValueError(f"OTEL_TRACES_EXPORTER: no span exporter named {name!r} is installed")


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Install tracing if the environment names an exporter (once per process)."""
    environ = os.environ if environ is None else environ
    if _provider is not None:
        return True
    names = exporter_names(environ)
    if not names:
        return False
    attributes: dict[str, str] = {}
    if "OTEL_SERVICE_NAME" not in environ and "service.name" not in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes["service.name"] = "shms"
    built = TracerProvider(resource=Resource.create(attributes))  # reads OTEL_TRACES_SAMPLER too
    for name in names:
        built.add_span_processor(BatchSpanProcessor(_exporter(name)))  # OTEL_BSP_* tune it
    trace.set_tracer_provider(built)
    install(built)
    log.info("tracing on: exporting spans to %s", ", ".join(names))
    return True


def install(chosen: TracerProvider) -> None:
    """Trace with ``chosen`` (``configure`` from the environment, or a test's own provider).
    MongoDB clients created afterwards report their commands; Redis clients at once."""
    global _provider, _tracer
    from opentelemetry.instrumentation.propagators import (
        TraceResponsePropagator,
        set_global_response_propagator,
    )
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _provider, _tracer = chosen, chosen.get_tracer("shms")
    set_global_response_propagator(TraceResponsePropagator())  # type: ignore[no-untyped-call] # ``traceresponse`` out
    for instrumentor in (PymongoInstrumentor(), RedisInstrumentor()):
        instrumentor.instrument(tracer_provider=chosen)
        _instrumented.append(instrumentor)


def uninstall() -> None:
    """Back to off (tests): no more spans, the instrumentations removed."""
    global _provider, _tracer
    from opentelemetry.instrumentation.propagators import set_global_response_propagator

    while _instrumented:
        _instrumented.pop().uninstrument()
    set_global_response_propagator(None)  # type: ignore[no-untyped-call]
    _provider, _tracer = None, trace.NoOpTracer()


def span(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    parent: str = "",
) -> AbstractContextManager[Any]:
    """A current span named ``name`` while tracing is on, else a null context. ``parent``: a
    ``traceparent`` (an event's) to continue instead of the current trace."""
    if _provider is None:
        return nullcontext()
    context = propagate.extract({"traceparent": parent}) if parent else None
    return _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


def traceparent() -> str:
    """The current span as a W3C ``traceparent`` ('' when off or outside any span)."""
    if _provider is None:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex, for log lines; None outside a recorded span."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return format(found.trace_id, "032x"), format(found.span_id, "016x")
