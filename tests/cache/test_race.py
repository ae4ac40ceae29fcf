"""A slow reader cannot put back a document older than a write that landed while it read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from cache.documents import DocumentCache, Raw
from models import Patient
from tests import factories
from tests.cache.helpers import assert_cached_as_stored, cached, id_of

UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { lastName } }"""
READ = "query($id: ID!) { patient(id: $id) { lastName } }"


class HeldReader(DocumentCache):
    """Stops every backfill after MongoDB was read, until the test lets it go on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_mongodb, self.go_on = asyncio.Event(), asyncio.Event()
        self.filled: list[int] = []

    async def _fill(self, entity: str, entries: Sequence[tuple[Raw, int]]) -> int:
        self.read_mongodb.set()
        await self.go_on.wait()
        filled = await super()._fill(entity, entries)
        self.filled.append(filled)
        return filled


async def test_a_backfill_older_than_a_write_is_refused(
    gql: Any, cache: DocumentCache, settings: Any
) -> None:
    patient = await factories.patient(last_name="Old")
    reader = HeldReader(cache.redis, settings, namespace=cache.namespace)
    reading = asyncio.create_task(reader.get_many(Patient, [patient.id]))
    await reader.read_mongodb.wait()  # it noted version 0, missed, and read "Old"
    written = await gql.data(UPDATE, id=str(patient.id), input={"lastName": "New"})
    assert written["updatePatient"] == {"lastName": "New"}
    reader.go_on.set()
    found = await reading
    assert found[id_of(patient)].last_name == "Old"  # what it read before the write: fine
    assert reader.filled == [0]  # but it may not cache it: the version moved on
    await assert_cached_as_stored(cache, Patient, patient.id)
    assert (await gql.data(READ, id=str(patient.id)))["patient"] == {"lastName": "New"}


async def test_the_refusal_alone_keeps_the_old_state_out(
    gql: Any, cache: DocumentCache, settings: Any
) -> None:
    """Even when the writer left no fresh copy behind (evicted, say), the reader's is refused."""
    patient = await factories.patient(last_name="Old")
    reader = HeldReader(cache.redis, settings, namespace=cache.namespace)
    reading = asyncio.create_task(reader.get_many(Patient, [patient.id]))
    await reader.read_mongodb.wait()
    await gql.data(UPDATE, id=str(patient.id), input={"lastName": "New"})
    await cache.clear()
    reader.go_on.set()
    await reading
    assert reader.filled == [0]
    assert await cached(cache, Patient, patient.id) is None
    assert (await gql.data(READ, id=str(patient.id)))["patient"] == {"lastName": "New"}


async def test_a_backfill_with_no_write_meanwhile_lands(
    cache: DocumentCache, settings: Any
) -> None:
    patient = await factories.patient()
    reader = HeldReader(cache.redis, settings, namespace=cache.namespace)
    reader.go_on.set()
    await reader.get_many(Patient, [patient.id])
    assert reader.filled == [1]
    await assert_cached_as_stored(cache, Patient, patient.id)
