"""Every mutation that writes a cached entity: warm the cache, mutate over HTTP, read again.

Each test first reads through the cache and checks Redis now holds the document, so the read
after the mutation would show a stale copy if a write forgot the cache. Nested lists are read
too: they are never cached, but they must show the change (and their rows' relations come
through the cache).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cache.documents import DocumentCache
from models import (
    Appointment,
    BillingAccount,
    Doctor,
    MedicalEquipment,
    Patient,
    TreatmentPlan,
)
from tests import factories
from tests.cache.helpers import assert_cached_as_stored
from tests.graphql.helpers import code

FUTURE = factories.FUTURE


async def warm(cache: DocumentCache, model: type[Any], *ids: Any) -> None:
    """The reads before the mutation went through the cache: Redis holds these documents."""
    for id in ids:
        await assert_cached_as_stored(cache, model, id)


# Patients

PATIENT = """query($id: ID!) { patient(id: $id) {
  firstName lastName dateOfBirth allergies { substance severity } primaryDoctor { lastName }
  appointments { totalCount nodes { id status startAt doctor { lastName } } }
  treatmentPlans { totalCount nodes { id status } }
  prescriptions { totalCount nodes { id dose status } }
  billingAccount { id balance { amount } }
} }"""
CHART = """query($id: ID!) { patient(id: $id) {
  firstName lastName dateOfBirth primaryDoctor { lastName } appointments { totalCount }
} }"""
"""What any treating clinician may read; billing and new patients' clinical data are not."""


async def test_register_patient(gql: Any, cache: DocumentCache) -> None:
    doctor = await factories.doctor(last_name="Primary")
    data = await gql.data(
        """mutation($input: RegisterPatientInput!) { registerPatient(input: $input) { id } }""",
        input={
            "firstName": "Zoë",
            "lastName": "New",
            "dateOfBirth": "1950-05-17",
            "primaryDoctorId": str(doctor.id),
        },
    )
    id = data["registerPatient"]["id"]
    await assert_cached_as_stored(cache, Patient, id)  # written through on creation
    patient = (await gql.data(CHART, id=id))["patient"]
    assert (patient["firstName"], patient["dateOfBirth"]) == ("Zoë", "1950-05-17")
    assert patient["primaryDoctor"] == {"lastName": "Primary"}


async def test_update_patient(gql: Any, cache: DocumentCache) -> None:
    patient = await factories.patient(last_name="Before")
    before = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    await warm(cache, Patient, patient.id)
    assert before["lastName"] == "Before" and before["allergies"] == []
    await gql.data(
        """mutation($id: ID!, $input: UpdatePatientInput!) {
          updatePatient(id: $id, input: $input) { id } }""",
        id=str(patient.id),
        input={"lastName": "After", "allergies": [{"substance": "Latex", "severity": "SEVERE"}]},
    )
    after = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    assert after["lastName"] == "After"
    assert after["allergies"] == [{"substance": "Latex", "severity": "SEVERE"}]
    await assert_cached_as_stored(cache, Patient, patient.id)


# Appointments

