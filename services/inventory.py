"""Supplies: the item master, stores, receiving, issuing, counts, write-offs, alerts, recovery.

Stock never goes negative, under any concurrency, across processes, with no transactions (the
pharmacy's approach, ``services.pharmacy``, on one document per item and store):

- every change of a level is ONE conditional atomic update of its ``SupplyLevel``. A decrement
  matches only ``{quantity: {$gte: n}}`` and, for each lot it takes from, ``{lots.<i>.lot: L,
  lots.<i>.quantity: {$gte: t}}``, and ``$inc``s the level and those lots together, so two
  issuers racing for the last units cannot both win, and the lots always sum to the level;
- the same update pushes the operation (``PendingOp``) onto ``pending_ops`` (its filter refuses
  an operation already there): compensation is ``{pending_ops.op: op} -> $inc back, $pull op``,
  which undoes a decrement exactly once and only if it happened. The operation leaves the level
  after its ledger row (``InventoryMovement``, unique per operation and kind) is written and its
  transfer is final, so a level's quantity is always the sum of its movements.

An issue or a transfer (``_move``) moves stock between two levels in this order:

1. the ``SupplyTransfer`` is inserted ``pending`` with an operation id per line and side;
2. each line's source decrement (soonest-expiring usable lots first; expired lots never leave a
   store); too little stock is ``CONFLICT`` with ``reason: INSUFFICIENT_STOCK``: the decrements
   already taken are compensated and the transfer is ``failed`` (so is any other error here);
3. ``pending -> delivering`` by compare-and-set, with the lots each line took: from here it only
   rolls forward, since an increment never lacks stock;
4. each line's destination increment (the same lots and expiries), ``delivering -> completed``,
   the operations released, the low-stock check of every level touched.

A crash leaves a state ``recover`` (the scheduler, through ``tick``) finishes: a ``pending``
transfer older than ``GRACE`` is failed and compensated, a ``delivering`` one is delivered, and
an operation left on a level is settled by what its transfer says.

Alerts: a write that takes a level to or below its reorder level flips the level's ``low`` flag
by compare-and-set (only the writer that flips it raises the alert: once per crossing, however
many writers race); a level back above re-arms it. ``raise_expiry_alerts`` raises one alert per
lot expiring within ``NEAR_EXPIRY_DAYS`` (a unique key per lot). Both are ``InventoryAlert``
documents written through ``changed``, which the ``inventoryAlerts`` subscription follows.
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
from errors import BadUserInput, Conflict, NotFound, ShmsError
from models.base import utcnow
from models.departments import Department
from models.inventory import (
    AlertKind,
    InventoryAlert,
    InventoryMovement,
    Lot,
    LotTake,
    MovementKind,
    PendingOp,
    Store,
    StoreKind,
    SupplyCategory,
    SupplyItem,
    SupplyLevel,
    SupplyTransfer,
    TransferLine,
    TransferStatus,
    WriteOffReason,
)
from models.patients import name_tokens
from services import common
from services.changes import changed
from services.pagination import ASC, BY_ID, Page, PageArgs, Query, Sort, both, paginate
from services.patients import search_words
from services.validation import build, merged, require

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=5)
"""A pending transfer (or an operation left on a level) older than this was abandoned."""
MAX_ROUNDS = 50
"""Re-reads one line may make after losing races for lots before it answers CONFLICT."""
NEAR_EXPIRY_DAYS = 30
"""How far ahead the expiry job warns about a lot."""
MAX_QUANTITY = 1_000_000
INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
SYSTEM = "system:inventory"
BY_TIME: Sort = (("at", ASC), ("_id", ASC))
BY_NAME: Sort = (("name", ASC), ("_id", ASC))

_encoder = Encoder()


def _levels() -> Any:
    """The raw levels collection (one seam, so tests can interleave its calls)."""
    return db.collection(SupplyLevel)


def _transfers() -> Any:
    return db.collection(SupplyTransfer)


def today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(UTC).date()


def _day(value: date) -> datetime:
    """A ``date`` as stored (midnight UTC, naive as BSON gives it back)."""
    return datetime.combine(value, time())


def _insufficient(available: int, wanted: int, item: SupplyItem) -> Conflict:
    return Conflict(
        f"Only {available} usable unit(s) of {item.code} for {wanted} asked: nothing was moved",
        reason=INSUFFICIENT_STOCK,
        available=available,
        fields=["quantity"],
    )


def _level(raw: Mapping[str, Any]) -> SupplyLevel:
    return SupplyLevel.model_validate(raw)


# -- the item master and stores ----------------------------------------------------------------


def item_filter(
    *, search: str | None = None, category: SupplyCategory | None = None, active: bool | None = None
) -> Query:
    """``search``: every word must prefix a word of the name or the code (indexed tokens)."""
    words = search_words(search)  # supply names are no secret: tokens kept in clear
    query: Query = {"search_tokens": {"$all": words}} if words else {}
    if category is not None:
        query["category"] = category.value
    if active is not None:
        query["active"] = active
    return query


async def list_items(query: Query, args: PageArgs, scope: Query | None) -> Page[SupplyItem]:
    return await paginate(SupplyItem, both(query, scope), BY_NAME, args)


async def get_item(id: ObjectId) -> SupplyItem:
    return await common.get_or_404(SupplyItem, id, "SupplyItem")


async def create_item(data: Mapping[str, Any]) -> SupplyItem:
    require("search_tokens" not in data, "input", "derived fields")
    item = build(SupplyItem, data)
    item.search_tokens = name_tokens(item.name, item.code)
    return await common.insert(item, "supply item")


async def update_item(id: ObjectId, changes: Mapping[str, Any]) -> SupplyItem:
    """Name, category, unit, cost and active may change; whether it expires may not once stock
    exists (its levels would have no lots, or lots it no longer tracks)."""
    item = await get_item(id)
    require("search_tokens" not in changes, "input", "derived fields")
    changes = dict(changes)
    if "tracks_expiry" in changes and changes["tracks_expiry"] != item.tracks_expiry:
        held = await _levels().find_one({"item_id": id, "quantity": {"$gt": 0}}, {"_id": 1})
        require(held is None, "tracksExpiry", "cannot change while the item is in stock")
    if {"name", "code"} & changes.keys():
        candidate, _ = merged(item, changes)
        changes["search_tokens"] = name_tokens(candidate.name, candidate.code)
    return await common.update(item, changes, "supply item")


async def list_stores(query: Query, args: PageArgs, scope: Query | None) -> Page[Store]:
    return await paginate(Store, both(query, scope), BY_NAME, args)


async def get_store(id: ObjectId, field: str | None = None) -> Store:
    store = await Store.get(id)
    if store is None:
        if field is None:
            raise NotFound("Store", str(id))
        raise BadUserInput(f"{field}: no store with id {id}", {field: "no such store"})
    return store


async def create_store(data: Mapping[str, Any]) -> Store:
    """A central store names no department; a department store names its one department."""
    store = build(Store, data)
    if store.kind == StoreKind.DEPARTMENT:
        require(store.department_id is not None, "departmentId", "a department store needs it")
        await common.ensure_exists(Department, store.department_id, "departmentId", "department")
    else:
        require(store.department_id is None, "departmentId", "only a department store has one")
    return await common.insert(store, "store")


async def department_store(department_id: ObjectId) -> Store | None:
    return await Store.find_one({"department_id": department_id})


# -- reads -------------------------------------------------------------------------------------


def level_filter(
    *,
    store_id: ObjectId | None = None,
    item_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    below_reorder_level: bool = False,
    include_empty: bool = True,
) -> Query:
    query: Query = {}
    for field, value in (
        ("store_id", store_id),
        ("item_id", item_id),
        ("department_id", department_id),
    ):
        if value is not None:
            query[field] = value
    if below_reorder_level:
        query["reorder_level"] = {"$ne": None}
        query["$expr"] = {"$lte": ["$quantity", "$reorder_level"]}
    if not include_empty:
        query["quantity"] = {"$gt": 0}
    return query


async def list_levels(query: Query, args: PageArgs, scope: Query | None) -> Page[SupplyLevel]:
    return await paginate(SupplyLevel, both(query, scope), BY_ID, args)


async def get_level(id: ObjectId) -> SupplyLevel:
    return await common.get_or_404(SupplyLevel, id, "SupplyLevel")


async def find_level(item_id: ObjectId, store_id: ObjectId) -> SupplyLevel | None:
    raw = await _levels().find_one({"item_id": item_id, "store_id": store_id})
    return None if raw is None else _level(raw)


async def level_of(item_id: ObjectId, store_id: ObjectId) -> SupplyLevel:
    """The level of an item in a store; ``NOT_FOUND`` when the store never held it."""
    found = await find_level(item_id, store_id)
    if found is None:
        raise NotFound("SupplyLevel", f"{item_id} in store {store_id}")
    return found


async def list_movements(
    query: Query, args: PageArgs, scope: Query | None
) -> Page[InventoryMovement]:
    return await paginate(InventoryMovement, both(query, scope), BY_TIME, args)


async def list_transfers(query: Query, args: PageArgs, scope: Query | None) -> Page[SupplyTransfer]:
    return await paginate(SupplyTransfer, both(query, scope), BY_ID, args)


async def get_transfer(id: ObjectId) -> SupplyTransfer:
    return await common.get_or_404(SupplyTransfer, id, "SupplyTransfer")


async def list_alerts(query: Query, args: PageArgs, scope: Query | None) -> Page[InventoryAlert]:
    return await paginate(InventoryAlert, both(query, scope), BY_ID, args)


def usable(level: SupplyLevel, on: date) -> int:
    """Units that may leave the store: all of them, or for lots those not expired."""
    if not level.lots:
        return level.quantity
    return sum(lot.quantity for lot in level.lots if lot.expiry > on)


def suggested_order(level: SupplyLevel) -> int:
    """Order up to the reorder level plus the reorder quantity (at least one unit)."""
    floor = level.reorder_level or 0
    return max(1, floor + level.reorder_quantity - level.quantity)


@dataclass(frozen=True)
class ReorderLine:
    level: SupplyLevel
    suggested_quantity: int


async def reorder_list(store_id: ObjectId | None, scope: Query | None) -> list[ReorderLine]:
    """Levels at or below their reorder level, most short first (by what to order)."""
    query = both(level_filter(store_id=store_id, below_reorder_level=True), scope)
    raw = await _levels().find(query).sort([("_id", 1)]).to_list(5000)
    lines = [ReorderLine(level, suggested_order(level)) for level in map(_level, raw)]
    return sorted(lines, key=lambda ln: (-ln.suggested_quantity, str(ln.level.id)))


@dataclass(frozen=True)
class ExpiringLot:
    level: SupplyLevel
    lot: str
    expiry: date
    quantity: int
    days_left: int


async def expiring(
    within_days: int,
    scope: Query | None,
    store_id: ObjectId | None = None,
    now: datetime | None = None,
) -> list[ExpiringLot]:
    """Lots holding stock that expire within ``within_days`` (expired ones included), soonest
    first."""
    require(0 <= within_days <= 3650, "withinDays", "must be between 0 and 3650")
    on = today(now)
    cutoff = _day(on + timedelta(days=within_days))
    query: Query = {"lots": {"$elemMatch": {"expiry": {"$lte": cutoff}, "quantity": {"$gt": 0}}}}
    if store_id is not None:
        query["store_id"] = store_id
    raw = await _levels().find(both(query, scope)).to_list(5000)
    found = [
        ExpiringLot(level, lot.lot, lot.expiry, lot.quantity, (lot.expiry - on).days)
        for level in map(_level, raw)
        for lot in level.lots
        if lot.quantity > 0 and lot.expiry <= on + timedelta(days=within_days)
    ]
    return sorted(found, key=lambda x: (x.expiry, x.lot, str(x.level.id)))


# -- the atomic steps on one level -------------------------------------------------------------


Positions = Sequence[tuple[int, LotTake]]


async def _apply(
    level: SupplyLevel, pending: PendingOp, at: Positions = (), expect: Query | None = None
) -> SupplyLevel | None:
    """Move the level (and the lots at ``at``) by ``pending.delta`` and record the operation, in
    one update: a decrement only while the level and each lot hold enough. None: not applied
    (too little, the lots moved in the array, ``expect`` failed, or applied already)."""
    guard: Query = {"_id": level.id, "pending_ops.op": {"$ne": pending.op}}
    inc: dict[str, int] = {"quantity": pending.delta, "version": 1}
    sign = 1 if pending.delta > 0 else -1
    if sign < 0:
        guard["quantity"] = {"$gte": -pending.delta}
    for i, take in at:
        guard[f"lots.{i}.lot"] = take.lot
        if sign < 0:
            guard[f"lots.{i}.quantity"] = {"$gte": take.quantity}
        inc[f"lots.{i}.quantity"] = sign * take.quantity
    guard.update(expect or {})
    raw = await _levels().find_one_and_update(
        guard,
        {
            "$inc": inc,
            "$push": {"pending_ops": _encoder.encode(pending)},
            "$set": {"updated_at": pending.at},
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else _level(raw)


def _positions(level: SupplyLevel, takes: Iterable[LotTake]) -> list[tuple[int, LotTake]]:
    """Where each lot of ``takes`` is in the level's array (the lot must be there)."""
    index = {(lot.lot, lot.expiry): i for i, lot in enumerate(level.lots)}
    out = []
    for take in takes:
        i = index.get((take.lot, take.expiry))
        if i is None:
            raise Conflict(f"Lot {take.lot} is no longer in this store; read it again")
        out.append((i, take))
    return out


