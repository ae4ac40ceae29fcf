"""Records the shape of every query the embedded store runs, and judges it against the indexes.

A shape is (collection, equality fields, sort fields, range fields), read from the filter and
sort the services hand the driver: field names only, never values. Loaded as a pytest plugin
(``-p tests.deploy.query_shapes``) with ``SHMS_QUERY_SHAPES=<file>``, it records every read of
the run (finds, counts, distincts, the leading ``$match`` of aggregations, and the filters of
updates and deletes) and writes the distinct shapes to that file when the session ends.
``tests/deploy/test_indexes.py`` runs a part of the suite that way and checks each shape.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import mongomock.collection

import db

Key = tuple[tuple[str, int], ...]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep
NOT_CALLERS = (os.path.join(ROOT, ".venv"), os.path.join(ROOT, "db.py"), os.path.abspath(__file__))

EQUALITY = frozenset({"$eq", "$in"})
"""Operators an index answers as points (``$in``: a few points, merged for a sort)."""


@dataclass(frozen=True, order=True)
class Shape:
    collection: str
    equality: tuple[str, ...]
    sort: tuple[str, ...]
    range: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "equality": list(self.equality),
            "sort": list(self.sort),
            "range": list(self.range),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Shape:
        return cls(
            raw["collection"], tuple(raw["equality"]), tuple(raw["sort"]), tuple(raw["range"])
        )


def shapes(collection: str, spec: Any, sort: Any = None) -> Iterator[Shape]:
    """The shapes of one query: one per branch of a top-level ``$or`` (MongoDB plans each
    branch on its own index)."""
    sort_keys = _sort_keys(sort)
    for equality, ranges in _branches(spec if isinstance(spec, Mapping) else {"_id": spec}):
        yield Shape(
            collection,
            tuple(sorted(equality)),
            tuple(k for k in sort_keys if k not in equality),
            tuple(sorted(ranges - equality)),
        )


def _sort_keys(sort: Any) -> tuple[str, ...]:
    if not sort:
        return ()
    items = sort.items() if isinstance(sort, Mapping) else sort
    return tuple(key for key, _ in items if key != "$natural")


def _branches(spec: Mapping[str, Any], prefix: str = "") -> list[tuple[set[str], set[str]]]:
    """(equality fields, range fields) for each alternative ``spec`` allows."""
    equality: set[str] = set()
    ranges: set[str] = set()
    alternatives: list[list[tuple[set[str], set[str]]]] = []
    for key, condition in spec.items():
        if key == "$and":
            for part in condition:
                alternatives.append(_branches(part, prefix))
        elif key in ("$or", "$nor"):
            branches = [b for part in condition for b in _branches(part, prefix)]
            if key == "$or":
                alternatives.append(branches)
            else:  # a $nor is a filter on what an index found, never a way in
                ranges.update(f for e, r in branches for f in e | r)
        elif key.startswith("$"):  # $expr, $text...: judged as a scan of the rest
            continue
        else:
            field = prefix + key
            kind = _condition(field, condition)
            if isinstance(kind, list):
                alternatives.append(kind)
            elif kind == "equality":
                equality.add(field)
            else:
                ranges.add(field)
    combined = [(equality, ranges)]
    for options in alternatives:
        combined = [(e | oe, r | orr) for e, r in combined for oe, orr in options]
    return combined


def _condition(field: str, condition: Any) -> str | list[tuple[set[str], set[str]]]:
    if not isinstance(condition, Mapping) or not condition:
        return "equality"
    operators = set(condition)
    if not all(o.startswith("$") for o in operators):
        return "equality"  # an embedded document, matched whole
    if "$elemMatch" in operators:
        inner = condition["$elemMatch"]
        if isinstance(inner, Mapping) and not all(k.startswith("$") for k in inner):
            return _branches(inner, field + ".")
        return "range"
    return "equality" if operators <= EQUALITY else "range"


def covered_by(shape: Shape, index: Key) -> bool:
    """Whether ``index`` serves ``shape`` by the equality-sort-range rule: its leading fields
    are equality fields of the query, the next ones are the sort in order (so no sort in
    memory), and it is entered by an equality, the sort or a range of its first field."""
    fields = [name for name, _ in index]
    used = 0
    while used < len(fields) and fields[used] in shape.equality:
        used += 1
    if shape.sort and tuple(fields[used : used + len(shape.sort)]) != shape.sort:
        return False
    if used:
        return True
    first = fields[0] if fields else None
    return first is not None and (first in shape.range or first in shape.sort)


def covering(shape: Shape, indexes: Iterable[Key]) -> Key | None:
    if shape.equality[:1] == ("_id",) or (not shape.equality and shape.sort[:1] == ("_id",)):
        return (("_id", 1),)
    if not shape.equality and not shape.sort and not shape.range:
        return (("$natural", 1),)  # the whole collection on purpose: no index could help
    return next((index for index in indexes if covered_by(shape, index)), None)


def caller() -> str | None:
    """Where in SHMS the query was built (``path:function``), or None when a test built it: a
    test's own look into the store is not a query the service runs."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(ROOT) and not path.startswith(NOT_CALLERS):
            relative = path[len(ROOT) :]
            return (
                None
                if relative.startswith("tests" + os.sep)
                else f"{relative}:{frame.f_code.co_name}"
            )
        frame = frame.f_back  # type: ignore[assignment]
    return None


class Recorder:
    def __init__(self) -> None:
        self.seen: dict[Shape, str] = {}
        self._sorting = 0

    def install(self) -> None:
        """Wrap the two places the embedded store reads documents (``db`` already routes every
        cursor through ``_sorted_matches``)."""
        recorder = self
        sorted_matches = db._sorted_matches
        collection_class: Any = mongomock.collection.Collection  # untyped library class
        iter_documents = collection_class._iter_documents

        def _sorted(collection: Any, spec: Any, sort: Any) -> list[Any]:
            recorder.record(collection.name, spec, sort)
            recorder._sorting += 1
            try:
                return sorted_matches(collection, spec, sort)
            finally:
                recorder._sorting -= 1

        def _iter(self: Any, filter: Any) -> Any:
            if not recorder._sorting:
                recorder.record(self.name, filter, None)
            return iter_documents(self, filter)

        db._sorted_matches = _sorted
        collection_class._iter_documents = _iter

    def record(self, collection: str, spec: Any, sort: Any) -> None:
        origin = caller()
        if origin is None:
            return
        try:
            found = list(shapes(collection, spec or {}, sort))
        except Exception:  # an odd filter must not break the run it observes
            found = [Shape(collection, ("?unreadable",), (), ())]
        for shape in found:
            self.seen.setdefault(shape, origin)


_RECORDER = Recorder()


def pytest_configure(config: Any) -> None:
    if os.environ.get("SHMS_QUERY_SHAPES"):
        _RECORDER.install()


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("SHMS_QUERY_SHAPES")
    if path:
        rows = [{**s.as_json(), "origin": o} for s, o in sorted(_RECORDER.seen.items())]
        with open(path, "w") as out:
            json.dump(rows, out, indent=1)
