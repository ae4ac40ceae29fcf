"""Issuing pharmacy stock to a ward: the units leave a pharmacy batch and arrive in the ward's
batch of the same number (made on the first issue), with a ledger row on each side.

Two batches move, with no transaction, through ``services.pharmacy``'s steps:

1. the pharmacy batch: one conditional decrement ``{quantity >= n}`` recording the operation
   (``transfer_out``): too little stock is ``CONFLICT`` ``INSUFFICIENT_STOCK``, nothing moved;
2. the ward batch: inserted with the units and the same operation (``transfer_in``), or, when
   it exists, incremented with it; the operation's id is the same on both sides;
3. both ledger rows, then the operation leaves both batches.

A failure before step 2 lands gives the units back to the pharmacy batch at once (its
compensation); once step 2 has landed the transfer happened and only bookkeeping is left, which
``services.pharmacy.recover`` finishes: a ``transfer_out`` left on a pharmacy batch longer than
its grace is settled when its ``transfer_in`` exists (on a ward batch, or in the ledger), and
compensated when it does not (``finish_op``).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

import db
from errors import Conflict
from models.base import utcnow
from models.pharmacy import MovementKind, PendingOp, StockBatch, StockLocation, StockMovement
from models.wards import Ward
from services import common, pharmacy
from services.changes import changed
from services.validation import require

INSUFFICIENT_STOCK = pharmacy.INSUFFICIENT_STOCK


async def issue_to_ward(
    batch_id: ObjectId, ward_id: ObjectId, quantity: int, by: str
) -> StockBatch:
    """Move ``quantity`` units of a pharmacy batch into the ward's stock; the ward's batch."""
    source = await pharmacy.get_batch(batch_id)
    require(source.location == StockLocation.PHARMACY, "batchId", "is not the pharmacy's stock")
    require(0 < quantity <= 100_000, "quantity", "must be between 1 and 100000")
    now = utcnow()
    require(
        datetime.combine(source.expiry, time()) > pharmacy.day_start(now),
        "batchId",
        "the batch has expired: it is written off, not issued",
    )
    await common.ensure_exists(Ward, ward_id, "wardId", "ward")
    op = PydanticObjectId()
    out = PendingOp(
        op=op, kind=MovementKind.TRANSFER_OUT, delta=-quantity, by=by,
        reason=f"issued to ward {ward_id}", at=now,
    )  # fmt: skip
    taken = await pharmacy.apply_op(batch_id, out)
    if taken is None:
        fresh = await pharmacy.get_batch(batch_id)
        raise Conflict(
            f"Only {fresh.quantity} unit(s) in batch {fresh.batch_number} for {quantity} asked: "
            "nothing was issued",
            reason=INSUFFICIENT_STOCK,
            available=fresh.quantity,
            fields=["quantity"],
        )
    arrived: StockBatch | None = None
    try:
        await pharmacy.record_movement(taken, out)
        into = PendingOp(
            op=op, kind=MovementKind.TRANSFER_IN, delta=quantity, by=by,
            reason=f"from pharmacy batch {batch_id}", at=now,
        )  # fmt: skip
        arrived = await _arrive(source, ward_id, into)
        await pharmacy.record_movement(arrived, into)
    except BaseException:
        if arrived is None:  # nothing reached the ward: the pharmacy gets its units back
            await pharmacy.compensate_op(batch_id, op, by)
        raise
    await pharmacy.release_ops(arrived.id, [op])  # type: ignore[arg-type]
    await pharmacy.release_ops(batch_id, [op])
    arrived.pending_ops = [p for p in arrived.pending_ops if p.op != op]
    taken.pending_ops = [p for p in taken.pending_ops if p.op != op]
    await changed(taken, "issued")
    await changed(arrived, "received")
    return arrived


async def _arrive(source: StockBatch, ward_id: ObjectId, into: PendingOp) -> StockBatch:
    """The ward's batch of the same number, with the units and the operation on it."""
    now = into.at
    batch = StockBatch(
        drug_id=source.drug_id,
        batch_number=source.batch_number,
        expiry=source.expiry,
        quantity=into.delta,
        location=StockLocation.WARD,
        ward_id=ward_id,
        unit_cost=source.unit_cost,
        currency=source.currency,
        received_at=now,
        received_by=into.by,
        pending_ops=[into],
        created_at=now,
        updated_at=now,
    )
    try:
        await batch.insert()
        return batch
    except DuplicateKeyError:
        pass
    key = {
        "drug_id": source.drug_id,
        "batch_number": source.batch_number,
        "location": StockLocation.WARD.value,
        "ward_id": ward_id,
    }
    raw = await db.collection(StockBatch).find_one(key)
    if raw is None:
        raise Conflict("The ward's batch changed meanwhile; retry")
    existing = StockBatch.model_validate(raw)
    applied = await pharmacy.apply_op(existing.id, into)
    if applied is None:  # the operation is on it already (a repeat)
        return existing
    return applied


async def finish_op(batch: StockBatch, pending: PendingOp) -> bool:
    """A ``transfer_out`` left on a pharmacy batch past its grace (``pharmacy.recover``):
    settled when its units reached the ward, given back when they did not."""
    arrived: Any = await db.collection(StockBatch).find_one(
        {"pending_ops.op": pending.op, "_id": {"$ne": batch.id}}
    )
    if arrived is None:
        arrived = await db.collection(StockMovement).find_one(
            {"op": pending.op, "kind": MovementKind.TRANSFER_IN.value}
        )
    if arrived is None:
        return await pharmacy.compensate_op(batch.id, pending.op, pharmacy.SYSTEM)  # type: ignore[arg-type]
    if "pending_ops" in arrived:
        ward = StockBatch.model_validate(arrived)
        into = next(p for p in ward.pending_ops if p.op == pending.op)
        await pharmacy.record_movement(ward, into)
        await pharmacy.release_ops(ward.id, [pending.op])
    await pharmacy.record_movement(batch, pending)
    await pharmacy.release_ops(batch.id, [pending.op])  # type: ignore[arg-type]
    return True
