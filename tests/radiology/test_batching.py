"""A page of imaging orders with their patient, doctor, study and report costs the same
database operations for 10 rows as for 100."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models.base import utcnow
from models.radiology import (
    ImagingModality,
    ImagingOrder,
    ImagingOrderStatus,
    ImagingReport,
    ImagingReportKind,
    ImagingStudy,
    ImagingStudyStatus,
)
from services import care
from tests import factories
from tests.graphql.test_batching import _count

PAGE = """query($first: Int!) {
  imagingOrders(first: $first) {
    nodes {
      id status
      patient { id lastName }
      orderingDoctor { id lastName }
      study { id accessionNumber equipment { id name } }
      report { id impression }
    }
  }
}"""


async def _orders(count: int) -> Any:
    """``count`` reported orders of one ordering doctor (who treats every patient through them)."""
    radiology = await factories.department(code="RAD", name="Radiology")
    ct = await factories.equipment(radiology, equipment_type="CT scanner")
    doctor = await factories.doctor()
    start = utcnow() - timedelta(days=3)
    for i in range(count):
        patient = await factories.patient(clinician_access=False)
        order = await ImagingOrder(
            patient_id=patient.id,
            ordering_doctor_id=doctor.id,
            department_id=radiology.id,
            modality=ImagingModality.CT,
            body_part="Head",
            clinical_question="Bleed?",
            status=ImagingOrderStatus.REPORTED,
            price=30000,
        ).insert()
        study = await ImagingStudy(
            order_id=order.id,
            patient_id=patient.id,
            ordering_doctor_id=doctor.id,
            department_id=radiology.id,
            accession_number=f"T{i:06d}",
            modality=ImagingModality.CT,
            equipment_id=ct.id,
            scheduled_start=start + timedelta(minutes=30 * i),
            scheduled_end=start + timedelta(minutes=30 * i + 30),
            status=ImagingStudyStatus.COMPLETED,
        ).insert()
        report = await ImagingReport(
            study_id=study.id,
            order_id=order.id,
            patient_id=patient.id,
            department_id=radiology.id,
            ordering_doctor_id=doctor.id,
            author_id=doctor.id,
            kind=ImagingReportKind.FINAL,
            findings="No bleed.",
            impression="Normal.",
            final_for_study_id=study.id,
            signed_at=start,
            content_hash="0" * 64,
        ).insert()
        order.study_id, order.report_id = study.id, report.id
        await order.save()
        await care.refresh(patient.id)  # as services.changes does after every order write
    return doctor


@pytest.mark.parametrize("first", [10, 100])
async def test_a_page_of_orders_costs_one_operation_per_relation_level(
    client_as: Any, first: int
) -> None:
    doctor = await _orders(100)
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(doctor.department_id))
    await me.data("{ __typename }")  # the caller's status is checked per request, then cached
    data, operations = await _count(me, PAGE, first=first)
    nodes = data["imagingOrders"]["nodes"]
    assert len(nodes) == first
    assert all(n["patient"] and n["orderingDoctor"] and n["study"]["equipment"] for n in nodes)
    assert all(n["report"]["impression"] == "Normal." for n in nodes)
    # grants, the patients the doctor treats (the list's scope), orders; then patients,
    # doctors, studies and reports; then the studies' equipment
    assert operations == 8
