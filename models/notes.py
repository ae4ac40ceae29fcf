"""Clinical notes: a clinician's typed, signed account of a consultation, progress, discharge
or procedure.

A note starts as its author's draft, which only they see and change (compare-and-set on
``version``). Signing freezes it: SHMS stores a SHA-256 of its canonical form with the signer
and the time (``services.notes.canonical``), and from then on corrections are addenda, each
signed by its own author, that leave the original and its hash untouched.

Why ``chart_patient_id``: the policy relates a note to its patient (and so to the care team
and the patient themselves) through that field, which is set only when the note is signed. A
draft is on no chart, so no one but its author relates to it, through every path the policy
derives (by id, lists, nested relations, events).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import CLINICAL_ROW, C, D, R, S, declare, grant, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime
from models.clinical import PerformerRole

NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]


class NoteType(StrEnum):
    CONSULTATION = "consultation"
    PROGRESS = "progress"
    DISCHARGE = "discharge"
    PROCEDURE = "procedure"


class NoteStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"
    DISCARDED = "discarded"


class Addendum(BaseModel):
    """A signed correction or addition to a signed note; never changed once written."""

    id: Ref
    author_id: Ref
    author_role: PerformerRole
    text: NoteText
    signed_at: UtcDatetime
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ClinicalNote(Entity):
    patient_id: Ref
    chart_patient_id: Ref | None = Field(
        default=None,
        description="The patient, once signed: the policy relates the note to them only then.",
    )
    visit_id: Ref | None = None
    admission_id: Ref | None = None
    note_type: NoteType
    title: ShortText | None = None
    text: NoteText
    author_id: Ref
    author_role: PerformerRole
    status: NoteStatus = NoteStatus.DRAFT
    version: int = Field(default=1, ge=1)
    signed_by_id: Ref | None = None
    signed_at: UtcDatetime | None = None
    content_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    addenda: list[Addendum] = Field(default_factory=list)

    class Settings:
        name = "clinical_notes"
        indexes = [
            # Lists as the policy scopes them: the chart of a patient, an author's own notes.
            pymongo.IndexModel([("chart_patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("author_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("visit_id", 1), ("_id", 1)], sparse=True),
            pymongo.IndexModel([("admission_id", 1), ("_id", 1)], sparse=True),
            pymongo.IndexModel([("status", 1), ("note_type", 1)]),
        ]


# The words are clinical text, encrypted at rest; an addendum's own per element ($push appends).
CLINICAL_NOTE_SEALED = sealed(
    ClinicalNote, "clinical_notes", ("title", "text"), {}, items={"addenda": ("id", ("text",))}
)


# Readers: the patient's care team (the author always) and, once signed, the patient; billing,
# analysts and administrators never. Drafts are their author's alone (see chart_patient_id).
# Writing needs a care relationship with the patient; changing, signing or discarding a draft
# is for its author alone (SELF through ``own``); any clinician of the care team may add a
# signed addendum to a signed note.
CLINICAL_NOTE = declare(
    "ClinicalNote",
    ClinicalNote,
    row(
        Class.CLINICAL,
        (
            "id",
            "noteType",
            "title",
            "text",
            "status",
            "version",
            "signedAt",
            "contentHash",
            "addenda",
            "integrity",
            "createdAt",
            "updatedAt",
            "patientId",
            "visitId",
            "admissionId",
            "authorId",
            "authorRole",
            "signedById",
            "patient",
            "visit",
            "author",
            "signedBy",
        ),
        CLINICAL_ROW,
    ),
    actions={
        "write": {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
        "editDraft": {R.DOCTOR: grant(S), R.NURSE: grant(S)},
        "sign": {R.DOCTOR: grant(S), R.NURSE: grant(S)},
        "discard": {R.DOCTOR: grant(S), R.NURSE: grant(S)},
        "addAddendum": {R.DOCTOR: grant(C), R.NURSE: grant(C)},
    },
    creates=frozenset({"write"}),
    patient="chart_patient_id",
    clinicians=("author_id",),
    own=(("author_id", "staff_id"),),
    refs=("patient_id", "visit_id", "admission_id", "author_id"),
    cached=True,
)
