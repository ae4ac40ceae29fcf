"""N+1 guards: the number of database operations depends on query depth, not on page size."""

from __future__ import annotations

from typing import Any

import pytest

import db
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
    with db.operations.measure() as ops:
        data = await gql.data(query, **variables)
    return data, ops.total


@pytest.mark.parametrize("first", [10, 100])
async def test_nested_page_costs_one_operation_per_relation_level(gql: Any, first: int) -> None:
    await _facility(100)
    data, operations = await _count(gql, NESTED_PAGE, first=first)
    nodes = data["appointments"]["nodes"]
    assert len(nodes) == first
    assert all(n["patient"] and n["doctor"]["department"] for n in nodes)
    assert any(n["equipment"] for n in nodes) and any(not n["equipment"] for n in nodes)
    # appointments, then patients + doctors + equipment (one level), then departments.
    assert operations == 5


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


async def test_nested_connections_are_batched_per_level(gql: Any) -> None:
    await _facility(60)
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
