"""Clinical notes over GraphQL: drafts, signing, addenda, integrity, and who sees what."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from bson import ObjectId

import db
from cache import runtime
from cache.documents import DocumentCache
from models.notes import ClinicalNote
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.vitals.helpers import Clinic, clinic

FIELDS = """id status version noteType title text authorId signedById signedAt contentHash
  addenda { id text authorId signedAt contentHash }
  integrity { algorithm canonical storedHash computedHash valid
    addenda { id valid storedHash computedHash } }"""
CREATE = f"""mutation($input: CreateClinicalNoteInput!) {{
  createClinicalNote(input: $input) {{ {FIELDS} }}
}}"""
UPDATE = f"""mutation($id: ID!, $version: Int!, $input: UpdateClinicalNoteInput!) {{
  updateClinicalNote(id: $id, version: $version, input: $input) {{ {FIELDS} }}
}}"""
SIGN = f"""mutation($id: ID!, $version: Int!) {{
  signClinicalNote(id: $id, version: $version) {{ {FIELDS} }}
}}"""
DISCARD = """mutation($id: ID!, $version: Int!) {
  discardClinicalNote(id: $id, version: $version) { status version }
}"""
ADDENDUM = f"""mutation($id: ID!, $text: String!) {{
  addClinicalNoteAddendum(id: $id, text: $text) {{ {FIELDS} }}
}}"""
ONE = f"""query($id: ID!) {{ clinicalNote(id: $id) {{ {FIELDS} }} }}"""
LIST = """query($patientId: ID, $status: NoteStatus, $noteType: NoteType, $authorId: ID) {
  clinicalNotes(patientId: $patientId, status: $status, noteType: $noteType,
    authorId: $authorId) { totalCount nodes { id status } }
}"""


async def cache_forget() -> None:
    """A write behind the services' back (tampering) is not in the document cache."""
    cache = runtime.current().cache
    if isinstance(cache, DocumentCache):
        await cache.clear()


async def _draft(c: Clinic, text: str = "Chest pain on exertion; ECG normal.") -> dict[str, Any]:
    made = await c.me.data(
        CREATE,
        input={
            "patientId": str(c.patient.id),
            "visitId": str(c.visit.id),
            "noteType": "CONSULTATION",
            "title": "Cardiology consultation",
            "text": text,
        },
    )
    note: dict[str, Any] = made["createClinicalNote"]
    return note


async def _signed(c: Clinic) -> dict[str, Any]:
    draft = await _draft(c)
    signed: dict[str, Any] = (await c.me.data(SIGN, id=draft["id"], version=draft["version"]))[
        "signClinicalNote"
    ]
    return signed


async def test_a_draft_is_edited_then_signed_with_a_verifiable_hash(client_as: Any) -> None:
    c = await clinic(client_as)
    draft = await _draft(c)
    assert draft["status"] == "DRAFT" and draft["version"] == 1
    assert draft["authorId"] == str(c.doctor.id) and draft["integrity"] is None
    edited = (await c.me.data(UPDATE, id=draft["id"], version=1, input={"text": "Stable angina."}))[
        "updateClinicalNote"
    ]
    assert edited["text"] == "Stable angina." and edited["version"] == 2
    signed = (await c.me.data(SIGN, id=draft["id"], version=2))["signClinicalNote"]
    assert signed["status"] == "SIGNED" and signed["signedById"] == str(c.doctor.id)
    assert signed["signedAt"] and len(signed["contentHash"]) == 64
    integrity = signed["integrity"]
    assert integrity["valid"] and integrity["algorithm"] == "sha256"
    assert integrity["storedHash"] == integrity["computedHash"] == signed["contentHash"]
    # Anyone can recompute it from the canonical text, which holds the words and the signer.
    assert hashlib.sha256(integrity["canonical"].encode()).hexdigest() == signed["contentHash"]
    assert "Stable angina." in integrity["canonical"]
    assert str(c.doctor.id) in integrity["canonical"]
    # Tampering with the stored text is caught.
    await db.collection(ClinicalNote).update_one(
        {"_id": ObjectId(signed["id"])}, {"$set": {"text": "Unstable angina."}}
    )
    await cache_forget()
    tampered = await c.me.data(ONE, id=draft["id"])
    assert tampered["clinicalNote"]["integrity"]["valid"] is False


