"""Clinical free text is sealed at rest: notes (and each addendum's text), vital signs' comments,
doctor orders, nursing care plans and tasks, medication doses and prescriptions. Documents are
made through the API; their raw stored fields are ciphertexts, GraphQL answers the words, and
text shaped like a ciphertext is refused rather than stored unreadable."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from crypto.fields import PREFIX
from models.base import utcnow
from models.clinical import Prescription
from models.medication import MedicationAdministration
from models.notes import ClinicalNote
from models.nursing import NursingCarePlan, NursingTask
from models.orders import DoctorOrder
from models.vitals import VitalSigns
from tests.encryption.helpers import raw_doc, sealed
from tests.medication.helpers import CONSUMPTION, GIVE, doses_of
from tests.orders.helpers import CARE_PLAN, CREATE_ORDER, DONE, Callers, iso, once_now, ward
from tests.vitals.helpers import HOUR_AGO, clinic

NOTE = """mutation($input: CreateClinicalNoteInput!) {
  createClinicalNote(input: $input) { id version title text } }"""
SIGN = """mutation($id: ID!, $version: Int!) { signClinicalNote(id: $id, version: $version) {
  id version } }"""
ADDENDUM = """mutation($id: ID!, $text: String!) { addClinicalNoteAddendum(id: $id, text: $text) {
  id } }"""
READ_NOTE = """query($id: ID!) { clinicalNote(id: $id) { title text addenda { id text }
  integrity { valid addenda { valid } } } }"""
VITALS = """mutation($input: RecordVitalSignsInput!) { recordVitalSigns(input: $input) { id } }"""
READ_VITALS = """query($id: ID!) { vitalSigns(id: $id) { comment } }"""
READ_ORDER = """query($id: ID!) { doctorOrder(id: $id) {
  medication { drug dose unit } instruction tasks(first: 5) { nodes { id description } } } }"""
READ_PLAN = """query($id: ID!) { nursingCarePlan(id: $id) {
  problem goal interventions { description } } }"""
READ_TASK = """query($id: ID!) { nursingTask(id: $id) { description note } }"""
READ_DOSE = """query($id: ID!) { medicationAdministration(id: $id) { drugName note } }"""
PRESCRIBE = """mutation($input: CreatePrescriptionInput!) { createPrescription(input: $input) {
  id drug instructions } }"""
READ_RX = """query($id: ID!) { prescription(id: $id) { drug instructions } }"""
LOOKS_SEALED = f"{PREFIX}k-1:AAAA"


async def test_notes_and_their_addenda_are_sealed_and_read_in_clear(client_as: Any) -> None:
    c = await clinic(client_as)
    made = (
        await c.me.data(
            NOTE,
            input={
                "patientId": str(c.patient.id),
                "visitId": str(c.visit.id),
                "noteType": "CONSULTATION",
                "title": "Cardiology review",
                "text": "Exertional chest pain; suspected stable angina.",
            },
        )
    )["createClinicalNote"]
    stored = await raw_doc(ClinicalNote, made["id"])
    sealed(stored, "title", "text")
    await c.me.data(SIGN, id=made["id"], version=made["version"])
    texts = [f"Troponin {i} negative." for i in range(4)]
    answers = await asyncio.gather(*(c.peer_client(ADDENDUM, id=made["id"], text=t) for t in texts))
    assert all(not a.get("errors") for a in answers), answers
    stored = await raw_doc(ClinicalNote, made["id"])
    sealed(stored, "title", "text")
    assert len(stored["addenda"]) == len(texts)  # concurrent appends: none lost
    for element in stored["addenda"]:
        sealed(element, "text")
        assert len(element["content_hash"]) == 64  # the rest of an addendum stays clear
    shown = (await c.me.data(READ_NOTE, id=made["id"]))["clinicalNote"]
    assert shown["title"] == "Cardiology review" and "stable angina" in shown["text"]
    assert sorted(a["text"] for a in shown["addenda"]) == sorted(texts)
    assert shown["integrity"]["valid"] and all(a["valid"] for a in shown["integrity"]["addenda"])
    await c.me.data(ADDENDUM, id=made["id"], text=LOOKS_SEALED)  # just text: sealed too
    stored = await raw_doc(ClinicalNote, made["id"])
    assert len(stored["addenda"]) == len(texts) + 1
    assert all(a["text"] != LOOKS_SEALED for a in stored["addenda"])
    shown = (await c.me.data(READ_NOTE, id=made["id"]))["clinicalNote"]
    assert LOOKS_SEALED in [a["text"] for a in shown["addenda"]]


async def test_vital_signs_comment_is_sealed(client_as: Any) -> None:
    c = await clinic(client_as)
    base = {
        "patientId": str(c.patient.id),
        "visitId": str(c.visit.id),
        "recordedAt": HOUR_AGO.isoformat(),
        "pulse": 88,
    }
    made = await c.me.data(VITALS, input={**base, "comment": "Anxious, pain after fall"})
    id = made["recordVitalSigns"]["id"]
    sealed(await raw_doc(VitalSigns, id), "comment")
    shown = (await c.me.data(READ_VITALS, id=id))["vitalSigns"]
    assert shown["comment"] == "Anxious, pain after fall"
    again = await c.me.data(VITALS, input={**base, "comment": LOOKS_SEALED})
    id = again["recordVitalSigns"]["id"]
    sealed(await raw_doc(VitalSigns, id), "comment")
    assert (await c.me.data(READ_VITALS, id=id))["vitalSigns"]["comment"] == LOOKS_SEALED


async def test_orders_care_plans_tasks_and_doses_are_sealed(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    start = iso(utcnow() - timedelta(minutes=5))
    # A drug not in the master: its doses are charted (and given) without stock.
    medication: dict[str, Any] = {
        "admissionId": str(w.admission.id),
        "kind": "MEDICATION",
        "medication": {"drug": "Zebrafloxacin", "dose": 200, "unit": "mg", "route": "ORAL"},
        "instruction": "Watch for rash",
        "schedule": {"pattern": "ONCE", "startAt": start},
    }
    order = (await c.doctor.data(CREATE_ORDER, input=medication))["createDoctorOrder"]
    sealed(await raw_doc(DoctorOrder, order["id"]), "medication", "instruction")
    shown = (await c.nurse.data(READ_ORDER, id=order["id"]))["doctorOrder"]
    assert shown["medication"]["drug"] == "Zebrafloxacin"
    assert shown["instruction"] == "Watch for rash"
    [task] = shown["tasks"]["nodes"]
    assert "Zebrafloxacin" in task["description"]
    sealed(await raw_doc(NursingTask, task["id"]), "description")

    [dose] = await doses_of(c, order["id"])
    assert dose["drugId"] is None and dose["drugName"] == "Zebrafloxacin"
    await c.nurse.data(GIVE, id=dose["id"], note="Taken with water")
    sealed(await raw_doc(MedicationAdministration, dose["id"]), "drug_name", "note")
    shown = (await c.nurse.data(READ_DOSE, id=dose["id"]))["medicationAdministration"]
    assert shown == {"drugName": "Zebrafloxacin", "note": "Taken with water"}
    sealed(await raw_doc(NursingTask, task["id"]), "description", "note")  # recorded with its dose
    window = {"from": iso(utcnow() - timedelta(hours=1)), "to": iso(utcnow() + timedelta(hours=1))}
    used = await c.admin.data(CONSUMPTION, w=str(w.ward.id), **window)
    drugs = used["wardMedicationConsumption"]["drugs"]
    assert [(d["drugName"], d["dosesGiven"]) for d in drugs] == [("Zebrafloxacin", 1)]

    nursing = (await c.doctor.data(CREATE_ORDER, input=once_now(w, "Sit out in chair")))[
        "createDoctorOrder"
    ]
    sealed(await raw_doc(DoctorOrder, nursing["id"]), "instruction")
    [task] = nursing["tasks"]["nodes"]
    assert task["description"] == "Nursing: Sit out in chair"
    await c.nurse.data(DONE, id=task["id"], note=LOOKS_SEALED)  # just text: sealed too
    sealed(await raw_doc(NursingTask, task["id"]), "description", "note")
    shown = (await c.nurse.data(READ_TASK, id=task["id"]))["nursingTask"]
    assert shown == {"description": "Nursing: Sit out in chair", "note": LOOKS_SEALED}

    plan_input: dict[str, Any] = {
        "admissionId": str(w.admission.id),
        "problem": "Pressure ulcer risk, Braden 12",
        "goal": "Skin intact at discharge",
        "interventions": [
            {"description": "Reposition", "schedule": {"pattern": "EVERY_HOURS", "everyHours": 4}}
        ],
    }
    plan = (await c.nurse.data(CARE_PLAN, input=plan_input))["createNursingCarePlan"]
    sealed(await raw_doc(NursingCarePlan, plan["id"]), "problem", "goal", "interventions")
    shown = (await c.nurse.data(READ_PLAN, id=plan["id"]))["nursingCarePlan"]
    assert shown["problem"] == "Pressure ulcer risk, Braden 12"
    assert shown["goal"] == "Skin intact at discharge"
    assert shown["interventions"] == [{"description": "Reposition"}]
    odd = {**medication, "medication": {**medication["medication"], "drug": LOOKS_SEALED}}
    made = (await c.doctor.data(CREATE_ORDER, input=odd))["createDoctorOrder"]
    sealed(await raw_doc(DoctorOrder, made["id"]), "medication")
    shown = (await c.nurse.data(READ_ORDER, id=made["id"]))["doctorOrder"]
    assert shown["medication"]["drug"] == LOOKS_SEALED  # just text, sealed like any other


async def test_prescriptions_drug_and_instructions_are_sealed(client_as: Any) -> None:
    c = await clinic(client_as)
    base = {
        "patientId": str(c.patient.id),
        "drug": "Bisoprolol",
        "dose": "2.5 mg",
        "route": "ORAL",
        "frequency": "once daily",
        "durationDays": 30,
    }
    made = (await c.me.data(PRESCRIBE, input={**base, "instructions": "Take in the morning"}))[
        "createPrescription"
    ]
    sealed(await raw_doc(Prescription, made["id"]), "drug", "instructions")
    shown = (await c.patient_client.data(READ_RX, id=made["id"]))["prescription"]
    assert shown == {"drug": "Bisoprolol", "instructions": "Take in the morning"}
    odd = (await c.me.data(PRESCRIBE, input={**base, "drug": LOOKS_SEALED}))["createPrescription"]
    sealed(await raw_doc(Prescription, odd["id"]), "drug")
    assert odd["drug"] == LOOKS_SEALED
