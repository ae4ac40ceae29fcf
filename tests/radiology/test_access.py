"""Who reads and writes imaging: refusals by role and relation, and bad input changing nothing."""

from __future__ import annotations

from typing import Any

from models import Reservation
from models.radiology import ImagingOrder, ImagingStudy
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.radiology.helpers import (
    COMPLETE,
    DRAFT,
    ORDER,
    READ_ORDER,
    SCHEDULE,
    START_STUDY,
    Callers,
    facility,
    order_input,
    ordered,
    reported,
    scheduled,
    slot,
)

BILLING_VIEW = """query($id: ID!) { imagingOrder(id: $id) {
  id status modality bodyPart price chargedAt patientId study { accessionNumber status } } }"""
REPORT = """query($id: ID!) { imagingReport(id: $id) { id findings } }"""
ORDERS = """{ imagingOrders(first: 10) { nodes { id } } }"""
DRAFT_OF = """query($id: ID!) { imagingStudy(id: $id) { id draftReport { id findings } } }"""


def _errors(body: dict[str, Any]) -> dict[str, str]:
    return {str(e["path"][-1]): code(e) for e in body.get("errors", [])}


async def test_billing_sees_the_charge_never_the_question_or_the_report(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, _, report_id = await reported(c, f)
    seen = (await c.billing.data(BILLING_VIEW, id=order_id))["imagingOrder"]
    assert seen["price"] == 30000 and seen["chargedAt"] and seen["study"]["accessionNumber"]
    body = await c.billing(READ_ORDER, id=order_id)
    order = body["data"]["imagingOrder"]
    assert order["clinicalQuestion"] is None and order["report"] is None
    assert _errors(body) == {"clinicalQuestion": "FORBIDDEN", "reportId": "FORBIDDEN",
                             "report": "FORBIDDEN"}  # fmt: skip
    assert code(await c.billing.error(REPORT, id=report_id)) == "FORBIDDEN"


async def test_analysts_read_no_imaging_at_all(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, study_id, report_id = await reported(c, f)
    assert code(await c.analyst.error(ORDERS)) == "FORBIDDEN"
    assert code(await c.analyst.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
    assert code(await c.analyst.error(REPORT, id=report_id)) == "FORBIDDEN"
    assert code(await c.analyst.error(DRAFT_OF, id=study_id)) == "FORBIDDEN"


async def test_the_patient_reads_final_reports_never_drafts(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id, _, report_id = await reported(c, f)
    mine = (await c.patient.data(READ_ORDER, id=order_id))["imagingOrder"]
    assert mine["report"]["id"] == report_id and mine["report"]["findings"]
    _, study_id = await scheduled(c, f)
    await c.radiographer.data(START_STUDY, id=study_id)
    await c.radiologist.data(DRAFT, studyId=study_id, input={"findings": "x", "impression": "y"})
    body = await c.patient(DRAFT_OF, id=study_id)
    assert body["data"]["imagingStudy"]["draftReport"] is None
    assert _errors(body) == {"draftReport": "FORBIDDEN"}
    other = await factories.patient(clinician_access=False)
    stranger = client_as(roles=["patient"], pid=str(other.id))
    assert code(await stranger.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
    assert (await stranger.data(ORDERS))["imagingOrders"]["nodes"] == []


async def test_clinicians_without_a_relationship_are_refused(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id = await ordered(c, f)
    outsider = await factories.doctor(f.ward)
    doctor = client_as(roles=["doctor"], sid=str(outsider.id), did=str(f.ward.id))
    assert code(await doctor.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
    assert code(await doctor.error(ORDER, input=order_input(f))) == "FORBIDDEN"
    ward_nurse = await factories.nurse(f.ward)
    nurse = client_as(roles=["nurse"], sid=str(ward_nurse.id), did=str(f.ward.id))
    assert code(await nurse.error(SCHEDULE, orderId=order_id, input=slot(f.ct))) == "FORBIDDEN"
    # The ordering doctor orders, but the performing department schedules and performs.
    assert code(await c.doctor.error(SCHEDULE, orderId=order_id, input=slot(f.ct))) == "FORBIDDEN"
    _, study_id = await scheduled(c, f)
    assert code(await c.doctor.error(START_STUDY, id=study_id)) == "FORBIDDEN"
    assert code(await nurse.error(START_STUDY, id=study_id)) == "FORBIDDEN"
    assert code(await c.radiologist.error(ORDER, input=order_input(f))) == "FORBIDDEN"
    assert code(await c.radiographer.error(COMPLETE, id=study_id)) == "BAD_USER_INPUT"


async def test_bad_orders_change_nothing(client_as: Any) -> None:
    f = await facility()
    c = Callers(client_as, f)
    other = await factories.patient(clinician_access=False)
    theirs = f.visit.model_copy(update={"id": None, "patient_id": other.id, "queue_number": 999})
    await theirs.insert()
    before = await snapshot(ImagingOrder, ImagingStudy, Reservation)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"visitId": None}, "visitId"),
        ({"admissionId": str(f.visit.id)}, "visitId"),
        ({"clinicalQuestion": "   "}, "clinicalQuestion"),
        ({"bodyPart": ""}, "bodyPart"),
        ({"visitId": str(other.id)}, "visitId"),  # no such visit
        ({"visitId": str(theirs.id)}, "visitId"),  # another patient's
    ]
    for overrides, field in cases:
        error = await c.doctor.error(ORDER, input=order_input(f, **overrides))
        assert code(error) == "BAD_USER_INPUT", (overrides, error)
        assert field in error["extensions"]["fields"], (overrides, error)
    many = await c.doctor.error(ORDER, input=order_input(f, bodyPart="", clinicalQuestion=""))
    assert {"bodyPart", "clinicalQuestion"} <= set(many["extensions"]["fields"])
    bad_enum = await c.doctor(ORDER, input=order_input(f, modality="PET"))
    assert code(bad_enum["errors"][0]) == "BAD_USER_INPUT"
    assert await snapshot(ImagingOrder, ImagingStudy, Reservation) == before
