"""GraphQL documents and a small ED (department, nurse, doctor, desk) shared by the ED tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.departments import Department
from models.staff import Doctor, Nurse
from models.wards import Bed, Ward
from tests import factories

VISIT_FIELDS = """
  id status arrivalMode arrivedAt seenAt version unidentified patientId departmentId
  assignedDoctorId triageLevel triageLevelMeaning waitingMinutes dispositionKind disposedAt
  admissionId chiefComplaint
  triage { level levelMeaning triagedAt triagedById triagedByRole note
    vitals { heartRate systolic diastolic respiratoryRate spo2 temperature painScore gcs } }
  triageHistory { level triagedAt triagedById }
  disposition { kind at destination note admissionId byId }
  history { action fromStatus toStatus by }
"""
REGISTER = (
    "mutation($input: RegisterEmergencyArrivalInput!) { registerEmergencyArrival(input: $input) {"
    + VISIT_FIELDS
    + "} }"
)
REGISTER_DESK = """mutation($input: RegisterEmergencyArrivalInput!) {
  registerEmergencyArrival(input: $input) { id status patientId unidentified version }
}"""
TRIAGE = (
    """mutation($id: ID!, $input: TriageEmergencyVisitInput!, $v: Int) {
  triageEmergencyVisit(id: $id, input: $input, expectedVersion: $v) {"""
    + VISIT_FIELDS
    + "} }"
)
ASSIGN = """mutation($id: ID!, $doctorId: ID) {
  assignEmergencyDoctor(id: $id, doctorId: $doctorId) { id status assignedDoctorId version }
}"""
START = """mutation($id: ID!) {
  startEmergencyTreatment(id: $id) { id status assignedDoctorId seenAt version }
}"""
DISPOSE = """mutation($id: ID!, $kind: EmergencyDispositionKind!, $destination: String,
  $note: String, $at: DateTime) {
  disposeEmergencyVisit(id: $id, kind: $kind, destination: $destination, note: $note, at: $at) {
    id status dispositionKind disposedAt disposition { kind destination note }
  }
}"""
ADMIT = """mutation($id: ID!, $input: AdmitFromEmergencyInput!) {
  admitFromEmergency(id: $id, input: $input) {
    id status dispositionKind admissionId disposition { kind admissionId }
  }
}"""
LWBS = """mutation($id: ID!, $note: String) {
  leftWithoutBeingSeen(id: $id, note: $note) { id status dispositionKind disposedAt }
}"""
VISIT = "query($id: ID!) { emergencyVisit(id: $id) {" + VISIT_FIELDS + "} }"
VISITS = """query($filter: EmergencyVisitFilter, $first: Int) {
  emergencyVisits(filter: $filter, first: $first) { edges { node { id status triageLevel } } }
}"""
BOARD = """query($departmentId: ID!) {
  emergencyBoard(departmentId: $departmentId) {
    departmentId awaitingTriage open updatedAt
    counts { level count }
    entries { position visitId level levelMeaning status arrivalMode arrivedAt waitingMinutes
      assignedDoctorId }
  }
}"""


@dataclass
class Ed:
    department: Department
    nurse: Nurse
    doctor: Doctor

    @property
    def id(self) -> str:
        return str(self.department.id)

    def claims(self, role: str) -> dict[str, Any]:
        staff = {"nurse": self.nurse.id, "doctor": self.doctor.id}.get(role)
        out: dict[str, Any] = {"roles": [role], "did": self.id}
        if staff is not None:
            out["sid"] = str(staff)
        return out


async def emergency_department(code: str = "ER") -> Ed:
    dept = await factories.department(code=code, name="Emergency")
    return Ed(dept, await factories.nurse(dept), await factories.doctor(dept))


async def free_bed() -> Bed:
    dept = await factories.department()
    ward = await Ward(
        name="Medical ward", code=f"W{factories.n()}", department_id=dept.id, capacity=10
    ).insert()
    return await Bed(ward_id=ward.id, department_id=dept.id, label="1").insert()


VITALS = {
    "heartRate": 118,
    "systolic": 92,
    "diastolic": 58,
    "respiratoryRate": 24,
    "spo2": 93.0,
    "temperature": 38.6,
    "painScore": 7,
    "gcs": 15,
}