async def test_drafts_are_their_authors_alone_until_signed(client_as: Any) -> None:
    c = await clinic(client_as)
    nurse = await factories.nurse(c.department)  # the department sees the patient
    nurse_dept = client_as(roles=["nurse"], sid=str(nurse.id), did=str(c.department.id))
    draft = await _draft(c)
    listing = {"patientId": str(c.patient.id)}
    for caller in (c.patient_client, nurse_dept):
        assert code(await caller.error(ONE, id=draft["id"])) == "FORBIDDEN"
        assert (await caller.data(LIST, **listing))["clinicalNotes"]["nodes"] == []
    mine = await c.me.data(LIST, **listing)
    assert [n["id"] for n in mine["clinicalNotes"]["nodes"]] == [draft["id"]]
    await c.me.data(SIGN, id=draft["id"], version=1)
    for caller in (c.patient_client, nurse_dept, c.me):
        assert (await caller.data(ONE, id=draft["id"]))["clinicalNote"]["status"] == "SIGNED"
        listed = await caller.data(LIST, **listing)
        assert [n["id"] for n in listed["clinicalNotes"]["nodes"]] == [draft["id"]]


async def test_billing_analysts_strangers_and_other_patients_never_read_notes(
    client_as: Any,
) -> None:
    c = await clinic(client_as)
    signed = await _signed(c)
    for caller in (c.billing, c.analyst, c.colleague, c.other_patient_client):
        assert code(await caller.error(ONE, id=signed["id"])) == "FORBIDDEN"
    for caller in (c.billing, c.analyst):
        assert code(await caller.error(LIST, patientId=str(c.patient.id))) == "FORBIDDEN"
    for caller in (c.colleague, c.other_patient_client):
        listed = await caller.data(LIST, patientId=str(c.patient.id))
        assert listed["clinicalNotes"] == {"totalCount": 0, "nodes": []}


async def test_writing_needs_a_care_relationship_and_a_clinician(client_as: Any) -> None:
    c = await clinic(client_as)
    good = {
        "patientId": str(c.patient.id),
        "visitId": str(c.visit.id),
        "noteType": "PROGRESS",
        "text": "Better.",
    }
    for caller in (c.colleague, c.billing, c.analyst, c.patient_client):
        assert code(await caller.error(CREATE, input=good)) == "FORBIDDEN"
    assert await ClinicalNote.count() == 0


async def test_bad_input_is_refused_whole_and_writes_nothing(client_as: Any) -> None:
    c = await clinic(client_as)
    error = await c.me.error(
        CREATE,
        input={
            "patientId": str(c.patient.id),
            "visitId": "0" * 24,
            "noteType": "DISCHARGE",
            "text": "   ",
            "title": "x" * 300,
        },
    )
    assert code(error) == "BAD_USER_INPUT"
    assert {"visitId", "text", "title"} <= set(error["extensions"]["fields"])
    neither = await c.me.error(
        CREATE, input={"patientId": str(c.patient.id), "noteType": "PROGRESS", "text": "x"}
    )
    assert "visitId" in neither["extensions"]["fields"]
    assert await ClinicalNote.count() == 0
    draft = await _draft(c)
    before = await snapshot(ClinicalNote)
    empty = await c.me.error(UPDATE, id=draft["id"], version=1, input={"text": ""})
    assert code(empty) == "BAD_USER_INPUT" and "text" in empty["extensions"]["fields"]
    assert code(await c.me.error(UPDATE, id=draft["id"], version=1, input={})) == ("BAD_USER_INPUT")
    assert code(await c.me.error(SIGN, id="0" * 24, version=1)) == "NOT_FOUND"
    assert await snapshot(ClinicalNote) == before


async def test_a_signed_note_never_changes(client_as: Any) -> None:
    c = await clinic(client_as)
    signed = await _signed(c)
    before = await snapshot(ClinicalNote)
    version = signed["version"]
    edit = await c.me.error(UPDATE, id=signed["id"], version=version, input={"text": "Oops"})
    assert code(edit) == "BAD_USER_INPUT"
    assert code(await c.me.error(SIGN, id=signed["id"], version=version)) == "BAD_USER_INPUT"
    assert code(await c.me.error(DISCARD, id=signed["id"], version=version)) == "BAD_USER_INPUT"
    assert await snapshot(ClinicalNote) == before


async def test_no_one_but_the_author_changes_signs_or_discards_a_draft(client_as: Any) -> None:
    c = await clinic(client_as)
    draft = await _draft(c)
    # A second doctor who also treats the patient: care team, but not the author.
    before = await snapshot(ClinicalNote)
    for caller in (c.peer_client, c.colleague):
        assert code(await caller.error(ONE, id=draft["id"])) == "FORBIDDEN"
        edit = await caller.error(UPDATE, id=draft["id"], version=1, input={"text": "Mine"})
        assert code(edit) == "FORBIDDEN"
        assert code(await caller.error(SIGN, id=draft["id"], version=1)) == "FORBIDDEN"
        assert code(await caller.error(DISCARD, id=draft["id"], version=1)) == "FORBIDDEN"
    assert await snapshot(ClinicalNote) == before
    stale = await c.me.error(SIGN, id=draft["id"], version=7)
    assert code(stale) == "CONFLICT"
    gone = (await c.me.data(DISCARD, id=draft["id"], version=1))["discardClinicalNote"]
    assert gone == {"status": "DISCARDED", "version": 2}
    assert code(await c.me.error(SIGN, id=draft["id"], version=2)) == "BAD_USER_INPUT"


