"""The embedded store's speed-ups in ``db.py`` change its cost, never its answers."""

from __future__ import annotations

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