APPOINTMENT = """query($id: ID!) { appointment(id: $id) {
  status startAt endAt rescheduleHistory { previousStartAt } cancellation { reason }
  patient { lastName } doctor { lastName } equipment { serialNumber departmentId }
} }"""
DOCTOR = """query($id: ID!, $status: [AppointmentStatus!]) { doctor(id: $id) {
  lastName departmentId department { code }
  appointments(status: $status) { totalCount nodes { id status startAt } }
} }"""
DEVICE = """query($id: ID!) { equipment(id: $id) {
  status statusHistory { toStatus } departmentId department { code }
  appointments { totalCount nodes { id } }
} }"""
SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id } }"""


async def test_schedule_appointment(gql: Any, client_as: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    device = await factories.equipment(dept)
    patient = await factories.patient()  # treated by the test clinician, not by this doctor
    as_doctor = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    assert code(await as_doctor.error(CHART, id=str(patient.id))) == "FORBIDDEN"
    before = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    day = (await gql.data(DOCTOR, id=str(doctor.id)))["doctor"]
    used = (await gql.data(DEVICE, id=str(device.id)))["equipment"]
    await warm(cache, Patient, patient.id)
    await warm(cache, Doctor, doctor.id)
    await warm(cache, MedicalEquipment, device.id)
    assert before["appointments"]["totalCount"] == day["appointments"]["totalCount"] == 0
    assert used["appointments"]["totalCount"] == 0
    start = FUTURE + timedelta(days=1)
    data = await gql.data(
        SCHEDULE,
        input={
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "equipmentId": str(device.id),
            "startAt": start.isoformat(),
            "endAt": (start + timedelta(minutes=30)).isoformat(),
            "reason": "Check-up",
        },
    )
    id = data["scheduleAppointment"]["id"]
    after = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    assert [n["id"] for n in after["appointments"]["nodes"]] == [id]
    day = (await gql.data(DOCTOR, id=str(doctor.id)))["doctor"]
    assert [n["id"] for n in day["appointments"]["nodes"]] == [id]
    used = (await gql.data(DEVICE, id=str(device.id)))["equipment"]
    assert [n["id"] for n in used["appointments"]["nodes"]] == [id]
    # Booking made the doctor a treating clinician: the cached patient learnt it at once.
    await assert_cached_as_stored(cache, Patient, patient.id)
    await assert_cached_as_stored(cache, Appointment, id)
    seen = await as_doctor.data(CHART, id=str(patient.id))
    assert seen["patient"]["appointments"]["totalCount"] == 1


async def test_reschedule_appointment(gql: Any, cache: DocumentCache) -> None:
    visit = await factories.appointment(start=FUTURE)
    before = (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]
    await warm(cache, Appointment, visit.id)
    assert before["rescheduleHistory"] == []
    later = FUTURE + timedelta(days=3)
    await gql.data(
        """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
          rescheduleAppointment(id: $id, input: $input) { id } }""",
        id=str(visit.id),
        input={"startAt": later.isoformat(), "endAt": (later + timedelta(hours=1)).isoformat()},
    )
    after = (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]
    assert after["startAt"] == later.isoformat()
    assert after["rescheduleHistory"] == [{"previousStartAt": FUTURE.isoformat()}]
    day = (await gql.data(DOCTOR, id=str(visit.doctor_id)))["doctor"]
    assert day["appointments"]["nodes"][0]["startAt"] == later.isoformat()
    await assert_cached_as_stored(cache, Appointment, visit.id)


async def test_cancel_appointment(gql: Any, cache: DocumentCache) -> None:
    doctor = await factories.doctor()
    visits = [await factories.appointment(doc=doctor) for _ in range(3)]
    scheduled = {"id": str(doctor.id), "status": ["SCHEDULED"]}
    before = (await gql.data(DOCTOR, **scheduled))["doctor"]
    await gql.data(APPOINTMENT, id=str(visits[1].id))
    await warm(cache, Doctor, doctor.id)
    await warm(cache, Appointment, visits[1].id)
    assert before["appointments"]["totalCount"] == 3
    await gql.data(
        """mutation($id: ID!) { cancelAppointment(id: $id, reason: "Ill") { id } }""",
        id=str(visits[1].id),
    )
    after = (await gql.data(DOCTOR, **scheduled))["doctor"]
    assert after["appointments"]["totalCount"] == 2
    assert str(visits[1].id) not in {n["id"] for n in after["appointments"]["nodes"]}
    visit = (await gql.data(APPOINTMENT, id=str(visits[1].id)))["appointment"]
    assert (visit["status"], visit["cancellation"]) == ("CANCELLED", {"reason": "Ill"})
    await assert_cached_as_stored(cache, Appointment, visits[1].id)


# Clinical

PLAN = """query($id: ID!) { treatmentPlan(id: $id) {
  status notes goals doctor { lastName } patient { lastName }
  treatments { totalCount nodes { id procedure equipment { serialNumber } } }
} }"""
CREATE_PLAN = """mutation($input: CreateTreatmentPlanInput!) {
  createTreatmentPlan(input: $input) { id } }"""


async def test_create_treatment_plan(gql: Any, client_as: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    patient = await factories.patient()
    before = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    await warm(cache, Patient, patient.id)
    assert before["treatmentPlans"]["totalCount"] == 0
    data = await gql.data(
        CREATE_PLAN,
        input={
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "diagnosis": {"code": "I10", "description": "Hypertension"},
        },
    )
    id = data["createTreatmentPlan"]["id"]
    after = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    assert after["treatmentPlans"]["nodes"] == [{"id": id, "status": "ACTIVE"}]
    await assert_cached_as_stored(cache, TreatmentPlan, id)
    await assert_cached_as_stored(cache, Patient, patient.id)
    as_doctor = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    assert (await as_doctor.data(PLAN, id=id))["treatmentPlan"]["patient"] is not None


async def test_update_treatment_plan(gql: Any, client_as: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    successor = await factories.doctor(dept, last_name="Successor")
    plan = await factories.treatment_plan()
    before = (await gql.data(PLAN, id=str(plan.id)))["treatmentPlan"]
    await gql.data(PATIENT, id=str(plan.patient_id))
    await warm(cache, TreatmentPlan, plan.id)
    await warm(cache, Patient, plan.patient_id)
    assert before["notes"] is None
    as_successor = client_as(roles=["doctor"], sid=str(successor.id), did=str(dept.id))
    assert code(await as_successor.error(CHART, id=str(plan.patient_id))) == "FORBIDDEN"
    await gql.data(
        """mutation($id: ID!, $input: UpdateTreatmentPlanInput!) {
          updateTreatmentPlan(id: $id, input: $input) { id } }""",
        id=str(plan.id),
        input={"notes": "Salt intake down", "doctorId": str(successor.id), "status": "ON_HOLD"},
    )
    after = (await gql.data(PLAN, id=str(plan.id)))["treatmentPlan"]
    assert (after["notes"], after["status"]) == ("Salt intake down", "ON_HOLD")
    assert after["doctor"] == {"lastName": "Successor"}
    await assert_cached_as_stored(cache, TreatmentPlan, plan.id)
    await assert_cached_as_stored(cache, Patient, plan.patient_id)  # the new doctor treats
    assert (await as_successor.data(CHART, id=str(plan.patient_id)))["patient"]


async def test_record_treatment(gql: Any, cache: DocumentCache) -> None:
    device = await factories.equipment(serial_number="US-7")
    plan = await factories.treatment_plan()
    before = (await gql.data(PLAN, id=str(plan.id)))["treatmentPlan"]
    await warm(cache, TreatmentPlan, plan.id)
    assert before["treatments"]["totalCount"] == 0
    data = await gql.data(
        """mutation($planId: ID!, $input: RecordTreatmentInput!) {
          recordTreatment(planId: $planId, input: $input) { id } }""",
        planId=str(plan.id),
        input={
            "performedById": str(plan.doctor_id),
            "performedByRole": "DOCTOR",
            "performedAt": "2024-01-02T10:00:00+00:00",
            "procedure": "Ultrasound",
            "equipmentId": str(device.id),
        },
    )
    after = (await gql.data(PLAN, id=str(plan.id)))["treatmentPlan"]
    assert after["treatments"]["nodes"] == [
        {
            "id": data["recordTreatment"]["id"],
            "procedure": "Ultrasound",
            "equipment": {"serialNumber": "US-7"},
        }
    ]
    await assert_cached_as_stored(cache, TreatmentPlan, plan.id)


PRESCRIPTION = """query($id: ID!) { prescription(id: $id) {
  drug dose status statusHistory { status } patient { lastName } prescriber { lastName }
  treatmentPlan { status }
} }"""


async def test_create_prescription(gql: Any, cache: DocumentCache) -> None:
    plan = await factories.treatment_plan()
    before = (await gql.data(PATIENT, id=str(plan.patient_id)))["patient"]
    await warm(cache, Patient, plan.patient_id)
    assert before["prescriptions"]["totalCount"] == 0
    data = await gql.data(
        """mutation($input: CreatePrescriptionInput!) {
          createPrescription(input: $input) { id } }""",
        input={
            "patientId": str(plan.patient_id),
            "prescriberId": str(plan.doctor_id),
            "treatmentPlanId": str(plan.id),
            "drug": "Amlodipine",
            "dose": "5 mg",
            "route": "ORAL",
            "frequency": "once daily",
            "durationDays": 30,
        },
    )
    id = data["createPrescription"]["id"]
    after = (await gql.data(PATIENT, id=str(plan.patient_id)))["patient"]
    assert after["prescriptions"]["nodes"] == [{"id": id, "dose": "5 mg", "status": "PRESCRIBED"}]
    prescription = (await gql.data(PRESCRIPTION, id=id))["prescription"]
    assert prescription["treatmentPlan"] == {"status": "ACTIVE"}
    await assert_cached_as_stored(cache, Patient, plan.patient_id)


async def test_update_prescription(gql: Any, cache: DocumentCache) -> None:
    prescription = await factories.prescription()
    before = (await gql.data(PATIENT, id=str(prescription.patient_id)))["patient"]
    assert before["prescriptions"]["nodes"][0]["dose"] == "5 mg"
    await gql.data(PRESCRIPTION, id=str(prescription.id))
    await gql.data(
        """mutation($id: ID!, $input: UpdatePrescriptionInput!) {
          updatePrescription(id: $id, input: $input) { id } }""",
        id=str(prescription.id),
        input={"dose": "10 mg"},
    )
    assert (await gql.data(PRESCRIPTION, id=str(prescription.id)))["prescription"]["dose"] == (
        "10 mg"
    )
    after = (await gql.data(PATIENT, id=str(prescription.patient_id)))["patient"]
    assert after["prescriptions"]["nodes"][0]["dose"] == "10 mg"
    await assert_cached_as_stored(cache, Patient, prescription.patient_id)


async def test_update_prescription_status(gql: Any, cache: DocumentCache) -> None:
    prescription = await factories.prescription()
    await gql.data(PATIENT, id=str(prescription.patient_id))
    assert (await gql.data(PRESCRIPTION, id=str(prescription.id)))["prescription"]["status"] == (
        "PRESCRIBED"
    )
    await gql.data(
        """mutation($id: ID!) { updatePrescriptionStatus(id: $id, status: DISPENSED) { id } }""",
        id=str(prescription.id),
    )
    after = (await gql.data(PRESCRIPTION, id=str(prescription.id)))["prescription"]
    assert (after["status"], after["statusHistory"]) == ("DISPENSED", [{"status": "DISPENSED"}])
    listed = (await gql.data(PATIENT, id=str(prescription.patient_id)))["patient"]
    assert listed["prescriptions"]["nodes"][0]["status"] == "DISPENSED"


# Staff

DEPARTMENT = """query($id: ID!, $status: EquipmentStatus) { department(id: $id) {
  doctors { totalCount nodes { id lastName } }
  equipment(status: $status) { totalCount nodes { id status } }
} }"""


async def test_create_doctor(gql: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    before = (await gql.data(DEPARTMENT, id=str(dept.id)))["department"]
    assert before["doctors"]["totalCount"] == 0
    data = await gql.data(
        """mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }""",
        input={
            "firstName": "Gregory",
            "lastName": "House",
            "departmentId": str(dept.id),
            "specialty": "Diagnostics",
            "licenceNumber": "LIC-HOUSE",
        },
    )
    id = data["createDoctor"]["id"]
    after = (await gql.data(DEPARTMENT, id=str(dept.id)))["department"]
    assert after["doctors"]["nodes"] == [{"id": id, "lastName": "House"}]
    await assert_cached_as_stored(cache, Doctor, id)
    assert (await gql.data(DOCTOR, id=id))["doctor"]["lastName"] == "House"


async def test_update_doctor(gql: Any, cache: DocumentCache) -> None:
    old, new = await factories.department(code="OLD"), await factories.department(code="NEW")
    doctor = await factories.doctor(old, last_name="Before")
    visit = await factories.appointment(doc=doctor)
    assert (await gql.data(DOCTOR, id=str(doctor.id)))["doctor"]["department"] == {"code": "OLD"}
    assert (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]["doctor"] == {
        "lastName": "Before"
    }
    assert (await gql.data(DEPARTMENT, id=str(old.id)))["department"]["doctors"]["totalCount"] == 1
    await warm(cache, Doctor, doctor.id)
    await gql.data(
        """mutation($id: ID!, $input: UpdateDoctorInput!) {
          updateDoctor(id: $id, input: $input) { id } }""",
        id=str(doctor.id),
        input={"lastName": "After", "departmentId": str(new.id)},
    )
    after = (await gql.data(DOCTOR, id=str(doctor.id)))["doctor"]
    assert (after["lastName"], after["department"]) == ("After", {"code": "NEW"})
    assert (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]["doctor"] == {
        "lastName": "After"
    }
    assert (await gql.data(DEPARTMENT, id=str(old.id)))["department"]["doctors"]["totalCount"] == 0
    assert (await gql.data(DEPARTMENT, id=str(new.id)))["department"]["doctors"]["nodes"] == [
        {"id": str(doctor.id), "lastName": "After"}
    ]
    await assert_cached_as_stored(cache, Doctor, doctor.id)


# Equipment


async def test_register_equipment(gql: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    assert (await gql.data(DEPARTMENT, id=str(dept.id)))["department"]["equipment"][
        "totalCount"
    ] == 0
    data = await gql.data(
        """mutation($input: RegisterEquipmentInput!) { registerEquipment(input: $input) { id } }""",
        input={
            "name": "Scanner",
            "equipmentType": "MRI",
            "serialNumber": "MRI-1",
            "departmentId": str(dept.id),
        },
    )
    id = data["registerEquipment"]["id"]
    after = (await gql.data(DEPARTMENT, id=str(dept.id)))["department"]
    assert after["equipment"]["nodes"] == [{"id": id, "status": "AVAILABLE"}]
    await assert_cached_as_stored(cache, MedicalEquipment, id)


async def test_allocate_equipment(gql: Any, cache: DocumentCache) -> None:
    old, new = await factories.department(code="FROM"), await factories.department(code="TO")
    device = await factories.equipment(old)
    visit = await factories.appointment(device=device)
    assert (await gql.data(DEVICE, id=str(device.id)))["equipment"]["department"] == {
        "code": "FROM"
    }
    assert (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]["equipment"][
        "departmentId"
    ] == str(old.id)
    assert (await gql.data(DEPARTMENT, id=str(old.id)))["department"]["equipment"][
        "totalCount"
    ] == 1
    assert (await gql.data(DEPARTMENT, id=str(new.id)))["department"]["equipment"][
        "totalCount"
    ] == 0
    await warm(cache, MedicalEquipment, device.id)
    await gql.data(
        """mutation($id: ID!, $to: ID!) { allocateEquipment(id: $id, departmentId: $to) { id } }""",
        id=str(device.id),
        to=str(new.id),
    )
    assert (await gql.data(DEVICE, id=str(device.id)))["equipment"]["department"] == {"code": "TO"}
    assert (await gql.data(APPOINTMENT, id=str(visit.id)))["appointment"]["equipment"][
        "departmentId"
    ] == str(new.id)
    assert (await gql.data(DEPARTMENT, id=str(old.id)))["department"]["equipment"][
        "totalCount"
    ] == 0
    assert (await gql.data(DEPARTMENT, id=str(new.id)))["department"]["equipment"]["nodes"] == [
        {"id": str(device.id), "status": "AVAILABLE"}
    ]
    await assert_cached_as_stored(cache, MedicalEquipment, device.id)


async def test_update_equipment_status(gql: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    device = await factories.equipment(dept)
    available = {"id": str(dept.id), "status": "AVAILABLE"}
    assert (await gql.data(DEVICE, id=str(device.id)))["equipment"]["status"] == "AVAILABLE"
    assert (await gql.data(DEPARTMENT, **available))["department"]["equipment"]["totalCount"] == 1
    await warm(cache, MedicalEquipment, device.id)
    await gql.data(
        """mutation($id: ID!) { updateEquipmentStatus(id: $id, status: MAINTENANCE) { id } }""",
        id=str(device.id),
    )
    after = (await gql.data(DEVICE, id=str(device.id)))["equipment"]
    assert (after["status"], after["statusHistory"]) == (
        "MAINTENANCE",
        [{"toStatus": "MAINTENANCE"}],
    )
    assert (await gql.data(DEPARTMENT, **available))["department"]["equipment"]["totalCount"] == 0
    await assert_cached_as_stored(cache, MedicalEquipment, device.id)


# Billing

ACCOUNT = """query($id: ID!) { billingAccount(id: $id) {
  balance { amount } totalCharged { amount } totalPaid { amount }
  charges { description } payments { reference } insurance { provider policyNumber }
  patient { lastName }
} }"""


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


async def test_open_billing_account(gql: Any, cache: DocumentCache) -> None:
    patient = await factories.patient()
    assert (await gql.data(PATIENT, id=str(patient.id)))["patient"]["billingAccount"] is None
    await warm(cache, Patient, patient.id)
    data = await gql.data(
        """mutation($input: OpenBillingAccountInput!) {
          openBillingAccount(input: $input) { id } }""",
        input={"patientId": str(patient.id)},
    )
    id = data["openBillingAccount"]["id"]
    after = (await gql.data(PATIENT, id=str(patient.id)))["patient"]
    assert after["billingAccount"] == {"id": id, "balance": {"amount": 0}}
    await assert_cached_as_stored(cache, BillingAccount, id)


async def _account(gql: Any, cache: DocumentCache) -> tuple[str, dict[str, Any]]:
    account = await factories.billing_account()
    before = (await gql.data(ACCOUNT, id=str(account.id)))["billingAccount"]
    await warm(cache, BillingAccount, account.id)
    return str(account.id), before


CHARGE = """mutation($id: ID!, $input: AddChargeInput!) { addCharge(accountId: $id, input: $input) {
  id } }"""


async def test_add_charge(gql: Any, cache: DocumentCache) -> None:
    id, before = await _account(gql, cache)
    assert before["balance"] == {"amount": 0}
    await gql.data(
        CHARGE,
        id=id,
        input={"description": "Private room", "amount": eur(12_000), "source": "MANUAL"},
    )
    after = (await gql.data(ACCOUNT, id=id))["billingAccount"]
    assert (after["balance"], after["totalCharged"]) == ({"amount": 12_000}, {"amount": 12_000})
    assert after["charges"] == [{"description": "Private room"}]
    await assert_cached_as_stored(cache, BillingAccount, id)


async def test_record_payment(gql: Any, cache: DocumentCache) -> None:
    id, _ = await _account(gql, cache)
    await gql.data(
        CHARGE, id=id, input={"description": "Room", "amount": eur(5_000), "source": "MANUAL"}
    )
    assert (await gql.data(ACCOUNT, id=id))["billingAccount"]["balance"] == {"amount": 5_000}
    await gql.data(
        """mutation($id: ID!, $input: RecordPaymentInput!) {
          recordPayment(accountId: $id, input: $input) { id } }""",
        id=id,
        input={"amount": eur(2_000), "method": "CARD", "reference": "R-1"},
    )
    after = (await gql.data(ACCOUNT, id=id))["billingAccount"]
    assert (after["balance"], after["totalPaid"]) == ({"amount": 3_000}, {"amount": 2_000})
    assert after["payments"] == [{"reference": "R-1"}]
    await assert_cached_as_stored(cache, BillingAccount, id)


async def test_update_insurance(gql: Any, cache: DocumentCache) -> None:
    id, before = await _account(gql, cache)
    assert before["insurance"] is None
    insure = """mutation($id: ID!, $insurance: InsuranceInput) {
      updateInsurance(accountId: $id, insurance: $insurance) { id } }"""
    await gql.data(insure, id=id, insurance={"provider": "NHS Plus", "policyNumber": "P-1"})
    after = (await gql.data(ACCOUNT, id=id))["billingAccount"]
    assert after["insurance"] == {"provider": "NHS Plus", "policyNumber": "P-1"}
    await assert_cached_as_stored(cache, BillingAccount, id)
    await gql.data(insure, id=id, insurance=None)
    assert (await gql.data(ACCOUNT, id=id))["billingAccount"]["insurance"] is None
    await assert_cached_as_stored(cache, BillingAccount, id)
