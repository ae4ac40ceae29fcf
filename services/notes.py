"""Clinical notes: drafts, signing with a content hash, addenda, and verifying the hash.

Every state change is one conditional update on the note (status, version and author in the
filter), so two racing writers cannot both win and nothing is ever half written; a signed
note's stored fields are never updated again except to append signed addenda.

The title, text and each addendum's text are sealed (``models.notes``); an addendum's text is
sealed inside its element, bound to the addendum's id, so addenda are still appended by
``$push`` and concurrent ones are all kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import utcnow
from models.clinical import PerformerRole
from models.notes import Addendum, ClinicalNote, NoteStatus, NoteType
from models.patients import Patient
from services import common
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.signing import canonical_json, digest
from services.validation import Problems, merged
from services.vitals import check_encounter

HASH_ALGORITHM = "sha256"
CANONICAL_VERSION = 1
EDITABLE = frozenset({"note_type", "title", "text"})
"""What a draft's author may change; its patient and encounter are fixed at creation."""

_encoder = Encoder()


# -- the canonical form and its hash ---------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    """UTC to the millisecond, as MongoDB stores it, so a re-read note hashes the same."""
    if value is None:
        return None
    at = value.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _ref(value: ObjectId | None) -> str | None:
    return None if value is None else str(value)


def canonical(note: ClinicalNote) -> str:
    """What a signature covers: the note's identity, links, type, words, author, signer, time."""
    return canonical_json(
        {
            "v": CANONICAL_VERSION,
            "id": _ref(note.id),
            "patientId": _ref(note.patient_id),
            "visitId": _ref(note.visit_id),
            "admissionId": _ref(note.admission_id),
            "type": note.note_type.value,
            "title": note.title,
            "text": note.text,
            "authorId": _ref(note.author_id),
            "authorRole": note.author_role.value,
            "signedById": _ref(note.signed_by_id),
            "signedAt": _instant(note.signed_at),
        }
    )


def addendum_canonical(note: ClinicalNote, addendum: Addendum) -> str:
    """An addendum's signature covers its words and author, and the note hash it amends."""
    return canonical_json(
        {
            "v": CANONICAL_VERSION,
            "noteId": _ref(note.id),
            "noteHash": note.content_hash,
            "id": _ref(addendum.id),
            "authorId": _ref(addendum.author_id),
            "authorRole": addendum.author_role.value,
            "text": addendum.text,
            "signedAt": _instant(addendum.signed_at),
        }
    )


@dataclass(frozen=True)
class AddendumCheck:
    id: ObjectId
    stored_hash: str
    computed_hash: str

    @property
    def valid(self) -> bool:
        return self.stored_hash == self.computed_hash


@dataclass(frozen=True)
class Integrity:
    """A signed note's hash recomputed from what is stored now, beside the one stored."""

    canonical: str
    stored_hash: str
    computed_hash: str
    addenda: tuple[AddendumCheck, ...]

    @property
    def valid(self) -> bool:
        return self.stored_hash == self.computed_hash and all(a.valid for a in self.addenda)


def verify(note: ClinicalNote) -> Integrity | None:
    """None for a note that was never signed (nothing to verify)."""
    if note.status != NoteStatus.SIGNED or note.content_hash is None:
        return None
    form = canonical(note)
    checks = tuple(
        AddendumCheck(a.id, a.content_hash, digest(addendum_canonical(note, a)))
        for a in note.addenda
    )
    return Integrity(form, note.content_hash, digest(form), checks)


# -- reading ---------------------------------------------------------------------------------


async def get_note(id: ObjectId) -> ClinicalNote:
    return await common.get_or_404(ClinicalNote, id, "ClinicalNote")


@dataclass(frozen=True)
class NoteFilter:
    patient_id: ObjectId | None = None
    visit_id: ObjectId | None = None
    admission_id: ObjectId | None = None
    note_type: NoteType | None = None
    status: NoteStatus | None = None
    author_id: ObjectId | None = None


async def list_notes(
    where: NoteFilter, args: PageArgs, scope: Query | None = None
) -> Page[ClinicalNote]:
    query: Query = {
        k: v
        for k, v in {
            "patient_id": where.patient_id,
            "visit_id": where.visit_id,
            "admission_id": where.admission_id,
            "note_type": where.note_type and where.note_type.value,
            "status": where.status and where.status.value,
            "author_id": where.author_id,
        }.items()
        if v is not None
    }
    return await paginate(ClinicalNote, both(query, scope), BY_ID, args)


# -- writing ---------------------------------------------------------------------------------


async def create_note(data: Mapping[str, Any]) -> ClinicalNote:
    """A new draft in its author's name (``author_id``/``author_role`` set by the caller)."""
    problems = Problems()
    await problems.check(
        common.ensure_exists(Patient, data.get("patient_id"), "patientId", "patient")
    )
    await check_encounter(data, problems)
    note = problems.build(
        ClinicalNote, {**data, "status": NoteStatus.DRAFT, "version": 1, "addenda": []}
    )
    problems.raise_any()
    assert note is not None
    return await common.insert(note, "clinical note")