async def _undo(level: SupplyLevel, pending: PendingOp) -> SupplyLevel | None:
    """Reverse an applied operation exactly once (only while it is on the level). Lots are not
    pruned while an operation is pending, so their positions hold."""
    guard: Query = {"_id": level.id, "pending_ops.op": pending.op}
    inc: dict[str, int] = {"quantity": -pending.delta, "version": 1}
    back = -1 if pending.delta > 0 else 1
    if back < 0:
        guard["quantity"] = {"$gte": pending.delta}
    for i, take in _positions(level, pending.lots):
        guard[f"lots.{i}.lot"] = take.lot
        if back < 0:
            guard[f"lots.{i}.quantity"] = {"$gte": take.quantity}
        inc[f"lots.{i}.quantity"] = back * take.quantity
    raw = await _levels().find_one_and_update(
        guard,
        {
            "$inc": inc,
            "$pull": {"pending_ops": {"op": pending.op}},
            "$set": {"updated_at": utcnow()},
        },
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else _level(raw)


async def _release(level_id: ObjectId, ops: Iterable[ObjectId]) -> None:
    """The operations are settled: their ledger rows exist and their transfer is final."""
    await _levels().update_one(
        {"_id": level_id}, {"$pull": {"pending_ops": {"op": {"$in": list(ops)}}}}
    )


async def _ledger(
    level: SupplyLevel,
    pending: PendingOp,
    kind: MovementKind | None = None,
    delta: int | None = None,
    by: str | None = None,
) -> None:
    """The ledger row of an operation (once: a repeat hits the unique index and is ignored)."""
    row = InventoryMovement(
        op=pending.op,
        kind=kind or pending.kind,
        level_id=level.id,
        item_id=level.item_id,
        store_id=level.store_id,
        department_id=level.department_id,
        delta=pending.delta if delta is None else delta,
        lots=pending.lots,
        reason=pending.reason,
        by=by or pending.by,
        transfer_id=pending.transfer_id,
        at=utcnow() if kind else pending.at,
    )
    with contextlib.suppress(DuplicateKeyError):
        await row.insert()


async def _compensate_op(query: Query, op: ObjectId, by: str) -> bool:
    """Give back ``op`` if it is still on its level (it then moved the stock); else nothing."""
    raw = await _levels().find_one({**query, "pending_ops.op": op})
    if raw is None:
        return False
    level = _level(raw)
    pending = next(p for p in level.pending_ops if p.op == op)
    await _ledger(level, pending)
    await _ledger(level, pending, MovementKind.COMPENSATION, -pending.delta, by)
    undone = await _undo(level, pending)
    if undone is None:
        log.error("inventory: could not compensate %s on level %s", op, level.id)
        return False
    await changed(undone, "compensated")
    return True


async def _settle(level: SupplyLevel, pending: PendingOp, change: str) -> SupplyLevel:
    """A single-level operation is done: its ledger row, its release, its event and alert."""
    await _ledger(level, pending)
    await _release(level.id, [pending.op])  # type: ignore[arg-type]
    level.pending_ops = [p for p in level.pending_ops if p.op != pending.op]
    await changed(level, change)
    await check_low(level)
    return level


async def _ensure_level(item: SupplyItem, store: Store) -> SupplyLevel:
    found = await find_level(item.id, store.id)  # type: ignore[arg-type]
    if found is not None:
        return found
    now = utcnow()
    doc = SupplyLevel(
        item_id=item.id, store_id=store.id, department_id=store.department_id,
        created_at=now, updated_at=now,
    )  # fmt: skip
    try:
        await doc.insert()
    except DuplicateKeyError:  # created by a concurrent writer
        return await level_of(item.id, store.id)  # type: ignore[arg-type]
    await changed(doc, "created")
    return doc


async def _ensure_lot(level: SupplyLevel, lot: str, expiry: date) -> SupplyLevel:
    """The level with the lot in its array (pushed empty when new)."""
    for existing in level.lots:
        if existing.lot == lot:
            require(
                existing.expiry == expiry,
                "expiry",
                f"lot {lot} is here already with expiry {existing.expiry.isoformat()}",
            )
            return level
    raw = await _levels().find_one_and_update(
        {"_id": level.id, "lots.lot": {"$ne": lot}},
        {"$push": {"lots": _encoder.encode(Lot(lot=lot, expiry=expiry, quantity=0))}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:  # pushed by a concurrent receiver: check its expiry
        return await _ensure_lot(await get_level(level.id), lot, expiry)  # type: ignore[arg-type]
    return _level(raw)


def _lot_at(level: SupplyLevel, lot: str) -> tuple[int, Lot]:
    for i, existing in enumerate(level.lots):
        if existing.lot == lot:
            return i, existing
    raise BadUserInput(f"lot: no lot {lot} in this store", {"lot": "no such lot here"})


def _plan(level: SupplyLevel, wanted: int, on: date) -> list[tuple[int, LotTake]] | None:
    """The lots to take ``wanted`` units from, soonest-expiring usable first; None: too few.
    An item without lots takes from the level alone (an empty plan)."""
    if not level.lots:
        return [] if level.quantity >= wanted else None
    order = sorted(
        (i for i, lot in enumerate(level.lots) if lot.quantity > 0 and lot.expiry > on),
        key=lambda i: (level.lots[i].expiry, level.lots[i].lot),
    )
    plan: list[tuple[int, LotTake]] = []
    left = wanted
    for i in order:
        lot = level.lots[i]
        take = min(lot.quantity, left)
        plan.append((i, LotTake(lot=lot.lot, expiry=lot.expiry, quantity=take)))
        left -= take
        if left == 0:
            return plan
    return None


def _reason(text: str | None, field: str = "reason", required: bool = True) -> str | None:
    cleaned = (text or "").strip()
    if not cleaned and not required:
        return None
    require(0 < len(cleaned) <= 200, field, "1 to 200 characters")
    return cleaned


def _quantity(value: int, field: str = "quantity", low: int = 1) -> None:
    require(low <= value <= MAX_QUANTITY, field, f"must be between {low} and {MAX_QUANTITY}")


async def _active_item(id: ObjectId, field: str = "itemId") -> SupplyItem:
    item = await SupplyItem.get(id)
    require(item is not None, field, "no such supply item")
    assert item is not None
    require(item.active, field, f"{item.code} is no longer stocked")
    return item


async def _active_store(id: ObjectId, field: str = "storeId") -> Store:
    store = await get_store(id, field)
    require(store.active, field, f"store {store.code} is closed")
    return store


# -- receiving, counts, write-offs, reorder levels ---------------------------------------------


async def receive(
    store_id: ObjectId,
    item_id: ObjectId,
    quantity: int,
    by: str,
    *,
    lot: str | None = None,
    expiry: date | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> SupplyLevel:
    """A delivery into a store: an item that expires comes in a lot with its expiry."""
    now = now or utcnow()
    _quantity(quantity)
    item = await _active_item(item_id)
    store = await _active_store(store_id)
    text = _reason(note, "note", required=False)
    takes: list[LotTake] = []
    if item.tracks_expiry:
        require(bool(lot), "lot", f"{item.code} is kept in lots: give the lot number")
        require(expiry is not None, "expiry", f"{item.code} expires: give the lot's expiry")
        assert lot is not None and expiry is not None
        checked = build(Lot, {"lot": lot, "expiry": expiry, "quantity": quantity})
        require(expiry > today(now), "expiry", "the lot has expired already")
        takes = [LotTake(lot=checked.lot, expiry=expiry, quantity=quantity)]
    else:
        require(lot is None and expiry is None, "lot", f"{item.code} is not kept in lots")
    pending = PendingOp(
        op=PydanticObjectId(), kind=MovementKind.RECEIVE, delta=quantity, lots=takes, by=by,
        reason=text, at=now,
    )  # fmt: skip
    level = await _ensure_level(item, store)
    for _ in range(MAX_ROUNDS):
        if takes:
            level = await _ensure_lot(level, takes[0].lot, takes[0].expiry)
        applied = await _apply(level, pending, _positions(level, takes))
        if applied is not None:
            return await _settle(applied, pending, "received")
        level = await get_level(level.id)  # type: ignore[arg-type]
    raise Conflict("The level is changing too fast; retry")


async def write_off(
    store_id: ObjectId,
    item_id: ObjectId,
    quantity: int,
    reason: WriteOffReason,
    by: str,
    *,
    lot: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> SupplyLevel:
    """Take stock out of use (expired, damaged ...): never more than there is. ``EXPIRED``
    only for a lot past its expiry."""
    now = now or utcnow()
    _quantity(quantity)
    item = await get_item(item_id)
    level = await level_of(item_id, store_id)
    text = _reason(note, "note", required=False)
    why = f"{reason.value}: {text}" if text else reason.value
    if item.tracks_expiry:
        require(bool(lot), "lot", f"{item.code} is kept in lots: name the lot")
    else:
        require(lot is None, "lot", f"{item.code} is not kept in lots")
        require(reason != WriteOffReason.EXPIRED, "reason", f"{item.code} does not expire")
    for _ in range(MAX_ROUNDS):
        at: list[tuple[int, LotTake]] = []
        available = level.quantity
        if lot is not None:
            i, found = _lot_at(level, lot)
            if reason == WriteOffReason.EXPIRED:
                require(found.expiry <= today(now), "reason", f"lot {lot} has not expired")
            available = found.quantity
            if quantity <= available:
                at = [(i, LotTake(lot=lot, expiry=found.expiry, quantity=quantity))]
        if quantity > available:
            raise _insufficient(available, quantity, item)
        pending = PendingOp(
            op=PydanticObjectId(), kind=MovementKind.WRITE_OFF, delta=-quantity,
            lots=[t for _, t in at], by=by, reason=why[:200], at=now,
        )  # fmt: skip
        applied = await _apply(level, pending, at)
        if applied is not None:
            return await _settle(applied, pending, "written_off")
        level = await get_level(level.id)  # type: ignore[arg-type]
    raise Conflict("The level is changing too fast; retry")


async def adjust(
    store_id: ObjectId,
    item_id: ObjectId,
    counted: int,
    reason: str,
    by: str,
    *,
    lot: str | None = None,
    expiry: date | None = None,
    now: datetime | None = None,
) -> SupplyLevel:
    """A stock count: the level (or the lot) becomes ``counted``. A compare-and-set on the
    quantity the count replaces: if stock moved meanwhile, ``CONFLICT`` (count again). A lot the
    store never recorded may be counted in with its expiry."""
    now = now or utcnow()
    _quantity(counted, "counted", low=0)
    text = _reason(reason)
    item = await get_item(item_id)
    store = await get_store(store_id, "storeId")
    level = await _ensure_level(item, store)
    at: list[tuple[int, LotTake]] = []
    if item.tracks_expiry:
        require(bool(lot), "lot", f"{item.code} is counted per lot: name the lot")
        assert lot is not None
        if expiry is not None and all(x.lot != lot for x in level.lots):
            build(Lot, {"lot": lot, "expiry": expiry, "quantity": counted})
            level = await _ensure_lot(level, lot, expiry)
        i, found = _lot_at(level, lot)
        current = found.quantity
        expect: Query = {f"lots.{i}.quantity": current, f"lots.{i}.lot": lot}
        if counted != current:
            at = [(i, LotTake(lot=lot, expiry=found.expiry, quantity=abs(counted - current)))]
    else:
        require(lot is None and expiry is None, "lot", f"{item.code} is not kept in lots")
        current = level.quantity
        expect = {"quantity": current}
    if counted == current:
        return level  # the count agrees: nothing moves, nothing is written
    delta = counted - current
    pending = PendingOp(
        op=PydanticObjectId(), kind=MovementKind.ADJUST, delta=delta, lots=[t for _, t in at],
        by=by, reason=f"count {current} -> {counted}: {text}"[:200], at=now,
    )  # fmt: skip
    applied = await _apply(level, pending, at, expect)
    if applied is None:
        raise Conflict("The stock moved while it was counted; count again", fields=["counted"])
    return await _settle(applied, pending, "adjusted")


async def set_reorder_level(
    store_id: ObjectId, item_id: ObjectId, reorder_level: int | None, reorder_quantity: int
) -> SupplyLevel:
    """None stops watching the level. A new level at or above the stock alerts at once (it
    crossed); one below it re-arms."""
    if reorder_level is not None:
        _quantity(reorder_level, "reorderLevel", low=0)
    _quantity(reorder_quantity, "reorderQuantity", low=0)
    item = await get_item(item_id)
    store = await get_store(store_id, "storeId")
    level = await _ensure_level(item, store)
    raw = await _levels().find_one_and_update(
        {"_id": level.id},
        {
            "$set": {
                "reorder_level": reorder_level,
                "reorder_quantity": reorder_quantity,
                "updated_at": utcnow(),
            },
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise NotFound("SupplyLevel", str(level.id))
    stored = _level(raw)
    await changed(stored, "reorder_level_set")
    await check_low(stored)
    return stored


# -- alerts ------------------------------------------------------------------------------------


async def check_low(level: SupplyLevel) -> InventoryAlert | None:
    """Raise the low-stock alert if this level crossed its reorder level (the compare-and-set on
    ``low`` lets one writer raise it), or re-arm it if it is back above."""
    floor = level.reorder_level
    if floor is None or level.quantity > floor:
        if level.low:
            back: Query = {"_id": level.id, "low": True, "reorder_level": floor}
            if floor is not None:
                back["quantity"] = {"$gt": floor}
            await _levels().update_one(back, {"$set": {"low": False}})
        return None
    if level.low:
        return None
    raw = await _levels().find_one_and_update(
        {
            "_id": level.id,
            "low": {"$ne": True},
            "reorder_level": floor,
            "quantity": {"$lte": floor},
        },
        {"$set": {"low": True}, "$inc": {"low_episode": 1}},
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else await _raise_low(_level(raw))


async def _raise_low(level: SupplyLevel) -> InventoryAlert | None:
    alert = InventoryAlert(
        key=f"{AlertKind.LOW_STOCK.value}:{level.id}:{level.low_episode}",
        kind=AlertKind.LOW_STOCK,
        level_id=level.id,
        item_id=level.item_id,
        store_id=level.store_id,
        department_id=level.department_id,
        quantity=level.quantity,
        reorder_level=level.reorder_level,
        suggested_quantity=suggested_order(level),
        at=utcnow(),
    )
    return await _raise(alert)


async def _raise(alert: InventoryAlert) -> InventoryAlert | None:
    try:
        await alert.insert()
    except DuplicateKeyError:
        return None  # raised before (a repeat of the job, or a recovery)
    await changed(alert, "raised")
    return alert


async def raise_expiry_alerts(
    now: datetime | None = None, within_days: int = NEAR_EXPIRY_DAYS
) -> int:
    """One alert per lot holding stock that expires within ``within_days`` (or has expired):
    the job the scheduler runs; repeating it raises nothing new."""
    on = today(now)
    raised = 0
    for found in await expiring(within_days, None, now=now):
        level = found.level
        alert = InventoryAlert(
            key=f"{AlertKind.NEAR_EXPIRY.value}:{level.id}:{found.lot}:{found.expiry.isoformat()}",
            kind=AlertKind.NEAR_EXPIRY,
            level_id=level.id,
            item_id=level.item_id,
            store_id=level.store_id,
            department_id=level.department_id,
            quantity=found.quantity,
            lot=found.lot,
            expiry=found.expiry,
            at=now or utcnow(),
        )
        if await _raise(alert) is not None:
            raised += 1
    if raised:
        log.info("inventory: %d lot(s) expiring by %s", raised, on + timedelta(days=within_days))
    return raised


# -- issues and transfers ----------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    item_id: ObjectId
    quantity: int


async def issue(
    store_id: ObjectId,
    department_id: ObjectId,
    lines: Sequence[LineInput],
    by: str,
    *,
    note: str | None = None,
    now: datetime | None = None,
) -> SupplyTransfer:
    """Supplies to a department: into the department's store, or, from that store itself (or to
    a department without one), consumed by the department (they leave the inventory)."""
    source = await _active_store(store_id)
    await common.ensure_exists(Department, department_id, "departmentId", "department")
    target = await department_store(department_id)
    to = None if target is None or target.id == source.id else target
    return await _move(MovementKind.ISSUE, source, to, department_id, lines, by, note, now)


async def transfer(
    from_store_id: ObjectId,
    to_store_id: ObjectId,
    lines: Sequence[LineInput],
    by: str,
    *,
    note: str | None = None,
    now: datetime | None = None,
) -> SupplyTransfer:
    """Supplies from one store to another (back to central stores, between departments)."""
    require(from_store_id != to_store_id, "toStoreId", "is the source store")
    source = await _active_store(from_store_id, "fromStoreId")
    target = await _active_store(to_store_id, "toStoreId")
    return await _move(
        MovementKind.TRANSFER, source, target, target.department_id, lines, by, note, now
    )


async def _move(
    kind: MovementKind,
    source: Store,
    target: Store | None,
    department_id: ObjectId | None,
    lines: Sequence[LineInput],
    by: str,
    note: str | None,
    now: datetime | None,
) -> SupplyTransfer:
    """See the module docstring: pending, the source decrements, delivering, the deliveries."""
    now = now or utcnow()
    require(0 < len(lines) <= 100, "lines", "1 to 100 lines")
    items: dict[ObjectId, SupplyItem] = {}
    for n, line in enumerate(lines):
        _quantity(line.quantity, f"lines.{n}.quantity")
        require(line.item_id not in items, f"lines.{n}.itemId", "is on another line already")
        items[line.item_id] = await _active_item(line.item_id, f"lines.{n}.itemId")
    text = _reason(note, "note", required=False)
    await recover(now=now, store_id=source.id)  # lapsed transfers of this store give stock back
    on = today(now)
    for line in lines:  # too little now: refused before anything is written
        level = await find_level(line.item_id, source.id)  # type: ignore[arg-type]
        have = 0 if level is None else usable(level, on)
        if have < line.quantity:
            raise _insufficient(have, line.quantity, items[line.item_id])
    doc = SupplyTransfer(
        kind=kind,
        from_store_id=source.id,
        to_store_id=target.id if target else None,
        department_id=department_id,
        from_department_id=source.department_id,
        lines=[TransferLine(item_id=ln.item_id, quantity=ln.quantity) for ln in lines],
        note=text,
        by=by,
        at=now,
        expires_at=now + GRACE,
        created_at=now,
        updated_at=now,
    )
    await doc.insert()
    try:
        for planned in doc.lines:
            planned.lots = await _take(doc, planned, items[planned.item_id], on)
    except BaseException as exc:
        await _fail(doc, exc)
        raise
    raw = await _transfers().find_one_and_update(
        {"_id": doc.id, "status": TransferStatus.PENDING.value},
        {
            "$set": {
                "status": TransferStatus.DELIVERING.value,
                "lines": [_encoder.encode(x) for x in doc.lines],
                "expires_at": utcnow() + GRACE,
                "updated_at": utcnow(),
            },
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:  # recovered meanwhile (failed, its stock given back): make sure, and say so
        await _fail(doc, Conflict("abandoned"))
        raise Conflict("The issue was abandoned meanwhile (recovered); issue again")
    return await _deliver(SupplyTransfer.model_validate(raw))


async def _take(
    doc: SupplyTransfer, line: TransferLine, item: SupplyItem, on: date
) -> list[LotTake]:
    """One line's source decrement; a lost race for a lot reads the level again."""
    for _ in range(MAX_ROUNDS):
        level = await find_level(line.item_id, doc.from_store_id)
        if level is None:
            raise _insufficient(0, line.quantity, item)
        plan = _plan(level, line.quantity, on)
        if plan is None:
            raise _insufficient(usable(level, on), line.quantity, item)
        pending = PendingOp(
            op=line.out_op, kind=doc.kind, delta=-line.quantity, lots=[t for _, t in plan],
            transfer_id=doc.id, by=doc.by, reason=doc.note, at=utcnow(),
        )  # fmt: skip
        applied = await _apply(level, pending, plan)
        if applied is not None:
            await _ledger(applied, pending)
            await changed(applied, "issued")
            return pending.lots
    raise Conflict("Stock of this item is changing too fast; retry", fields=["lines"])


async def _fail(doc: SupplyTransfer, exc: BaseException) -> None:
    """Refused or broken before delivering: failed, and what was taken goes back."""
    reason = exc.message if isinstance(exc, ShmsError) else f"error: {type(exc).__name__}"
    raw = await _transfers().find_one_and_update(
        {"_id": doc.id, "status": TransferStatus.PENDING.value},
        {
            "$set": {"status": TransferStatus.FAILED.value, "failure": reason[:500],
                     "updated_at": utcnow()},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )  # fmt: skip
    for line in doc.lines:
        query = {"item_id": line.item_id, "store_id": doc.from_store_id}
        await _compensate_op(query, line.out_op, doc.by if raw is not None else SYSTEM)
    if raw is not None:
        await changed(SupplyTransfer.model_validate(raw), "failed")


async def _deliver(doc: SupplyTransfer) -> SupplyTransfer:
    """Roll a ``delivering`` transfer forward: the destination increments (each once), then
    ``completed``, the operations released, the levels' alerts. Safe to repeat."""
    touched: dict[ObjectId, list[ObjectId]] = {}
    items = {
        x.id: x
        for x in await SupplyItem.find({"_id": {"$in": [ln.item_id for ln in doc.lines]}}).to_list()
    }
    target = await get_store(doc.to_store_id) if doc.to_store_id is not None else None
    for line in doc.lines:
        if target is not None:
            level = await _ensure_level(items[line.item_id], target)
            touched.setdefault(level.id, []).append(line.in_op)  # type: ignore[arg-type]
            await _put(level, line, doc)
    raw = await _transfers().find_one_and_update(
        {"_id": doc.id, "status": TransferStatus.DELIVERING.value},
        {"$set": {"status": TransferStatus.COMPLETED.value, "updated_at": utcnow()},
         "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )  # fmt: skip
    for line in doc.lines:
        source = await find_level(line.item_id, doc.from_store_id)
        if source is not None:
            touched.setdefault(source.id, []).append(line.out_op)  # type: ignore[arg-type]
    for level_id, ops in touched.items():
        await _settle_ops(level_id, ops)
    if raw is None:  # completed by someone else (a recovery) meanwhile
        return await get_transfer(doc.id)  # type: ignore[arg-type]
    done = SupplyTransfer.model_validate(raw)
    await changed(done, "completed")
    return done


async def _put(level: SupplyLevel, line: TransferLine, doc: SupplyTransfer) -> None:
    pending = PendingOp(
        op=line.in_op, kind=doc.kind, delta=line.quantity, lots=line.lots, transfer_id=doc.id,
        by=doc.by, reason=doc.note, at=utcnow(),
    )  # fmt: skip
    for _ in range(MAX_ROUNDS):
        if any(p.op == line.in_op for p in level.pending_ops):
            return  # delivered before (a repeat)
        for take in line.lots:
            level = await _ensure_lot(level, take.lot, take.expiry)
        applied = await _apply(level, pending, _positions(level, line.lots))
        if applied is not None:
            await _ledger(applied, pending)
            await changed(applied, "delivered")
            return
        level = await get_level(level.id)  # type: ignore[arg-type]
    raise Conflict("The destination is changing too fast; recovery will finish the delivery")


async def _settle_ops(level_id: ObjectId, ops: Sequence[ObjectId]) -> None:
    """Ledger rows for the operations still on the level, their release, the alert check."""
    raw = await _levels().find_one({"_id": level_id})
    if raw is None:
        return
    level = _level(raw)
    mine = [p for p in level.pending_ops if p.op in ops]
    for pending in mine:
        await _ledger(level, pending)
    if mine:
        await _release(level_id, [p.op for p in mine])
    fresh = await get_level(level_id)
    await check_low(fresh)


# -- recovery ----------------------------------------------------------------------------------


@dataclass
class Recovery:
    """What one ``recover`` run finished."""

    failed: int = 0
    delivered: int = 0
    operations: int = 0
    alerts: int = 0


async def recover(now: datetime | None = None, store_id: ObjectId | None = None) -> Recovery:
    """Finish what crashed (all stores, or one source store): see the module docstring."""
    now = now or utcnow()
    done = Recovery()
    only: Query = {} if store_id is None else {"from_store_id": store_id}
    lapsed = _transfers().find(
        {
            **only,
            "status": {"$in": [TransferStatus.PENDING.value, TransferStatus.DELIVERING.value]},
            "expires_at": {"$lte": now},
        }
    )
    for raw in await lapsed.to_list(None):
        doc = SupplyTransfer.model_validate(raw)
        if doc.status == TransferStatus.PENDING:
            await _fail(doc, Conflict("abandoned (recovered)"))
            done.failed += 1
        else:
            await _deliver(doc)
            done.delivered += 1
    if store_id is not None:
        return done
    lingering = _levels().find({"pending_ops.at": {"$lte": now - GRACE}})
    for raw in await lingering.to_list(None):
        level = _level(raw)
        for pending in level.pending_ops:
            if pending.at <= now - GRACE and await _finish_op(level, pending):
                done.operations += 1
    done.alerts = await _recheck_low()
    if any((done.failed, done.delivered, done.operations, done.alerts)):
        log.info("inventory: recovered %s", done)
    return done


async def _finish_op(level: SupplyLevel, pending: PendingOp) -> bool:
    """An operation left on a level: settled or given back, as its transfer says."""
    if pending.transfer_id is None:
        await _ledger(level, pending)
        await _release(level.id, [pending.op])  # type: ignore[arg-type]
        return True
    raw = await _transfers().find_one({"_id": pending.transfer_id})
    doc = None if raw is None else SupplyTransfer.model_validate(raw)
    if doc is not None and doc.status in (TransferStatus.PENDING, TransferStatus.DELIVERING):
        return False  # the lapsed-transfer pass settles it
    if doc is not None and doc.status == TransferStatus.COMPLETED:
        await _settle_ops(level.id, [pending.op])  # type: ignore[arg-type]
        return True
    return await _compensate_op({"_id": level.id}, pending.op, SYSTEM)


async def _recheck_low() -> int:
    """Crossings a crash left unchecked, and alerts of flipped flags never written."""
    raised = 0
    watched = {"reorder_level": {"$ne": None}}
    unflipped = {
        **watched,
        "low": {"$ne": True},
        "$expr": {"$lte": ["$quantity", "$reorder_level"]},
    }
    for raw in await _levels().find(unflipped).to_list(None):
        if await check_low(_level(raw)) is not None:
            raised += 1
    for raw in await _levels().find({"low": True}).to_list(None):
        level = _level(raw)
        if level.reorder_level is None or level.quantity > level.reorder_level:
            await check_low(level)  # back above: re-arm
        elif await _raise_low(level) is not None:  # the flip's alert, if it was lost
            raised += 1
    return raised


async def prune_lots() -> int:
    """Drop empty lots from levels with no operation pending (positions are then free to move:
    every lot update names the lot it expects at a position)."""
    result = await _levels().update_many(
        {"lots.quantity": 0, "pending_ops": {"$size": 0}},
        {"$pull": {"lots": {"quantity": 0}}},
    )
    return int(result.modified_count)


@dataclass
class Tick:
    recovery: Recovery
    expiry_alerts: int
    pruned: int


async def tick(now: datetime | None = None) -> Tick:
    """What the scheduler runs each tick: recovery, near-expiry alerts, empty lots pruned."""
    now = now or utcnow()
    recovered = await recover(now=now)
    return Tick(recovered, await raise_expiry_alerts(now), await prune_lots())


# -- consistency (for tests and operators) -------------------------------------------------------


async def ledger_sum(level_id: ObjectId) -> int:
    rows = (
        await db.collection(InventoryMovement)
        .find({"level_id": level_id}, projection={"delta": 1})
        .to_list(None)
    )
    return sum(int(r["delta"]) for r in rows)
