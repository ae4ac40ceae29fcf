"""A page of vital-signs sets with their patients, recorders and visits costs the same for 10
rows as for 100."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.clinical import PerformerRole
from models.vitals import VitalSigns
from tests import factories
from tests.graphql.test_batching import _count
from tests.vitals.helpers import HOUR_AGO, visit

PAGE = """query($first: Int!) {
  vitalSignsSets(first: $first) {
    nodes {
      id pulse { value unit } bmi { value }
      patient { id lastName }
      recordedBy { id lastName }
      visit { id status }
    }
  }
}"""


async def test_a_page_of_sets_costs_the_same_for_10_or_100_rows(client_as: Any) -> None:
    dept = await factories.department()
    me = await factories.doctor(dept)
    nurses = [await factories.nurse(dept) for _ in range(3)]
    for i in range(100):
        patient = await factories.patient(clinician_access=False)
        await factories.appointment(patient, me, start=factories.FUTURE + timedelta(hours=i))
        seen = await visit(patient, me)
        by = nurses[i % 3] if i % 4 else me
        await VitalSigns(
            patient_id=patient.id,
            visit_id=seen.id,
            recorded_by_id=by.id,
            recorded_by_role=PerformerRole.NURSE if i % 4 else PerformerRole.DOCTOR,
            recorded_at=HOUR_AGO,
            pulse=60 + i % 40,
            height=170,
            weight=70,
            bmi=24.2,
        ).insert()
    doctor = client_as(roles=["doctor"], sid=str(me.id), did=str(dept.id))
    await doctor.data("{ __typename }")  # the caller's status is checked per request, then cached
    small, few = await _count(doctor, PAGE, first=10)
    large, many = await _count(doctor, PAGE, first=100)
    assert len(small["vitalSignsSets"]["nodes"]) == 10
    nodes = large["vitalSignsSets"]["nodes"]
    assert len(nodes) == 100
    assert all(n["patient"] and n["recordedBy"] and n["visit"] for n in nodes)
    assert {n["recordedBy"]["id"] for n in nodes} == {str(me.id), *(str(n.id) for n in nurses)}
    # Grants and treated patients (the scope), the sets, then patients, doctors, nurses and
    # visits in one batch each.
    assert few == many == 7
