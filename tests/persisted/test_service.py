"""services.persisted without HTTP (storage, the LRU, the saved-query test), with the API
layer's parsing from schema.persisted_documents."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from errors import BadUserInput
from models.persisted import PersistedOperation
from schema import persisted_documents
from services import persisted
from tests.persisted.conftest import stored


async def test_concurrent_registrations_store_one_row(database: Any) -> None:
    text = "{ viewer { roles } }"
    hashes = await asyncio.gather(*(persisted.register(text, f"s{i}") for i in range(5)))
    assert set(hashes) == {persisted.digest(text)}
    persisted.recent.clear()
    await persisted.register(text, "again")  # the duplicate-key path, not the LRU
    rows = await stored()
    assert list(rows) == [persisted.digest(text)] and rows[hashes[0]]["document"] == text


async def test_only_documents_that_parse_are_stored(database: Any) -> None:
    with pytest.raises(BadUserInput):
        await persisted_documents.register("{ viewer ", "someone")
    with pytest.raises(BadUserInput):
        await persisted_documents.register("{ a b c d e f }", "someone", max_tokens=4)
    assert await stored() == {}


async def test_a_row_that_does_not_match_its_hash_never_runs(database: Any) -> None:
    sha = persisted.digest("{ viewer { roles } }")
    await PersistedOperation(id=sha, document="{ patients { totalCount } }").insert()
    assert await persisted.lookup(sha) is None
    assert len(persisted.recent) == 0


async def test_an_unknown_hash_is_not_remembered(database: Any) -> None:
    sha = persisted.digest("{ viewer { id } }")
    assert await persisted.lookup(sha) is None
    await persisted.register("{ viewer { id } }", "later")
    assert await persisted.lookup(sha) == "{ viewer { id } }"


def test_the_lru_is_bounded_and_keeps_the_recently_used() -> None:
    lru = persisted._Recent(2)
    lru.put("a", "A")
    lru.put("b", "B")
    assert lru.get("a") == "A"
    lru.put("c", "C")  # evicts b, the least recently used
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == ("A", None, "C", 2)


@pytest.mark.parametrize(
    ("document", "allowed"),
    [
        ('{ runSavedQuery(name: "x") { rows } }', True),
        ('query Q { other: savedQuery(name: "x") { id } }', True),
        ("{ patients: savedQueries { id } }", True),  # aliases do not count, names do
        ("{ savedQuery: patients { totalCount } }", False),
        ("subscription { savedQueries { id } }", False),
        ("{ savedQueries { id } __typename }", False),
        ("{ ...A } fragment A on Query { ...B } fragment B on Query { savedQueries { id } }", True),
        ("{ ...A } fragment A on Query { ...A }", False),  # a cycle selects nothing
        ("fragment A on Query { savedQueries { id } }", False),  # no operation at all
        ("type Query { savedQueries: Int }", False),
    ],
)
def test_which_documents_count_as_saved_queries(document: str, allowed: bool) -> None:
    assert persisted.only_saved_queries(persisted_documents.analyse(document)) is allowed
