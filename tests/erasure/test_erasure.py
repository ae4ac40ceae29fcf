"""Erasure's rules: who may, legal holds, an interrupted erasure completed by the next call."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models import Patient
from models.base import utcnow
from models.erasure import ErasureRequest
from models.notes import ClinicalNote
from models.scheduling import AppointmentStatus
from services import erasure, notes
from services.erasure_plan import ERASED_TEXT
from tests import factories
from tests.conftest import GraphQLClient, token_for
from tests.fhir.helpers import NAME, NATIONAL_ID, record

ERASE = """
mutation($id: ID!, $reason: String!) {
  erasePatient(patientId: $id, reason: $reason) { status pseudonym reason records }
}"""


def _admin(app: Any, http: Any) -> GraphQLClient:
    return GraphQLClient(http, token_for(app, roles=["admin"]))


async def test_only_admins_erase(app: Any, http: Any) -> None:
    patient = await factories.patient()
    for roles in (["compliance"], ["doctor"], ["patient"]):
        caller = GraphQLClient(http, token_for(app, roles=roles, pid=str(patient.id)))
        refused = await caller.error(ERASE, id=str(patient.id), reason="asked")
        assert refused["extensions"]["code"] == "FORBIDDEN", roles
    assert (await Patient.get(patient.id)).erasure is None  # type: ignore[union-attr]


async def test_a_hold_refuses_with_its_records_and_configured_holds_only(
    app: Any, http: Any, settings: Any
) -> None:
    patient = await factories.patient()
    booked = await factories.appointment(
        patient, start=utcnow() + timedelta(days=3), status=AppointmentStatus.SCHEDULED
    )
    refused = await _admin(app, http).error(ERASE, id=str(patient.id), reason="by letter")
    assert refused["extensions"]["reason"] == "LEGAL_HOLD"
    assert refused["extensions"]["holds"] == [
        {"hold": "upcoming_appointment", "records": [str(booked.id)]}
    ]
    assert await ErasureRequest.find_one({"patient_id": patient.id}) is None
    # Without that hold configured, it goes ahead.
    assert patient.id is not None
    request, fresh = await erasure.erase(
        patient.id, "by letter", requested_by="test", holds=("open_balance",)
    )
    assert fresh and request.status == "done"


async def test_an_interrupted_erasure_reads_as_erased_and_the_next_call_completes_it(
    app: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await record()
    real = erasure._scrub

    async def crash(*args: Any) -> int:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(erasure, "_scrub", crash)
    assert r.patient.id is not None
    with pytest.raises(RuntimeError):
        await erasure.erase(r.patient.id, "by letter", requested_by="test", holds=())
    half = await Patient.get(r.patient.id)
    assert half is not None and half.erasure == "in_progress"
    assert (half.first_name, half.last_name) != NAME and half.national_id is None
    answer = await _admin(app, http).data(
        "query($id: ID!) { patient(id: $id) { firstName lastName } }", id=str(r.patient.id)
    )
    assert answer["patient"]["lastName"].startswith("ERASED-")

    monkeypatch.setattr(erasure, "_scrub", real)
    done = await _admin(app, http).data(ERASE, id=str(r.patient.id), reason="again")
    assert done["erasePatient"]["status"] == "DONE"
    assert done["erasePatient"]["reason"] == "by letter"  # the first request's
    visit = await type(r.visit).get(r.visit.id)
    assert visit is not None and visit.reason is None  # optional free text: removed
    order = await type(r.lab_order).get(r.lab_order.id)
    assert order is not None and {t.name for t in order.tests} == {ERASED_TEXT}  # required
    assert [t.code for t in order.tests] == ["CRP"]  # codes are kept
    assert (await Patient.get(r.patient.id)).erasure == "done"  # type: ignore[union-attr]


async def test_the_reason_and_the_audit_event_hold_no_identity(app: Any, http: Any) -> None:
    r = await record()
    reason = f"{NAME[0]} {NAME[1]}, national id {NATIONAL_ID}, asked by letter"
    done = await _admin(app, http).data(ERASE, id=str(r.patient.id), reason=reason)
    kept = done["erasePatient"]["reason"]
    assert NAME[1] not in kept and NATIONAL_ID not in kept and "asked by letter" in kept


async def test_an_authors_draft_about_the_patient_is_erased_too(app: Any, http: Any) -> None:
    """Drafts are not on the chart yet (``chart_patient_id`` is set at signing), but they are
    about the patient: erasure finds documents by their ``patient_id``."""
    r = await record()
    assert r.patient.id is not None and r.doctor.id is not None
    draft = await notes.create_note(
        {
            "patient_id": r.patient.id,
            "visit_id": r.visit.id,
            "note_type": "progress",
            "title": f"{NAME[1]} review",
            "text": f"{NAME[0]} {NAME[1]} reports chest pain at night.",
            "author_id": r.doctor.id,
            "author_role": "doctor",
        }
    )
    assert draft.chart_patient_id is None
    await _admin(app, http).data(ERASE, id=str(r.patient.id), reason="Art. 17 request")
    after = await ClinicalNote.get(draft.id)
    assert after is not None and after.text == ERASED_TEXT and after.title is None
