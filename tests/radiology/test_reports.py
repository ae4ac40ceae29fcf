"""Reports: drafts only their author touches; a signed report never changes; one charge."""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId

import db
from models import BillingAccount
from models.base import utcnow
from models.radiology import ImagingOrder, ImagingReport, ImagingReportDraft
from services import radiology
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.radiology.helpers import (
    ADDENDUM,
    COMPLETE,
    DRAFT,
    EDIT,
    SIGN,
    START_STUDY,
    Callers,
    facility,
    reported,
    scheduled,
)

ADD_CHARGE = """mutation($id: ID!, $input: AddChargeInput!) {
  addCharge(accountId: $id, input: $input) { id } }"""


async def test_a_signed_report_never_changes_and_addenda_keep_it(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    _, study_id, report_id = await reported(c, f)
    final = await ImagingReport.get(report_id)
    assert final is not None
    draft_id = report_id  # the final report carries its draft's id
    again = await c.radiologist.error(SIGN, id=draft_id)
    assert code(again) == "CONFLICT"
    edit = await c.radiologist.error(EDIT, id=draft_id, input={"findings": "Changed."})
    assert code(edit) == "BAD_USER_INPUT"
    second = await c.radiologist.error(
        DRAFT, studyId=study_id, input={"findings": "x", "impression": "y"}
    )
    assert code(second) == "BAD_USER_INPUT"
    await c.radiologist.data(ADDENDUM, reportId=report_id, text="Correction: left knee.")
    addendum = await ImagingReport.find_one({"kind": "addendum"})
    assert addendum is not None
    nested = await c.radiologist.error(ADDENDUM, reportId=str(addendum.id), text="More.")
    assert code(nested) == "BAD_USER_INPUT"
    kept = await ImagingReport.get(report_id)
    assert kept == final and kept.content_hash == radiology.content_hash(kept)
    assert addendum.content_hash == radiology.content_hash(addendum)


async def test_only_the_author_edits_and_signs_a_draft(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    _, study_id = await scheduled(c, f)
    early = await c.radiologist.error(
        DRAFT, studyId=study_id, input={"findings": "x", "impression": "y"}
    )
    assert code(early) == "BAD_USER_INPUT"  # nothing was acquired yet
    await c.radiographer.data(START_STUDY, id=study_id)
    draft = await c.radiologist.data(
        DRAFT, studyId=study_id, input={"findings": "Normal.", "impression": "Normal."}
    )
    draft_id = draft["createImagingReportDraft"]["id"]
    colleague = await factories.doctor(f.radiology)
    other = client_as(roles=["radiologist"], sid=str(colleague.id), did=str(f.radiology.id))
    before = await snapshot(ImagingReportDraft, ImagingReport, ImagingOrder)
    assert code(await other.error(EDIT, id=draft_id, input={"findings": "Mine."})) == "FORBIDDEN"
    assert code(await other.error(SIGN, id=draft_id)) == "FORBIDDEN"
    assert code(await c.doctor.error(SIGN, id=draft_id)) == "FORBIDDEN"
    in_progress = await c.radiologist.error(SIGN, id=draft_id)
    assert code(in_progress) == "BAD_USER_INPUT"  # signed once the study is completed
    stale = await c.radiologist.error(EDIT, id=draft_id, input={"findings": "x"}, version=7)
    assert code(stale) == "BAD_USER_INPUT"
    assert await snapshot(ImagingReportDraft, ImagingReport, ImagingOrder) == before
    await c.radiographer.data(COMPLETE, id=study_id)
    signs = await asyncio.gather(c.radiologist(SIGN, id=draft_id), c.radiologist(SIGN, id=draft_id))
    # Racing signatures issue one final: a repeat in flight finishes the same one (as it would
    # after a crash) or, once the order is reported, is refused.
    finals = {s["data"]["signImagingReport"]["id"] for s in signs if "errors" not in s}
    assert finals == {draft_id}
    assert all(code(e) == "CONFLICT" for s in signs for e in s.get("errors", []))
    assert await ImagingReport.count() == 1
    assert code(await c.radiologist.error(SIGN, id=draft_id)) == "CONFLICT"


async def test_a_completed_study_is_charged_exactly_once(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, study_id = await scheduled(c, f)
    await c.radiographer.data(START_STUDY, id=study_id)
    answers = await asyncio.gather(
        c.radiographer(COMPLETE, id=study_id), c.radiologist(COMPLETE, id=study_id)
    )
    assert sorted("errors" in a for a in answers) == [False, True]
    order = await radiology.get_order(ObjectId(order_id))
    study = await radiology.get_study(order.study_id)  # type: ignore[arg-type]
    for _ in range(2):  # settling again (a retry, another process) never charges twice
        await radiology._settle(order, study)
    account = await BillingAccount.find_one({"patient_id": f.patient.id})
    assert account is not None
    assert [ch.amount for ch in account.charges if ch.source == "imaging_study"] == [30000]
    assert account.total_charged == 30000
    manual = {
        "description": "Imaging again",
        "amount": {"amount": 100, "currency": "EUR"},
        "source": "IMAGING_STUDY",
        "sourceId": study_id,
    }
    billing = client_as(roles=["billing"])
    assert code(await billing.error(ADD_CHARGE, id=str(account.id), input=manual)) == "CONFLICT"


async def test_signing_again_finishes_a_signature_interrupted_midway(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, study_id = await scheduled(c, f)
    await c.radiographer.data(START_STUDY, id=study_id)
    await c.radiographer.data(COMPLETE, id=study_id)
    text = {"findings": "Normal.", "impression": "Normal."}
    draft_id = (await c.radiologist.data(DRAFT, studyId=study_id, input=text))[
        "createImagingReportDraft"
    ]["id"]
    # A crash after the draft froze, before the final report was written.
    await db.collection(ImagingReportDraft).update_one(
        {"_id": ObjectId(draft_id)}, {"$set": {"status": "signed", "signed_at": utcnow()}}
    )
    final = (await c.radiologist.data(SIGN, id=draft_id))["signImagingReport"]
    assert final["id"] == draft_id and final["kind"] == "FINAL"
    order = await radiology.get_order(ObjectId(order_id))
    assert order.status == "reported" and str(order.report_id) == draft_id
