"""A page of notes with their authors and patients costs the same for 10 rows as for 100."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId

from models.clinical import PerformerRole
from models.notes import ClinicalNote, NoteStatus, NoteType
from services import notes, signing
from tests import factories
from tests.graphql.test_batching import _count
from tests.vitals.helpers import HOUR_AGO

PAGE = """query($first: Int!) {
  clinicalNotes(first: $first) {
    nodes {
      id text status integrity { valid }
      author { id lastName }
      patient { id lastName }
      addenda { authorId }
    }
  }
}"""


async def _notes(count: int) -> tuple[Any, Any]:
    dept = await factories.department()
    doctors = [await factories.doctor(dept) for _ in range(4)]
    me = doctors[0]
    for i in range(count):
        patient = await factories.patient(clinician_access=False)
        await factories.appointment(patient, me, start=factories.FUTURE + timedelta(hours=i))
        author = doctors[i % len(doctors)]
        note = ClinicalNote(
            id=PydanticObjectId(),
            patient_id=patient.id,
            admission_id=patient.id,  # any id: admissions are not validated yet
            note_type=NoteType.PROGRESS,
            text=f"Progress {i}",
            author_id=author.id,
            author_role=PerformerRole.DOCTOR,
            status=NoteStatus.SIGNED,
            signed_by_id=author.id,
            signed_at=HOUR_AGO,
            chart_patient_id=patient.id,
        )
        note.content_hash = signing.digest(notes.canonical(note))
        await note.insert()
    return dept, me


async def test_a_page_of_notes_costs_the_same_for_10_or_100_rows(client_as: Any) -> None:
    dept, me = await _notes(100)
    doctor = client_as(roles=["doctor"], sid=str(me.id), did=str(dept.id))
    await doctor.data("{ __typename }")  # the caller's status is checked per request, then cached
    small, few = await _count(doctor, PAGE, first=10)
    large, many = await _count(doctor, PAGE, first=100)
    assert len(small["clinicalNotes"]["nodes"]) == 10
    assert len(large["clinicalNotes"]["nodes"]) == 100
    nodes = large["clinicalNotes"]["nodes"]
    assert all(n["author"] and n["patient"] and n["integrity"]["valid"] for n in nodes)
    assert len({n["author"]["id"] for n in nodes}) == 4
    # The doctor's grants and the patients they treat (the list's scope), the notes, then
    # their authors and patients in one batch each: the access checks read what those loaded.
    assert few == many == 5
