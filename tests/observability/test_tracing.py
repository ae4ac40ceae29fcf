"""Tracing: one request's spans and their parents, an incoming ``traceparent`` as their root,
configuration by ``OTEL_*`` alone (off without an exporter)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from observability import tracing
from tests.conftest import token_for

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"
QUERY = "query Wards { departments { totalCount } }"
WRITE = (
    """mutation Add($input: CreateDepartmentInput!) { createDepartment(input: $input) { id } }"""
)


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.fixture
async def traced_http(settings: Any, exported: InMemorySpanExporter) -> AsyncIterator[Any]:
    from app import create_app

    application = create_app(settings)  # tracing is on before the app is built
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            http.app = application  # type: ignore[attr-defined]
            yield http


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _parent(span: ReadableSpan) -> str | None:
    return _hex(span.parent.span_id, 16) if span.parent is not None else None


def _id(span: ReadableSpan) -> str:
    assert span.context is not None
    return _hex(span.context.span_id, 16)


def _ancestors(span: ReadableSpan, by_id: dict[str, ReadableSpan]) -> list[str]:
    names = []
    parent = _parent(span)
    while parent in by_id:
        names.append(by_id[parent].name)
        parent = _parent(by_id[parent])
    return names


async def test_one_request_nests_http_graphql_field_and_store_spans(
    traced_http: Any, exported: InMemorySpanExporter
) -> None:
    token = token_for(traced_http.app, roles=["admin"])
    exported.clear()
    response = await traced_http.post(
        "/graphql",
        json={"query": QUERY},
        headers={"authorization": f"Bearer {token}", "traceparent": TRACEPARENT},
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    spans = exported.get_finished_spans()
    assert spans
    assert {_hex(s.context.trace_id, 32) for s in spans if s.context} == {INCOMING_TRACE}
    by_id = {_id(span): span for span in spans}
    server = next(s for s in spans if _parent(s) == INCOMING_SPAN)  # the incoming parent
    assert server.name.startswith("POST")
    operation = next(s for s in spans if s.name == "query Wards")
    assert _parent(operation) == _id(server)
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    field = next(s for s in spans if s.name == "Query.departments")
    assert _parent(field) == _id(operation)
    # The embedded store's own spans (pymongo's instrumentation reports a real server's),
    # under the operation: totalCount is counted by a nested field, after the root field ends.
    reads = [s for s in spans if s.attributes and s.attributes.get("db.system") == "mongodb"]
    assert reads and all(_ancestors(r, by_id)[:2] == ["query Wards", server.name] for r in reads)
    assert "aggregate departments" in {r.name for r in reads}
    redis = [s for s in spans if s.attributes and s.attributes.get("db.system") == "redis"]
    assert redis, "the rate limiter's Redis calls"
    assert all(_ancestors(s, by_id)[-1] == server.name for s in redis)
    for span in spans:  # no query text, no statement: patient data stays out of spans
        assert not any("departments {" in str(v) for v in (span.attributes or {}).values())
    traceresponse = response.headers["traceresponse"]
    assert traceresponse.split("-")[1] == INCOMING_TRACE


async def test_a_write_traces_its_event_from_publish_to_delivery(
    traced_http: Any, exported: InMemorySpanExporter
) -> None:
    from cache import runtime

    bus = runtime.current().bus
    assert bus is not None
    stream: Any = bus.subscribe(["departments"])
    token = token_for(traced_http.app, roles=["admin"])
    exported.clear()
    body = (
        await traced_http.post(
            "/graphql",
            json={"query": WRITE, "variables": {"input": {"name": "Tracing", "code": "TRC"}}},
            headers={"authorization": f"Bearer {token}"},
        )
    ).json()
    assert "errors" not in body, body
    event = await anext(stream)
    assert event.trace.startswith("00-")
    await stream.aclose()
    spans = exported.get_finished_spans()
    by_id = {_id(span): span for span in spans}
    publish = next(s for s in spans if s.name == "publish departments")
    deliver = next(s for s in spans if s.name == "deliver departments")
    assert _parent(deliver) == _id(publish)
    assert "Mutation.createDepartment" in _ancestors(publish, by_id)


def test_tracing_is_configured_by_otel_variables_alone() -> None:
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == ["otlp"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp,console"}) == ["otlp", "console"]
    off = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    assert tracing.exporter_names(off) == []
    assert not tracing.active()
    assert tracing.configure({}) is False and not tracing.active()
    with tracing.span("nothing") as nothing:
        assert nothing is None  # off: a null context, no span object at all
    assert tracing.traceparent() == ""


def test_the_app_adds_no_tracing_middleware_while_off(settings: Any) -> None:
    from app import create_app

    application = create_app(settings)
    names = [m.cls.__name__ for m in application.user_middleware]  # type: ignore[attr-defined]
    assert "OpenTelemetryMiddleware" not in names
