"""The demo's vital signs and consultation notes: one of each per completed visit, coherent with
the patient's treatment plan, signed with a hash that verifies, and the same on every seed."""

from __future__ import annotations

from typing import Any

import pytest

import db
from crypto.fields import open_document
from demo import seed_demo
from demo.vitals_notes import seed_vitals_notes
from models import Appointment, TreatmentPlan
from models.notes import CLINICAL_NOTE_SEALED, ClinicalNote, NoteStatus
from models.outpatient import OutpatientVisit, VisitStatus
from models.scheduling import AppointmentStatus
from models.vitals import VITAL_SIGNS_SEALED, VitalSigns
from services import notes


@pytest.fixture
async def seeded(database: Any) -> Any:
    await seed_demo(20)
    return database


async def _raw() -> tuple[list[Any], list[Any]]:
    """As stored, sealed fields opened (their ciphertexts differ on every write)."""
    sets = await db.collection(VitalSigns).find({}).sort("_id", 1).to_list(None)
    written = await db.collection(ClinicalNote).find({}).sort("_id", 1).to_list(None)
    return (
        [open_document(VITAL_SIGNS_SEALED, raw) for raw in sets],
        [open_document(CLINICAL_NOTE_SEALED, raw) for raw in written],
    )


async def test_one_set_and_one_signed_note_per_completed_visit(seeded: Any) -> None:
    completed = await Appointment.find({"status": AppointmentStatus.COMPLETED.value}).to_list()
    visits = {v.appointment_id: v for v in await OutpatientVisit.find({}).to_list()}
    expected = [
        a for a in completed if a.id not in visits or visits[a.id].status == VisitStatus.COMPLETED
    ]
    sets = await VitalSigns.find({}).to_list()
    written = await ClinicalNote.find({}).to_list()
    assert len(sets) == len(written) == len(expected) > 0
    by_patient = {s.patient_id for s in sets}
    assert by_patient == {a.patient_id for a in expected}
    for note in written:
        assert note.status == NoteStatus.SIGNED and note.chart_patient_id == note.patient_id
        integrity = notes.verify(note)
        assert integrity is not None and integrity.valid
        if note.visit_id is not None:
            visit = visits[next(k for k, v in visits.items() if v.id == note.visit_id)]
            assert visit.patient_id == note.patient_id and visit.doctor_id == note.author_id
    for vital in sets:
        assert vital.bmi is not None and vital.height and vital.weight
        assert vital.bmi == round(vital.weight / (vital.height / 100) ** 2, 1)


async def test_notes_agree_with_the_treatment_plan(seeded: Any) -> None:
    plans = {p.patient_id: p for p in await TreatmentPlan.find({}).to_list()}
    checked = 0
    for note in await ClinicalNote.find({}).to_list():
        plan = plans.get(note.patient_id)
        if plan is None:
            assert "no new diagnosis" in note.text
            continue
        started = note.signed_at is not None and plan.created_at <= note.signed_at
        mentioned = plan.diagnosis.description in note.text
        assert mentioned == started, note.text
        for other in plans.values():
            if other.diagnosis.description != plan.diagnosis.description:
                assert other.diagnosis.description not in note.text
        checked += started
    assert checked > 0


async def test_seeding_again_writes_the_same_documents(seeded: Any) -> None:
    first = await _raw()
    await db.collection(VitalSigns).delete_many({})
    await db.collection(ClinicalNote).delete_many({})
    await seed_vitals_notes()
    assert await _raw() == first
