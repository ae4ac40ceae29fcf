"""A ward with an admitted patient, an amoxicillin order, ward stock, and the operations the
medication tests share (the orders tests' ward and callers, plus a pharmacist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.drugs import Drug
from models.medication import MedicationAdministration
from models.pharmacy import StockBatch, StockLocation
from tests.orders.helpers import CREATE_ORDER, Callers, Ward_, medication, ward
from tests.pharmacy import world

DOSES = """query($filter: MedicationAdministrationFilter) {
  medicationAdministrations(filter: $filter, first: 100) {
    nodes { id orderId taskId status dueAt drugId drugName dose unit units wardId
            lines { batchId batchNumber quantity } } } }"""
GIVE = """mutation($id: ID!, $givenAt: DateTime, $note: String) {
  giveMedication(id: $id, givenAt: $givenAt, note: $note) {
    id status givenAt recordedById note version lines { batchId batchNumber quantity }
    task { id status doneAt } } }"""
HOLD = """mutation($id: ID!, $reason: String!) {
  holdMedication(id: $id, reason: $reason) { id status reason recordedById
    task { id status reason } } }"""
REFUSE = """mutation($id: ID!, $reason: String!) {
  refuseMedication(id: $id, reason: $reason) { id status reason task { id status } } }"""
CONSUMPTION = """query($w: ID!, $from: DateTime!, $to: DateTime!) {
  wardMedicationConsumption(wardId: $w, from: $from, to: $to) {
    wardId from to drugs { drugId drugName dosesGiven unitsConsumed stockRemaining } } }"""
ISSUE = """mutation($b: ID!, $w: ID!, $q: Int!) {
  issueStockToWard(batchId: $b, wardId: $w, quantity: $q) {
    id batchNumber quantity location wardId expiry } }"""


@dataclass
class Round:
    """A ward, its callers, an amoxicillin 250 mg capsule (500 mg doses take two) and the
    order's first scheduled dose."""

    w: Ward_
    c: Callers
    pharmacist: Any
    drug: Drug
    order_id: str
    doses: list[dict[str, Any]]


async def ward_batch(
    r_or_ward: Any, drug: Drug, number: str, quantity: int, expires_in: int = 200
) -> StockBatch:
    ward_id = r_or_ward.ward.id if hasattr(r_or_ward, "ward") else r_or_ward
    return await world.batch(
        drug, number, quantity, expires_in=expires_in, location=StockLocation.WARD,
        ward_id=ward_id,
    )  # fmt: skip


async def amoxicillin() -> Drug:
    return await world.drug(strength={"value": 250, "unit": "mg"})


async def round_(client_as: Any, drug: Drug | None = None, **order: Any) -> Round:
    w = await ward()
    c = Callers(client_as, w)
    drug = drug or await amoxicillin()
    made = await c.doctor.data(CREATE_ORDER, input={**medication(w), **order})
    order_id = made["createDoctorOrder"]["id"]
    doses = await doses_of(c, order_id)
    return Round(w, c, client_as(**world.PHARMACIST), drug, order_id, doses)


async def doses_of(c: Callers, order_id: str) -> list[dict[str, Any]]:
    found = await c.nurse.data(DOSES, filter={"orderId": order_id})
    nodes: list[dict[str, Any]] = found["medicationAdministrations"]["nodes"]
    return nodes


async def stored(id: str) -> MedicationAdministration:
    from bson import ObjectId

    dose = await MedicationAdministration.get(ObjectId(id))
    assert dose is not None
    return dose
