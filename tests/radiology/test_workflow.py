"""The whole path over GraphQL: order, schedule, perform, report, sign, amend, charge."""

from __future__ import annotations

from typing import Any

from models import BillingAccount
from models.radiology import ImagingReport
from services.radiology import content_hash
from tests.radiology.helpers import (
    ADDENDUM,
    COMPLETE,
    DRAFT,
    EDIT,
    ORDER,
    READ_ORDER,
    SCHEDULE,
    SIGN,
    START_STUDY,
    Callers,
    facility,
    order_input,
    slot,
)


async def test_an_order_goes_from_ordered_to_reported_and_is_charged_once(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    placed = (await c.doctor.data(ORDER, input=order_input(f)))["orderImaging"]
    assert placed["status"] == "ORDERED" and placed["modality"] == "CT"
    assert placed["price"] == 30000

    study = (await c.radiologist.data(SCHEDULE, orderId=placed["id"], input=slot(f.ct)))[
        "scheduleImagingStudy"
    ]
    assert study["status"] == "SCHEDULED" and study["accessionNumber"].startswith("RAD")
    started = (await c.radiographer.data(START_STUDY, id=study["id"]))["startImagingStudy"]
    assert started["status"] == "IN_PROGRESS"
    assert started["performedById"] == str(f.radiographer.id)
    assert started["performedByRole"] == "RADIOGRAPHER"
    done = (await c.radiographer.data(COMPLETE, id=study["id"]))["completeImagingStudy"]
    assert done["status"] == "COMPLETED" and done["endedAt"]

    text = {"findings": "Lateral tibial plateau fracture.", "impression": "Fracture."}
    draft = (await c.radiologist.data(DRAFT, studyId=study["id"], input=text))[
        "createImagingReportDraft"
    ]
    edited = await c.radiologist.data(
        EDIT, id=draft["id"], input={"impression": "Undisplaced fracture."}, version=0
    )
    assert edited["updateImagingReportDraft"]["version"] == 1
    final = (await c.radiologist.data(SIGN, id=draft["id"]))["signImagingReport"]
    assert final["kind"] == "FINAL" and final["impression"] == "Undisplaced fracture."
    assert final["authorId"] == str(f.radiologist.id)
    stored = await ImagingReport.get(final["id"])
    assert stored is not None and final["contentHash"] == content_hash(stored)

    added = (await c.radiologist.data(ADDENDUM, reportId=final["id"], text="Also effusion."))[
        "addImagingAddendum"
    ]
    assert added["kind"] == "ADDENDUM" and added["amendsId"] == final["id"]

    order = (await c.doctor.data(READ_ORDER, id=placed["id"]))["imagingOrder"]
    assert order["status"] == "REPORTED" and order["reportId"] == final["id"]
    assert order["study"]["status"] == "COMPLETED" and order["chargedAt"]
    assert order["report"]["contentHash"] == final["contentHash"]
    assert [a["text"] for a in order["report"]["addenda"]["nodes"]] == ["Also effusion."]

    account = await BillingAccount.find_one({"patient_id": f.patient.id})
    assert account is not None
    imaging = [ch for ch in account.charges if ch.source == "imaging_study"]
    assert [(ch.amount, str(ch.source_id)) for ch in imaging] == [(30000, study["id"])]
    assert imaging[0].department_id == f.radiology.id
