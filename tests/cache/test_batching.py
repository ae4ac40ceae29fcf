"""Through the caches, a page costs one Redis round trip per level and no MongoDB read when
warm: the page's ids come from the result cache, its documents from the document cache."""

from __future__ import annotations

from typing import Any

import pytest

from cache.documents import DocumentCache
from tests import factories
from tests.cache.helpers import cost, stat

PAGE = """
query($first: Int!) {
  appointments(first: $first) {
    nodes {
      id startAt
      patient { id lastName dateOfBirth }
      doctor { id lastName }
      equipment { id serialNumber }
    }
  }
}
"""


async def _facility(appointments: int) -> None:
    departments = [await factories.department() for _ in range(3)]
    doctors = [await factories.doctor(departments[i % 3]) for i in range(12)]
    devices = [await factories.equipment(departments[i % 3]) for i in range(6)]
    for i in range(appointments):
        await factories.appointment(
            await factories.patient(),
            doctors[i % len(doctors)],
            devices[i % len(devices)] if i % 3 else None,
        )


@pytest.mark.parametrize("first", [10, 100])
async def test_a_warm_page_reads_nothing_but_the_page_from_mongodb(
    client_as: Any, cache: DocumentCache, first: int
) -> None:
    await _facility(100)
    admin = client_as(roles=["admin"])
    with cost(cache) as cold:
        data = await admin.data(PAGE, first=first)
    await admin.data(PAGE, first=first)  # the page's ids are cached; its documents now too
    hits = {e: stat(e, "hit") for e in ("patients", "doctors", "equipment")}
    with cost(cache) as warm:
        again = await admin.data(PAGE, first=first)
    assert again == data
    nodes = data["appointments"]["nodes"]
    assert len(nodes) == first and all(n["patient"] and n["doctor"] for n in nodes)
    assert any(n["equipment"] for n in nodes) and any(not n["equipment"] for n in nodes)
    # Cold: per relation one MGET and one backfill, and MongoDB once per relation.
    assert cold.reads == {"appointments": 1, "patients": 1, "doctors": 1, "equipment": 1}
    assert cold.round_trips == 3 * 2
    # Warm: the page's ids from the result cache (under the appointments generation), then
    # one MGET per level, the page's own documents included; MongoDB is not asked at all.
    assert warm.reads == {}
    assert warm.round_trips == 4
    for entity, field in (
        ("patients", "patient"),
        ("doctors", "doctor"),
        ("equipment", "equipment"),
    ):
        distinct = {n[field]["id"] for n in nodes if n[field]}
        assert stat(entity, "hit") - hits[entity] == len(distinct)


async def test_nested_levels_cost_one_round_trip_each(client_as: Any, cache: DocumentCache) -> None:
    """appointment -> patient -> primary doctor: two cached levels, two MGETs when warm."""
    dept = await factories.department()
    doctors = [await factories.doctor(dept) for _ in range(5)]
    for i in range(40):
        patient = await factories.patient(primary_doctor_id=doctors[i % 5].id)
        await factories.appointment(patient, doctors[0])
    query = """{ appointments(first: 40) { nodes { patient { primaryDoctor { lastName } } } } }"""
    admin = client_as(roles=["admin"])
    first = await admin.data(query)
    await admin.data(query)  # the page's documents reach the document cache
    with cost(cache) as warm:
        assert await admin.data(query) == first
    assert warm.round_trips == 3 and warm.reads == {}
