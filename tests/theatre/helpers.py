"""A small theatre suite, its callers, and the GraphQL operations the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models import Department, Doctor, Nurse, Patient
from models.staff import AdminStaff
from models.theatre import OperatingTheatre
from tests import factories

START = datetime(2031, 6, 2, 8, 0, tzinfo=UTC)

BOOK = """mutation($input: BookSurgeryInput!) {
  bookSurgery(input: $input) {
    id status priority startAt endAt reservedUntil theatreId surgeonId anaesthetistId version } }"""
RESCHEDULE = """mutation($id: ID!, $input: RescheduleSurgeryInput!, $version: Int) {
  rescheduleSurgery(id: $id, input: $input, version: $version) {
    id startAt endAt reservedUntil version rescheduleHistory { previousStartAt } } }"""
CANCEL = """mutation($id: ID!, $reason: String!) {
  cancelSurgery(id: $id, reason: $reason) { id status cancellation { reason } } }"""
START_SURGERY = """mutation($id: ID!, $input: SurgicalRecordInput) {
  startSurgery(id: $id, input: $input) {
    id bookingId checklistComplete checklist { item checkedById } inTheatreAt version } }"""
RECORD = """mutation($id: ID!, $input: SurgicalRecordInput!, $version: Int) {
  updateSurgicalRecord(id: $id, input: $input, version: $version) {
    id checklistComplete incisionAt closureAt outOfTheatreAt procedureCodes anaesthesiaType
    postOpDestination version } }"""
COMPLETE = """mutation($id: ID!) {
  completeSurgery(id: $id) { id status theatreCharge procedureFee chargedAt } }"""
READ = """query($id: ID!) { surgeryBooking(id: $id) {
  id status startAt notes procedure { description codes } patientId theatreCharge
  record { id incisionAt complications notes } } }"""
SCHEDULE_DAY = """query($theatreId: ID!, $day: Date!) {
  theatreSchedule(theatreId: $theatreId, day: $day) {
    theatreId day blocks { kind startAt endAt booking { id } } } }"""

CHECKLIST = [
    "IDENTITY_CONFIRMED",
    "SITE_MARKED",
    "CONSENT_SIGNED",
    "FASTING_CONFIRMED",
    "ALLERGIES_REVIEWED",
]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Suite:
    surgery: Department
    other: Department
    theatre: OperatingTheatre
    theatre2: OperatingTheatre
    surgeon: Doctor
    surgeon2: Doctor
    anaesthetist: Doctor
    anaesthetist2: Doctor
    outsider: Doctor
    theatre_nurse: Nurse
    other_nurse: Nurse
    scheduler: AdminStaff
    patient: Patient
    patient2: Patient


async def _admin_staff(dept: Department) -> AdminStaff:
    i = factories.n()
    return await AdminStaff(
        first_name="Theo", last_name=f"Scheduler{i}", department_id=dept.id
    ).insert()


async def suite() -> Suite:
    surgery = await factories.department(code="SURG", name="Surgery")
    other = await factories.department(code="CARD", name="Cardiology")
    theatre = await OperatingTheatre(
        name="Theatre 1", code="OT1", department_id=surgery.id, turnover_minutes=30
    ).insert()
    theatre2 = await OperatingTheatre(
        name="Theatre 2", code="OT2", department_id=surgery.id, turnover_minutes=15
    ).insert()
    surgeon = await factories.doctor(surgery, specialty="General Surgery")
    surgeon2 = await factories.doctor(surgery, specialty="General Surgery")
    anaesthetist = await factories.doctor(surgery, specialty="Anaesthesiology")
    anaesthetist2 = await factories.doctor(surgery, specialty="Anesthesiology")
    outsider = await factories.doctor(other, specialty="Cardiology")
    patient = await factories.patient(clinician_access=False)
    patient2 = await factories.patient(clinician_access=False)
    for p in (patient, patient2):
        await factories.billing_account(p)
    return Suite(
        surgery, other, theatre, theatre2, surgeon, surgeon2, anaesthetist, anaesthetist2,
        outsider, await factories.nurse(surgery), await factories.nurse(other),
        await _admin_staff(surgery), patient, patient2,
    )  # fmt: skip


class Callers:
    def __init__(self, client_as: Any, s: Suite) -> None:
        self.admin = client_as(roles=["admin"])
        self.scheduler = client_as(
            roles=["admin_staff"], sid=str(s.scheduler.id), did=str(s.surgery.id)
        )
        self.other_desk = client_as(roles=["admin_staff"], did=str(s.other.id))
        self.surgeon = client_as(roles=["doctor"], sid=str(s.surgeon.id), did=str(s.surgery.id))
        self.anaesthetist = client_as(
            roles=["doctor"], sid=str(s.anaesthetist.id), did=str(s.surgery.id)
        )
        self.outsider = client_as(roles=["doctor"], sid=str(s.outsider.id), did=str(s.other.id))
        self.nurse = client_as(roles=["nurse"], sid=str(s.theatre_nurse.id), did=str(s.surgery.id))
        self.other_nurse = client_as(
            roles=["nurse"], sid=str(s.other_nurse.id), did=str(s.other.id)
        )
        self.billing = client_as(roles=["billing"])
        self.analyst = client_as(roles=["analyst"])
        self.patient = client_as(roles=["patient"], pid=str(s.patient.id))
        self.patient2 = client_as(roles=["patient"], pid=str(s.patient2.id))


def booking(
    s: Suite, start: datetime = START, minutes: int = 60, **overrides: Any
) -> dict[str, Any]:
    return {
        "patientId": str(s.patient.id),
        "theatreId": str(s.theatre.id),
        "surgeonId": str(s.surgeon.id),
        "anaesthetistId": str(s.anaesthetist.id),
        "startAt": iso(start),
        "endAt": iso(start + timedelta(minutes=minutes)),
        "procedure": {"description": "Laparoscopic cholecystectomy", "codes": ["0FT44ZZ"]},
        "notes": "Difficult airway last time: video laryngoscope ready.",
        **overrides,
    }


async def booked(c: Callers, s: Suite, **kwargs: Any) -> str:
    data = await c.scheduler.data(BOOK, input=booking(s, **kwargs))
    return str(data["bookSurgery"]["id"])
