"""The demo's laboratory: orders from completed visits, coherent with the clinic, charged once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from crypto.fields import SEALED, open_document
from demo.laboratory import ORDERS_PER_DEPARTMENT, seed_laboratory
from models.billing import BillingAccount, ChargeSource
from models.laboratory import LabOrder, LabOrderStatus, LabResult, LabSample, LabTest, ResultFlag
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from tests import factories

SEEN = datetime(2026, 11, 2, 9, tzinfo=UTC)


async def _clinic(code: str, visits: int) -> list[OutpatientVisit]:
    dept = await factories.department(code=code, name=code)
    doctor = await factories.doctor(dept)
    made = []
    for i in range(visits):
        patient = await factories.patient(clinician_access=False)
        await factories.billing_account(patient)
        at = SEEN + timedelta(hours=i)
        made.append(
            await OutpatientVisit(
                patient_id=patient.id,
                appointment_id=PydanticObjectId(),
                doctor_id=doctor.id,
                department_id=dept.id,
                arrival=Arrival.APPOINTMENT,
                status=VisitStatus.COMPLETED,
                queue_date=at.date().isoformat(),
                queue_number=i + 1,
                checked_in_at=at,
                seen_at=at + timedelta(minutes=10),
                completed_at=at + timedelta(minutes=30),
                status_at=at + timedelta(minutes=30),
            ).insert()
        )
    return made


async def _stored() -> dict[str, list[dict[str, Any]]]:
    """Every stored document, sealed fields opened (their ciphertexts differ per write)."""
    out = {}
    for model in (LabTest, LabOrder, LabSample, LabResult):
        rows = await model.get_motor_collection().find({}).sort("_id", 1).to_list(None)
        sealing = SEALED.get(model)
        out[model.get_collection_name()] = (
            rows if sealing is None else [open_document(sealing, r) for r in rows]
        )
    return out


async def test_demo_orders_follow_the_clinic_and_are_charged_once(database: Any) -> None:
    cardiology = await _clinic("CARD", ORDERS_PER_DEPARTMENT + 2)
    await _clinic("GEN", 2)
    await _clinic("RAD", 2)  # radiology orders no lab work
    assert await seed_laboratory() == ORDERS_PER_DEPARTMENT + 2
    orders = await LabOrder.find({}).to_list()
    assert {o.status for o in orders} == {LabOrderStatus.VERIFIED}
    by_visit = {o.visit_id: o for o in orders}
    cardiac = [by_visit[v.id] for v in cardiology if v.id in by_visit]
    assert len(cardiac) == ORDERS_PER_DEPARTMENT
    assert all([t.code for t in o.tests] == ["TROP", "BMP", "LIPID"] for o in cardiac)
    critical = await LabResult.find({"flag": ResultFlag.CRITICAL_HIGH.value}).to_list()
    assert [(r.analyte_code, r.value) for r in critical] == [("K", 6.8)]
    assert critical[0].order_id == cardiac[0].id
    assert all(r.entered_by != r.verified_by for r in await LabResult.find({}).to_list())
    for order in orders:
        assert order.charged_at is not None
        released = await LabResult.find({"order_id": order.id}).count()
        assert (
            len(order.report)
            == released
            == sum(
                len(t.analytes)
                for t in await LabTest.find(
                    {"code": {"$in": [x.code for x in order.tests]}}
                ).to_list()
            )
        )
        account = await BillingAccount.find_one({"patient_id": order.patient_id})
        assert account is not None
        lab = [c for c in account.charges if c.source == ChargeSource.LAB_ORDER]
        assert [(c.source_id, c.amount) for c in lab] == [(order.id, order.charge_amount)]
        assert account.total_charged == sum(c.amount for c in account.charges)
    accessions = [s.accession_number for s in await LabSample.find({}).to_list()]
    assert len(accessions) == len(set(accessions))


async def test_the_demo_laboratory_is_the_same_every_time(database: Any) -> None:
    await _clinic("ER", 3)
    await seed_laboratory()
    first = await _stored()
    for model in (LabTest, LabOrder, LabSample, LabResult):
        await model.get_motor_collection().delete_many({})
    await seed_laboratory()
    assert await _stored() == first
