"""The ``shms`` command line: argument parsing and what each subcommand does."""

from __future__ import annotations

import asyncio
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cli
import config
import db
from tests.conftest import TEST_MONGODB_URL


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are cached; every test reads the environment it set up."""
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


@pytest.fixture
def mongo(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MONGODB_URL set, backed by the embedded store (or the real test server when configured)."""
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URL", TEST_MONGODB_URL or "mongodb://demo.invalid:27017")
    monkeypatch.setenv("MONGODB_DB", name)
    if not TEST_MONGODB_URL:
        # The embedded store lives in its client: every command must get the same one.
        shared = db.create_client("")
        monkeypatch.setattr(db, "create_client", lambda url: shared)
    yield name
    if TEST_MONGODB_URL:
        asyncio.run(_drop(name))


async def _drop(name: str) -> None:
    client = db.create_client(TEST_MONGODB_URL)
    await client.drop_database(name)
    db.close_client(client)


def test_seed_refuses_without_mongodb_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONGODB_URL", "")
    assert cli.main(["seed"]) == 2
    err = capsys.readouterr().err
    assert "MONGODB_URL is not set" in err
    assert "embedded" in err and "SHMS_DEMO_PATIENTS" in err


def test_seed_fills_an_empty_database_and_refuses_a_full_one(
    mongo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["seed", "--patients", "4"]) == 0
    out = capsys.readouterr().out
    assert f"Seeded database {mongo!r}" in out
    assert "patients" in out and "billing_accounts" in out

    assert cli.main(["seed", "--patients", "4"]) == 2
    assert "already holds data" in capsys.readouterr().err

    assert cli.main(["seed", "--patients", "2", "--drop"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["patients", "2"] for line in lines)


def test_seed_arguments() -> None:
    args = cli.build_parser().parse_args(["seed", "--patients", "50", "--drop"])
    assert (args.patients, args.drop, args.handler) == (50, True, cli._seed)
    defaults = cli.build_parser().parse_args(["seed"])
    assert (defaults.patients, defaults.drop) == (200, False)


@pytest.mark.parametrize(
    "argv", [[], ["seed", "--patients", "-1"], ["seed", "--patients", "many"], ["unknown"]]
)
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: shms" in capsys.readouterr().err


def test_serve_runs_the_app_through_shms_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``shms serve`` serves ``app:app`` through ``app.ShmsServer`` (its WebSocket shutdown),
    under uvicorn's reloader too; nothing is started here."""
    from app import ShmsServer

    served: list[Any] = []

    def run(server: ShmsServer, sockets: Any = None) -> None:
        served.append(server.config)
        server.started = True

    class Reloader:
        def __init__(self, config: Any, target: Any, sockets: Any) -> None:
            assert isinstance(target.__self__, ShmsServer)  # the reloaded process serves it
            served.append(config)

        def run(self) -> None:
            pass

    monkeypatch.setattr(ShmsServer, "run", run)
    monkeypatch.setattr("uvicorn.supervisors.ChangeReload", Reloader)
    monkeypatch.setattr("uvicorn.Config.bind_socket", lambda config: None)
    assert cli.main(["serve", "--port", "9001"]) == 0
    assert cli.main(["serve", "--port", "9002", "--reload"]) == 0
    [plain, reloading] = served
    assert (plain.app, plain.host, plain.port) == ("app:app", "127.0.0.1", 9001)
    assert (plain.reload, reloading.port, reloading.reload) == (False, 9002, True)


def test_export_schema_writes_the_sdl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("api.schema")
    fake.schema = types.SimpleNamespace(as_str=lambda: "type Query {\n  ping: String!\n}")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "api.schema", fake)
    output = tmp_path / "schema.graphql"
    assert cli.main(["export-schema", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == "type Query {\n  ping: String!\n}\n"
