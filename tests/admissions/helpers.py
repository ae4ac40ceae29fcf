"""A small inpatient facility (a department, wards, beds, doctors, patients) and the
operations the admission and ward tests share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models import Department, Doctor, Nurse, Patient
from models.patients import Sex
from models.wards import Bed, SexPolicy, Ward, WardType
from tests import factories

ADMIT = """mutation($input: AdmitPatientInput!, $key: String) {
  admitPatient(input: $input, idempotencyKey: $key) {
    id status patientId bedId wardId departmentId attendingDoctorId source sourceId version
    reason stays { bedId wardId fromAt toAt reason } } }"""
TRANSFER = """mutation($id: ID!, $bedId: ID!, $reason: String, $v: Int) {
  transferPatient(admissionId: $id, bedId: $bedId, reason: $reason, expectedVersion: $v) {
    id bedId wardId version stays { bedId fromAt toAt reason } } }"""
DISCHARGE = """mutation($id: ID!, $note: DischargeNoteInput!, $d: DischargeDisposition!) {
  dischargePatient(admissionId: $id, note: $note, disposition: $d) {
    id status dischargedAt bedId
    discharge { summary diagnosis instructions followUp disposition authorId signedAt
                contentHash } } }"""
ONE = """query($id: ID!) { admission(id: $id) {
  id status patientId bedId reason diagnosis source attendingDoctorId
  bed { id label status } ward { id code } } }"""
LIST = """query($wardId: ID, $patientId: ID, $status: [AdmissionStatus!]) {
  admissions(wardId: $wardId, patientId: $patientId, status: $status) {
    nodes { id status patientId bedId } } }"""
BED = """query($id: ID!) { bed(id: $id) {
  id label status incoming version patientId admissionId blockedReason } }"""
BLOCK = """mutation($id: ID!, $reason: String!) {
  blockBed(id: $id, reason: $reason) { id status blockedReason version } }"""
UNBLOCK = """mutation($id: ID!) { unblockBed(id: $id) { id status blockedReason version } }"""
CLEANED = """mutation($id: ID!) { markBedCleaned(id: $id) { id status version } }"""
BOARD = """query($wardId: ID, $departmentId: ID) {
  bedBoard(wardId: $wardId, departmentId: $departmentId) {
    wardId departmentId
    counts { available occupied incoming cleaning blocked total }
    beds { id label status incoming patientId admissionId } } }"""


@dataclass
class Inpatient:
    department: Department
    ward: Ward
    female_ward: Ward
    beds: list[Bed]
    female_beds: list[Bed]
    doctor: Doctor
    nurse: Nurse
    patients: list[Patient] = field(default_factory=list)


async def ward(dept: Department, **fields: Any) -> Ward:
    i = factories.n()
    base = {"name": f"Ward {i}", "code": f"W{i}", "department_id": dept.id, "capacity": 10}
    return await Ward(**{**base, **fields}).insert()


async def beds(w: Ward, count: int) -> list[Bed]:
    return [
        await Bed(ward_id=w.id, department_id=w.department_id, label=f"B{i + 1}").insert()
        for i in range(count)
    ]


async def inpatient(patients: int = 3, bed_count: int = 4) -> Inpatient:
    dept = await factories.department()
    general = await ward(dept, type=WardType.GENERAL)
    female = await ward(dept, type=WardType.MATERNITY, sex_policy=SexPolicy.FEMALE)
    doctor = await factories.doctor(dept)
    nurse = await factories.nurse(dept, ward_id=general.id)
    people = [await factories.patient(sex=Sex.MALE) for _ in range(patients)]
    return Inpatient(
        dept,
        general,
        female,
        await beds(general, bed_count),
        await beds(female, 2),
        doctor,
        nurse,
        people,
    )


def admit_input(f: Inpatient, patient: Patient, bed: Bed, **overrides: Any) -> dict[str, Any]:
    return {
        "patientId": str(patient.id),
        "bedId": str(bed.id),
        "attendingDoctorId": str(f.doctor.id),
        "source": "ELECTIVE",
        "reason": "Elective hip replacement",
        **overrides,
    }


NOTE = {
    "summary": "Recovered well after surgery.",
    "diagnosis": "Osteoarthritis of the hip",
    "instructions": "Walk daily with a frame.",
    "followUp": "Orthopaedic clinic in 6 weeks",
}
