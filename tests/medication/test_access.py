"""Who records and reads doses, and who reads a ward's consumption."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.base import utcnow
from tests.graphql.helpers import code
from tests.medication.helpers import CONSUMPTION, DOSES, GIVE, HOLD, round_, ward_batch
from tests.orders.helpers import iso
from tests.pharmacy import world

ONE = "query($id: ID!) { medicationAdministration(id: $id) { id status } }"


async def test_only_the_ward_team_records_and_reads_doses(client_as: Any) -> None:
    r = await round_(client_as)
    stock = await ward_batch(r.w, r.drug, "B1", 10)
    dose = r.doses[0]["id"]
    for caller in (r.c.other_nurse, r.c.billing, r.c.doctor, r.pharmacist, r.c.patient):
        assert code(await caller.error(GIVE, id=dose)) == "FORBIDDEN"
        assert code(await caller.error(HOLD, id=dose, reason="x")) == "FORBIDDEN"
    assert await world.quantities(stock) == [10]
    # Reading: the ward's nurse, the ordering doctor, the patient; not billing, another ward's
    # nurse or the pharmacist (the pharmacy reads the ward's consumption instead).
    for caller in (r.c.nurse, r.c.doctor, r.c.patient):
        assert (await caller.data(ONE, id=dose))["medicationAdministration"]["id"] == dose
    for caller in (r.c.billing, r.c.other_nurse, r.pharmacist, r.c.analyst):
        body = await caller(ONE, id=dose)
        assert body.get("errors") or body["data"]["medicationAdministration"] is None
        listed = await caller(DOSES, filter={"orderId": r.order_id})
        assert listed.get("errors") or listed["data"]["medicationAdministrations"]["nodes"] == []


async def test_the_pharmacist_reads_the_ward_consumption(client_as: Any) -> None:
    r = await round_(client_as)
    stock = await ward_batch(r.w, r.drug, "B1", 10)
    await r.c.nurse.data(GIVE, id=r.doses[0]["id"])
    span = {"w": str(r.w.ward.id), "from": iso(utcnow() - timedelta(days=1)),
            "to": iso(utcnow() + timedelta(minutes=5))}  # fmt: skip
    seen = (await r.pharmacist.data(CONSUMPTION, **span))["wardMedicationConsumption"]
    assert seen["drugs"] == [
        {"drugId": str(r.drug.id), "drugName": "Amoxicillin", "dosesGiven": 1,
         "unitsConsumed": 2, "stockRemaining": 8},
    ]  # fmt: skip
    assert await world.quantities(stock) == [8]
    for caller in (r.c.nurse, r.c.billing, r.c.doctor, r.c.patient):
        assert code(await caller.error(CONSUMPTION, **span)) == "FORBIDDEN"
    backwards = {**span, "to": span["from"]}
    assert code(await r.pharmacist.error(CONSUMPTION, **backwards)) == "BAD_USER_INPUT"
