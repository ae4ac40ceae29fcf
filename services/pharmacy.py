"""Pharmacy stock: receiving, dispensing against prescriptions, returns, write-offs, recovery.

Stock never goes negative, under any concurrency, across processes, with no transactions:

- every change of a batch's quantity is ONE conditional atomic update of that batch. A decrement
  matches only ``{_id, quantity: {$gte: n}}`` and does ``$inc: {quantity: -n, version: 1}``, so
  two dispensers racing for the last units cannot both win, whatever process they run in;
- the same update pushes the operation (``PendingOp``: its id, kind, delta, dispense) onto the
  batch's ``pending_ops`` (and its filter refuses an operation already there, so repeating it is
  harmless). The operation leaves ``pending_ops`` only after its ledger row is written and, for a
  dispense, once the dispense is final. So the batch itself records which operations moved it:
  a compensation is ``{_id, pending_ops.op: op} -> $inc +n, $pull op``, which undoes the
  decrement exactly once and only if it happened;
- the ledger (``StockMovement``) has one row per (operation, kind) under a unique index, written
  before the operation leaves the batch, so for every batch quantity = sum of its movements.

Dispensing a prescription (``dispense``):

1. the prescription's drug (``services.drugs.for_prescription``), the quantity (given, or what
   the prescription still needs), the pharmacy store's usable batches (expiry after today; an
   expired batch is never dispensed, whatever its quantity), soonest expiry first (FEFO);
2. too little stock: ``CONFLICT`` with ``reason: INSUFFICIENT_STOCK`` and ``available``, nothing
   written; unless ``allow_partial``, which dispenses what there is and records the rest as
   ``outstanding`` (the prescription stays ``prescribed`` until a dispense leaves nothing
   outstanding; then it is ``dispensed``);
3. the ``Dispense`` is inserted ``pending``, with its planned lines, BEFORE any stock moves, and
   holds the prescription (``open_for``, unique: one dispense of a prescription at a time);
4. each line is one conditional decrement; a line that loses a race re-reads the batches and
   plans the rest again (a later-expiring batch, or a partial, or ``INSUFFICIENT_STOCK``). A
   refusal or any error compensates the lines already taken and marks the dispense ``failed``;
5. ``pending -> completed`` by compare-and-set (or ``awaiting_confirmation`` for a controlled
   drug, the stock held until another pharmacist confirms within ``HOLD``); then it is settled:
   its operations released, the prescription moved on, the patient's account charged (price x
   quantity, once per dispense: billing refuses a second charge of the same source).

A crash at any point leaves a state ``recover`` finishes: a ``pending`` dispense older than
``GRACE`` is failed and compensated, an unconfirmed hold past its ``expires_at`` is expired and
compensated, a completed one not yet settled is settled, and any operation left on a batch
longer than ``GRACE`` is finished by what its dispense says. Dispensing a drug first recovers
that drug's lapsed dispenses, so stock never stays held for long even with no job running.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, Forbidden, ShmsError
from models.base import utcnow
from models.billing import BillingAccount, ChargeSource
from models.clinical import Prescription, PrescriptionStatus
from models.drugs import Drug
from models.pharmacy import (
    DISPENSED,
    HOLDING,
    Dispense,
    DispenseLine,
    DispenseReturn,
    DispenseStatus,
    MovementKind,
    PendingOp,
    StockBatch,
    StockLocation,
    StockMovement,
    WriteOffReason,
)
from services import billing, clinical, common, drugs
from services.changes import changed
from services.pagination import ASC, BY_ID, Page, PageArgs, Query, Sort, both, paginate
from services.validation import build, require

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=5)
"""A pending dispense (or an operation left on a batch) older than this was abandoned: far
longer than a dispense takes, so ``recover`` never undoes one still running."""
HOLD = timedelta(minutes=30)
"""How long a controlled dispense holds its stock waiting for the second pharmacist."""
MAX_ROUNDS = 50
"""Re-plans one dispense may make after losing races for batches before it answers CONFLICT."""
INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
SYSTEM = "system:recover"
"""The ``by`` of ledger rows ``recover`` writes."""
BY_TIME: Sort = (("at", ASC), ("_id", ASC))
CHARGE_SOURCE = ChargeSource.DISPENSE

_encoder = Encoder()


def _batches() -> Any:
    """The raw batches collection (one seam, so tests can interleave its calls)."""
    return db.collection(StockBatch)


def _dispenses() -> Any:
    return db.collection(Dispense)


def day_start(moment: datetime) -> datetime:
    """Midnight (UTC) of ``moment``'s day, as expiries are stored: a batch is usable while its
    expiry is after this."""
    return datetime.combine(moment.astimezone(UTC).date(), time())


def _as_day(value: date) -> datetime:
    return datetime.combine(value, time())


def _insufficient(available: int, wanted: int) -> Conflict:
    return Conflict(
        f"Only {available} unit(s) in stock for {wanted} asked: nothing was dispensed "
        "(allowPartial dispenses what there is)",
        reason=INSUFFICIENT_STOCK,
        available=available,
        fields=["quantity"],
    )


# -- reads -----------------------------------------------------------------------------------


def batch_filter(
    *,
    drug_id: ObjectId | None = None,
    location: StockLocation | None = None,
    ward_id: ObjectId | None = None,
    expiring_before: datetime | None = None,
    include_empty: bool = False,
    include_expired: bool = True,
    now: datetime | None = None,
) -> Query:
    query: Query = {}
    if drug_id is not None:
        query["drug_id"] = drug_id
    if location is not None:
        query["location"] = location.value
    if ward_id is not None:
        query["ward_id"] = ward_id
    expiry: dict[str, Any] = {}
    if expiring_before is not None:
        expiry["$lt"] = day_start(expiring_before) + timedelta(days=1)
    if not include_expired:
        expiry["$gt"] = day_start(now or utcnow())
    if expiry:
        query["expiry"] = expiry
    if not include_empty:
        query["quantity"] = {"$gt": 0}
    return query


async def list_batches(query: Query, args: PageArgs, scope: Query | None) -> Page[StockBatch]:
    """In the order received (page cursors cannot carry a ``date``, so not by expiry)."""
    return await paginate(StockBatch, both(query, scope), BY_ID, args)


async def get_batch(id: ObjectId) -> StockBatch:
    return await common.get_or_404(StockBatch, id, "StockBatch")


def dispense_filter(
    *,
    prescription_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    drug_id: ObjectId | None = None,
    statuses: Sequence[DispenseStatus] = (),
) -> Query:
    query: Query = {}
    for field, value in (
        ("prescription_id", prescription_id),
        ("patient_id", patient_id),
        ("drug_id", drug_id),
    ):
        if value is not None:
            query[field] = value
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    return query


async def list_dispenses(query: Query, args: PageArgs, scope: Query | None) -> Page[Dispense]:
    return await paginate(Dispense, both(query, scope), BY_ID, args)


async def get_dispense(id: ObjectId) -> Dispense:
    return await common.get_or_404(Dispense, id, "Dispense")


async def list_movements(query: Query, args: PageArgs, scope: Query | None) -> Page[StockMovement]:
    return await paginate(StockMovement, both(query, scope), BY_TIME, args)


@dataclass(frozen=True)
class StockLevel:
    """What one location holds of a drug: usable units (unexpired) and expired ones."""

    drug_id: ObjectId
    location: StockLocation
    ward_id: ObjectId | None
    quantity: int
    expired_quantity: int
    batches: int
    earliest_expiry: date | None


async def stock_level(drug_id: ObjectId, now: datetime | None = None) -> list[StockLevel]:
    """Per location, the drug's usable quantity (batches not expired) and its expired stock."""
    today = day_start(now or utcnow())
    rows = (
        await _batches()
        .find(
            {"drug_id": drug_id, "quantity": {"$gt": 0}},
            projection={"location": 1, "ward_id": 1, "quantity": 1, "expiry": 1},
        )
        .to_list(None)
    )
    levels: dict[tuple[str, Any], dict[str, Any]] = {}
    for raw in rows:
        key = (raw["location"], raw.get("ward_id"))
        level = levels.setdefault(key, {"quantity": 0, "expired": 0, "batches": 0, "first": None})
        expiry = raw["expiry"].replace(tzinfo=None)
        if expiry > today:
            level["quantity"] += raw["quantity"]
            level["batches"] += 1
            if level["first"] is None or expiry < level["first"]:
                level["first"] = expiry
        else:
            level["expired"] += raw["quantity"]
    return [
        StockLevel(
            drug_id=drug_id,
            location=StockLocation(location),
            ward_id=ward_id,
            quantity=level["quantity"],
            expired_quantity=level["expired"],
            batches=level["batches"],
            earliest_expiry=level["first"].date() if level["first"] else None,
        )
        for (location, ward_id), level in sorted(levels.items(), key=lambda kv: str(kv[0]))
    ]


