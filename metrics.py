"""SHMS's Prometheus metrics (prometheus-client), and ``render()`` for ``GET /metrics``.

One process: the metrics live in prometheus-client's default registry. Several uvicorn workers:
with ``PROMETHEUS_MULTIPROC_DIR`` set (``shms serve --workers N`` sets it to a fresh temporary
folder when it is not), every worker writes its values to files there and any worker's scrape
sums them all, so Prometheus sees one server, whichever worker answers. The variable must be
set before this module is first imported (prometheus-client picks its value store then), and the
folder emptied when the server starts (``cli serve`` does both).

Label values are bounded: operation names past ``MAX_OPERATION_NAMES`` distinct ones become
``other``, collections and entities are the declared ones, routes are the app's templates.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

disable_created_metrics()  # type: ignore[no-untyped-call]  # ``*_created`` series double the output and no panel reads them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


# -- requests ------------------------------------------------------------------------------------

GRAPHQL_DURATION = Histogram(
    "shms_graphql_request_duration_seconds",
    "GraphQL queries and mutations over HTTP, from the request to the answer, by operation.",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    "shms_graphql_errors_total",
    "GraphQL errors answered, by extensions.code.",
    ["code"],
)
HTTP_REQUESTS = Counter(
    "shms_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "shms_http_request_duration_seconds",
    "HTTP requests, from the first byte received to the last sent, by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
OPERATION_TIMEOUTS = Counter(
    "shms_operation_timeouts_total",
    "Queries answered TIMEOUT after SHMS_OPERATION_TIMEOUT_SECONDS.",
)
RATE_LIMIT_REFUSALS = Counter(
    "shms_rate_limit_refusals_total",
    "Operations refused RATE_LIMITED (operation: its cost; lookup: a persisted-query lookup).",
    ["kind"],
)
RATE_LIMIT_FAILED_OPEN = Counter(
    "shms_rate_limit_failed_open_total",
    "Requests let through unmetered because Redis could not count them.",
)

# -- stores --------------------------------------------------------------------------------------

DB_OPERATIONS = Counter(
    "shms_db_operations_total",
    "MongoDB operations, by collection and kind (find, insert, update, delete, aggregate, ...).",
    ["collection", "kind"],
)
DB_DURATION = Histogram(
    "shms_db_operation_duration_seconds",
    "MongoDB operation latency by collection and kind (the embedded store: awaited calls only).",
    ["collection", "kind"],
    buckets=DB_BUCKETS,
)
DOCUMENT_CACHE = Counter(
    "shms_document_cache_total",
    "Document cache lookups by entity and outcome (hit, miss, error, bypass).",
    ["entity", "kind"],
)
RESULT_CACHE = Counter(
    "shms_result_cache_total",
    "Aggregate and saved-query result lookups by outcome (hit, miss, error, bypass, ...).",
    ["kind"],
)
STATUS_CACHE = Counter(
    "shms_status_cache_total",
    "Account standing lookups (auth.status) by outcome (hit, miss, bypass).",
    ["kind"],
)
EQUIPMENT_STATUS_ERRORS = Counter(
    "shms_equipment_status_errors_total",
    "Live equipment status operations that failed and fell back to MongoDB.",
    ["operation"],
)

# -- events and subscriptions --------------------------------------------------------------------

EVENTS_PUBLISHED = Counter(
    "shms_events_published_total", "Domain events this process published.", ["entity"]
)
EVENT_PUBLISH_ERRORS = Counter(
    "shms_event_publish_errors_total",
    "Domain events that could not be published (logged; the write itself stood).",
    ["entity"],
)
EVENTS_DELIVERED = Counter(
    "shms_events_delivered_total",
    "Domain events handed to a subscriber of this process.",
    ["entity"],
)
EVENTS_DROPPED = Counter(
    "shms_events_dropped_total",
    "Domain events dropped because a subscriber fell too far behind.",
    ["entity"],
)
EVENT_DELIVERY_LAG = Histogram(
    "shms_event_delivery_lag_seconds",
    "From a write's event to its subscriber taking it (across processes: includes clock skew).",
    ["entity"],
    buckets=LAG_BUCKETS,
)
EVENTS_DENIED = Counter(
    "shms_subscription_events_denied_total",
    "Events withheld from a subscriber who may not see the row.",
    ["field"],
)
SUBSCRIBERS_DROPPED = Counter(
    "shms_subscribers_dropped_total",
    "Subscribers disconnected (4429) because they fell too far behind the events.",
    ["field"],
)
SUBSCRIPTIONS_OPEN = Gauge(
    "shms_subscriptions_open",
    "GraphQL subscriptions currently open, by field (summed over live workers).",
    ["field"],
    multiprocess_mode="livesum",
)
BUS_CONNECTIONS = Counter(
    "shms_event_bus_connections_total",
    "Times the event bus subscribed to Redis (the first time, then each reconnection).",
)
OUTBOX_DEPTH = Gauge(
    "shms_notification_outbox_depth",
    "Notifications waiting in the outbox (pending or being sent), counted at scrape.",
    ["status"],
    multiprocess_mode="mostrecent",
)
NOTIFICATIONS_SENT = Counter(
    "shms_notifications_dispatched_total",
    "Notifications the dispatcher settled, by outcome (sent, retrying, failed, skipped).",
    ["outcome"],
)

# -- bounded operation names ---------------------------------------------------------------------

MAX_OPERATION_NAMES = 200
"""Distinct operation names one process labels; later new names are counted as ``other``."""
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_names: set[str] = set()
_names_lock = threading.Lock()


def operation_label(name: object) -> str:
    """``anonymous`` for an unnamed operation, ``other`` past the cap or for a non-name (a
    client's ``operationName`` may be any JSON value)."""
    if name is None or name == "":
        return "anonymous"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return "other"
    if name in _names:
        return name
    with _names_lock:
        if len(_names) >= MAX_OPERATION_NAMES:
            return "other"
        _names.add(name)
    return name


def observe_operation(
    name: str | None, kind: str, seconds: float, codes: list[str] | tuple[str, ...] = ()
) -> None:
    GRAPHQL_DURATION.labels(operation_label(name), kind).observe(seconds)
    for code in codes:
        GRAPHQL_ERRORS.labels(code).inc()


# -- the document cache's counters (kept in cache.documents) -------------------------------------

_folded: dict[tuple[str, str], int] = {}
_fold_lock = threading.Lock()


def fold_document_cache() -> None:
    """Carry the growth of ``cache.documents.CACHE_STATS`` (plain counters that module bumps)
    into ``shms_document_cache_total``: after every HTTP request and at every scrape, so each
    worker's own counts reach the shared view."""
    try:
        from cache.documents import CACHE_STATS
    except ImportError:
        return
    with _fold_lock:
        for key, count in list(CACHE_STATS.items()):
            grown = count - _folded.get(key, 0)
            if grown > 0:
                DOCUMENT_CACHE.labels(*key).inc(grown)
            if grown:  # a smaller count: the counters were reset (tests); follow them
                _folded[key] = count


# -- reading -------------------------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    """This process's value of one sample (tests; ``name`` as exposed, e.g. ``..._total``)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def render() -> str:
    """The exposition text: every worker's values in multi-process mode, else this process's."""
    fold_document_cache()
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry).decode("utf-8")
    return generate_latest(REGISTRY).decode("utf-8")


def samples(text: str) -> Mapping[str, float]:
    """Exposition text as ``{'name{labels}': value}`` (tests, the benchmarks)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def worker_exited(pid: int | None = None) -> None:
    """A worker leaving: its live gauges (open subscriptions) stop counting in the sum."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]


def exported_names() -> set[str]:
    """Every sample name SHMS exports (histograms' ``_bucket``/``_sum``/``_count`` included)."""
    names: set[str] = set()
    collectors: Any = getattr(REGISTRY, "_collector_to_names", {})
    for collector, exported in collectors.items():
        if collector.__class__.__module__.startswith("prometheus_client.metrics"):
            names.update(n for n in exported if n.startswith("shms_"))
    return names
