"""N+1 guards: the number of database operations depends on query depth, not on page size."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import db
from cache import runtime
from cache.documents import DocumentCache
from tests import factories

NESTED_PAGE = """
query($first: Int!) {
  appointments(first: $first) {
    nodes {
      id startAt
      patient { id lastName }
      equipment { id serialNumber }
      doctor { id lastName department { id name } }
    }
  }
}
"""


async def _facility(appointments: int) -> None:
    departments = [await factories.department() for _ in range(4)]
    doctors = [await factories.doctor(departments[i % 4]) for i in range(12)]
    devices = [await factories.equipment(departments[i % 4]) for i in range(6)]
    for i in range(appointments):
        await factories.appointment(
            await factories.patient(),
            doctors[i % len(doctors)],
            devices[i % len(devices)] if i % 3 else None,
        )


async def _count(gql: Any, query: str, **variables: Any) -> tuple[dict[str, Any], int]:
    """The data, and the database reads it cost; the audit trail adds exactly one write.

    The document cache starts cold, so the count is what MongoDB alone would cost: the cache
    only ever takes reads away (tests/cache proves how many).
    """
    cache = runtime.current().cache
    if isinstance(cache, DocumentCache):
        await cache.clear()
    with db.operations.measure() as ops:
        data = await gql.data(query, **variables)
    # The embedded store counts collection methods (insert_many), a server its wire commands
    # (insert, and getMore when a cursor needs a second batch): db.OperationCounter.
    audit = ops.counts.pop(("audit_events", "insert_many"), 0)
    audit += ops.counts.pop(("audit_events", "insert"), 0)
    assert audit == 1
    reads = {"find", "aggregate", "distinct", "find_one", "getMore"}
    assert all(op in reads for _, op in ops.counts)
    return data, ops.total


@pytest.mark.parametrize("first", [10, 100])
async def test_nested_page_costs_one_operation_per_relation_level(
    client_as: Any, first: int
) -> None:
    await _facility(100)
    admin = client_as(roles=["admin"])
    data, operations = await _count(admin, NESTED_PAGE, first=first)
    nodes = data["appointments"]["nodes"]
    assert len(nodes) == first
    assert all(n["patient"] and n["doctor"]["department"] for n in nodes)
    assert any(n["equipment"] for n in nodes) and any(not n["equipment"] for n in nodes)
    # appointments, then patients + doctors + equipment (one level), then departments: the
    # access checks and the audit read what those queries loaded, they add no reads.
    assert operations == 5


async def test_a_clinicians_page_costs_the_same_for_10_or_100_rows(client_as: Any) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    for i in range(100):
        patient = await factories.patient(care_team=[doctor.id], care_departments=[dept.id])
        await factories.appointment(patient, doctor, start=factories.FUTURE + timedelta(hours=i))
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    await me.data("{ __typename }")  # the caller's status is checked per request, then cached
    small, few = await _count(me, NESTED_PAGE, first=10)
    large, many = await _count(me, NESTED_PAGE, first=100)
    assert len(small["appointments"]["nodes"]) == 10
    assert len(large["appointments"]["nodes"]) == 100
    # The five of the foundation, plus one for the doctor's break-the-glass grants.
    assert few == many == 6


async def test_nested_data_is_mapped_to_the_right_parent(gql: Any) -> None:
    dept = await factories.department(name="Cardiology", code="CARD")
    doc = await factories.doctor(dept, last_name="House")
    pat = await factories.patient(last_name="Lovelace")
    device = await factories.equipment(dept, serial_number="ECG-1")
    await _facility(5)
    appt = await factories.appointment(pat, doc, device)
    data = await gql.data(
        "query($id: ID!) { appointment(id: $id) { patient { lastName } equipment { serialNumber }"
        " doctor { lastName department { name } } } }",
        id=str(appt.id),
    )
    assert data["appointment"] == {
        "patient": {"lastName": "Lovelace"},
        "equipment": {"serialNumber": "ECG-1"},
        "doctor": {"lastName": "House", "department": {"name": "Cardiology"}},
    }


async def test_nested_connections_are_batched_per_level(client_as: Any) -> None:
    await _facility(60)
    gql = client_as(roles=["admin"])
    query = """query($first: Int!) {
      patients(first: $first) {
        nodes { lastName appointments(first: 2) { totalCount nodes { doctor { lastName } } } }
      }
    }"""
    small, few = await _count(gql, query, first=5)
    assert len(small["patients"]["nodes"]) == 5
    large, many = await _count(gql, query, first=50)
    assert len(large["patients"]["nodes"]) == 50
    assert all(p["appointments"]["totalCount"] == 1 for p in large["patients"]["nodes"])
    # patients, their appointment pages, their appointment counts, the doctors.
    assert few == many == 4
