"""A small Radiology facility, its callers, and the GraphQL operations the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models import Department, Doctor, MedicalEquipment, Nurse, Patient
from models.base import utcnow
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from services import care
from tests import factories

START = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)

ORDER = """mutation($input: OrderImagingInput!) {
  orderImaging(input: $input) { id status modality price version } }"""
SCHEDULE = """mutation($orderId: ID!, $input: ScheduleImagingStudyInput!) {
  scheduleImagingStudy(orderId: $orderId, input: $input) {
    id accessionNumber status scheduledStart scheduledEnd equipmentId } }"""
START_STUDY = """mutation($id: ID!) {
  startImagingStudy(id: $id) { id status performedById performedByRole startedAt } }"""
COMPLETE = """mutation($id: ID!) { completeImagingStudy(id: $id) { id status endedAt } }"""
DRAFT = """mutation($studyId: ID!, $input: ImagingReportDraftInput!) {
  createImagingReportDraft(studyId: $studyId, input: $input) { id status version } }"""
EDIT = """mutation($id: ID!, $input: UpdateImagingReportDraftInput!, $version: Int) {
  updateImagingReportDraft(id: $id, input: $input, version: $version) {
    id findings impression version } }"""
SIGN = """mutation($id: ID!) {
  signImagingReport(id: $id) { id kind findings impression contentHash signedAt authorId } }"""
ADDENDUM = """mutation($reportId: ID!, $text: String!) {
  addImagingAddendum(reportId: $reportId, text: $text) { id kind text amendsId contentHash } }"""
CANCEL = """mutation($id: ID!, $reason: String) {
  cancelImagingOrder(id: $id, reason: $reason) { id status cancellationReason } }"""
READ_ORDER = """query($id: ID!) { imagingOrder(id: $id) {
  id status clinicalQuestion price chargedAt reportId
  study { id accessionNumber status }
  report { id kind findings impression contentHash addenda { nodes { id text } } } } }"""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Facility:
    radiology: Department
    ward: Department
    doctor: Doctor
    radiologist: Doctor
    radiographer: Nurse
    ct: MedicalEquipment
    xray: MedicalEquipment
    ward_ct: MedicalEquipment
    patient: Patient
    visit: OutpatientVisit


async def facility() -> Facility:
    """Radiology (code RAD) with a CT and an X-ray; a ward whose doctor treats the patient and
    saw them in a completed visit."""
    radiology = await factories.department(code="RAD", name="Radiology")
    ward = await factories.department(code="ORTH", name="Orthopaedics")
    doctor = await factories.doctor(ward, specialty="Orthopaedics")
    radiologist = await factories.doctor(radiology, specialty="Diagnostic Radiology")
    radiographer = await factories.nurse(radiology)
    ct = await factories.equipment(radiology, name="CT", equipment_type="CT scanner")
    xray = await factories.equipment(radiology, name="X-ray", equipment_type="X-ray system")
    ward_ct = await factories.equipment(ward, name="Ward CT", equipment_type="CT scanner")
    patient = await factories.patient(clinician_access=False)
    await factories.billing_account(patient)
    await factories.appointment(patient, doctor)  # the doctor treats the patient (care)
    now = utcnow()
    visit = OutpatientVisit(
        patient_id=patient.id,
        doctor_id=doctor.id,
        department_id=ward.id,
        arrival=Arrival.WALK_IN,
        status=VisitStatus.COMPLETED,
        queue_date=now.strftime("%Y-%m-%d"),
        queue_number=factories.n(),
        checked_in_at=now - timedelta(hours=1),
        completed_at=now,
        status_at=now,
    )
    await visit.insert()
    await care.refresh(patient.id)
    return Facility(
        radiology, ward, doctor, radiologist, radiographer, ct, xray, ward_ct, patient, visit
    )


class Callers:
    def __init__(self, client_as: Any, f: Facility) -> None:
        self.doctor = client_as(roles=["doctor"], sid=str(f.doctor.id), did=str(f.ward.id))
        self.radiologist = client_as(
            roles=["radiologist"], sid=str(f.radiologist.id), did=str(f.radiology.id)
        )
        self.radiographer = client_as(
            roles=["nurse"], sid=str(f.radiographer.id), did=str(f.radiology.id)
        )
        self.billing = client_as(roles=["billing"])
        self.analyst = client_as(roles=["analyst"])
        self.patient = client_as(roles=["patient"], pid=str(f.patient.id))
        self.admin = client_as(roles=["admin"])


def order_input(f: Facility, **overrides: Any) -> dict[str, Any]:
    return {
        "patientId": str(f.patient.id),
        "visitId": str(f.visit.id),
        "modality": "CT",
        "bodyPart": "Knee",
        "laterality": "LEFT",
        "clinicalQuestion": "Tibial plateau fracture after a fall?",
        "priority": "URGENT",
        **overrides,
    }


def slot(device: MedicalEquipment, start: datetime = START, minutes: int = 30) -> dict[str, Any]:
    end = start + timedelta(minutes=minutes)
    return {"equipmentId": str(device.id), "startAt": iso(start), "endAt": iso(end)}


async def ordered(c: Callers, f: Facility, **overrides: Any) -> str:
    data = await c.doctor.data(ORDER, input=order_input(f, **overrides))
    return str(data["orderImaging"]["id"])


async def scheduled(c: Callers, f: Facility, **kwargs: Any) -> tuple[str, str]:
    order_id = await ordered(c, f)
    data = await c.radiologist.data(SCHEDULE, orderId=order_id, input=slot(f.ct, **kwargs))
    return order_id, str(data["scheduleImagingStudy"]["id"])


async def reported(c: Callers, f: Facility) -> tuple[str, str, str]:
    """An order taken to a signed final report: (order, study, report) ids."""
    order_id, study_id = await scheduled(c, f)
    await c.radiographer.data(START_STUDY, id=study_id)
    await c.radiographer.data(COMPLETE, id=study_id)
    text = {"findings": "Undisplaced lateral tibial plateau fracture.", "impression": "Fracture."}
    draft = await c.radiologist.data(DRAFT, studyId=study_id, input=text)
    draft_id = draft["createImagingReportDraft"]["id"]
    signed = await c.radiologist.data(SIGN, id=draft_id)
    return order_id, study_id, str(signed["signImagingReport"]["id"])
