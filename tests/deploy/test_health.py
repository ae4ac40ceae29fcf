"""Health checks: ``/health/live`` (the process serves), ``/health/ready`` (MongoDB answers; Redis
reported) and ``/health`` (as ready), each naming the store kind."""

from __future__ import annotations

from typing import Any

import db
from cache.connection import connect_redis
from tests.conftest import TEST_MONGODB_URL
from tests.e2e.servers import free_port

STORE = "mongodb" if TEST_MONGODB_URL else "embedded"


async def test_live_and_ready_when_both_stores_answer(http: Any) -> None:
    live = await http.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok", "store": STORE})
    for path in ("/health/ready", "/health"):
        ready = await http.get(path)
        body = {"status": "ok", "store": STORE, "mongodb": True, "redis": True}
        assert (ready.status_code, ready.json()) == (200, body), path


async def test_redis_down_is_reported_but_still_ready(app: Any, http: Any) -> None:
    """Without Redis the API fails open (cache, rate limits), so the instance still serves."""
    working = app.state.redis
    app.state.redis = connect_redis(f"redis://127.0.0.1:{free_port()}/0", 1.0)
    try:
        ready = await http.get("/health/ready")
    finally:
        await app.state.redis.aclose()
        app.state.redis = working
    body = {"status": "degraded", "store": STORE, "mongodb": True, "redis": False}
    assert (ready.status_code, ready.json()) == (200, body)


async def test_mongodb_down_is_not_ready_but_live(app: Any, http: Any) -> None:
    working = app.state.mongo
    app.state.mongo = db.create_client(f"mongodb://127.0.0.1:{free_port()}", 0.5)
    try:
        ready = await http.get("/health/ready")
        alias = await http.get("/health")
        live = await http.get("/health/live")
    finally:
        db.close_client(app.state.mongo)
        app.state.mongo = working
    assert ready.status_code == alias.status_code == 503
    assert ready.json() == {"status": "degraded", "store": STORE, "mongodb": False, "redis": True}
    assert (live.status_code, live.json()) == (200, {"status": "ok", "store": STORE})
