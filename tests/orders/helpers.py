"""A ward with an admitted patient, its care team, and the GraphQL operations the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models import Department, Doctor, Nurse, Patient
from models.admissions import Admission, AdmissionSource
from models.base import utcnow
from models.wards import Bed, Ward
from services import care
from tests import factories

CREATE_ORDER = """mutation($input: DoctorOrderInput!) {
  createDoctorOrder(input: $input) {
    id kind status version wardId patientId orderedById labOrderId imagingOrderId
    schedule { pattern startAt everyHours timesOfDay }
    tasks(first: 50) { nodes { id dueAt status description } } } }"""
HOLD = """mutation($id: ID!, $reason: String) {
  holdDoctorOrder(id: $id, reason: $reason) { id status reason version } }"""
RESUME = """mutation($id: ID!) { resumeDoctorOrder(id: $id) { id status version } }"""
COMPLETE_ORDER = """mutation($id: ID!) { completeDoctorOrder(id: $id) { id status } }"""
CANCEL_ORDER = """mutation($id: ID!, $reason: String!) {
  cancelDoctorOrder(id: $id, reason: $reason) { id status reason history { status reason } } }"""
READ_ORDER = """query($id: ID!) { doctorOrder(id: $id) {
  id kind status medication { drug dose unit route } instruction patientId admission { id }
  tasks(first: 50) { nodes { id status dueAt } } } }"""
ORDERS = """query($admissionId: ID) { doctorOrders(admissionId: $admissionId, first: 50) {
  nodes { id status } } }"""
DONE = """mutation($id: ID!, $doneAt: DateTime, $note: String) {
  completeNursingTask(id: $id, doneAt: $doneAt, note: $note) {
    id status doneAt doneById note version } }"""
SKIP = """mutation($id: ID!, $reason: String!) {
  skipNursingTask(id: $id, reason: $reason) { id status reason doneById } }"""
TASKS = """query($filter: NursingTaskFilter) { nursingTasks(filter: $filter, first: 100) {
  nodes { id status dueAt overdue orderId description } } }"""
OVERDUE = """query($wardId: ID!) { overdueNursingTasks(wardId: $wardId) {
  id dueAt overdue status } }"""
CARE_PLAN = """mutation($input: NursingCarePlanInput!) {
  createNursingCarePlan(input: $input) {
    id status problem interventions { id description schedule { pattern everyHours } }
    tasks(first: 50) { nodes { id dueAt sourceId carePlanId } } } }"""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Ward_:
    department: Department
    ward: Ward
    other_ward: Ward
    doctor: Doctor
    nurse: Nurse
    other_nurse: Nurse
    patient: Patient
    admission: Admission


async def admitted_to(ward: Ward, doctor: Doctor, hours_ago: int = 24) -> tuple[Patient, Admission]:
    patient = await factories.patient(clinician_access=False)
    bed = await Bed(
        ward_id=ward.id, department_id=ward.department_id, label=f"B{factories.n()}"
    ).insert()
    admission = await Admission(
        patient_id=patient.id,
        open_patient_id=patient.id,
        source=AdmissionSource.ELECTIVE,
        attending_doctor_id=doctor.id,
        department_id=ward.department_id,
        ward_id=ward.id,
        bed_id=bed.id,
        admitted_at=utcnow() - timedelta(hours=hours_ago),
        reason="Community-acquired pneumonia",
    ).insert()
    await care.refresh(patient.id)
    return patient, admission


async def ward() -> Ward_:
    """Medicine with two wards; a patient admitted to the first under its doctor; a nurse of
    each ward."""
    dept = await factories.department(code=f"MED{factories.n()}", name="Medicine")
    first = await Ward(
        name="Ward 4A", code=f"W{factories.n()}", department_id=dept.id, capacity=4
    ).insert()
    second = await Ward(
        name="Ward 4B", code=f"W{factories.n()}", department_id=dept.id, capacity=4
    ).insert()
    doctor = await factories.doctor(dept)
    nurse = await factories.nurse(dept, ward_id=first.id)
    other = await factories.nurse(dept, ward_id=second.id)
    patient, admission = await admitted_to(first, doctor)
    return Ward_(dept, first, second, doctor, nurse, other, patient, admission)


class Callers:
    def __init__(self, client_as: Any, w: Ward_) -> None:
        did = str(w.department.id)
        self.doctor = client_as(roles=["doctor"], sid=str(w.doctor.id), did=did)
        self.nurse = client_as(roles=["nurse"], sid=str(w.nurse.id), did=did)
        self.other_nurse = client_as(roles=["nurse"], sid=str(w.other_nurse.id), did=did)
        self.billing = client_as(roles=["billing"])
        self.analyst = client_as(roles=["analyst"])
        self.admin = client_as(roles=["admin"])
        self.patient = client_as(roles=["patient"], pid=str(w.patient.id))


def medication(w: Ward_, **schedule: Any) -> dict[str, Any]:
    return {
        "admissionId": str(w.admission.id),
        "kind": "MEDICATION",
        "medication": {"drug": "Amoxicillin", "dose": 500, "unit": "mg", "route": "ORAL"},
        "schedule": {"pattern": "EVERY_HOURS", "everyHours": 8, **schedule},
    }


def once_now(w: Ward_, text: str = "Check oxygen saturation") -> dict[str, Any]:
    """A one-off nursing order due when placed: overdue a moment later."""
    return {
        "admissionId": str(w.admission.id),
        "kind": "NURSING",
        "instruction": text,
        "schedule": {"pattern": "ONCE", "startAt": iso(utcnow() - timedelta(minutes=5))},
    }
