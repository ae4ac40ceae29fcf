"""Encryption at rest of the encounter free text: an appointment's reason and notes, an outpatient
visit's reason, an ED visit's chief complaint, an admission's reason, diagnosis and signed
discharge note. Made through the API, each is ciphertext in MongoDB and in the Redis document
cache, GraphQL answers the clear text, the discharge note still verifies, and erasure still
scrubs them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crypto.fields import is_sealed, open_document
from models.admissions import ADMISSION_SEALED, Admission
from models.emergency import EMERGENCY_VISIT_SEALED, EmergencyVisit
from models.outpatient import OUTPATIENT_VISIT_SEALED, OutpatientVisit
from models.scheduling import APPOINTMENT_SEALED, Appointment
from services import admissions, erasure
from services.erasure_plan import ERASED_TEXT
from tests import factories
from tests.admissions.helpers import DISCHARGE, inpatient
from tests.emergency.helpers import ADMIT as ADMIT_FROM_ED
from tests.emergency.helpers import REGISTER, START, TRIAGE, emergency_department, free_bed
from tests.encryption.helpers import assert_absent, raw_doc, redis_text
from tests.outpatient.helpers import CHECK_IN, WALK_IN
from tests.scheduling.helpers import START as BOOKED_AT
from tests.scheduling.helpers import booking

Raw = dict[str, Any]

SCHEDULE = """mutation($input: ScheduleAppointmentInput!, $key: String) {
  scheduleAppointment(input: $input, idempotencyKey: $key) { id reason notes } }"""
COMPLETE = """mutation($id: ID!, $notes: String) {
  completeAppointment(id: $id, notes: $notes) { id status reason notes } }"""
CHECK_IN_APPOINTMENT = "mutation($id: ID!) { checkInAppointment(id: $id) { id status } }"
APPOINTMENT = "query($id: ID!) { appointment(id: $id) { id reason notes } }"
VISIT = "query($id: ID!) { visit(id: $id) { id reason } }"
ED_VISIT = "query($id: ID!) { emergencyVisit(id: $id) { id chiefComplaint triage { note } } }"
ADMISSION = """query($id: ID!) { admission(id: $id) {
  id reason diagnosis discharge { summary diagnosis instructions followUp contentHash } } }"""
ADMIT = """mutation($input: AdmitPatientInput!, $key: String) {
  admitPatient(input: $input, idempotencyKey: $key) { id reason diagnosis } }"""


async def _mongo_text(app: Any, settings: Any) -> str:
    """Every document of every collection of this test's database, as one text (idempotency
    snapshots, notifications and the audit trail included)."""
    database = app.state.mongo[settings.mongodb_db]
    seen = []
    for name in await database.list_collection_names():
        seen.append(repr(await database[name].find({}).to_list(None)))
    return "".join(seen)


async def test_appointments_and_outpatient_visits_hold_ciphertext(
    app: Any, gql: Any, settings: Any
) -> None:
    doctor = await factories.doctor()
    patient, walker = await factories.patient(), await factories.patient()
    reason, notes = "Recurring migraine with aura", "Started propranolol, review in a month"
    booked = booking(patient, doctor, BOOKED_AT) | {"reason": reason}
    made = (await gql.data(SCHEDULE, input=booked, key="book-1"))["scheduleAppointment"]
    assert made["reason"] == reason and made["notes"] is None
    appointment_id = made["id"]

    # A visit's arrival moves the appointment on; completion writes the notes (one $set).
    start = BOOKED_AT - timedelta(days=4000)  # in the past, so it may be checked in and done
    past = await factories.appointment(patient, doctor, start=start, reason=reason)
    await gql.data(CHECK_IN_APPOINTMENT, id=str(past.id))
    done = (await gql.data(COMPLETE, id=str(past.id), notes=notes))["completeAppointment"]
    assert (done["status"], done["reason"], done["notes"]) == ("COMPLETED", reason, notes)

    visit_reason = "Chest tightness on exertion"
    walk_in = {"patientId": str(walker.id), "departmentId": str(doctor.department_id)}
    visit = (await gql.data(WALK_IN, input=walk_in | {"reason": visit_reason}))["walkInOutpatient"]
    assert visit["reason"] == visit_reason
    checked = await factories.appointment(
        await factories.patient(), doctor, start=start + timedelta(hours=2)
    )
    arrival = {"appointmentId": str(checked.id), "reason": "Follow-up of anaemia results"}
    checked_in = (await gql.data(CHECK_IN, input=arrival))["checkInOutpatient"]

    for model, id, fields in (
        (Appointment, appointment_id, ("reason",)),
        (Appointment, past.id, ("reason", "notes")),
        (OutpatientVisit, visit["id"], ("reason",)),
        (OutpatientVisit, checked_in["id"], ("reason",)),
    ):
        raw = await raw_doc(model, id)
        assert all(is_sealed(raw[f]) for f in fields), (model, fields)
    raw_visit = await raw_doc(OutpatientVisit, visit["id"])
    assert open_document(OUTPATIENT_VISIT_SEALED, raw_visit)["reason"] == visit_reason

    # GraphQL reads (through the document cache, which holds the ciphertext) answer clear text.
    for _ in range(2):
        shown = (await gql.data(APPOINTMENT, id=str(past.id)))["appointment"]
        assert (shown["reason"], shown["notes"]) == (reason, notes)
        assert (await gql.data(VISIT, id=visit["id"]))["visit"]["reason"] == visit_reason
        seen = (await gql.data(VISIT, id=checked_in["id"]))["visit"]["reason"]
        assert seen == arrival["reason"]

    secrets = [reason, notes, visit_reason, arrival["reason"]]
    assert_absent(secrets, await _mongo_text(app, settings), await redis_text(settings))


async def test_emergency_visits_and_admissions_from_them_hold_ciphertext(
    app: Any, client_as: Any, settings: Any
) -> None:
    ed = await emergency_department()
    nurse, doctor = client_as(**ed.claims("nurse")), client_as(**ed.claims("doctor"))
    patient = await factories.patient()
    complaint = "Crushing central chest pain since dawn"
    arrival = {
        "patientId": str(patient.id), "departmentId": ed.id, "arrivalMode": "AMBULANCE",
        "chiefComplaint": complaint,
    }  # fmt: skip
    visit = (await nurse.data(REGISTER, input=arrival))["registerEmergencyArrival"]
    assert visit["chiefComplaint"] == complaint
    await nurse.data(TRIAGE, id=visit["id"], input={"level": 2, "note": "Diaphoretic"})
    await doctor.data(START, id=visit["id"])
    bed = await free_bed()
    admit = {
        "bedId": str(bed.id), "attendingDoctorId": str(ed.doctor.id),
        "reason": "Suspected myocardial infarction", "diagnosis": "NSTEMI",
    }  # fmt: skip
    done = (await doctor.data(ADMIT_FROM_ED, id=visit["id"], input=admit))["admitFromEmergency"]

    raw_visit = await raw_doc(EmergencyVisit, visit["id"])
    assert is_sealed(raw_visit["chief_complaint"])
    assert open_document(EMERGENCY_VISIT_SEALED, raw_visit)["chief_complaint"] == complaint
    assert raw_visit["triage"]["level"] == 2  # the board and analytics read it in MongoDB
    raw_admission = await raw_doc(Admission, done["admissionId"])
    assert is_sealed(raw_admission["reason"]) and is_sealed(raw_admission["diagnosis"])

    shown = (await doctor.data(ED_VISIT, id=visit["id"]))["emergencyVisit"]
    assert shown["chiefComplaint"] == complaint and shown["triage"]["note"] == "Diaphoretic"
    admission = (await doctor.data(ADMISSION, id=done["admissionId"]))["admission"]
    assert (admission["reason"], admission["diagnosis"]) == (admit["reason"], admit["diagnosis"])

    secrets = [complaint, admit["reason"]]  # "NSTEMI" alone is short enough to be a code
    assert_absent(secrets, await _mongo_text(app, settings), await redis_text(settings))


async def test_the_sealed_discharge_note_verifies_and_erasure_scrubs_the_sealed_fields(
    app: Any, gql: Any, settings: Any
) -> None:
    f = await inpatient(patients=1)
    patient = f.patients[0]
    admit = {
        "patientId": str(patient.id), "bedId": str(f.beds[0].id),
        "attendingDoctorId": str(f.doctor.id), "source": "ELECTIVE",
        "reason": "Elective knee arthroplasty", "diagnosis": "Gonarthrosis of the left knee",
    }  # fmt: skip
    made = (await gql.data(ADMIT, input=admit, key="admit-1"))["admitPatient"]
    assert (made["reason"], made["diagnosis"]) == (admit["reason"], admit["diagnosis"])
    note = {
        "summary": "Mobilised on day two, wound clean.",
        "diagnosis": "Primary gonarthrosis, left knee",
        "instructions": "Physiotherapy exercises three times a day.",
        "followUp": "Orthopaedic clinic in six weeks",
    }
    gone = (await gql.data(DISCHARGE, id=made["id"], note=note, d="HOME"))["dischargePatient"]
    assert gone["discharge"]["summary"] == note["summary"]

    raw = await raw_doc(Admission, made["id"])
    assert all(is_sealed(raw[f]) for f in ("reason", "diagnosis", "discharge"))
    assert isinstance(raw["stays"], list) and raw["stays"][0]["bed_id"] == f.beds[0].id
    opened = open_document(ADMISSION_SEALED, raw)["discharge"]
    assert opened["summary"] == note["summary"] and opened["content_hash"]
    stored = await Admission.get(made["id"])
    assert stored is not None and admissions.verify(stored)  # the hash covers the clear text
    shown = (await gql.data(ADMISSION, id=made["id"]))["admission"]
    assert shown["discharge"]["followUp"] == note["followUp"]
    assert shown["discharge"]["contentHash"] == gone["discharge"]["contentHash"]
    assert_absent(
        [admit["reason"], admit["diagnosis"], *note.values()],
        await _mongo_text(app, settings),
        await redis_text(settings),
    )

    past = BOOKED_AT - timedelta(days=4000)
    booked = await factories.appointment(patient, f.doctor, start=past, notes="Knee swelling")
    assert patient.id is not None
    await erasure.erase(patient.id, "by letter", requested_by="test", holds=())
    scrubbed = open_document(ADMISSION_SEALED, await raw_doc(Admission, made["id"]))
    assert scrubbed["reason"] == ERASED_TEXT and "diagnosis" not in scrubbed
    assert scrubbed["discharge"]["summary"] == ERASED_TEXT
    raw_booked = await raw_doc(Appointment, booked.id)
    assert is_sealed(raw_booked["reason"]) and "notes" not in raw_booked
    assert open_document(APPOINTMENT_SEALED, raw_booked)["reason"] == ERASED_TEXT


async def test_text_that_looks_sealed_is_sealed_too(gql: Any) -> None:
    """A client may type anything, ``enc1:`` included: it is stored sealed and read back as
    typed, never taken for a ciphertext (which would make the record unreadable)."""
    doctor = await factories.doctor()
    patient = await factories.patient()
    start = BOOKED_AT - timedelta(days=4000)
    past = await factories.appointment(patient, doctor, start=start)
    await gql.data(CHECK_IN_APPOINTMENT, id=str(past.id))
    typed = "enc1:k:not-a-ciphertext"
    done = (await gql.data(COMPLETE, id=str(past.id), notes=typed))["completeAppointment"]
    assert done["notes"] == typed
    raw = await raw_doc(Appointment, past.id)
    assert is_sealed(raw["notes"]) and raw["notes"] != typed
    assert (await gql.data(APPOINTMENT, id=str(past.id)))["appointment"]["notes"] == typed
