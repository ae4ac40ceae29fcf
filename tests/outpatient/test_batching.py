"""A page of 100 visits with their relations costs the database what a page of 10 costs."""

from __future__ import annotations

from typing import Any

import pytest

import db
from cache import runtime
from cache.documents import DocumentCache
from services import outpatient
from tests import factories

PAGE = """
query($first: Int!) {
  visits(first: $first) {
    nodes {
      id status position queueNumber
      patient { id lastName }
      doctor { id lastName department { id name } }
      department { id code }
      appointment { id startAt }
    }
  }
}
"""


async def _visits(count: int) -> None:
    departments = [await factories.department() for _ in range(3)]
    doctors = [await factories.doctor(departments[i % 3]) for i in range(6)]
    for i in range(count):
        doctor = doctors[i % len(doctors)]
        patient = await factories.patient()
        if i % 2:
            appointment = await factories.appointment(patient, doctor)
            await outpatient.check_in_appointment(appointment.id, {})  # type: ignore[arg-type]
        else:
            await outpatient.check_in_walk_in(
                {"patient_id": patient.id, "department_id": doctor.department_id}
            )


@pytest.mark.parametrize("first", [10, 100])
async def test_a_page_of_visits_costs_one_operation_per_relation_level(
    client_as: Any, first: int
) -> None:
    await _visits(100)
    admin = client_as(roles=["admin"])
    # The caller's standing is checked once, then cached; the queues behind `position` are
    # in Redis (filled on first read when, as here, the rows were not written by the API).
    await admin.data(PAGE, first=first)
    cache = runtime.current().cache
    if isinstance(cache, DocumentCache):
        await cache.clear()  # count what MongoDB alone would cost
    with db.operations.measure() as ops:
        data = await admin.data(PAGE, first=first)
    nodes = data["visits"]["nodes"]
    assert len(nodes) == first
    assert all(n["patient"] and n["department"] and n["position"] for n in nodes)
    assert any(n["appointment"] for n in nodes) and any(not n["doctor"] for n in nodes)
    assert ops.counts.pop(("audit_events", "insert_many")) == 1
    # visits; then patients, doctors, departments and appointments (one level); then the
    # doctors' departments. Positions come from Redis: no visit is read again for them.
    assert ops.counts == {
        ("outpatient_visits", "find"): 1,
        ("patients", "find"): 1,
        ("doctors", "find"): 1,
        ("departments", "find"): ops.counts[("departments", "find")],
        ("appointments", "find"): 1,
    }
    assert ops.counts[("departments", "find")] <= 2
