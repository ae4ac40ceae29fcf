"""Two server processes sharing one Redis (and one MongoDB) see each other's writes at once.

The second process is a second DocumentCache on a connection of its own: two full apps in one
test would each open a private embedded MongoDB, which is not shared state.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from cache.documents import DocumentCache
from config import Settings
from models import Appointment, Patient
from models.scheduling import AppointmentStatus
from tests import factories
from tests.cache.helpers import cost, id_of

UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id } }"""


async def test_the_other_process_reads_this_ones_write_from_redis(
    gql: Any, cache: DocumentCache, redis_client: Redis, settings: Settings
) -> None:
    patient = await factories.patient(last_name="Old")
    id = id_of(patient)
    other = DocumentCache(redis_client, settings, namespace=cache.namespace)
    assert (await other.get_many(Patient, [id]))[id].last_name == "Old"
    await gql.data(UPDATE, id=str(id), input={"lastName": "New"})
    with cost(other) as spent:
        found = await other.get_many(Patient, [id])
    assert found[id].last_name == "New"
    assert spent.round_trips == 1 and not spent.reads  # the writer left the new copy


async def test_this_process_reads_the_other_ones_write(
    gql: Any, cache: DocumentCache, redis_client: Redis, settings: Settings
) -> None:
    visit = await factories.appointment()
    read = "query($id: ID!) { appointment(id: $id) { status } }"
    assert (await gql.data(read, id=str(visit.id)))["appointment"] == {"status": "SCHEDULED"}
    other = DocumentCache(redis_client, settings, namespace=cache.namespace)
    # What the other process's service does: write MongoDB, then tell its cache.
    await Appointment.get_motor_collection().update_one(
        {"_id": visit.id}, {"$set": {"status": AppointmentStatus.COMPLETED.value}}
    )
    assert await other.store(visit) == 1  # the copy in hand is stale; the cache is not
    with cost(cache) as spent:
        assert (await gql.data(read, id=str(visit.id)))["appointment"] == {"status": "COMPLETED"}
    assert not spent.reads.get("appointments")
