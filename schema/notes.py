"""GraphQL types and inputs for clinical notes, their addenda and their integrity check."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import notes as m
from schema.clinical import PerformerRole
from schema.common import entity_id, ref_id, view
from schema.context import Info
from schema.vitals import staff_member
from services import notes as service

if TYPE_CHECKING:
    from schema.outpatient import OutpatientVisit
    from schema.patients import Patient
    from schema.staff import StaffMember

strawberry.enum(m.NoteType)
NoteType = m.NoteType
strawberry.enum(m.NoteStatus, description="draft (its author's alone), signed, or discarded.")
NoteStatus = m.NoteStatus


@strawberry.type(description="A signed correction or addition to a signed note.")
class NoteAddendum:
    text: str
    author_role: PerformerRole
    signed_at: datetime
    content_hash: str = strawberry.field(description="SHA-256 of the addendum's canonical form.")

    @strawberry.field
    @staticmethod
    def id(root: strawberry.Parent[m.Addendum]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    @strawberry.field
    @staticmethod
    def author_id(root: strawberry.Parent[m.Addendum]) -> strawberry.ID:
        return strawberry.ID(str(root.author_id))


@strawberry.type
class AddendumIntegrity:
    stored_hash: str
    computed_hash: str
    valid: bool

    @strawberry.field
    @staticmethod
    def id(root: strawberry.Parent[service.AddendumCheck]) -> strawberry.ID:
        return strawberry.ID(str(root.id))


@strawberry.type(
    description="A signed note's SHA-256 recomputed from what is stored now: `valid` when it "
    "equals the hash stored at signing (and every addendum's does too). `canonical` is the "
    "exact text hashed, so anyone can recompute it."
)
class NoteIntegrity:
    algorithm: str
    canonical: str
    stored_hash: str
    computed_hash: str
    valid: bool
    addenda: list[AddendumIntegrity]


@strawberry.type(description="A clinician's note: a draft only its author sees, or signed.")
class ClinicalNote:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    note_type: NoteType
    title: str | None
    text: str
    status: NoteStatus
    version: int = strawberry.field(description="Give it back to change, sign or discard.")
    signed_at: datetime | None
    content_hash: str | None = strawberry.field(
        description="SHA-256 of the canonical form, stored when signed."
    )
    addenda: list[NoteAddendum]
    created_at: datetime
    updated_at: datetime
    author_role: PerformerRole

    @strawberry.field(description="The signature checked against the stored note (signed only).")
    @staticmethod
    def integrity(root: strawberry.Parent[m.ClinicalNote]) -> NoteIntegrity | None:
        found = service.verify(root)
        if found is None:
            return None
        return NoteIntegrity(
            algorithm=service.HASH_ALGORITHM,
            canonical=found.canonical,
            stored_hash=found.stored_hash,
            computed_hash=found.computed_hash,
            valid=found.valid,
            addenda=[view(AddendumIntegrity, a) for a in found.addenda],
        )

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ClinicalNote]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def visit_id(root: strawberry.Parent[m.ClinicalNote]) -> strawberry.ID | None:
        return ref_id(root.visit_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.ClinicalNote]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field
    @staticmethod
    def author_id(root: strawberry.Parent[m.ClinicalNote]) -> strawberry.ID:
        return strawberry.ID(str(root.author_id))

    @strawberry.field
    @staticmethod
    def signed_by_id(root: strawberry.Parent[m.ClinicalNote]) -> strawberry.ID | None:
        return ref_id(root.signed_by_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.ClinicalNote], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The outpatient visit the note is about.")
    @staticmethod
    async def visit(
        root: strawberry.Parent[m.ClinicalNote], info: Info
    ) -> Annotated[OutpatientVisit, strawberry.lazy("schema.outpatient")] | None:
        if root.visit_id is None:
            return None
        return await info.context.loaders.outpatient_visit_by_id.load(root.visit_id)

    @strawberry.field(description="The doctor or nurse who wrote the note.")
    @staticmethod
    async def author(
        root: strawberry.Parent[m.ClinicalNote], info: Info
    ) -> Annotated[StaffMember, strawberry.lazy("schema.staff")] | None:
        return await staff_member(info, root.author_id, root.author_role)  # type: ignore[return-value]

    @strawberry.field(description="Who signed it: its author.")
    @staticmethod
    async def signed_by(
        root: strawberry.Parent[m.ClinicalNote], info: Info
    ) -> Annotated[StaffMember, strawberry.lazy("schema.staff")] | None:
        if root.signed_by_id is None:
            return None
        return await staff_member(info, root.signed_by_id, root.author_role)  # type: ignore[return-value]


@strawberry.input(
    description="A new draft in the caller's name, linked to exactly one visit or admission."
)
class CreateClinicalNoteInput:
    patient_id: strawberry.ID
    visit_id: strawberry.ID | None = None
    admission_id: strawberry.ID | None = None
    note_type: NoteType
    title: str | None = None
    text: str


@strawberry.input(description="Only the fields given change; drafts only, by their author.")
class UpdateClinicalNoteInput:
    note_type: NoteType | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    text: str | None = strawberry.UNSET
