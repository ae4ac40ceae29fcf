"""Non-drug supplies: the item master, stores, stock per (item, store), issues, the ledger, alerts.

``SupplyLevel`` is all a store holds of one item, in ONE document: its ``quantity`` and, for an
item that expires (``SupplyItem.tracks_expiry``: sterile packs, test strips), its ``lots`` (lot
number, expiry, quantity), whose quantities always sum to ``quantity``. Every change of a level
is one conditional atomic update of that document (``services.inventory``): a decrement matches
only while the level and each lot it takes from hold enough, so no level or lot ever goes below
zero, under any concurrency, across processes, with no transactions. Lots are addressed by
position (``lots.<i>``) with the lot number in the filter, so a shifted array fails safe; empty
lots are pruned only while no operation is pending on the level.

``pending_ops`` lists the operations applied to a level (in the same update that moved it) whose
ledger row is not written yet or whose transfer is not final: the record that lets compensation
undo an operation exactly once and only if it happened, and recovery finish what a crash left.

``SupplyTransfer`` is an issue or a transfer between stores (two levels, two writes): written
``pending`` before any stock moves, ``delivering`` once every source decrement is in (from then
on it only rolls forward: increments cannot fail for want of stock), ``completed``; or ``failed``
with its source decrements given back. An issue to a department goes into the department's
store; from the department's own store (or to a department without a store) it is consumption
and the units leave the inventory.

``InventoryMovement`` is the ledger (one row per operation and kind, append-only).
``InventoryAlert`` is a raised alert: low stock (a level crossing its reorder level: once per
crossing, decided by a compare-and-set on the level's ``low`` flag) or a lot near expiry (once
per lot, by a unique key).

Who reads what: storekeepers and admins everything and all writes; nurses and the departments'
admin staff their department's stores, levels, issues, movements and alerts (read only);
billing reads everything with costs; analysts and patients nothing.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from auth.policy import A, Action, D, R, declare, grant, group, row
from auth.policy import Classification as Class
from models.base import Currency, Entity, Name, Ref, ShortText, UtcDatetime, utcnow

ACCOUNT = Field(min_length=1, max_length=200, description="The account (token subject).")
CODE = r"^[A-Z0-9][A-Z0-9_-]{1,31}$"
LOT = r"^[A-Za-z0-9][A-Za-z0-9./-]{0,39}$"


class SupplyCategory(StrEnum):
    CONSUMABLE = "consumable"
    LINEN = "linen"
    SURGICAL = "surgical"
    CLEANING = "cleaning"
    OFFICE = "office"
    PPE = "ppe"
    DRESSING = "dressing"
    OTHER = "other"


class SupplyItem(Entity):
    code: str = Field(pattern=CODE, description="Unique, upper case: letters, digits, - and _")
    name: Name
    category: SupplyCategory
    unit: ShortText = Field(description="What one unit of stock is: box of 100, pack, roll ...")
    unit_cost: int = Field(ge=0, le=10**9, description="Per unit, in minor units")
    currency: Currency = "EUR"
    tracks_expiry: bool = Field(default=False, description="Kept in lots with an expiry.")
    active: bool = True
    search_tokens: list[str] = Field(default_factory=list)

    class Settings:
        name = "supply_items"
        indexes = [
            pymongo.IndexModel("code", unique=True),
            pymongo.IndexModel("search_tokens"),
            pymongo.IndexModel([("name", 1), ("_id", 1)]),
            pymongo.IndexModel([("category", 1), ("name", 1), ("_id", 1)]),
        ]


class StoreKind(StrEnum):
    CENTRAL = "central"  # the hospital's stores: receives deliveries, issues to departments
    DEPARTMENT = "department"  # a department's own cupboard (one per department)


class Store(Entity):
    name: Name
    code: str = Field(pattern=CODE)
    kind: StoreKind
    department_id: Ref | None = Field(
        default=None, description="A department store's department (exactly one store each)."
    )
    active: bool = True

    class Settings:
        name = "stores"
        keep_nulls = False  # a central store has no department_id: the sparse index skips it
        indexes = [
            pymongo.IndexModel("code", unique=True),
            pymongo.IndexModel(
                "department_id", unique=True, sparse=True, name="one_store_per_department"
            ),
        ]


class Lot(BaseModel):
    lot: str = Field(pattern=LOT)
    expiry: date = Field(description="Usable until the day before; expired from this day on.")
    quantity: int = Field(ge=0)


class LotTake(BaseModel):
    """Units of one lot an operation moved."""

    lot: str
    expiry: date
    quantity: int = Field(gt=0)


class MovementKind(StrEnum):
    RECEIVE = "receive"
    ISSUE = "issue"  # to a department: out of the source, into the department's store (if any)
    TRANSFER = "transfer"  # between two stores
    ADJUST = "adjust"  # a stock count
    WRITE_OFF = "write_off"
    COMPENSATION = "compensation"  # gives back an operation of a failed issue or transfer


class WriteOffReason(StrEnum):
    EXPIRED = "expired"  # only a lot past its expiry
    DAMAGED = "damaged"
    CONTAMINATED = "contaminated"
    LOST = "lost"
    OTHER = "other"


class PendingOp(BaseModel):
    """An operation applied to a level whose ledger row or transfer is not settled yet."""

    op: PydanticObjectId
    kind: MovementKind
    delta: int
    lots: list[LotTake] = Field(default_factory=list)
    transfer_id: Ref | None = None
    by: str
    reason: str | None = None
    at: UtcDatetime


class SupplyLevel(Entity):
    item_id: Ref
    store_id: Ref
    department_id: Ref | None = Field(default=None, description="The store's department.")
    quantity: int = Field(default=0, ge=0)
    lots: list[Lot] = Field(default_factory=list)
    reorder_level: int | None = Field(default=None, ge=0, le=10**7)
    reorder_quantity: int = Field(default=0, ge=0, le=10**7)
    low: bool = Field(default=False, description="At or below the reorder level (alerted).")
    low_episode: int = Field(default=0, ge=0, description="Crossings so far: alert keys.")
    version: int = 0
    pending_ops: list[PendingOp] = Field(default_factory=list)

    class Settings:
        name = "supply_levels"
        indexes = [
            pymongo.IndexModel(
                [("item_id", 1), ("store_id", 1)], unique=True, name="one_level_per_item_store"
            ),
            pymongo.IndexModel([("store_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
            pymongo.IndexModel("lots.expiry"),
            pymongo.IndexModel("pending_ops.at"),
            pymongo.IndexModel([("low", 1), ("store_id", 1)]),
        ]


class TransferStatus(StrEnum):
    PENDING = "pending"  # source decrements under way
    DELIVERING = "delivering"  # every source decrement in: only rolls forward from here
    COMPLETED = "completed"
    FAILED = "failed"  # what was taken went back


class TransferLine(BaseModel):
    item_id: Ref
    quantity: int = Field(gt=0, le=100_000)
    out_op: PydanticObjectId = Field(default_factory=PydanticObjectId)
    in_op: PydanticObjectId = Field(default_factory=PydanticObjectId)
    lots: list[LotTake] = Field(default_factory=list)


class SupplyTransfer(Entity):
    kind: MovementKind = Field(description="ISSUE (to a department) or TRANSFER (store to store)")
    from_store_id: Ref
    to_store_id: Ref | None = Field(default=None, description="None: consumed by the department.")
    department_id: Ref | None = Field(default=None, description="The receiving department.")
    from_department_id: Ref | None = None
    lines: list[TransferLine] = Field(min_length=1, max_length=100)
    status: TransferStatus = TransferStatus.PENDING
    note: ShortText | None = None
    by: str = ACCOUNT
    at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime = Field(description="A pending transfer older is recovered.")
    failure: str | None = None
    version: int = 0

    @property
    def consumed(self) -> bool:
        return self.to_store_id is None

    class Settings:
        name = "supply_transfers"
        keep_nulls = False
        indexes = [
            pymongo.IndexModel([("from_store_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("to_store_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("expires_at", 1)]),
        ]


class InventoryMovement(Entity):
    """One change of one level's quantity; never updated or removed."""

    op: PydanticObjectId
    kind: MovementKind
    level_id: Ref
    item_id: Ref
    store_id: Ref
    department_id: Ref | None = None
    delta: int
    lots: list[LotTake] = Field(default_factory=list)
    reason: str | None = None
    by: str
    transfer_id: Ref | None = None
    at: UtcDatetime

    class Settings:
        name = "inventory_movements"
        indexes = [
            pymongo.IndexModel([("op", 1), ("kind", 1)], unique=True, name="one_row_per_op"),
            pymongo.IndexModel([("level_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("store_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("item_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("transfer_id", 1), ("_id", 1)]),
        ]


class AlertKind(StrEnum):
    LOW_STOCK = "low_stock"
    NEAR_EXPIRY = "near_expiry"


class InventoryAlert(Entity):
    key: str = Field(description="Once per crossing (level, episode) or per lot.")
    kind: AlertKind
    level_id: Ref
    item_id: Ref
    store_id: Ref
    department_id: Ref | None = None
    quantity: int = Field(description="The level's (or lot's) quantity when raised.")
    reorder_level: int | None = None
    suggested_quantity: int | None = None
    lot: str | None = None
    expiry: date | None = None
    at: UtcDatetime

    class Settings:
        name = "inventory_alerts"
        indexes = [
            pymongo.IndexModel("key", unique=True, name="one_alert_per_key"),
            pymongo.IndexModel([("store_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
        ]


# -- policy ---------------------------------------------------------------------------------------

_KEEPERS = {R.STOREKEEPER: grant(A), R.ADMIN: grant(A)}
_ALL = {**_KEEPERS, R.BILLING: grant(A)}
_DEPARTMENT = {**_ALL, R.NURSE: grant(D), R.ADMIN_STAFF: grant(D)}
_STAMPS = ("id", "createdAt", "updatedAt")

SUPPLY_ITEM = declare(
    "SupplyItem",
    SupplyItem,
    row(
        Class.OPERATIONAL,
        (*_STAMPS, "code", "name", "category", "unit", "tracksExpiry", "active"),
        {**_ALL, R.NURSE: grant(A), R.ADMIN_STAFF: grant(A)},
    ),
    group("cost", Class.FINANCIAL, ("unitCost",), _ALL),
    actions={Action.CREATE: _KEEPERS, Action.UPDATE: _KEEPERS},
    cached=True,
)

STORE = declare(
    "Store",
    Store,
    row(
        Class.OPERATIONAL,
        (*_STAMPS, "name", "code", "kind", "departmentId", "department", "active"),
        _DEPARTMENT,
    ),
    actions={Action.CREATE: _KEEPERS},
    department="department_id",
    refs=("department_id",),
    cached=True,
)

SUPPLY_LEVEL = declare(
    "SupplyLevel",
    SupplyLevel,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "itemId",
            "item",
            "storeId",
            "store",
            "departmentId",
            "quantity",
            "usableQuantity",
            "lots",
            "reorderLevel",
            "reorderQuantity",
            "belowReorderLevel",
            "version",
        ),
        _DEPARTMENT,
    ),
    group("value", Class.FINANCIAL, ("stockValue",), _ALL),
    actions={
        "receive": _KEEPERS,
        "adjust": _KEEPERS,
        "writeOff": _KEEPERS,
        "setReorderLevel": _KEEPERS,
    },
    department="department_id",
    refs=("item_id", "store_id", "department_id"),
)

SUPPLY_TRANSFER = declare(
    "SupplyTransfer",
    SupplyTransfer,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "kind",
            "fromStoreId",
            "fromStore",
            "toStoreId",
            "toStore",
            "departmentId",
            "consumed",
            "lines",
            "status",
            "note",
            "by",
            "at",
            "failure",
            "version",
        ),
        _DEPARTMENT,
    ),
    actions={Action.CREATE: _KEEPERS, "recover": _KEEPERS},
    department="department_id",
    refs=("from_store_id", "to_store_id", "department_id"),
)

INVENTORY_MOVEMENT = declare(
    "InventoryMovement",
    InventoryMovement,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "op",
            "kind",
            "levelId",
            "itemId",
            "storeId",
            "departmentId",
            "delta",
            "lots",
            "reason",
            "by",
            "transferId",
            "at",
        ),
        _DEPARTMENT,
    ),
    department="department_id",
    refs=("level_id", "item_id", "store_id", "transfer_id"),
    published=False,
    order=(("at", 1), ("_id", 1)),
)

INVENTORY_ALERT = declare(
    "InventoryAlert",
    InventoryAlert,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "kind",
            "levelId",
            "level",
            "itemId",
            "item",
            "storeId",
            "store",
            "departmentId",
            "quantity",
            "reorderLevel",
            "suggestedQuantity",
            "lot",
            "expiry",
            "at",
        ),
        _DEPARTMENT,
    ),
    department="department_id",
    refs=("level_id", "item_id", "store_id", "department_id"),
)