async def test_concurrent_edits_of_one_draft_exactly_one_wins(client_as: Any) -> None:
    c = await clinic(client_as)
    draft = await _draft(c)
    results = await asyncio.gather(
        *(c.me(UPDATE, id=draft["id"], version=1, input={"text": f"Edit {i}"}) for i in range(4)),
        c.me(SIGN, id=draft["id"], version=1),
    )
    won = [r for r in results if not r.get("errors")]
    lost = [r for r in results if r.get("errors")]
    assert len(won) == 1 and len(lost) == 4
    assert all(code(r["errors"][0]) == "CONFLICT" for r in lost)
    stored = await ClinicalNote.get(draft["id"])
    assert stored is not None and stored.version == 2


async def test_an_addendum_keeps_the_original_and_its_hash(client_as: Any) -> None:
    c = await clinic(client_as)
    signed = await _signed(c)
    peer, peer_client = c.peer, c.peer_client
    amended = (await peer_client.data(ADDENDUM, id=signed["id"], text="Troponin negative at 6 h."))[
        "addClinicalNoteAddendum"
    ]
    assert amended["text"] == signed["text"] and amended["contentHash"] == signed["contentHash"]
    assert amended["signedAt"] == signed["signedAt"]
    [addendum] = amended["addenda"]
    assert addendum["authorId"] == str(peer.id) and len(addendum["contentHash"]) == 64
    assert amended["integrity"]["valid"] and amended["integrity"]["addenda"][0]["valid"]
    checked = amended["integrity"]["addenda"][0]
    assert checked["id"] == addendum["id"]
    assert checked["storedHash"] == checked["computedHash"] == addendum["contentHash"]
    assert amended["integrity"]["canonical"] == signed["integrity"]["canonical"]
    again = (await c.me.data(ADDENDUM, id=signed["id"], text="Discussed with patient."))[
        "addClinicalNoteAddendum"
    ]
    assert [a["text"] for a in again["addenda"]] == [
        "Troponin negative at 6 h.",
        "Discussed with patient.",
    ]
    assert again["integrity"]["valid"]
    # Addenda amend signed notes only, by the care team only, never empty.
    draft = await _draft(c)
    before = await snapshot(ClinicalNote)
    assert code(await c.me.error(ADDENDUM, id=draft["id"], text="x")) == "BAD_USER_INPUT"
    assert code(await c.colleague.error(ADDENDUM, id=signed["id"], text="x")) == "FORBIDDEN"
    assert code(await c.me.error(ADDENDUM, id=signed["id"], text=" ")) == "BAD_USER_INPUT"
    assert await snapshot(ClinicalNote) == before
    # The patient reads their note with its addenda.
    theirs = await c.patient_client.data(ONE, id=signed["id"])
    assert len(theirs["clinicalNote"]["addenda"]) == 2


async def test_concurrent_addenda_are_all_kept_and_verify(client_as: Any) -> None:
    """Addenda are appended with ``$push`` (each one's text sealed in its element): racing
    clinicians lose none of them."""
    c = await clinic(client_as)
    signed = await _signed(c)
    texts = [f"Review {i}: no change." for i in range(5)]
    callers = [c.me, c.peer_client]
    results = await asyncio.gather(
        *(callers[i % 2](ADDENDUM, id=signed["id"], text=t) for i, t in enumerate(texts))
    )
    assert not [r for r in results if r.get("errors")]
    stored = await ClinicalNote.get(signed["id"])
    assert stored is not None and sorted(a.text for a in stored.addenda) == sorted(texts)
    assert stored.version == signed["version"] + len(texts)
    final = (await c.me.data(ONE, id=signed["id"]))["clinicalNote"]
    assert final["integrity"]["valid"] and len(final["integrity"]["addenda"]) == len(texts)


async def test_filters(client_as: Any) -> None:
    c = await clinic(client_as)
    signed = await _signed(c)
    draft = await _draft(c)
    by_status = await c.me.data(LIST, status="DRAFT")
    assert [n["id"] for n in by_status["clinicalNotes"]["nodes"]] == [draft["id"]]
    by_type = await c.me.data(LIST, noteType="CONSULTATION", authorId=str(c.doctor.id))
    assert by_type["clinicalNotes"]["totalCount"] == 2
    assert (await c.me.data(LIST, noteType="DISCHARGE"))["clinicalNotes"]["nodes"] == []
    visit = await c.me.data(
        "query($v: ID!) { clinicalNotes(visitId: $v, status: SIGNED) { nodes { id } } }",
        v=str(c.visit.id),
    )
    assert visit["clinicalNotes"]["nodes"] == [{"id": signed["id"]}]
