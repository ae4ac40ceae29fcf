"""DocumentCache on its own: what it stores, how it batches, how writes and versions behave."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bson import ObjectId
from redis.asyncio import Redis

from cache import keys
from cache.documents import DocumentCache, cache_stats, cached_collections
from config import Settings
from crypto.fields import is_sealed, open_document
from models import Appointment, Department, Patient
from models.patients import SEALED as PATIENT_SEALED
from models.patients import Allergy, MedicalHistoryEntry
from tests import factories
from tests.cache.helpers import assert_cached_as_stored, cached, cost, id_of, stat, stored


def make(redis_client: Redis, settings: Settings) -> DocumentCache:
    return DocumentCache(redis_client, settings)


async def test_values_are_the_stored_document_types_and_all(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patient = await factories.patient(
        date_of_birth=date(1950, 5, 17),  # before 1970: a negative BSON datetime
        allergies=[Allergy(substance="Penicillin")],
        medical_history=[MedicalHistoryEntry(condition="Asthma", diagnosed_on=date(1961, 2, 1))],
    )
    visit = await factories.appointment(patient)
    for model, id in ((Patient, id_of(patient)), (Appointment, id_of(visit))):
        cold = await cache.get_many(model, [id])
        await assert_cached_as_stored(cache, model, id)
        with cost(cache) as warm:
            again = await cache.get_many(model, [id])
        assert (warm.round_trips, sum(warm.reads.values())) == (1, 0)
        assert again[id] == cold[id] == await model.get(id)
    assert visit.start_at.utcoffset() == again[id_of(visit)].start_at.utcoffset() == timedelta(0)


async def test_a_batch_costs_one_round_trip_and_one_query_for_the_misses(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patients = [await factories.patient() for _ in range(30)]
    ids = [p.id for p in patients]
    await cache.get_many(Patient, ids[:10])  # a third of them warm
    absent = ObjectId()
    hits, misses = stat("patients", "hit"), stat("patients", "miss")
    with cost(cache) as mixed:
        found = await cache.get_many(Patient, [*ids, absent, ids[0]])
    assert set(found) == set(ids)
    # One MGET (values and versions together), one $in for the misses, one backfill.
    assert mixed.round_trips == 2 and mixed.reads == {"patients": 1}
    assert stat("patients", "hit") - hits == 10
    assert stat("patients", "miss") - misses == 21
    assert await cached(cache, Patient, absent) is None  # misses are never cached
    with cost(cache) as warm:
        assert set(await cache.get_many(Patient, ids)) == set(ids)
    assert warm.round_trips == 1 and not warm.reads


async def test_other_collections_are_read_from_mongodb_only(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    dept = await factories.department()
    id = id_of(dept)
    assert "departments" not in cached_collections()
    with cost(cache) as spent:
        assert (await cache.get_many(Department, [id]))[id].name == dept.name
    assert spent.round_trips == 0 and spent.reads == {"departments": 1}
    assert await cache.store(dept) == 0
    assert await redis_client.exists(keys.document(cache.namespace, "departments", id)) == 0


async def test_store_bumps_the_version_and_refills_from_what_mongodb_holds(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patient = await factories.patient(last_name="Before")
    await cache.get_many(Patient, [patient.id])
    collection = Patient.get_motor_collection()
    # Two writers: A sets the name, B the phone; B reaches Redis first, A (holding a copy
    # that never saw B's write) second. The cache must end as MongoDB did, not as A's copy.
    await collection.update_one({"_id": patient.id}, {"$set": {"last_name": "After"}})
    stale_copy = patient.model_copy(update={"last_name": "After"})
    # (the contact is sealed: written whole)
    await collection.update_one({"_id": patient.id}, {"$set": {"contact": {"phone": "+44 1234"}}})
    assert await cache.store(await Patient.get(patient.id)) == 1  # type: ignore[arg-type]
    assert await cache.store(stale_copy) == 2
    await assert_cached_as_stored(cache, Patient, patient.id)
    raw = await cached(cache, Patient, patient.id)
    assert raw is not None and is_sealed(raw["last_name"])  # Redis holds the ciphertext
    raw = open_document(PATIENT_SEALED, raw)
    assert (raw["last_name"], raw["contact"]["phone"]) == ("After", "+44 1234")
    version = keys.version(cache.namespace, "patients", id_of(patient))
    assert await redis_client.get(version) == b"2"
    assert 0 < await redis_client.ttl(version) <= 3600


async def test_forget_drops_the_copy_and_refuses_backfills_begun_before(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patient = await factories.patient()
    await cache.get_many(Patient, [patient.id])
    raw = await stored(Patient, patient.id)
    assert raw is not None
    assert await cache.forget(Patient, id_of(patient)) == 1
    assert await cached(cache, Patient, patient.id) is None
    # A reader that noted version 0 before the forget tries to write back what it read.
    assert await cache._fill("patients", [(raw, 0)]) == 0
    assert await cached(cache, Patient, patient.id) is None


async def test_an_unreadable_value_is_a_miss_and_is_replaced(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patient = await factories.patient(last_name="Readable")
    id = id_of(patient)
    await redis_client.set(
        keys.document(cache.namespace, "patients", id), '{"_id": 1, "last_name": 1}'
    )
    errors = stat("patients", "error")
    found = await cache.get_many(Patient, [id])
    assert found[id].last_name == "Readable"
    assert stat("patients", "error") == errors + 1
    await assert_cached_as_stored(cache, Patient, patient.id)


async def test_clear_drops_documents_and_keeps_versions(
    database: Any, redis_client: Redis, settings: Settings
) -> None:
    cache = make(redis_client, settings)
    patients = [await factories.patient() for _ in range(3)]
    await cache.get_many(Patient, [p.id for p in patients])
    await cache.store(patients[0])
    assert await cache.clear() == 3
    assert all([await cached(cache, Patient, p.id) is None for p in patients])
    assert await redis_client.get(keys.version(cache.namespace, "patients", id_of(patients[0])))


def test_stats_list_every_cached_collection_with_every_kind() -> None:
    stats = cache_stats()
    assert set(cached_collections()) <= set(stats)
    assert all(set(kinds) == {"hit", "miss", "error", "bypass"} for kinds in stats.values())


def test_an_embedded_store_gets_a_namespace_of_its_own(settings: Settings) -> None:
    assert settings.embedded_mongo
    assert keys.namespace(settings) != keys.namespace(settings)
    real = settings.model_copy(update={"mongodb_url": "mongodb://db.example"})
    expected = f"{real.shms_cache_prefix}:{real.mongodb_db}:v1"
    assert keys.namespace(real) == keys.namespace(real) == expected
