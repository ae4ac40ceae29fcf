"""In-process counters for ``GET /metrics``, rendered by hand in the Prometheus text format.

Each worker process counts its own events and subscriptions; Prometheus scrapes every worker and
sums them. A handful of counters does not justify a client library.
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Everything the bus, the subscriptions and the live equipment status count."""

    def __init__(self) -> None:
        self.events_published: Counter[str] = Counter()  # by entity (collection name)
        self.publish_errors: Counter[str] = Counter()
        self.events_delivered: Counter[str] = Counter()  # handed to a local subscriber
        self.events_dropped: Counter[str] = Counter()  # a slow subscriber's queue overflowed
        self.events_denied: Counter[str] = Counter()  # by subscription field: row not visible
        self.subscriptions_open: Counter[str] = Counter()  # gauge, by subscription field
        self.subscribers_dropped: Counter[str] = Counter()  # by field: fell too far behind
        self.bus_connections = 0  # successful (re)subscriptions of the Redis reader
        self.equipment_status_errors: Counter[str] = Counter()  # by operation, failed open
        self.operation_timeouts = 0  # queries cut at SHMS_OPERATION_TIMEOUT_SECONDS


metrics = Metrics()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(
    name: str,
    kind: str,
    help_text: str,
    samples: Iterable[tuple[Mapping[str, str], int]],
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
    return lines


def _by(label: str, counts: Mapping[str, int]) -> list[tuple[Mapping[str, str], int]]:
    return [({label: key}, counts[key]) for key in sorted(counts)]


def _cache_stats() -> dict[tuple[str, str], int]:
    """The document cache's counters, if that module is there (it is built separately)."""
    try:
        module = importlib.import_module("cache.documents")
        stats = module.cache_stats()
        out: dict[tuple[str, str], int] = {}
        for key, value in dict(stats).items():  # {(entity, kind): n} or {entity: {kind: n}}
            if isinstance(value, Mapping):
                out.update({(str(key), str(kind)): int(n) for kind, n in value.items()})
            else:
                entity, kind = key
                out[(str(entity), str(kind))] = int(value)
        return out
    except ImportError:
        return {}
    except Exception:  # a broken exporter must not take the other metrics down
        log.warning("could not read the document cache's statistics", exc_info=True)
        return {}


def _result_stats() -> dict[str, int]:
    from cache.results import RESULT_STATS  # imported late, like the rate limiter's counter

    return dict(RESULT_STATS)


def _rate_limit_failed_open() -> int:
    from schema.ratelimit import FAILED_OPEN  # imported late: the schema imports this module

    return FAILED_OPEN["count"]


def render() -> str:
    """The exposition text: one family per counter, labelled samples sorted for stable output."""
    m = metrics
    cache = _cache_stats()
    lines = [
        *_family(
            "shms_document_cache_total",
            "counter",
            "Document cache lookups by entity and outcome (hit, miss, error, ...).",
            [({"entity": e, "kind": k}, cache[(e, k)]) for e, k in sorted(cache)],
        ),
        *_family(
            "shms_result_cache_total",
            "counter",
            "Aggregate and saved-query result lookups by outcome (hit, miss, error, ...).",
            _by("kind", _result_stats()),
        ),
        *_family(
            "shms_events_published_total",
            "counter",
            "Domain events this process published.",
            _by("entity", m.events_published),
        ),
        *_family(
            "shms_event_publish_errors_total",
            "counter",
            "Domain events that could not be published (logged; the write itself stood).",
            _by("entity", m.publish_errors),
        ),
        *_family(
            "shms_events_delivered_total",
            "counter",
            "Domain events handed to a subscriber of this process.",
            _by("entity", m.events_delivered),
        ),
        *_family(
            "shms_events_dropped_total",
            "counter",
            "Domain events dropped because a subscriber fell too far behind.",
            _by("entity", m.events_dropped),
        ),
        *_family(
            "shms_subscription_events_denied_total",
            "counter",
            "Events withheld from a subscriber who may not see the row.",
            _by("field", m.events_denied),
        ),
        *_family(
            "shms_subscribers_dropped_total",
            "counter",
            "Subscribers disconnected (4429) because they fell too far behind the events.",
            _by("field", m.subscribers_dropped),
        ),
        *_family(
            "shms_subscriptions_open",
            "gauge",
            "GraphQL subscriptions currently open in this process.",
            _by("field", m.subscriptions_open),
        ),
        *_family(
            "shms_event_bus_connections_total",
            "counter",
            "Times the event bus subscribed to Redis (the first time, then each reconnection).",
            [({}, m.bus_connections)],
        ),
        *_family(
            "shms_equipment_status_errors_total",
            "counter",
            "Live equipment status operations that failed and fell back to MongoDB.",
            _by("operation", m.equipment_status_errors),
        ),
        *_family(
            "shms_operation_timeouts_total",
            "counter",
            "Queries answered TIMEOUT after SHMS_OPERATION_TIMEOUT_SECONDS.",
            [({}, m.operation_timeouts)],
        ),
        *_family(
            "shms_rate_limit_failed_open_total",
            "counter",
            "Requests let through unmetered because Redis could not count them.",
            [({}, _rate_limit_failed_open())],
        ),
    ]
    return "\n".join(lines) + "\n"
