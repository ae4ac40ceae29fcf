"""``/metrics``: who may scrape it, what it shows after real requests, one view of many workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import metrics
from events.bus import LocalBus
from events.types import DomainEvent
from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "shms-dashboard.json"
NAMED = "query Departments { departments { totalCount } }"


def bearer(app: Any, *roles: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(app, roles=list(roles))}"}


async def scrape(http: Any, app: Any) -> dict[str, float]:
    response = await http.get("/metrics", headers=bearer(app, "service"))
    assert response.status_code == 200, response.text
    return dict(metrics.samples(response.text))


async def test_metrics_need_a_service_or_admin_token(app: Any, http: Any) -> None:
    anonymous = await http.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = await http.get("/metrics", headers={"authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    doctor = await http.get("/metrics", headers=bearer(app, "doctor"))
    assert doctor.status_code == 403
    assert doctor.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await http.post("/graphql", json={"query": NAMED}, headers=bearer(app, "admin"))
    for role in ("service", "admin"):
        allowed = await http.get("/metrics", headers=bearer(app, role))
        assert allowed.status_code == 200
        assert allowed.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE shms_graphql_request_duration_seconds histogram" in allowed.text
        assert 'shms_graphql_request_duration_seconds_bucket{le="0.005",operation=' in allowed.text


async def test_public_metrics_need_no_token(settings: Any) -> None:
    from app import create_app

    application = create_app(settings.model_copy(update={"shms_metrics_public": True}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            assert (await http.get("/metrics")).status_code == 200


async def test_requests_are_measured_by_operation_route_code_and_collection(
    app: Any, http: Any
) -> None:
    admin = bearer(app, "admin")
    histogram = 'shms_graphql_request_duration_seconds_count{operation="Departments",type="query"}'
    anonymous = 'shms_graphql_request_duration_seconds_count{operation="anonymous",type="query"}'
    invalid = 'shms_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}'
    routed = 'shms_http_requests_total{method="POST",route="/graphql",status="200"}'
    reads = 'shms_db_operations_total{collection="departments",kind="find"}'
    before = await scrape(http, app)
    await http.post("/graphql", json={"query": NAMED}, headers=admin)
    await http.post("/graphql", json={"query": "{ departments { totalCount } }"}, headers=admin)
    body = (await http.post("/graphql", json={"query": "{ noSuchField }"}, headers=admin)).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    after = await scrape(http, app)
    assert after[histogram] == before.get(histogram, 0) + 1
    assert after[anonymous] >= before.get(anonymous, 0) + 1
    assert after[invalid] == before.get(invalid, 0) + 1
    assert after[routed] >= before.get(routed, 0) + 3
    assert after[reads] > before.get(reads, 0)
    assert 'shms_notification_outbox_depth{status="pending"}' in after


def test_operation_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_names", set())
    monkeypatch.setattr(metrics, "MAX_OPERATION_NAMES", 2)
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("") == "anonymous"
    assert metrics.operation_label("First") == "First"
    assert metrics.operation_label('x"} 1\nfake') == "other"
    assert metrics.operation_label("Second") == "Second"
    assert metrics.operation_label("Third") == "other"
    assert metrics.operation_label("First") == "First"  # known names keep their label


async def test_rate_limit_refusals_are_counted(settings: Any) -> None:
    from app import create_app

    tight = settings.model_copy(
        update={"shms_rate_limit_points": 1, "shms_cache_prefix": f"obs-{uuid.uuid4().hex[:8]}"}
    )
    application = create_app(tight)
    name = 'shms_rate_limit_refusals_total{kind="operation"}'
    before = metrics.sample("shms_rate_limit_refusals_total", kind="operation")
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            who = bearer(application, "admin")
            codes: set[str] = set()
            for _ in range(5):
                body = (await http.post("/graphql", json={"query": NAMED}, headers=who)).json()
                codes |= {e["extensions"]["code"] for e in body.get("errors", [])}
                if "RATE_LIMITED" in codes:
                    break
            assert "RATE_LIMITED" in codes
            scraped = await http.get("/metrics", headers=bearer(application, "service"))
    assert metrics.samples(scraped.text)[name] == before + 1
    assert metrics.samples(scraped.text)['shms_graphql_errors_total{code="RATE_LIMITED"}'] >= 1


async def test_delivery_lag_is_observed_when_a_subscriber_takes_an_event() -> None:
    bus = LocalBus()
    stream = bus.subscribe(["appointments"])
    before = metrics.sample("shms_event_delivery_lag_seconds_count", entity="appointments")
    await bus.publish(DomainEvent("appointments", "a1", "created"))
    taken = await anext(stream)
    assert taken.id == "a1"
    after = metrics.sample("shms_event_delivery_lag_seconds_count", entity="appointments")
    assert after == before + 1
    await bus.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_separate_metrics_address_needs_no_token(settings: Any) -> None:
    from app import create_app

    address = f"127.0.0.1:{_free_port()}"
    application = create_app(settings.model_copy(update={"shms_metrics_address": address}))
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{address}/metrics", timeout=10)
        assert response.status_code == 200
        assert "shms_graphql_request_duration_seconds" in response.text
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):  # gone with the app
            await client.get(f"http://{address}/metrics", timeout=2)


WORKER = """
import sys
import metrics
metrics.EVENTS_PUBLISHED.labels("appointments").inc(int(sys.argv[1]))
metrics.SUBSCRIPTIONS_OPEN.labels("appointmentChanged").inc()
print(metrics.render() if sys.argv[1] == "0" else "")
"""


def test_several_processes_report_one_view(tmp_path: Path) -> None:
    """Workers write to PROMETHEUS_MULTIPROC_DIR; any one's scrape sums them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("2", "3"):
        subprocess.run([sys.executable, "-c", WORKER, count], cwd=ROOT, env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    scraped = metrics.samples(done.stdout)
    assert scraped['shms_events_published_total{entity="appointments"}'] == 5
    # Live gauges count live processes only: the first two have exited, unmarked, so they still
    # count here; a worker's lifespan marks itself dead on the way out (metrics.worker_exited).
    assert scraped['shms_subscriptions_open{field="appointmentChanged"}'] == 3


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert exprs, "the dashboard queries nothing"
    import re

    queried = {n for expr in exprs for n in re.findall(r"\b(shms_[a-z_]+)", expr)}
    exported = metrics.exported_names()
    assert queried, exprs
    assert not queried - exported, f"not exported by SHMS: {sorted(queried - exported)}"
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("latency", "error", "database", "cache", "rate", "subscriptions", "lag"):
        assert topic in titles, topic
    assert "outbox" in titles


def test_serve_with_workers_gives_them_one_metrics_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cli

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored (unset) after the test
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = Path(cli._metrics_folder())
    assert made.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert cli._metrics_folder() == str(tmp_path)
    assert not stale.exists()  # an earlier run's counts would be summed with this one's
    made.rmdir()
