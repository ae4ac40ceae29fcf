"""A small pharmacy: drugs, batches, prescriptions and the GraphQL operations the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bson import ObjectId

from models.base import utcnow
from models.clinical import Prescription
from models.drugs import ControlledSchedule, Drug
from models.pharmacy import StockBatch, StockLocation
from models.staff import Doctor
from services import drugs, pharmacy
from tests import factories

PHARMACIST = {"sub": "test:pharmacist-1", "roles": ["pharmacist"]}
PHARMACIST2 = {"sub": "test:pharmacist-2", "roles": ["pharmacist"]}

DISPENSE = """mutation($id: ID!, $quantity: Int, $partial: Boolean! = false, $key: String) {
  dispensePrescription(prescriptionId: $id, quantity: $quantity, allowPartial: $partial,
                       idempotencyKey: $key) {
    id status requested quantity outstanding controlled dispensedBy confirmedBy
    lines { batchId batchNumber quantity returned } amount { amount currency } } }"""
CONFIRM = """mutation($id: ID!) { confirmDispense(id: $id) { id status confirmedBy quantity } }"""
RETURN = """mutation($id: ID!, $quantity: Int!, $reason: String!, $batchId: ID) {
  returnStock(dispenseId: $id, quantity: $quantity, reason: $reason, batchId: $batchId) {
    id status lines { batchId quantity returned } returns { quantity reason applied } } }"""
WRITE_OFF = """mutation($id: ID!, $reason: WriteOffReason!, $quantity: Int, $note: String) {
  writeOffStock(batchId: $id, reason: $reason, quantity: $quantity, note: $note) {
    id quantity } }"""
RECEIVE = """mutation($input: ReceiveStockInput!, $key: String) {
  receiveStock(input: $input, idempotencyKey: $key) { id batchNumber quantity expiry } }"""
PICK_UP = """mutation($id: ID!) { recordPickUp(dispenseId: $id) { id pickedUpAt } }"""
BATCHES = """query($drugId: ID, $empty: Boolean! = false) {
  stockBatches(drugId: $drugId, includeEmpty: $empty) {
    nodes { id batchNumber quantity expired unitCost { amount } } } }"""
LEVEL = """query($drugId: ID!) { stockLevel(drugId: $drugId) {
  location quantity expiredQuantity batches earliestExpiry } }"""


def today() -> date:
    return utcnow().date()


async def drug(
    name: str = "Amoxicillin",
    *,
    schedule: ControlledSchedule = ControlledSchedule.NONE,
    price: int = 40,
    **fields: Any,
) -> Drug:
    data: dict[str, Any] = {
        "generic_name": name,
        "brand_names": ["Amoxil"],
        "form": "capsule",
        "strength": {"value": 500, "unit": "mg"},
        "route": "oral",
        "atc_code": "J01CA04",
        "schedule": schedule,
        "unit_of_issue": "capsule",
        "price": price,
        **fields,
    }
    return await drugs.create_drug(data)


async def batch(
    d: Drug,
    number: str,
    quantity: int,
    *,
    expires_in: int = 365,
    location: StockLocation = StockLocation.PHARMACY,
    ward_id: Any = None,
    cost: int = 10,
) -> StockBatch:
    """A batch; ``expires_in`` may be zero or negative (an expired batch, written directly,
    since receiving refuses expired stock)."""
    if expires_in <= 0:
        doc = StockBatch(
            drug_id=d.id, batch_number=number, expiry=today() + timedelta(days=expires_in),
            quantity=quantity, location=location, ward_id=ward_id, unit_cost=cost,
            received_by="test",
        )  # fmt: skip
        return await doc.insert()
    data = {
        "drug_id": d.id,
        "batch_number": number,
        "expiry": today() + timedelta(days=expires_in),
        "quantity": quantity,
        "location": location,
        "ward_id": ward_id,
        "unit_cost": cost,
    }
    return await pharmacy.receive(data, "test:receiver")


async def prescription(
    d: Drug | None = None, doctor: Doctor | None = None, **fields: Any
) -> Prescription:
    base: dict[str, Any] = {"drug": d.generic_name if d else "Amoxicillin", "dose": "500 mg"}
    if d is not None:
        base["drug_id"] = d.id
    return await factories.prescription(doc=doctor, **{**base, **fields})


async def quantities(*batches: StockBatch) -> list[int]:
    out = []
    for b in batches:
        fresh = await StockBatch.get(b.id)
        assert fresh is not None
        out.append(fresh.quantity)
    return out


async def ledger_agrees(*batches: StockBatch) -> None:
    """Every batch's quantity is the sum of its ledger rows, and no operation is left on it."""
    for b in batches:
        fresh = await StockBatch.get(b.id)
        assert fresh is not None
        assert fresh.quantity >= 0
        assert fresh.pending_ops == [], fresh.pending_ops
        assert await pharmacy.ledger_sum(oid(b.id)) == fresh.quantity


@dataclass
class Callers:
    pharmacist: Any
    pharmacist2: Any


def oid(value: ObjectId | None) -> ObjectId:
    assert value is not None
    return value


def code(error: dict[str, Any]) -> str:
    return str(error["extensions"]["code"])