def _draft_of(note: ClinicalNote, author_id: ObjectId, version: int) -> None:
    """The checks every draft step makes before its conditional write says the same."""
    if note.status != NoteStatus.DRAFT:
        raise BadUserInput(
            f"A {note.status.value} note cannot change"
            + ("; add an addendum instead" if note.status == NoteStatus.SIGNED else ""),
            {"id": f"note is {note.status.value}"},
        )
    if note.author_id != author_id:  # the policy refuses first; this keeps the service honest
        raise NotFound("ClinicalNote", str(note.id))
    if note.version != version:
        raise Conflict(
            f"The note is at version {note.version}, not {version}: read it again",
            fields=["version"],
        )


async def _conditional(
    note: ClinicalNote, author_id: ObjectId, version: int, sets: Mapping[str, Any]
) -> ClinicalNote:
    """One compare-and-set on status, version and author; the loser gets ``CONFLICT``."""
    result = await db.collection(ClinicalNote).update_one(
        {
            "_id": note.id,
            "status": NoteStatus.DRAFT.value,
            "version": version,
            "author_id": author_id,
        },
        {"$set": {k: _encoder.encode(v) for k, v in sets.items()}, "$inc": {"version": 1}},
    )
    if result.matched_count == 0:
        raise Conflict("The note changed meanwhile; read it again and retry", fields=["version"])
    stored = await get_note(note.id)  # type: ignore[arg-type]
    return stored


async def update_draft(
    id: ObjectId, author_id: ObjectId, version: int, changes: Mapping[str, Any]
) -> ClinicalNote:
    note = await get_note(id)
    _draft_of(note, author_id, version)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise BadUserInput("Not editable", {k: "is not editable" for k in sorted(unknown)})
    _, fields = merged(note, changes)  # validates the whole draft as it would become
    stored = await _conditional(note, author_id, version, fields)
    await changed(stored, "updated")
    return stored


async def sign_note(id: ObjectId, signer_id: ObjectId, version: int) -> ClinicalNote:
    """Freeze a draft: its hash, signer and time are stored, and it joins the patient's chart."""
    note = await get_note(id)
    _draft_of(note, signer_id, version)
    now = utcnow()
    signed = note.model_copy(
        update={
            "status": NoteStatus.SIGNED,
            "signed_by_id": signer_id,
            "signed_at": now,
            "chart_patient_id": note.patient_id,
            "updated_at": now,
        }
    )
    content_hash = digest(canonical(signed))
    stored = await _conditional(
        note,
        signer_id,
        version,
        {
            "status": NoteStatus.SIGNED,
            "signed_by_id": signer_id,
            "signed_at": now,
            "content_hash": content_hash,
            "chart_patient_id": note.patient_id,
            "updated_at": now,
        },
    )
    await changed(stored, "signed")
    return stored


async def discard_draft(id: ObjectId, author_id: ObjectId, version: int) -> ClinicalNote:
    """A draft abandoned: kept (still its author's alone), never signed."""
    note = await get_note(id)
    _draft_of(note, author_id, version)
    stored = await _conditional(
        note, author_id, version, {"status": NoteStatus.DISCARDED, "updated_at": utcnow()}
    )
    await changed(stored, "discarded")
    return stored


async def add_addendum(
    id: ObjectId, author_id: ObjectId, author_role: PerformerRole, text: Any
) -> ClinicalNote:
    """Append a signed addendum; the note's own fields and hash stay exactly as signed."""
    note = await get_note(id)
    if note.status != NoteStatus.SIGNED:
        raise BadUserInput(
            "Addenda amend signed notes; change the draft itself",
            {"id": f"note is {note.status.value}"},
        )
    now = utcnow()
    problems = Problems()
    addendum = problems.build(
        Addendum,
        {
            "id": ObjectId(),
            "author_id": author_id,
            "author_role": author_role,
            "text": text,
            "signed_at": now,
            "content_hash": "0" * 64,
        },
    )
    problems.raise_any()
    assert addendum is not None
    addendum.content_hash = digest(addendum_canonical(note, addendum))
    result = await db.collection(ClinicalNote).update_one(
        {"_id": id, "status": NoteStatus.SIGNED.value, "content_hash": note.content_hash},
        {
            "$push": {"addenda": _encoder.encode(addendum)},
            "$set": {"updated_at": now},
            "$inc": {"version": 1},
        },
    )
    if result.matched_count == 0:
        raise Conflict("The note changed meanwhile; read it again and retry")
    stored = await get_note(id)
    await changed(stored, "addendum_added")
    return stored
