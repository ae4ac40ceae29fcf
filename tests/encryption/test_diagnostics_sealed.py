"""Encryption at rest of diagnostic and theatre free text: laboratory orders and results, imaging
orders, report drafts and signed reports, surgery bookings and surgical records hold ciphertext
in MongoDB and in the Redis document cache, while GraphQL answers the clear text, signed reports
still verify, and erasure still scrubs the sealed fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId, json_util

import db
from crypto.fields import is_sealed
from models.billing import BillingAccount
from models.laboratory import LabOrder, LabResult
from models.radiology import ImagingOrder, ImagingReport, ImagingReportDraft
from models.theatre import SurgeryBooking, SurgicalRecord
from services import erasure, radiology
from services.erasure_plan import ERASED_TEXT
from tests.encryption.helpers import assert_absent, raw_doc, redis_text
from tests.laboratory.world import COLLECT, ENTER, RECEIVE, VERIFY, results, world
from tests.laboratory.world import CREATE as CREATE_LAB_ORDER
from tests.radiology import helpers as rad
from tests.theatre import helpers as surgery

Raw = dict[str, Any]


async def test_lab_notes_comments_and_correction_reasons_are_sealed(
    app: Any, client_as: Any, settings: Any
) -> None:
    w = await world(client_as)
    notes, comment = "Suspected hyperkalaemia on ramipril", "Slightly haemolysed sample"
    reason = "Transcribed from the wrong analyser run"
    data = await w["doctor"].data(
        CREATE_LAB_ORDER,
        input={"patientId": str(w.patient.id), "testCodes": ["BMP"], "clinicalNotes": notes},
    )
    id = data["createLabOrder"]["id"]
    collected = await w["tech"].data(COLLECT, id=id)
    for sample in collected["collectLabSamples"]["samples"]["nodes"]:
        await w["tech"].data(RECEIVE, id=sample["id"])
    values = {"NA": 140.0, "K": 5.9, "CL": 101.0, "CREA": 80.0, "GLU": 5.0}
    await w["tech"].data(ENTER, id=id, results=results(values, comment=comment))
    await w["tech2"].data(VERIFY, id=id)
    await w["tech"].data(ENTER, id=id, results=results({"K": 4.9}, correctionReason=reason))

    shown = await w["doctor"].data(
        "query($id: ID!) { labOrder(id: $id) { clinicalNotes results(allVersions: true) "
        "{ nodes { analyteCode version comment correctionReason } } } }",
        id=id,
    )
    order = shown["labOrder"]
    assert order["clinicalNotes"] == notes
    rows = {(r["analyteCode"], r["version"]): r for r in order["results"]["nodes"]}
    assert rows[("NA", 1)]["comment"] == comment
    assert rows[("K", 2)]["correctionReason"] == reason

    raw_order = await raw_doc(LabOrder, id)
    assert is_sealed(raw_order["clinical_notes"])
    raw_results = await db.collection(LabResult).find({"order_id": ObjectId(id)}).to_list(None)
    assert all(is_sealed(r["comment"]) for r in raw_results if r["version"] == 1)
    (corrected,) = [r for r in raw_results if r["version"] == 2]
    assert is_sealed(corrected["correction_reason"])
    stored = json_util.dumps([raw_order, *raw_results])
    assert_absent([notes, comment, reason], stored, await redis_text(settings))


async def test_imaging_questions_drafts_and_reports_are_sealed_and_still_verify(
    app: Any, client_as: Any, settings: Any
) -> None:
    f = await rad.facility()
    c = rad.Callers(client_as, f)
    question = "Meniscal tear after a twisting injury?"
    order_id = await rad.ordered(c, f, clinicalQuestion=question)
    scheduled = await c.radiologist.data(rad.SCHEDULE, orderId=order_id, input=rad.slot(f.ct))
    study_id = scheduled["scheduleImagingStudy"]["id"]
    await c.radiographer.data(rad.START_STUDY, id=study_id)
    await c.radiographer.data(rad.COMPLETE, id=study_id)
    first = {"findings": "Horizontal tear, posterior horn.", "impression": "Meniscal tear."}
    draft = await c.radiologist.data(rad.DRAFT, studyId=study_id, input=first)
    draft_id = draft["createImagingReportDraft"]["id"]
    findings = "Horizontal tear of the posterior horn of the medial meniscus."
    await c.radiologist.data(rad.EDIT, id=draft_id, input={"findings": findings})
    impression = first["impression"]
    await c.radiologist.data(rad.SIGN, id=draft_id)
    addendum = "Compared with the outside MRI: the tear is new."
    added = await c.radiologist.data(rad.ADDENDUM, reportId=draft_id, text=addendum)
    addendum_id = added["addImagingAddendum"]["id"]

    shown = (await c.doctor.data(rad.READ_ORDER, id=order_id))["imagingOrder"]
    assert shown["clinicalQuestion"] == question
    report = shown["report"]
    assert (report["findings"], report["impression"]) == (findings, impression)
    assert [a["text"] for a in report["addenda"]["nodes"]] == [addendum]

    raw_order = await raw_doc(ImagingOrder, order_id)
    raw_draft = await raw_doc(ImagingReportDraft, draft_id)
    raw_final = await raw_doc(ImagingReport, draft_id)
    raw_addendum = await raw_doc(ImagingReport, addendum_id)
    assert is_sealed(raw_order["clinical_question"])
    assert is_sealed(raw_draft["findings"]) and is_sealed(raw_draft["impression"])
    assert is_sealed(raw_final["findings"]) and is_sealed(raw_final["impression"])
    assert is_sealed(raw_addendum["text"])
    for id in (draft_id, addendum_id):  # the hashes cover the clear text, as signed
        signed = await ImagingReport.get(ObjectId(id))
        assert signed is not None and signed.content_hash == radiology.content_hash(signed)
    stored = json_util.dumps([raw_order, raw_draft, raw_final, raw_addendum])
    cached = await redis_text(settings)
    assert "imaging_orders" in cached and "imaging_reports" in cached  # the cache was filled
    secrets = [question, findings, impression, addendum, first["findings"]]
    assert_absent(secrets, stored, cached)


async def test_surgery_procedures_notes_and_complications_are_sealed(
    app: Any, client_as: Any, settings: Any
) -> None:
    s = await surgery.suite()
    c = surgery.Callers(client_as, s)
    procedure, codes = "Laparoscopic cholecystectomy", ["0FT44ZZ"]
    notes = "Difficult airway last time: video laryngoscope ready."
    id = await surgery.booked(c, s, procedure={"description": procedure, "codes": codes})
    started = await c.nurse.data(surgery.START_SURGERY, id=id)
    record_id = started["startSurgery"]["id"]
    complications = "Bile spillage from a gallbladder perforation, irrigated."
    record_notes = "Drain left in the gallbladder bed."
    record = await SurgicalRecord.get(ObjectId(record_id))
    assert record is not None
    now = record.created_at
    await c.surgeon.data(
        surgery.RECORD,
        id=record_id,
        input={
            "complications": complications,
            "notes": record_notes,
            "inTheatreAt": surgery.iso(now - timedelta(minutes=1)),
            "outOfTheatreAt": surgery.iso(now),
            "postOpDestination": "RECOVERY",
        },
    )
    await c.surgeon.data(surgery.COMPLETE, id=id)

    shown = (await c.surgeon.data(surgery.READ, id=id))["surgeryBooking"]
    assert shown["procedure"] == {"description": procedure, "codes": codes}
    assert shown["notes"] == notes
    assert (shown["record"]["complications"], shown["record"]["notes"]) == (
        complications,
        record_notes,
    )

    raw_booking = await raw_doc(SurgeryBooking, id)
    raw_record = await raw_doc(SurgicalRecord, record_id)
    assert is_sealed(raw_booking["procedure"]) and is_sealed(raw_booking["notes"])
    assert is_sealed(raw_record["complications"]) and is_sealed(raw_record["notes"])
    account = await db.collection(BillingAccount).find_one({"patient_id": s.patient.id})
    assert account is not None and len(account["charges"]) == 2  # the bill names no operation
    stored = json_util.dumps([raw_booking, raw_record, account])
    cached = await redis_text(settings)
    assert "surgery_bookings" in cached and "surgical_records" in cached  # the cache was filled
    assert_absent([procedure, notes, complications, record_notes], stored, cached)


async def test_erasure_scrubs_sealed_text_and_keeps_it_sealed(app: Any, client_as: Any) -> None:
    s = await surgery.suite()
    c = surgery.Callers(client_as, s)
    id = await surgery.booked(c, s)
    assert s.patient.id is not None
    await erasure.erase(s.patient.id, "by letter", requested_by="test", holds=())
    booking = await SurgeryBooking.get(ObjectId(id))
    assert booking is not None and booking.notes is None
    assert booking.procedure.description == ERASED_TEXT  # the codes are kept
    assert booking.procedure.codes == ["0FT44ZZ"]
    raw = await raw_doc(SurgeryBooking, id)
    assert is_sealed(raw["procedure"]) and "notes" not in raw
