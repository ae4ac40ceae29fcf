"""``shms persist FILE...``: deploy-time registration of GraphQL documents."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, print_ast

import cli
import config
import db
from services import persisted
from tests.conftest import TEST_MONGODB_URL

VIEWER = "query Me {\n  viewer { roles }\n}\n"
DEPARTMENTS = "{ departments { totalCount } }"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = []
    for name, text in (("me.graphql", VIEWER), ("departments.graphql", DEPARTMENTS)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


@pytest.fixture
def mongo(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MONGODB_URL set; the embedded store stands in unless a real test server is configured."""
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URL", TEST_MONGODB_URL or "mongodb://demo.invalid:27017")
    monkeypatch.setenv("MONGODB_DB", name)
    if not TEST_MONGODB_URL:
        shared = db.create_client("")  # the embedded store lives in its client: share it
        monkeypatch.setattr(db, "create_client", lambda url: shared)
    yield name
    if TEST_MONGODB_URL:
        asyncio.run(_drop(name))


async def _drop(name: str) -> None:
    client = db.create_client(TEST_MONGODB_URL)
    await client.drop_database(name)
    db.close_client(client)


def _rows(name: str) -> dict[str, dict[str, Any]]:
    """The stored rows, read with a client of their own (as another process would)."""

    async def read() -> dict[str, dict[str, Any]]:
        client = db.create_client(TEST_MONGODB_URL)
        try:
            rows = await client[name]["persisted_operations"].find({}).to_list(None)
        finally:
            db.close_client(client)
        return {row["_id"]: row for row in rows}

    return asyncio.run(read())


def test_without_mongodb_url_it_prints_the_hashes_only(
    files: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONGODB_URL", "")
    assert cli.main(["persist", *files]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{persisted.digest(VIEWER)}  {files[0]}",
        f"{persisted.digest(DEPARTMENTS)}  {files[1]}",
    ]
    assert "MONGODB_URL is not set" in err and "dry run" in err


def test_it_stores_each_file_once(
    files: list[str], mongo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["persist", *files]) == 0
    assert cli.main(["persist", files[0]]) == 0  # again: idempotent
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[2] == f"{persisted.digest(VIEWER)}  {files[0]}"
    rows = _rows(mongo)
    assert set(rows) == {persisted.digest(VIEWER), persisted.digest(DEPARTMENTS)}
    assert rows[persisted.digest(VIEWER)]["document"] == VIEWER
    assert {row["registered_by"] for row in rows.values()} == {"cli"}


def test_print_stores_the_printed_form(
    files: list[str], mongo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["persist", "--print", files[0]]) == 0
    printed = print_ast(parse(VIEWER))
    assert capsys.readouterr().out == f"{persisted.digest(printed)}  {files[0]}\n"
    assert [row["document"] for row in _rows(mongo).values()] == [printed]


def test_a_file_that_does_not_parse_stores_nothing(
    files: list[str], tmp_path: Path, mongo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("{ viewer { roles ", encoding="utf-8")
    assert cli.main(["persist", files[0], str(broken)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "broken.graphql" in err and "does not parse" in err
    assert _rows(mongo) == {}


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["persist", str(tmp_path / "nope.graphql")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_persist_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["persist"])
    assert exc.value.code == 2
