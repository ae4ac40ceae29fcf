"""A page of lab orders with their relations costs the same database operations for 10 rows as
for 100 (see tests/graphql/test_batching.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from models.laboratory import (
    LabOrder,
    LabOrderStatus,
    LabResult,
    LabSample,
    OrderedTest,
    ResultFlag,
    SampleStatus,
    SpecimenType,
)
from tests import factories
from tests.graphql.test_batching import _count

PAGE = """query($first: Int!) {
  labOrders(first: $first) {
    nodes {
      id status priority
      patient { id lastName }
      orderingDoctor { id lastName }
      samples(first: 2) { nodes { accessionNumber status } }
      results(first: 5) { nodes { analyteCode value flag referenceRange } }
    }
  }
}"""


async def _orders(count: int) -> tuple[Any, Any]:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    orders, samples, results = [], [], []
    for i in range(count):
        patient = await factories.patient(clinician_access=False)
        await factories.appointment(patient, doctor, start=factories.FUTURE + timedelta(hours=i))
        order = LabOrder(
            id=PydanticObjectId(),
            patient_id=patient.id,
            ordering_doctor_id=doctor.id,
            tests=[
                OrderedTest(
                    test_id=doctor.id,  # any id: the catalogue is not read here
                    code="CRP",
                    name="C-reactive protein",
                    specimen_type=SpecimenType.SERUM,
                    price=1200,
                )
            ],
            status=LabOrderStatus.RESULTED,
            ordered_at=at,
            charge_amount=1200,
        )
        sample = LabSample(
            id=PydanticObjectId(),
            order_id=order.id,
            patient_id=patient.id,
            ordering_doctor_id=doctor.id,
            accession_number=f"L20261201-{i + 1:05d}",
            specimen_type=SpecimenType.SERUM,
            status=SampleStatus.RECEIVED,
            collected_at=at,
            collected_by="lab:tech",
        )
        results.append(
            LabResult(
                order_id=order.id,
                patient_id=patient.id,
                ordering_doctor_id=doctor.id,
                sample_id=sample.id,
                test_code="CRP",
                analyte_code="CRP",
                analyte_name="C-reactive protein",
                value=3.0 + i % 5,
                unit="mg/L",
                reference_high=5.0,
                reference_range="0-5",
                flag=ResultFlag.NORMAL if i % 5 < 3 else ResultFlag.HIGH,
                entered_by="lab:tech",
                entered_at=at,
            )
        )
        orders.append(order)
        samples.append(sample)
    await LabOrder.insert_many(orders)
    await LabSample.insert_many(samples)
    await LabResult.insert_many(results)
    return dept, doctor


async def test_a_page_of_100_lab_orders_costs_what_a_page_of_10_does(client_as: Any) -> None:
    dept, doctor = await _orders(100)
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    await me.data("{ __typename }")  # the caller's status is checked per request, then cached
    small, few = await _count(me, PAGE, first=10)
    large, many = await _count(me, PAGE, first=100)
    assert len(small["labOrders"]["nodes"]) == 10
    nodes = large["labOrders"]["nodes"]
    assert len(nodes) == 100
    assert all(n["patient"]["id"] and n["orderingDoctor"]["id"] == str(doctor.id) for n in nodes)
    assert all(len(n["samples"]["nodes"]) == 1 and len(n["results"]["nodes"]) == 1 for n in nodes)
    assert few == many
