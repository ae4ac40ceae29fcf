"""The demo's pharmacy agrees with its prescriptions, its billing and its own ledger."""

from __future__ import annotations

from typing import Any

from demo import seed_demo
from models import BillingAccount, Prescription
from models.base import utcnow
from models.billing import ChargeSource
from models.clinical import PrescriptionStatus
from models.drugs import Drug
from models.pharmacy import Dispense, DispenseStatus, StockBatch
from services import drugs, pharmacy


async def test_demo_dispenses_agree_with_prescriptions_bills_and_ledger(database: Any) -> None:
    await seed_demo(60)
    prescriptions = await Prescription.find_all().to_list()
    for rx in prescriptions:  # every prescription the demo writes names a product of the master
        await drugs.for_prescription(rx)
    dispensed = {
        rx.id: rx for rx in prescriptions if any(h.status == "dispensed" for h in rx.status_history)
    }
    dispenses = await Dispense.find_all().to_list()
    assert dispensed and {d.prescription_id for d in dispenses} == set(dispensed)
    for d in dispenses:
        rx = dispensed[d.prescription_id]
        assert d.status == DispenseStatus.COMPLETED and d.patient_id == rx.patient_id
        picked = rx.status == PrescriptionStatus.PICKED_UP
        assert (d.picked_up_at is not None) == picked
        drug = await Drug.get(d.drug_id)
        assert drug is not None and (d.confirmed_by is not None) == drug.controlled
        account = await BillingAccount.find_one({"patient_id": d.patient_id})
        assert account is not None
        charges = [c for c in account.charges if c.source == ChargeSource.DISPENSE
                   and c.source_id == d.id]  # fmt: skip
        assert [c.amount for c in charges] == [d.amount]
        assert account.total_charged == sum(c.amount for c in account.charges)
    for batch in await StockBatch.find_all().to_list():
        assert batch.quantity >= 0
        assert await pharmacy.ledger_sum(batch.id) == batch.quantity  # type: ignore[arg-type]
    assert await StockBatch.find({"expiry": {"$lt": pharmacy.day_start(utcnow())}}).count()
    assert await Drug.find({"schedule": "II"}).count() == 1
