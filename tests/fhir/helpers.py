"""One patient with a full record (visits, vitals, results, prescriptions, a plan, an admission
diagnosis, insurance), the doctor who treats them, and a FHIR client for the REST export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId

from models import Department, Doctor, Patient
from models.admissions import Admission, AdmissionSource, AdmissionStatus
from models.base import utcnow
from models.billing import ChargeSource
from models.clinical import Diagnosis, Prescription, Route, TreatmentPlan
from models.insurance import InsurancePolicy, Payer
from models.laboratory import (
    LabOrder,
    LabOrderStatus,
    LabResult,
    OrderedTest,
    ResultFlag,
    ResultStatus,
    SpecimenType,
)
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from models.patients import Address, Allergy, Contact, MedicalHistoryEntry
from models.scheduling import AppointmentStatus
from models.vitals import VitalSigns
from services import care
from tests import factories

EVERYTHING = "/fhir/Patient/{}/$everything"

NAME = ("Winifred", "Quarrington")
NATIONAL_ID = "NI-73519-QX"
PHONE = "+44 20 7946 0321"
EMAIL = "winifred.quarrington@example.org"
ADDRESS = ("17 Larkspur Mews", "Little Snoring", "NR21 0AB")
BORN = date(1930, 5, 17)  # over 89: an age group under Safe Harbor
MEMBER_ID = "MEM-99887766"
GROUP_NUMBER = "GRP-4242"


@dataclass
class Record:
    department: Department
    doctor: Doctor
    patient: Patient
    visit: OutpatientVisit
    lab_order: LabOrder
    admission: Admission
    visited_at: datetime


async def record(born: date = BORN) -> Record:
    dept = await factories.department(code="MED", name="Medicine")
    doctor = await factories.doctor(dept)
    patient = await factories.patient(
        clinician_access=False,
        first_name=NAME[0],
        last_name=NAME[1],
        date_of_birth=born,
        national_id=NATIONAL_ID,
        contact=Contact(
            phone=PHONE,
            email=EMAIL,
            address=Address(
                line1=ADDRESS[0], city=ADDRESS[1], postal_code=ADDRESS[2], country="GB"
            ),
        ),
        allergies=[Allergy(substance="Penicillin", reaction="Rash")],
        medical_history=[MedicalHistoryEntry(condition="Asthma", diagnosed_on=date(1990, 3, 4))],
    )
    now = utcnow()
    visited = (now - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    await factories.appointment(
        patient, doctor, start=visited, status=AppointmentStatus.COMPLETED
    )  # the doctor treats the patient (care)
    visit = await OutpatientVisit(
        patient_id=patient.id,
        doctor_id=doctor.id,
        department_id=dept.id,
        arrival=Arrival.WALK_IN,
        status=VisitStatus.COMPLETED,
        reason="Wheezing",
        queue_date=visited.strftime("%Y-%m-%d"),
        queue_number=factories.n(),
        checked_in_at=visited,
        completed_at=visited + timedelta(minutes=40),
        ended_at=visited + timedelta(minutes=40),
        status_at=visited + timedelta(minutes=40),
    ).insert()
    await VitalSigns(
        patient_id=patient.id,
        visit_id=visit.id,
        recorded_by_id=doctor.id,
        recorded_by_role="doctor",
        recorded_at=visited + timedelta(minutes=5),
        temperature=37.2,
        pulse=88,
        systolic=135,
        diastolic=85,
        spo2=95,
    ).insert()
    order = await LabOrder(
        patient_id=patient.id,
        ordering_doctor_id=doctor.id,
        visit_id=visit.id,
        tests=[
            OrderedTest(
                test_id=ObjectId(),
                code="CRP",
                name="C-reactive protein",
                specimen_type=SpecimenType.SERUM,
                price=1500,
            )
        ],
        status=LabOrderStatus.VERIFIED,
        ordered_at=visited + timedelta(minutes=10),
        collected_at=visited + timedelta(minutes=20),
        verified_at=visited + timedelta(hours=3),
        charge_amount=1500,
    ).insert()
    await LabResult(
        order_id=order.id,
        patient_id=patient.id,
        ordering_doctor_id=doctor.id,
        sample_id=ObjectId(),
        test_code="CRP",
        analyte_code="CRP",
        analyte_name="C-reactive protein",
        value=12.5,
        unit="mg/L",
        reference_high=5,
        flag=ResultFlag.HIGH,
        status=ResultStatus.VERIFIED,
        entered_by="lab:1",
        entered_at=visited + timedelta(hours=2),
        verified_at=visited + timedelta(hours=3),
    ).insert()
    await Prescription(
        patient_id=patient.id,
        prescriber_id=doctor.id,
        drug="Salbutamol",
        dose="100 mcg",
        route=Route.INHALED,
        frequency="as needed",
        duration_days=30,
        refills=2,
    ).insert()
    await TreatmentPlan(
        patient_id=patient.id,
        doctor_id=doctor.id,
        diagnosis=Diagnosis(code="J45.9", description="Asthma, unspecified"),
        start_date=visited,
    ).insert()
    admission = await Admission(
        patient_id=patient.id,
        source=AdmissionSource.ELECTIVE,
        attending_doctor_id=doctor.id,
        department_id=dept.id,
        ward_id=ObjectId(),
        bed_id=ObjectId(),
        status=AdmissionStatus.DISCHARGED,
        admitted_at=visited - timedelta(days=30),
        discharged_at=visited - timedelta(days=27),
        reason="Asthma exacerbation",
        diagnosis="Acute severe asthma",
    ).insert()
    payer = await Payer(name="Shire Mutual", code="SHM").insert()
    await InsurancePolicy(
        patient_id=patient.id,
        payer_id=payer.id,
        plan_name="Gold",
        member_id=MEMBER_ID,
        group_number=GROUP_NUMBER,
        covered_sources=[ChargeSource.APPOINTMENT],
        valid_from=datetime(2024, 1, 1, tzinfo=UTC),
    ).insert()
    await care.refresh(patient.id)
    return Record(dept, doctor, patient, visit, order, admission, visited)


def resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    found = [e["resource"] for e in bundle.get("entry", [])]
    return [r for r in found if kind is None or r["resourceType"] == kind]


def types(bundle: dict[str, Any]) -> set[str]:
    return {r["resourceType"] for r in resources(bundle)}
