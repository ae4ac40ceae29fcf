"""Clinical notes: write a draft, change it, sign or discard it, add addenda, read them."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import EntityKind as K
from resolvers.common import perform
from resolvers.vitals import in_own_name, patient_of_input
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.enforce import acts
from schema.notes import (
    ClinicalNote,
    CreateClinicalNoteInput,
    NoteStatus,
    NoteType,
    UpdateClinicalNoteInput,
)
from services import notes
from services.notes import NoteFilter


@strawberry.type
class NotesQuery:
    @strawberry.field
    async def clinical_note(self, info: Info, id: strawberry.ID) -> ClinicalNote | None:
        return await info.context.loaders.clinical_note_by_id.load(oid(id))

    @strawberry.field(
        description="Clinical notes, oldest first, filtered: signed notes of the patients the "
        "caller may see, and the caller's own drafts."
    )
    async def clinical_notes(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        visit_id: strawberry.ID | None = None,
        admission_id: strawberry.ID | None = None,
        note_type: NoteType | None = None,
        status: NoteStatus | None = None,
        author_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ClinicalNote]:
        where = NoteFilter(
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            visit_id=oid(visit_id, "visitId") if visit_id else None,
            admission_id=oid(admission_id, "admissionId") if admission_id else None,
            note_type=note_type,
            status=status,
            author_id=oid(author_id, "authorId") if author_id else None,
        )
        scope = await info.context.access.scope(K.CLINICAL_NOTE)
        page = await notes.list_notes(where, info.context.page(first, after), scope)
        return connection(ClinicalNote, page)


@strawberry.type
class NotesMutation:
    @strawberry.mutation(
        description="Start a draft note in the caller's name; only they see it until signed.",
        metadata=acts(K.CLINICAL_NOTE, "write"),
    )
    async def create_clinical_note(
        self, info: Info, input: CreateClinicalNoteInput
    ) -> ClinicalNote:
        data = create_data(input)
        who, role = in_own_name(info)
        data["author_id"], data["author_role"] = who, role.value
        patient = await patient_of_input(info, data.get("patient_id"))
        run = partial(notes.create_note, data)
        made = await perform(info, K.CLINICAL_NOTE, "write", run, data, patient=patient)
        return view(ClinicalNote, made)

    @strawberry.mutation(
        description="Change one's own draft; `version` is the one read (CONFLICT if it moved).",
        metadata=acts(K.CLINICAL_NOTE, "editDraft"),
    )
    async def update_clinical_note(
        self, info: Info, id: strawberry.ID, version: int, input: UpdateClinicalNoteInput
    ) -> ClinicalNote:
        changes = update_data(input)
        who, _ = in_own_name(info)
        row = await notes.get_note(oid(id))
        run = partial(notes.update_draft, oid(id), who, version, changes)
        done = await perform(info, K.CLINICAL_NOTE, "editDraft", run, changes, row=row)
        return view(ClinicalNote, done)

    @strawberry.mutation(
        description="Sign one's own draft at `version`: it becomes immutable, with its SHA-256.",
        metadata=acts(K.CLINICAL_NOTE, "sign"),
    )
    async def sign_clinical_note(self, info: Info, id: strawberry.ID, version: int) -> ClinicalNote:
        who, _ = in_own_name(info)
        row = await notes.get_note(oid(id))
        run = partial(notes.sign_note, oid(id), who, version)
        done = await perform(info, K.CLINICAL_NOTE, "sign", run, ["status"], row=row)
        return view(ClinicalNote, done)

    @strawberry.mutation(
        description="Abandon one's own draft at `version` (kept, never signed).",
        metadata=acts(K.CLINICAL_NOTE, "discard"),
    )
    async def discard_clinical_note(
        self, info: Info, id: strawberry.ID, version: int
    ) -> ClinicalNote:
        who, _ = in_own_name(info)
        row = await notes.get_note(oid(id))
        run = partial(notes.discard_draft, oid(id), who, version)
        done = await perform(info, K.CLINICAL_NOTE, "discard", run, ["status"], row=row)
        return view(ClinicalNote, done)

    @strawberry.mutation(
        description="Amend a signed note: a signed addendum in the caller's name; the note "
        "and its hash stay as signed.",
        metadata=acts(K.CLINICAL_NOTE, "addAddendum"),
    )
    async def add_clinical_note_addendum(
        self, info: Info, id: strawberry.ID, text: str
    ) -> ClinicalNote:
        who, role = in_own_name(info)
        row = await notes.get_note(oid(id))
        run = partial(notes.add_addendum, oid(id), who, role, text)
        done = await perform(info, K.CLINICAL_NOTE, "addAddendum", run, ["addenda"], row=row)
        return view(ClinicalNote, done)
