"""The embedded store's speed-ups in ``db.py`` change its cost, never its answers."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import db

START = datetime(2026, 3, 29, tzinfo=UTC)


async def _collection() -> Any:
    client = db.create_client("")  # the embedded store, speed-ups installed
    collection = client["shms_db_test"]["rows"]
    await collection.insert_many(
        [{"i": i, "even": i % 2 == 0, "at": START + timedelta(hours=i)} for i in range(50)]
    )
    return collection


async def test_cursor_skip_limit_sort_and_batches_return_what_they_ask_for() -> None:
    rows = await _collection()
    found = await rows.find({"even": True}).sort("i", -1).skip(3).limit(4).to_list(None)
    assert [r["i"] for r in found] == [42, 40, 38, 36]
    everything = await rows.find({}).to_list(None)
    assert [r["i"] for r in everything] == list(range(50))
    assert [r["i"] async for r in rows.find({"i": {"$lt": 3}})] == [0, 1, 2]
    assert all(r["at"].tzinfo is not None for r in everything)


async def test_a_leading_match_selects_the_same_documents_as_a_later_one() -> None:
    rows = await _collection()
    match = {
        "$match": {"at": {"$gte": START + timedelta(hours=10), "$lt": START + timedelta(hours=20)}}
    }
    group = {"$group": {"_id": "$even", "n": {"$sum": 1}, "first": {"$min": "$at"}}}
    sort = {"$sort": {"_id": 1}}
    pushed = await rows.aggregate([match, group, sort]).to_list(None)
    in_place = await rows.aggregate([{"$skip": 0}, match, group, sort]).to_list(None)
    assert (
        pushed
        == in_place
        == [
            {"_id": False, "n": 5, "first": START + timedelta(hours=11)},
            {"_id": True, "n": 5, "first": START + timedelta(hours=10)},
        ]
    )


def test_the_fast_sort_orders_exactly_as_mongomock_does() -> None:
    """Sorting by plain values is only a shortcut: on any mix it must give mongomock's order."""
    import random
    from datetime import UTC, datetime, timedelta

    from bson import ObjectId
    from mongomock import filtering as untyped

    filtering: Any = untyped

    from db import _sorted_by

    rng = random.Random(7)
    base = datetime(2031, 1, 1, tzinfo=UTC)
    columns: list[list[object]] = [
        [base + timedelta(minutes=rng.randrange(50)) for _ in range(60)],  # ties included
        [ObjectId() for _ in range(60)],
        [rng.choice(["b", "a", "c"]) for _ in range(60)],
        [rng.choice([1, 2.5, None, "x", 3]) for _ in range(60)],  # mixed: the slow path
    ]
    for values in columns:
        docs = [{"_id": i, "k": v} for i, v in enumerate(values)]
        for reverse in (False, True):
            expected = sorted(
                docs, key=lambda d: filtering.resolve_sort_key("k", d), reverse=reverse
            )
            assert _sorted_by(list(docs), "k", reverse) == expected


async def test_a_page_copies_only_its_own_documents(monkeypatch: Any) -> None:
    """The embedded store cuts the page before copying: a page of 10 is cheaper than 100."""
    rows = await _collection()
    copied = 0
    original = db._aware_copy

    def counting(value: Any) -> Any:
        nonlocal copied
        copied += isinstance(value, dict) and "i" in value  # whole documents, not their parts
        return original(value)

    monkeypatch.setattr(db, "_aware_copy", counting)
    page = await rows.find({"even": True}).sort("i", -1).skip(3).limit(4).to_list(None)
    assert [r["i"] for r in page] == [42, 40, 38, 36]
    assert copied == 4


async def test_the_one_pass_copy_is_mongomock_s_copy_and_shares_nothing() -> None:
    from mongomock import helpers as untyped

    helpers: Any = untyped
    client = db.create_client("")
    rows = client["shms_db_test"]["copies"]
    stored = {
        "_id": 1,
        "at": datetime(2030, 1, 1, 8, 30),
        "nested": {"when": [datetime(2020, 5, 1), {"deep": datetime(2021, 1, 1)}], "n": 2**40},
        "tags": ["a", "b"],
        "empty": {},
        "none": None,
    }
    await rows.insert_one(dict(stored))
    (found,) = await rows.find({}).to_list(None)
    expected = helpers.make_datetime_timezone_aware_in_document(copy.deepcopy(stored))
    assert found == expected
    assert type(found["nested"]["n"]) is type(expected["nested"]["n"])
    found["tags"].append("c")
    found["nested"]["when"][1]["deep"] = None
    (again,) = await rows.find({}).to_list(None)
    assert again["tags"] == ["a", "b"] and again["nested"]["when"][1]["deep"] is not None
