"""The embedded store lives in one process: it refuses to serve several workers, with the reason;
with MONGODB_URL and REDIS_URL every worker shares them and any number may run."""

from __future__ import annotations

import multiprocessing
import types
import uuid
from typing import Any

import pytest

import app as app_module
import cli
import config
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.deploy.processes import UVICORN, environment, run
from tests.e2e.servers import free_port


@pytest.fixture(autouse=True)
def fresh_settings() -> Any:
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


def test_shms_serve_refuses_several_workers_on_the_embedded_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("MONGODB_URL", "REDIS_URL", "SHMS_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("uvicorn.Config", lambda *a, **kw: pytest.fail("must not start"))
    assert cli.main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shms serve: --workers 2: the embedded store serves one worker only")
    assert "set MONGODB_URL and REDIS_URL" in err and err.count("\n") == 1

    monkeypatch.setenv("MONGODB_URL", "mongodb://db.example:27017")  # Redis still embedded
    config.get_settings.cache_clear()
    assert cli.main(["serve", "--workers", "4"]) == 2
    assert "without REDIS_URL every worker process" in capsys.readouterr().err


def test_shms_serve_runs_several_workers_on_shared_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URL", "mongodb://db.example:27017")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    started: list[int] = []

    class Workers:
        """uvicorn's supervisor of worker processes, which starts none here."""

        def __init__(self, config: Any, sockets: Any) -> None:
            started.append(config.workers)

        def run(self) -> None:
            pass

    monkeypatch.setattr("uvicorn.supervisors.Multiprocess", Workers)
    monkeypatch.setattr("uvicorn.Config.bind_socket", lambda config: None)
    assert cli.main(["serve", "--workers", "4"]) == 0
    assert started == [4]


def test_uvicorn_workers_on_the_embedded_store_stop_with_the_reason() -> None:
    """uvicorn tells its workers nothing about their number: the second to start refuses, and
    uvicorn then stops them all instead of serving from several separate stores."""
    env = environment(SHMS_SEED_DEMO="false", SHMS_LOG_LEVEL="WARNING")
    result = run([*UVICORN, "--port", str(free_port()), "--workers", "2"], env, timeout=90)
    print(f"uvicorn --workers 2 stopped after {result.seconds:.2f} s")
    [reason] = [line for line in result.lines if "several workers" in line]
    assert "this server runs several workers: the embedded store serves one worker only" in reason
    assert "failed to start, stopping the parent process" in result.output  # uvicorn's own
    assert "Traceback" not in result.output


def _fake_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a worker uvicorn started: a multiprocessing parent (a pid no real parent has)."""
    parent = types.SimpleNamespace(pid=f"test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: parent)


def test_one_worker_per_parent_may_hold_the_embedded_store(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    embedded = settings.model_copy(update={"mongodb_url": "", "redis_url": ""})
    assert app_module._claim_embedded_store(embedded) is None  # no parent: a single process
    _fake_parent(monkeypatch)
    first = app_module._claim_embedded_store(embedded)
    assert first is not None
    with pytest.raises(app_module.StartupError, match="this server runs several workers"):
        app_module._claim_embedded_store(embedded)
    app_module._release_embedded_store(first)  # --reload: the next worker starts afresh
    again = app_module._claim_embedded_store(embedded)
    assert again is not None
    app_module._release_embedded_store(again)

    shared = settings.model_copy(
        update={"mongodb_url": "mongodb://db.example:27017", "redis_url": TEST_REDIS_URL}
    )
    assert app_module._claim_embedded_store(shared) is None  # shared stores: any number