# -- the atomic steps on one batch ------------------------------------------------------------


async def _apply(batch_id: ObjectId, pending: PendingOp) -> StockBatch | None:
    """Move the batch by ``pending.delta`` and record the operation, in one update; a decrement
    only if the batch holds enough. None: not applied (too little, or applied already)."""
    guard: Query = {"_id": batch_id, "pending_ops.op": {"$ne": pending.op}}
    if pending.delta < 0:
        guard["quantity"] = {"$gte": -pending.delta}
    raw = await _batches().find_one_and_update(
        guard,
        {
            "$inc": {"quantity": pending.delta, "version": 1},
            "$push": {"pending_ops": _encoder.encode(pending)},
            "$set": {"updated_at": pending.at},
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else StockBatch.model_validate(raw)


async def _undo(batch_id: ObjectId, op: ObjectId, delta: int) -> StockBatch | None:
    """Reverse an applied operation exactly once (only while it is on the batch)."""
    raw = await _batches().find_one_and_update(
        {"_id": batch_id, "pending_ops.op": op},
        {
            "$inc": {"quantity": -delta, "version": 1},
            "$pull": {"pending_ops": {"op": op}},
            "$set": {"updated_at": utcnow()},
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else StockBatch.model_validate(raw)


async def _release(batch_id: ObjectId, ops: Iterable[ObjectId]) -> None:
    """The operations are settled: their ledger rows exist and their owner is final."""
    await _batches().update_one(
        {"_id": batch_id}, {"$pull": {"pending_ops": {"op": {"$in": list(ops)}}}}
    )


async def _ledger(
    batch: StockBatch,
    pending: PendingOp,
    kind: MovementKind | None = None,
    delta: int | None = None,
    by: str | None = None,
) -> None:
    """The ledger row of an operation (once: a repeat hits the unique index and is ignored)."""
    row = StockMovement(
        op=pending.op,
        kind=kind or pending.kind,
        batch_id=batch.id,
        drug_id=batch.drug_id,
        location=batch.location,
        ward_id=batch.ward_id,
        delta=pending.delta if delta is None else delta,
        reason=pending.reason,
        by=by or pending.by,
        dispense_id=pending.dispense_id,
        at=utcnow() if kind else pending.at,
    )
    with contextlib.suppress(DuplicateKeyError):
        await row.insert()


async def _compensate(batch: StockBatch, pending: PendingOp, by: str) -> StockBatch | None:
    """Give back a decrement still on the batch: its ledger rows first (the dispense's and the
    compensation's), then the undo; repeating any part is harmless."""
    await _ledger(batch, pending)
    await _ledger(batch, pending, MovementKind.COMPENSATION, -pending.delta, by)
    undone = await _undo(batch.id, pending.op, pending.delta)  # type: ignore[arg-type]
    if undone is not None:
        await changed(undone, "compensated")
    return undone


async def _compensate_op(batch_id: ObjectId, op: ObjectId, by: str) -> bool:
    """Compensate ``op`` if it is still on its batch (it then moved the stock); else nothing."""
    raw = await _batches().find_one({"_id": batch_id, "pending_ops.op": op})
    if raw is None:
        return False
    batch = StockBatch.model_validate(raw)
    pending = next(p for p in batch.pending_ops if p.op == op)
    return await _compensate(batch, pending, by) is not None


# The same steps for the modules that move stock of their own through this machinery (ward
# stock transfers in ``services.ward_stock``, doses given in ``services.medication``).
apply_op = _apply
record_movement = _ledger
release_ops = _release
compensate_op = _compensate_op


# -- receiving -------------------------------------------------------------------------------


async def receive(data: Mapping[str, Any], by: str) -> StockBatch:
    """A delivery: a new batch, or more of the same batch (same number and expiry) there."""
    now = utcnow()
    quantity = data.get("quantity")
    require(isinstance(quantity, int) and quantity > 0, "quantity", "must be at least 1")
    assert isinstance(quantity, int)
    op = PydanticObjectId()
    batch = build(
        StockBatch,
        {**data, "quantity": quantity, "received_at": now, "received_by": by,
         "created_at": now, "updated_at": now},
    )  # fmt: skip
    drug = await Drug.get(batch.drug_id)
    require(drug is not None, "drugId", "no such drug")
    assert drug is not None
    require(_as_day(batch.expiry) > day_start(now), "expiry", "the batch has expired already")
    if batch.location == StockLocation.WARD:
        require(batch.ward_id is not None, "wardId", "is required for a ward's stock")
        from models.wards import Ward  # the wards module is optional to this one

        await common.ensure_exists(Ward, batch.ward_id, "wardId", "ward")
    else:
        require(batch.ward_id is None, "wardId", "only a ward's stock names a ward")
    batch.currency = drug.currency
    pending = PendingOp(op=op, kind=MovementKind.RECEIVE, delta=quantity, by=by, at=now)
    batch.pending_ops = [pending]
    try:
        await batch.insert()
        stored: StockBatch | None = batch
    except DuplicateKeyError:
        stored = await _top_up(batch, pending)
    assert stored is not None and stored.id is not None
    await _ledger(stored, pending)
    await _release(stored.id, [op])
    stored.pending_ops = [p for p in stored.pending_ops if p.op != op]
    await changed(stored, "received")
    return stored


async def _top_up(batch: StockBatch, pending: PendingOp) -> StockBatch:
    key = {
        "drug_id": batch.drug_id,
        "batch_number": batch.batch_number,
        "location": batch.location.value,
        "ward_id": batch.ward_id,
    }
    raw = await _batches().find_one(key)
    if raw is None:
        raise Conflict("The batch changed meanwhile; retry")
    existing = StockBatch.model_validate(raw)
    require(
        existing.expiry == batch.expiry,
        "expiry",
        f"batch {batch.batch_number} is here already with expiry {existing.expiry.isoformat()}",
    )
    applied = await _apply(existing.id, pending)
    if applied is None:
        raise Conflict("The batch changed meanwhile; retry")
    return applied


# -- write-offs ------------------------------------------------------------------------------


async def write_off(
    batch_id: ObjectId, quantity: int | None, reason: WriteOffReason, note: str | None, by: str
) -> StockBatch:
    """Take stock out of use; never more than the batch holds (a conditional decrement)."""
    batch = await get_batch(batch_id)
    now = utcnow()
    amount = batch.quantity if quantity is None else quantity
    require(amount > 0, "quantity", "must be at least 1 (the batch is empty)")
    if reason == WriteOffReason.EXPIRED:
        require(_as_day(batch.expiry) <= day_start(now), "reason", "the batch has not expired")
    text = f"{reason.value}: {note.strip()}" if note and note.strip() else reason.value
    pending = PendingOp(
        op=PydanticObjectId(), kind=MovementKind.WRITE_OFF, delta=-amount, by=by,
        reason=text[:200], at=now,
    )  # fmt: skip
    applied = await _apply(batch_id, pending)
    if applied is None:
        fresh = await get_batch(batch_id)
        raise _insufficient(fresh.quantity, amount)
    await _ledger(applied, pending)
    await _release(batch_id, [pending.op])
    applied.pending_ops = [p for p in applied.pending_ops if p.op != pending.op]
    await changed(applied, "written_off")
    return applied


# -- dispensing ------------------------------------------------------------------------------

_PER_DAY = {
    "once daily": 1,
    "once a day": 1,
    "daily": 1,
    "twice daily": 2,
    "twice a day": 2,
    "three times daily": 3,
    "three times a day": 3,
    "four times daily": 4,
    "four times a day": 4,
}


def doses_per_day(frequency: str) -> int | None:
    """Countable frequencies ('twice daily', 'every 8 hours'); None for 'as needed' and such."""
    text = " ".join(frequency.lower().split())
    if text in _PER_DAY:
        return _PER_DAY[text]
    words = text.split()
    hours = int(words[1]) if len(words) == 3 and words[1].isdigit() else 0
    if words[:1] == ["every"] and words[2:] in (["hours"], ["hour"]) and 0 < hours <= 24:
        return 24 // hours if 24 % hours == 0 else None
    return None


def prescribed_units(prescription: Prescription, drug: Drug) -> int | None:
    """Units a whole prescription needs, when its text says so: a dose of exactly one unit's
    strength, a countable frequency, times the days. None: the pharmacist must say."""
    per_day = doses_per_day(prescription.frequency)
    one_unit = " ".join(prescription.dose.lower().split()) == drug.strength.text().lower()
    if per_day is None or not one_unit:
        return None
    return per_day * prescription.duration_days


async def _outstanding(prescription_id: ObjectId) -> int | None:
    """What the last dispense of the prescription left outstanding (None: none yet)."""
    last = await _dispenses().find_one(
        {"prescription_id": prescription_id, "status": {"$in": [s.value for s in DISPENSED]}},
        sort=[("_id", -1)],
        projection={"outstanding": 1},
    )
    return None if last is None else int(last.get("outstanding", 0))


async def _candidates(drug_id: ObjectId, now: datetime) -> list[StockBatch]:
    """The pharmacy store's usable batches of the drug, soonest expiry first (FEFO)."""
    raw = (
        await _batches()
        .find(
            {
                "drug_id": drug_id,
                "location": StockLocation.PHARMACY.value,
                "expiry": {"$gt": day_start(now)},
                "quantity": {"$gt": 0},
            },
            sort=[("expiry", 1), ("_id", 1)],
        )
        .to_list(None)
    )
    return [StockBatch.model_validate(r) for r in raw]


def _plan(batches: Sequence[StockBatch], wanted: int) -> list[DispenseLine]:
    lines: list[DispenseLine] = []
    for batch in batches:
        if wanted <= 0:
            break
        take = min(batch.quantity, wanted)
        if take > 0:
            lines.append(
                DispenseLine(
                    batch_id=batch.id,
                    batch_number=batch.batch_number,
                    expiry=batch.expiry,
                    quantity=take,
                )
            )
            wanted -= take
    return lines


def _line_op(dispense: Dispense, line: DispenseLine) -> PendingOp:
    return PendingOp(
        op=line.op,
        kind=MovementKind.DISPENSE,
        delta=-line.quantity,
        dispense_id=dispense.id,
        by=dispense.dispensed_by,
        at=utcnow(),
    )


async def dispense(
    prescription_id: ObjectId,
    *,
    quantity: int | None,
    allow_partial: bool,
    by: str,
    now: datetime | None = None,
) -> Dispense:
    """Hand out the prescription's drug from the pharmacy store (see the module docstring)."""
    prescription = await clinical.get_prescription(prescription_id)
    require(
        prescription.status == PrescriptionStatus.PRESCRIBED,
        "prescriptionId",
        f"a {prescription.status.value} prescription is not dispensed",
    )
    drug = await drugs.for_prescription(prescription)
    require(drug.active, "prescriptionId", f"{drug.generic_name} is no longer dispensed")
    wanted = quantity
    if wanted is None:
        wanted = await _outstanding(prescription_id) or prescribed_units(prescription, drug)
    if wanted is None:
        raise BadUserInput(
            "quantity: the prescription does not say how many units; give quantity",
            {"quantity": "is required for this prescription"},
        )
    require(0 < wanted <= 100_000, "quantity", "must be between 1 and 100000")
    now = now or utcnow()
    await recover(now=now, drug_id=drug.id)
    batches = await _candidates(drug.id, now)  # type: ignore[arg-type]
    available = sum(b.quantity for b in batches)
    if available == 0 or (available < wanted and not allow_partial):
        raise _insufficient(available, wanted)
    doc = Dispense(
        prescription_id=prescription_id,
        patient_id=prescription.patient_id,
        prescriber_id=prescription.prescriber_id,
        drug_id=drug.id,
        requested=wanted,
        controlled=drug.controlled,
        status=DispenseStatus.PENDING,
        lines=_plan(batches, min(wanted, available)),
        dispensed_by=by,
        at=now,
        expires_at=now + GRACE,
        unit_price=drug.price,
        currency=drug.currency,
        open_for=prescription_id,
        created_at=now,
        updated_at=now,
    )
    try:
        await doc.insert()
    except DuplicateKeyError:
        raise Conflict(
            "Another dispense of this prescription is under way; wait for it and read again",
            fields=["prescriptionId"],
        ) from None
    taken: list[DispenseLine] = []
    try:
        await _take(doc, drug, wanted, allow_partial, taken)
        finished = await _finish(doc, wanted, taken)
    except BaseException as exc:
        await _fail(doc, taken, exc)
        raise
    if finished.status == DispenseStatus.COMPLETED:
        finished = await settle(finished)
    else:
        await changed(finished, finished.status.value)
    return finished


async def _take(
    doc: Dispense, drug: Drug, wanted: int, allow_partial: bool, taken: list[DispenseLine]
) -> None:
    """Decrement the planned lines; a lost race re-plans the rest from fresh reads."""
    lines = list(doc.lines)
    remaining = sum(line.quantity for line in lines)
    for _ in range(MAX_ROUNDS):
        for line in lines:
            pending = _line_op(doc, line)
            batch = await _apply(line.batch_id, pending)
            if batch is None:
                break
            taken.append(line)
            remaining -= line.quantity
            await _ledger(batch, pending)
            await changed(batch, "dispensed")
        if remaining == 0:
            return
        got = sum(line.quantity for line in taken)
        fresh = await _candidates(drug.id, utcnow())  # type: ignore[arg-type]
        available = sum(b.quantity for b in fresh)
        if available < wanted - got and not allow_partial:
            raise _insufficient(available + got, wanted)
        remaining = min(wanted - got, available)
        if remaining == 0:
            if got == 0:
                raise _insufficient(0, wanted)
            return
        lines = _plan(fresh, remaining)
        # The new lines are on the dispense before they touch stock (recoverable).
        pushed = await _dispenses().update_one(
            {"_id": doc.id, "status": DispenseStatus.PENDING.value},
            {"$push": {"lines": {"$each": [_encoder.encode(x) for x in lines]}}},
        )
        if pushed.matched_count == 0:
            raise Conflict("The dispense was abandoned meanwhile (recovered); dispense again")
    raise Conflict("Stock of this drug is changing too fast; retry", fields=["prescriptionId"])


async def _finish(doc: Dispense, wanted: int, taken: list[DispenseLine]) -> Dispense:
    got = sum(line.quantity for line in taken)
    now = utcnow()
    sets: dict[str, Any] = {
        "lines": [_encoder.encode(x) for x in taken],
        "quantity": got,
        "outstanding": wanted - got,
        "updated_at": now,
    }
    update: dict[str, Any] = {"$set": sets, "$inc": {"version": 1}}
    if doc.controlled:
        sets["status"] = DispenseStatus.AWAITING_CONFIRMATION.value
        sets["expires_at"] = now + HOLD
    else:
        sets["status"] = DispenseStatus.COMPLETED.value
        update["$unset"] = {"open_for": ""}
    raw = await _dispenses().find_one_and_update(
        {"_id": doc.id, "status": DispenseStatus.PENDING.value},
        update,
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The dispense was abandoned meanwhile (recovered); dispense again")
    return Dispense.model_validate(raw)


async def _fail(doc: Dispense, taken: Sequence[DispenseLine], exc: BaseException) -> None:
    """Refused or broken part way: the dispense is failed and what it took goes back."""
    reason = exc.message if isinstance(exc, ShmsError) else f"error: {type(exc).__name__}"
    raw = await _dispenses().find_one_and_update(
        {"_id": doc.id, "status": DispenseStatus.PENDING.value},
        {
            "$set": {
                "status": DispenseStatus.FAILED.value,
                "failure": reason[:500],
                "updated_at": utcnow(),
            },
            "$unset": {"open_for": ""},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    for line in taken:
        await _compensate_op(line.batch_id, line.op, doc.dispensed_by)
    if raw is not None:
        await changed(Dispense.model_validate(raw), "failed")


async def confirm(id: ObjectId, by: str, now: datetime | None = None) -> Dispense:
    """The second pharmacist's confirmation of a controlled dispense (never its dispenser)."""
    doc = await get_dispense(id)
    now = now or utcnow()
    if doc.status != DispenseStatus.AWAITING_CONFIRMATION:
        raise Conflict(f"This dispense is {doc.status.value}, not awaiting confirmation")
    if doc.dispensed_by == by:
        raise Forbidden(
            "A controlled dispense is confirmed by a second pharmacist, not its dispenser",
            reason="SAME_PERSON",
        )
    if doc.expires_at <= now:
        await recover(now=now, drug_id=doc.drug_id)
        raise Conflict("The hold lapsed before confirmation; its stock went back; dispense again")
    raw = await _dispenses().find_one_and_update(
        {
            "_id": id,
            "status": DispenseStatus.AWAITING_CONFIRMATION.value,
            "expires_at": {"$gt": now},
            "dispensed_by": {"$ne": by},
        },
        {
            "$set": {
                "status": DispenseStatus.COMPLETED.value,
                "confirmed_by": by,
                "confirmed_at": now,
                "updated_at": now,
            },
            "$unset": {"open_for": ""},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The dispense changed meanwhile (confirmed or lapsed); read it again")
    return await settle(Dispense.model_validate(raw))


async def settle(doc: Dispense) -> Dispense:
    """Finish a completed dispense: its operations leave the batches (their ledger rows are
    in), the prescription moves on, the patient is charged. Safe to repeat, from any process."""
    by_batch: dict[ObjectId, list[ObjectId]] = {}
    for line in doc.lines:
        raw = await _batches().find_one({"_id": line.batch_id, "pending_ops.op": line.op})
        if raw is not None:  # the ledger row first: the op must not leave the batch without it
            batch = StockBatch.model_validate(raw)
            await _ledger(batch, next(p for p in batch.pending_ops if p.op == line.op))
            by_batch.setdefault(line.batch_id, []).append(line.op)
    for batch_id, ops in by_batch.items():
        await _release(batch_id, ops)
    if doc.outstanding == 0:
        await _prescription_dispensed(doc.prescription_id)
    charged_at = doc.charged_at
    if charged_at is None and doc.amount > 0:
        await _charge(doc)
        charged_at = utcnow()
    raw = await _dispenses().find_one_and_update(
        {"_id": doc.id, "settled": {"$ne": True}},
        {"$set": {"settled": True, "charged_at": charged_at, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:  # settled by someone else meanwhile
        return await get_dispense(doc.id)  # type: ignore[arg-type]
    settled = Dispense.model_validate(raw)
    await changed(settled, "completed")
    return settled


async def _prescription_dispensed(prescription_id: ObjectId) -> None:
    prescription = await Prescription.get(prescription_id)
    if prescription is None or prescription.status != PrescriptionStatus.PRESCRIBED:
        return  # moved on already (a repeat) or cancelled meanwhile: the dispense stands
    with contextlib.suppress(Conflict):  # moved by a concurrent settle of the same dispense
        await clinical.update_prescription_status(prescription_id, PrescriptionStatus.DISPENSED)


async def _charge(doc: Dispense) -> None:
    """price x quantity on the patient's account, once per dispense (billing's guard)."""
    account = await BillingAccount.find_one({"patient_id": doc.patient_id})
    if account is None:
        try:
            account = await billing.open_billing_account(doc.patient_id)
        except Conflict:  # opened by a concurrent request
            account = await BillingAccount.find_one({"patient_id": doc.patient_id})
    assert account is not None and account.id is not None
    if _charged(account, doc):
        return
    drug = await Drug.get(doc.drug_id)
    name = drug.generic_name if drug else "drug"
    strength = f" {drug.strength.text()}" if drug else ""
    charge = {
        "description": f"Pharmacy: {name}{strength} x {doc.quantity}"[:200],
        "amount": doc.amount,
        "currency": account.currency,
        "source": CHARGE_SOURCE,
        "source_id": doc.id,
    }
    try:
        await billing.add_charge(account.id, charge)
    except Conflict:
        fresh = await BillingAccount.get(account.id)
        if fresh is None or not _charged(fresh, doc):
            raise


def _charged(account: BillingAccount, doc: Dispense) -> bool:
    return any(c.source == CHARGE_SOURCE and c.source_id == doc.id for c in account.charges)


async def record_pick_up(id: ObjectId) -> Dispense:
    """The patient took the drug: the prescription becomes ``picked_up`` (its prescriber is
    notified by the notification hook on that status change, as for any other writer)."""
    doc = await get_dispense(id)
    require(doc.status in DISPENSED, "id", f"a {doc.status.value} dispense is not picked up")
    require(doc.picked_up_at is None, "id", "was picked up already")
    prescription = await clinical.get_prescription(doc.prescription_id)
    require(
        prescription.status == PrescriptionStatus.DISPENSED,
        "id",
        f"the prescription is {prescription.status.value}"
        + (" (part of it is still outstanding)" if doc.outstanding else ""),
    )
    await clinical.update_prescription_status(doc.prescription_id, PrescriptionStatus.PICKED_UP)
    now = utcnow()
    raw = await _dispenses().find_one_and_update(
        {"_id": id, "picked_up_at": None},
        {"$set": {"picked_up_at": now, "updated_at": now}, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The dispense was picked up meanwhile")
    picked = Dispense.model_validate(raw)
    await changed(picked, "picked_up")
    return picked


# -- returns ---------------------------------------------------------------------------------


async def return_stock(
    id: ObjectId, quantity: int, reason: str, by: str, batch_id: ObjectId | None = None
) -> Dispense:
    """Units of a dispense come back into the batches they left (the latest-expiring first, or
    the named batch); never more than were dispensed and not yet returned."""
    doc = await get_dispense(id)
    require(doc.status in DISPENSED, "id", f"a {doc.status.value} dispense has nothing to return")
    require(quantity > 0, "quantity", "must be at least 1")
    text = reason.strip()
    require(0 < len(text) <= 200, "reason", "1 to 200 characters")
    lines = [ln for ln in doc.lines if batch_id is None or ln.batch_id == batch_id]
    require(bool(lines), "batchId", "this dispense took nothing from that batch")
    left = sum(ln.quantity - ln.returned for ln in lines)
    require(quantity <= left, "quantity", f"at most {left} unit(s) can come back")
    now = utcnow()
    returns: list[DispenseReturn] = []
    wanted = quantity
    for line in sorted(lines, key=lambda ln: (ln.expiry, str(ln.batch_id)), reverse=True):
        back = min(wanted, line.quantity - line.returned)
        if back <= 0:
            continue
        line.returned += back
        wanted -= back
        returns.append(
            DispenseReturn(batch_id=line.batch_id, quantity=back, reason=text, by=by, at=now)
        )
        if wanted == 0:
            break
    total_returned = sum(ln.returned for ln in doc.lines)
    status = (
        DispenseStatus.RETURNED
        if total_returned == doc.quantity
        else DispenseStatus.PARTIALLY_RETURNED
    )
    # The dispense first (its version guards against a concurrent return), then the batches.
    raw = await _dispenses().find_one_and_update(
        {"_id": id, "version": doc.version},
        {
            "$set": {
                "lines": [_encoder.encode(x) for x in doc.lines],
                "status": status.value,
                "updated_at": now,
            },
            "$push": {"returns": {"$each": [_encoder.encode(r) for r in returns]}},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The dispense changed meanwhile; read it again and retry")
    for entry in returns:
        await _apply_return(id, entry)
    stored = await get_dispense(id)
    await changed(stored, "returned")
    return stored


async def _apply_return(dispense_id: ObjectId, entry: DispenseReturn) -> None:
    pending = PendingOp(
        op=entry.op, kind=MovementKind.RETURN, delta=entry.quantity,
        dispense_id=dispense_id, by=entry.by, reason=entry.reason, at=entry.at,
    )  # fmt: skip
    batch = await _apply(entry.batch_id, pending)
    if batch is None:  # applied before (a repeat): the op is on the batch, or settled
        raw = await _batches().find_one({"_id": entry.batch_id})
        batch = None if raw is None else StockBatch.model_validate(raw)
    if batch is not None:
        await _ledger(batch, pending)
        await _release(entry.batch_id, [entry.op])
        await changed(batch, "returned")
    await _dispenses().update_one(
        {"_id": dispense_id, "returns.op": entry.op}, {"$set": {"returns.$.applied": True}}
    )


# -- recovery --------------------------------------------------------------------------------


@dataclass
class Recovery:
    """What one ``recover`` run finished."""

    failed: int = 0
    expired: int = 0
    settled: int = 0
    operations: int = 0
    returns: int = 0


async def recover(now: datetime | None = None, drug_id: ObjectId | None = None) -> Recovery:
    """Finish what crashed or lapsed (all drugs, or one): see the module docstring."""
    now = now or utcnow()
    done = Recovery()
    only: Query = {} if drug_id is None else {"drug_id": drug_id}
    lapsed = _dispenses().find(
        {**only, "status": {"$in": [s.value for s in HOLDING]}, "expires_at": {"$lte": now}}
    )
    for raw in await lapsed.to_list(None):
        if await _lapse(Dispense.model_validate(raw), now):
            if raw["status"] == DispenseStatus.PENDING.value:
                done.failed += 1
            else:
                done.expired += 1
    unsettled = _dispenses().find(
        {
            **only,
            "settled": {"$ne": True},
            "status": {"$in": [s.value for s in DISPENSED]},
            "updated_at": {"$lte": now - GRACE},
        }
    )
    for raw in await unsettled.to_list(None):
        await settle(Dispense.model_validate(raw))
        done.settled += 1
    lingering = _batches().find({**only, "pending_ops.at": {"$lte": now - GRACE}})
    for raw in await lingering.to_list(None):
        batch = StockBatch.model_validate(raw)
        for pending in batch.pending_ops:
            if pending.at <= now - GRACE and await _finish_op(batch, pending, now):
                done.operations += 1
    unapplied = _dispenses().find(
        {**only, "returns": {"$elemMatch": {"applied": False, "at": {"$lte": now - GRACE}}}}
    )
    for raw in await unapplied.to_list(None):
        doc = Dispense.model_validate(raw)
        for entry in doc.returns:
            if not entry.applied:
                await _apply_return(doc.id, entry)
                done.returns += 1
    if drug_id is None:  # the periodic run: doses claimed and abandoned before stock moved
        from services import medication

        await medication.recover(now)
    if any((done.failed, done.expired, done.settled, done.operations, done.returns)):
        log.info("pharmacy: recovered %s", done)
    return done


async def _lapse(doc: Dispense, now: datetime) -> bool:
    """A pending dispense abandoned, or a hold nobody confirmed: failed/expired, stock back."""
    target = (
        DispenseStatus.FAILED if doc.status == DispenseStatus.PENDING else DispenseStatus.EXPIRED
    )
    why = "abandoned (recovered)" if target == DispenseStatus.FAILED else "not confirmed in time"
    raw = await _dispenses().find_one_and_update(
        {"_id": doc.id, "status": doc.status.value, "expires_at": {"$lte": now}},
        {
            "$set": {"status": target.value, "failure": why, "updated_at": now},
            "$unset": {"open_for": ""},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        return False
    for line in doc.lines:  # every line ever planned: only those that moved stock are on a batch
        await _compensate_op(line.batch_id, line.op, SYSTEM)
    await changed(Dispense.model_validate(raw), target.value)
    return True


async def _finish_op(batch: StockBatch, pending: PendingOp, now: datetime) -> bool:
    """An operation left on a batch: settle it, or compensate it, as its dispense says."""
    if pending.kind == MovementKind.ADMINISTER:
        from services import medication  # builds on this module: imported when needed

        return await medication.finish_op(batch, pending, now)
    if pending.kind == MovementKind.TRANSFER_OUT:
        from services import ward_stock

        return await ward_stock.finish_op(batch, pending)
    if pending.kind != MovementKind.DISPENSE or pending.dispense_id is None:
        await _ledger(batch, pending)
        await _release(batch.id, [pending.op])  # type: ignore[arg-type]
        return True
    raw = await _dispenses().find_one({"_id": pending.dispense_id})
    doc = None if raw is None else Dispense.model_validate(raw)
    if doc is not None and doc.status in HOLDING:
        if doc.expires_at > now:
            return False  # still running, or a hold still waiting for its confirmation
        await _lapse(doc, now)
        doc = await get_dispense(doc.id)
    if doc is not None and doc.status in DISPENSED and any(ln.op == pending.op for ln in doc.lines):
        await _ledger(batch, pending)
        await _release(batch.id, [pending.op])  # type: ignore[arg-type]
        return True
    # The dispense failed or expired, or never kept this line: the units go back.
    return await _compensate(batch, pending, SYSTEM) is not None


# -- consistency (for tests and operators) -------------------------------------------------------


async def ledger_sum(batch_id: ObjectId) -> int:
    rows = (
        await db.collection(StockMovement)
        .find({"batch_id": batch_id}, projection={"delta": 1})
        .to_list(None)
    )
    return sum(int(r["delta"]) for r in rows)
