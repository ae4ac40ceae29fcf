"""Demo ward stock and medication administration record for the demo's current admissions.

Runs after the orders demo (its paracetamol orders and their tasks) and the pharmacy demo (the
store's batches). Each ward with patients got paracetamol 1 g tablets issued from the store's
newer batch two days before the demo's "now" (a ``transfer_out`` and a ``transfer_in`` in the
ledger), enough for its doses and twenty more. Every paracetamol task has its dose: a task the
ward's nurse did is a dose given then, one tablet from the ward's batch (an ``administer``
row); a task still due is a scheduled dose. The latest given dose of the first admission was
held instead (nil by mouth before a procedure) and that of the second refused by the patient,
their tasks skipped. So each batch's quantity is still the sum of its movements. Ids derive
from the task and ward: every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import timedelta

from beanie import PydanticObjectId

import db
from demo.clock import ANCHOR
from models.drugs import Drug
from models.medication import DoseLine, DoseStatus, MedicationAdministration
from models.nursing import NursingTask, TaskStatus
from models.orders import DoctorOrder, OrderKind
from models.pharmacy import MovementKind, StockBatch, StockLocation, StockMovement
from services import medication

ISSUED_AT = ANCHOR - timedelta(days=2)
SPARE = 20
PHARMACIST = "demo:pharmacist"
RECEIVER = "demo:pharmacy-stores"
NOT_GIVEN = (
    (DoseStatus.HELD, "Nil by mouth before the procedure"),
    (DoseStatus.REFUSED, "Patient declined: no pain at the time"),
)


def _id(*parts: object) -> PydanticObjectId:
    key = ":".join(str(p) for p in parts).encode()
    return PydanticObjectId(hashlib.blake2b(b"mar:" + key, digest_size=12).digest())


def _movement(
    batch: StockBatch, kind: MovementKind, delta: int, op: PydanticObjectId, by: str, at: object
) -> StockMovement:
    return StockMovement(
        id=_id("movement", op, kind.value),
        op=op,
        kind=kind,
        batch_id=batch.id,
        drug_id=batch.drug_id,
        location=batch.location,
        ward_id=batch.ward_id,
        delta=delta,
        by=by,
        at=at,
        created_at=at,
        updated_at=at,
    )


async def seed_medication() -> int:
    """Ward stock and the doses of every demo medication order; how many doses."""
    orders = await DoctorOrder.find({"kind": OrderKind.MEDICATION.value}).sort("_id").to_list()
    if not orders:
        return 0
    drugs: dict[str, Drug | None] = {}
    tasks_of: dict[PydanticObjectId, list[NursingTask]] = {}
    for order in orders:
        assert order.medication is not None and order.id is not None
        drugs.setdefault(order.medication.drug, await medication.drug_for_order(order.medication))
        tasks_of[order.id] = (
            await NursingTask.find({"order_id": order.id}).sort("due_at", "_id").to_list()
        )
    # The wards' stock: one batch per ward and drug, issued from the store's latest batch.
    need: dict[tuple[PydanticObjectId, PydanticObjectId], int] = defaultdict(int)
    for order in orders:
        assert order.medication is not None and order.id is not None
        drug = drugs[order.medication.drug]
        if drug is not None and drug.id is not None:
            units = medication.units_per_dose(drug, order.medication.dose, order.medication.unit)
            given = sum(1 for t in tasks_of[order.id] if t.status == TaskStatus.DONE)
            need[(order.ward_id, drug.id)] += units * given
    ward_batches: dict[tuple[PydanticObjectId, PydanticObjectId], StockBatch] = {}
    movements: list[StockMovement] = []
    for (ward_id, drug_id), used in sorted(need.items(), key=lambda kv: str(kv[0])):
        source_raw = await db.collection(StockBatch).find_one(
            {"drug_id": drug_id, "location": StockLocation.PHARMACY.value},
            sort=[("expiry", -1), ("_id", 1)],
        )
        if source_raw is None:
            continue
        source = StockBatch.model_validate(source_raw)
        issued = used + SPARE
        op = _id("issue", ward_id, drug_id)
        short = max(0, issued - source.quantity)
        if short:  # a delivery to the store the day before covers the wards' need
            delivery = _id("delivery", ward_id, drug_id)
            delivered = ISSUED_AT - timedelta(days=1)
            movements.append(
                _movement(source, MovementKind.RECEIVE, short, delivery, RECEIVER, delivered)
            )
        await db.collection(StockBatch).update_one(
            {"_id": source.id}, {"$inc": {"quantity": short - issued}}
        )
        movements.append(_movement(source, MovementKind.TRANSFER_OUT, -issued, op, PHARMACIST,
                                   ISSUED_AT))  # fmt: skip
        batch = StockBatch(
            id=_id("batch", ward_id, drug_id),
            drug_id=drug_id,
            batch_number=source.batch_number,
            expiry=source.expiry,
            quantity=issued,
            location=StockLocation.WARD,
            ward_id=ward_id,
            unit_cost=source.unit_cost,
            currency=source.currency,
            received_at=ISSUED_AT,
            received_by=PHARMACIST,
            created_at=ISSUED_AT,
            updated_at=ISSUED_AT,
        )
        movements.append(_movement(batch, MovementKind.TRANSFER_IN, issued, op, PHARMACIST,
                                   ISSUED_AT))  # fmt: skip
        ward_batches[(ward_id, drug_id)] = batch
    doses: list[MedicationAdministration] = []
    skipped: list[tuple[NursingTask, str]] = []
    admissions_seen: list[PydanticObjectId] = []
    for order in orders:
        assert order.medication is not None and order.id is not None
        m = order.medication
        drug = drugs[m.drug]
        units = medication.units_per_dose(drug, m.dose, m.unit) if drug is not None else 0
        stock = ward_batches.get((order.ward_id, drug.id)) if drug and drug.id else None
        tasks = tasks_of[order.id]
        done = [t for t in tasks if t.status == TaskStatus.DONE]
        not_given = None
        if done and len(admissions_seen) < len(NOT_GIVEN):
            not_given = (done[-1].id, *NOT_GIVEN[len(admissions_seen)])
            admissions_seen.append(order.admission_id)
        for task in tasks:
            dose = MedicationAdministration(
                id=_id("dose", task.id),
                order_id=order.id,
                task_id=task.id,
                admission_id=order.admission_id,
                patient_id=order.patient_id,
                ward_id=order.ward_id,
                department_id=order.department_id,
                ordered_by_id=order.ordered_by_id,
                drug_id=drug.id if drug else None,
                drug_name=m.drug,
                dose=m.dose,
                unit=m.unit,
                route=m.route,
                units=units,
                due_at=task.due_at,
                status=DoseStatus.SCHEDULED,
                status_at=task.status_at,
                created_at=task.created_at,
                updated_at=task.updated_at,
            )
            if task.status == TaskStatus.DONE and not_given and not_given[0] == task.id:
                _, status, reason = not_given
                dose.status, dose.reason = status, reason
                dose.recorded_by_id, dose.recorded_at = task.done_by_id, task.done_at
                skipped.append((task, f"{status.value}: {reason}"))
            elif task.status == TaskStatus.DONE:
                dose.status = DoseStatus.GIVEN
                dose.given_at = dose.recorded_at = task.done_at
                dose.recorded_by_id = task.done_by_id
                if stock is not None and units > 0:
                    line = DoseLine(
                        op=_id("op", task.id),
                        batch_id=stock.id,
                        batch_number=stock.batch_number,
                        expiry=stock.expiry,
                        quantity=units,
                    )
                    dose.lines = [line]
                    stock.quantity -= units
                    movements.append(
                        _movement(stock, MovementKind.ADMINISTER, -units, line.op,
                                  f"demo:nurse:{task.done_by_id}", task.done_at)
                    )  # fmt: skip
            elif task.status == TaskStatus.CANCELLED:
                dose.status, dose.reason = DoseStatus.CANCELLED, task.reason
            doses.append(dose)
    for task, reason in skipped:
        await db.collection(NursingTask).update_one(
            {"_id": task.id},
            {"$set": {"status": TaskStatus.SKIPPED.value, "reason": reason,
                      "done_at": None, "note": None}},
        )  # fmt: skip
    if ward_batches:
        await StockBatch.insert_many(list(ward_batches.values()))
    if movements:
        await StockMovement.insert_many(movements)
    if doses:
        await MedicationAdministration.insert_many(doses)
    return len(doses)
