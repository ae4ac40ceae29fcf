"""GraphQL documents and small builders shared by the outpatient tests."""

from __future__ import annotations

from typing import Any

from models.departments import Department
from models.patients import Patient
from models.scheduling import Appointment
from models.staff import Doctor
from tests import factories

VISIT_FIELDS = """
  id arrival priority status queueNumber queueDate position calledTo version
  checkedInAt calledAt seenAt completedAt endedAt allowedTransitions
  patientId doctorId departmentId appointmentId reason
"""
CHECK_IN = (
    """mutation($input: CheckInOutpatientInput!) { checkInOutpatient(input: $input) {"""
    + VISIT_FIELDS
    + "} }"
)
WALK_IN = (
    """mutation($input: WalkInInput!) { walkInOutpatient(input: $input) {""" + VISIT_FIELDS + "} }"
)
CALL_NEXT = (
    """mutation($room: String!, $departmentId: ID, $doctorId: ID) {
  callNextOutpatient(room: $room, departmentId: $departmentId, doctorId: $doctorId) {"""
    + VISIT_FIELDS
    + "} }"
)
CALL = """mutation($id: ID!, $room: String!, $v: Int) {
  callOutpatient(id: $id, room: $room, expectedVersion: $v) { id status calledTo version }
}"""
START = """mutation($id: ID!, $doctorId: ID) {
  startOutpatientConsultation(id: $id, doctorId: $doctorId) { id status doctorId seenAt }
}"""
COMPLETE = """mutation($id: ID!, $v: Int) {
  completeOutpatientVisit(id: $id, expectedVersion: $v) { id status completedAt position }
}"""
NO_SHOW = """mutation($id: ID!) { markOutpatientNoShow(id: $id) { id status endedAt } }"""
LEFT = """mutation($id: ID!) { markOutpatientLeft(id: $id) { id status endedAt } }"""
PRIORITY = """mutation($id: ID!, $priority: OutpatientPriority!) {
  changeOutpatientPriority(id: $id, priority: $priority) { id priority position }
}"""
VISIT = "query($id: ID!) { visit(id: $id) {" + VISIT_FIELDS + " patient { id lastName } } }"
QUEUE = """query($departmentId: ID, $doctorId: ID) {
  queue(departmentId: $departmentId, doctorId: $doctorId) {
    id status priority position queueNumber
  }
}"""
BOARD = """query($departmentId: ID, $doctorId: ID) {
  outpatientBoard(departmentId: $departmentId, doctorId: $doctorId) {
    departmentId doctorId updatedAt
    entries { queueNumber queueDate priority status position calledTo calledAt }
  }
}"""


async def clinic() -> tuple[Department, Doctor]:
    dept = await factories.department()
    return dept, await factories.doctor(dept)


async def booked(
    doctor: Doctor, patient: Patient | None = None, **fields: Any
) -> tuple[Patient, Appointment]:
    patient = patient or await factories.patient()
    return patient, await factories.appointment(patient, doctor, **fields)
