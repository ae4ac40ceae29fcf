"""Layers point one way: the driver sits behind ``db.py``, and below the API layer nothing
knows GraphQL.

The rules read the source with ``ast`` (imports inside functions and ``TYPE_CHECKING`` blocks
count too), so a comment or a string naming a module never trips them, and a call spread over
several lines never slips past.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = frozenset({".venv", "tests", "build", "docs", "scripts"})

DRIVER_ACCESSORS = frozenset({"get_motor_collection", "get_pymongo_collection", "motor_collection"})
"""Ways to the raw driver collection other than ``db.collection(Model)``."""
DRIVER_PACKAGES = ("motor", "mongomock", "mongomock_motor")
PYMONGO_NAMES = frozenset({"IndexModel", "ReturnDocument", "ASCENDING", "DESCENDING", "errors"})
"""What other modules may take from pymongo: index declarations, options and error types."""

BELOW_THE_API = ("services", "models", "cache", "events", "jobs", "notifications")
API_PACKAGES = ("graphql", "strawberry", "api", "schema", "resolvers", "routes")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    """Every application module (tests excluded), by its path relative to the repository."""
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        top = relative.parts[0]
        if top in SKIPPED or top.endswith(".egg-info") or top.startswith("."):
            continue  # hidden folders: virtualenvs (.venv, .venv-wire), caches, state
        yield relative.as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(relative))


MODULES = dict(_modules())


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything imported; ``from a import b`` yields ``a.b``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def _under(path: str, packages: tuple[str, ...]) -> bool:
    return path.split("/")[0] in packages


def test_the_scan_sees_the_application() -> None:
    for expected in ("db.py", "app.py", "services/saved_queries.py", "api/schema.py"):
        assert expected in MODULES
    assert not any(path.startswith("tests/") for path in MODULES)


def test_only_db_reaches_for_the_driver_collection() -> None:
    found = [
        f"{path}:{node.lineno} .{node.attr}"
        for path, tree in MODULES.items()
        if path != "db.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in DRIVER_ACCESSORS
    ]
    assert found == [], "use db.collection(Model) instead"


def test_only_db_imports_the_driver() -> None:
    found = [
        f"{path}:{line} {name}"
        for path, tree in MODULES.items()
        if path != "db.py"
        for line, name in _imported(tree)
        if _within(name, DRIVER_PACKAGES)
        or (name.startswith("pymongo.") and name.split(".")[1] not in PYMONGO_NAMES)
    ]
    found += [
        f"{path}:{node.lineno} pymongo.{node.attr}"
        for path, tree in MODULES.items()
        if path != "db.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "pymongo"
        and node.attr not in PYMONGO_NAMES
    ]
    assert found == []


def test_models_do_not_import_db() -> None:
    """``db`` binds the documents to the driver at start-up, so it imports ``models``; the
    reverse would make a cycle (and documents have no business with the store)."""
    found = [
        f"{path}:{line} {name}"
        for path, tree in MODULES.items()
        if _under(path, ("models",))
        for line, name in _imported(tree)
        if _within(name, ("db",))
    ]
    assert found == []


@pytest.mark.parametrize("package", BELOW_THE_API)
def test_nothing_below_the_api_layer_imports_graphql_or_the_api(package: str) -> None:
    found = [
        f"{path}:{line} {name}"
        for path, tree in MODULES.items()
        if _under(path, (package,))
        for line, name in _imported(tree)
        if _within(name, API_PACKAGES)
    ]
    assert found == [], "parse, validate and run GraphQL in the API layer (schema/, resolvers/)"


def test_services_do_not_import_the_access_control_of_requests() -> None:
    """``auth.access`` is the per-request policy the API layer applies; services take a
    ``Principal`` and the rules of ``auth.policy`` instead."""
    found = [
        f"{path}:{line} {name}"
        for path, tree in MODULES.items()
        if _under(path, ("services",))
        for line, name in _imported(tree)
        if _within(name, ("auth.access",))
    ]
    assert found == []
