"""Production starts safely or not at all: a missing or unreachable store is one line naming the
variable to set and a non-zero exit, within a second or the connect timeout, and no traceback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

import cli
import config
from config import Settings
from models import Account, Patient
from tests.conftest import TEST_REDIS_URL
from tests.deploy.processes import (
    PRODUCTION_SECRETS,
    SHMS,
    UVICORN,
    environment,
    production_secrets,
    run,
)
from tests.e2e.servers import free_port


@pytest.fixture(autouse=True)
def fresh_settings() -> Any:
    """``cli.main`` reads the environment through the cached settings."""
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


def _closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    return free_port()


@pytest.mark.parametrize(
    ("stores", "named"),
    [
        ({}, "MONGODB_URL and REDIS_URL"),
        ({"REDIS_URL": TEST_REDIS_URL}, "MONGODB_URL"),
        ({"MONGODB_URL": "mongodb://127.0.0.1:27017"}, "REDIS_URL"),
    ],
    ids=["neither", "no-mongodb", "no-redis"],
)
def test_shms_serve_in_production_without_a_store_exits_at_once(
    stores: dict[str, str], named: str
) -> None:
    result = run(
        [SHMS, "serve", "--port", str(free_port())], environment(SHMS_ENV="production", **stores)
    )
    print(f"shms serve refused in {result.seconds:.2f} s: {result.output.strip()}")
    assert result.code == 2, result.output
    assert result.seconds < 5, "a refused start-up must not wait for anything"
    assert len(result.lines) == 1, result.output
    assert f"SHMS_ENV=production needs {named}" in result.output
    assert "Traceback" not in result.output


def test_uvicorn_in_production_without_mongodb_fails_start_up_in_one_line() -> None:
    env = environment(SHMS_ENV="production", REDIS_URL=TEST_REDIS_URL)
    result = run([*UVICORN, "--port", str(free_port())], env)
    print(f"uvicorn refused in {result.seconds:.2f} s")
    assert result.code == 3, result.output  # uvicorn's start-up failure
    [reason] = [line for line in result.lines if "MONGODB_URL" in line]
    assert "invalid settings: SHMS_ENV=production needs MONGODB_URL" in reason
    assert "Traceback" not in result.output and "File " not in result.output


@pytest.mark.parametrize("command", ["shms", "uvicorn"])
def test_an_unreachable_mongodb_fails_within_the_connect_timeout(command: str) -> None:
    env = environment(
        SHMS_ENV="production",
        **PRODUCTION_SECRETS,
        MONGODB_URL=f"mongodb://127.0.0.1:{_closed_port()}",
        REDIS_URL=TEST_REDIS_URL,
        SHMS_CONNECT_TIMEOUT_SECONDS="1",
    )
    port = str(free_port())
    argv = [SHMS, "serve", "--port", port] if command == "shms" else [*UVICORN, "--port", port]
    result = run(argv, env)
    print(f"{command}: unreachable MongoDB refused after {result.seconds:.2f} s (imports included)")
    assert result.code == 3, result.output
    [reason] = [line for line in result.lines if "MONGODB_URL" in line]
    assert "MongoDB did not answer within 1 s (SHMS_CONNECT_TIMEOUT_SECONDS)" in reason
    assert "Connection refused" in reason
    assert "Traceback" not in result.output
    assert result.seconds < 15, "pymongo's own default would wait 30 s"


async def test_an_unreachable_redis_stops_production_naming_redis_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production needs its Redis (sessions, limits, live events): one line, within the
    timeout. MongoDB is the embedded one here, since no MongoDB server runs in this suite."""
    import app
    import db

    embedded = db.create_client
    monkeypatch.setattr(db, "create_client", lambda url, timeout=5.0: embedded("", timeout))
    settings = Settings(
        shms_env="production",
        **production_secrets(),
        mongodb_url="mongodb://mongo.invalid:27017",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        shms_connect_timeout_seconds=1,
    )
    started = time.monotonic()
    with pytest.raises(app.StartupError, match=r"^REDIS_URL: Redis did not answer within 1 s"):
        await app._open_stores(settings)
    assert time.monotonic() - started < 5


async def test_an_unreachable_redis_in_development_starts_degraded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Development runs without its Redis rather than not at all (the caches fail open)."""
    import app
    import db

    settings = Settings(
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0", shms_connect_timeout_seconds=1
    )
    mongo, redis = await app._open_stores(settings)
    try:
        assert "REDIS_URL: Redis did not answer within 1 s" in caplog.text
    finally:
        await redis.aclose()
        db.close_client(mongo)


def test_settings_refuse_demo_data_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stores: dict[str, Any] = {
        "mongodb_url": "mongodb://db:27017",
        "redis_url": "redis://cache:6379/0",
        **production_secrets(),
    }
    assert not Settings(shms_env="production", **stores).seed_demo_enabled
    with pytest.raises(ValidationError, match="SHMS_SEED_DEMO=true is refused"):
        Settings(shms_env="production", shms_seed_demo=True, **stores)

    for name, value in {"SHMS_ENV": "production", "SHMS_SEED_DEMO": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MONGODB_URL", "mongodb://db:27017")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SHMS_SEED_DEMO=true is refused" in err

    monkeypatch.delenv("SHMS_SEED_DEMO")
    config.get_settings.cache_clear()
    assert cli.main(["seed"]) == 2
    assert "never seeded into a production database" in capsys.readouterr().err


async def test_production_seeds_nothing(settings: Settings) -> None:
    """Even on an empty database (here the embedded one, which development would seed)."""
    from app import create_app

    production = settings.model_copy(update={"shms_env": "production", "shms_seed_demo": None})
    application = create_app(production)
    async with application.router.lifespan_context(application):
        assert await Patient.count() == 0
        assert await Account.count() == 0


def test_invalid_settings_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHMS_CORS_ORIGINS", "localhost:3000")
    monkeypatch.setattr("uvicorn.Config", lambda *a, **kw: pytest.fail("must not start"))
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shms serve: SHMS_CORS_ORIGINS: 'localhost:3000' is not an origin")
    assert err.count("\n") == 1


async def test_the_start_up_ping_gives_up_at_the_connect_timeout(settings: Settings) -> None:
    """Measured in process: the wait itself, without the interpreter's start-up and exit."""
    from app import StartupError, _open_stores

    closed = settings.model_copy(
        update={
            "mongodb_url": f"mongodb://127.0.0.1:{_closed_port()}",
            "shms_connect_timeout_seconds": 1.0,
        }
    )
    started = time.monotonic()
    with pytest.raises(StartupError, match=r"^MONGODB_URL: MongoDB did not answer within 1 s"):
        await _open_stores(closed)
    waited = time.monotonic() - started
    print(f"gave up on MongoDB after {waited:.2f} s")
    assert 0.5 < waited < 2.5


def test_production_refuses_the_published_deidentify_secret() -> None:
    """De-identified exports keyed by a published secret could be re-identified."""
    stores: dict[str, Any] = {
        "mongodb_url": "mongodb://db:27017",
        "redis_url": "redis://cache:6379/0",
        **production_secrets(),
    }
    published = {k: v for k, v in stores.items() if k != "shms_deidentify_secret"}
    with pytest.raises(ValidationError, match="SHMS_ENV=production needs SHMS_DEIDENTIFY_SECRET"):
        Settings(shms_env="production", **published)
    assert Settings(shms_env="production", **stores)
