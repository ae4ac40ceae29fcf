"""GraphQL types and inputs for supplies: items, stores, levels, issues, the ledger, alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import inventory as m
from models.base import utcnow
from schema.common import Long, Money, entity_id, ref_id
from schema.context import Context, Info
from services import inventory as svc

if TYPE_CHECKING:
    from schema.departments import Department

strawberry.enum(m.SupplyCategory)
SupplyCategory = m.SupplyCategory
strawberry.enum(m.StoreKind, description="CENTRAL: the hospital's stores; DEPARTMENT: one each.")
StoreKind = m.StoreKind
strawberry.enum(
    m.MovementKind,
    name="InventoryMovementKind",
    description="ISSUE: to a department (into its store, or consumed by it); TRANSFER: store to "
    "store; COMPENSATION: gives back an operation of a failed issue or transfer.",
)
MovementKind = m.MovementKind
strawberry.enum(
    m.WriteOffReason, name="SupplyWriteOffReason", description="EXPIRED only for an expired lot."
)
WriteOffReason = m.WriteOffReason
strawberry.enum(
    m.TransferStatus,
    name="SupplyTransferStatus",
    description="pending -> delivering -> completed; failed gave back what it took.",
)
TransferStatus = m.TransferStatus
strawberry.enum(m.AlertKind, name="InventoryAlertKind")
AlertKind = m.AlertKind


@strawberry.type(description="A non-drug supply in the item master.")
class SupplyItem:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    code: str
    name: str
    category: SupplyCategory
    unit: str = strawberry.field(description="What one unit of stock is.")
    tracks_expiry: bool = strawberry.field(description="Kept in lots with an expiry.")
    active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="What one unit costs.")
    @staticmethod
    def unit_cost(root: strawberry.Parent[m.SupplyItem]) -> Money | None:
        return Money(amount=Long(root.unit_cost), currency=root.currency)


@strawberry.type(description="A store: the central stores, or a department's own.")
class Store:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    code: str
    kind: StoreKind
    active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.Store]) -> strawberry.ID | None:
        return ref_id(root.department_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.Store], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        if root.department_id is None:
            return None
        return await info.context.loaders.department_by_id.load(root.department_id)


@strawberry.type(description="Units of one lot in a store.")
class SupplyLot:
    lot: str
    expiry: date = strawberry.field(description="Expired from this day on.")
    quantity: int

    @strawberry.field
    @staticmethod
    def expired(root: strawberry.Parent[m.Lot]) -> bool:
        return root.expiry <= utcnow().date()


@strawberry.type(description="Units of one lot an operation moved.")
class SupplyLotTake:
    lot: str
    expiry: date
    quantity: int


@strawberry.type(description="What a store holds of an item; never below zero.")
class SupplyLevel:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    quantity: int = strawberry.field(description="Every unit, expired lots included.")
    reorder_level: int | None = strawberry.field(
        description="At or below it the item is reordered (null: not watched)."
    )
    reorder_quantity: int
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def item_id(root: strawberry.Parent[m.SupplyLevel]) -> strawberry.ID:
        return strawberry.ID(str(root.item_id))

    @strawberry.field
    @staticmethod
    def store_id(root: strawberry.Parent[m.SupplyLevel]) -> strawberry.ID:
        return strawberry.ID(str(root.store_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.SupplyLevel]) -> strawberry.ID | None:
        return ref_id(root.department_id)

    @strawberry.field(description="Units that may be issued: not in expired lots.")
    @staticmethod
    def usable_quantity(root: strawberry.Parent[m.SupplyLevel]) -> int:
        return svc.usable(root, utcnow().date())

    @strawberry.field(description="Lots holding stock, soonest expiry first.")
    @staticmethod
    def lots(root: strawberry.Parent[m.SupplyLevel]) -> list[SupplyLot]:
        held = sorted((x for x in root.lots if x.quantity > 0), key=lambda x: (x.expiry, x.lot))
        return held  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    def below_reorder_level(root: strawberry.Parent[m.SupplyLevel]) -> bool:
        return root.reorder_level is not None and root.quantity <= root.reorder_level

    @strawberry.field(description="Quantity x the item's unit cost.")
    @staticmethod
    async def stock_value(root: strawberry.Parent[m.SupplyLevel], info: Info) -> Money | None:
        item = await info.context.loaders.supply_item_by_id.load(root.item_id)
        if item is None:
            return None
        return Money(amount=Long(item.unit_cost * root.quantity), currency=item.currency)

    @strawberry.field
    @staticmethod
    async def item(root: strawberry.Parent[m.SupplyLevel], info: Info) -> SupplyItem | None:
        return await info.context.loaders.supply_item_by_id.load(root.item_id)

    @strawberry.field
    @staticmethod
    async def store(root: strawberry.Parent[m.SupplyLevel], info: Info) -> Store | None:
        return await info.context.loaders.store_by_id.load(root.store_id)


@strawberry.type(description="One item of an issue or a transfer, and the lots it took.")
class SupplyTransferLine:
    quantity: int
    lots: list[SupplyLotTake]

    @strawberry.field
    @staticmethod
    def item_id(root: strawberry.Parent[m.TransferLine]) -> strawberry.ID:
        return strawberry.ID(str(root.item_id))

    @strawberry.field
    @staticmethod
    async def item(root: strawberry.Parent[m.TransferLine], info: Info) -> SupplyItem | None:
        return await info.context.loaders.supply_item_by_id.load(root.item_id)


@strawberry.type(description="Supplies issued to a department or moved between stores.")
class SupplyTransfer:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: MovementKind
    lines: list[SupplyTransferLine]
    status: TransferStatus
    note: str | None
    by: str = strawberry.field(description="The issuing account.")
    at: datetime
    failure: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def from_store_id(root: strawberry.Parent[m.SupplyTransfer]) -> strawberry.ID:
        return strawberry.ID(str(root.from_store_id))

    @strawberry.field
    @staticmethod
    def to_store_id(root: strawberry.Parent[m.SupplyTransfer]) -> strawberry.ID | None:
        return ref_id(root.to_store_id)

    @strawberry.field(description="The receiving department.")
    @staticmethod
    def department_id(root: strawberry.Parent[m.SupplyTransfer]) -> strawberry.ID | None:
        return ref_id(root.department_id)

    @strawberry.field(description="Consumed by the department: the units left the inventory.")
    @staticmethod
    def consumed(root: strawberry.Parent[m.SupplyTransfer]) -> bool:
        return root.consumed

    @strawberry.field
    @staticmethod
    async def from_store(root: strawberry.Parent[m.SupplyTransfer], info: Info) -> Store | None:
        return await info.context.loaders.store_by_id.load(root.from_store_id)

    @strawberry.field
    @staticmethod
    async def to_store(root: strawberry.Parent[m.SupplyTransfer], info: Info) -> Store | None:
        if root.to_store_id is None:
            return None
        return await info.context.loaders.store_by_id.load(root.to_store_id)


@strawberry.type(description="One change of one level (the ledger; never changes).")
class InventoryMovement:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: MovementKind
    delta: int = strawberry.field(description="Signed: what the level's quantity moved by.")
    lots: list[SupplyLotTake]
    reason: str | None
    by: str
    at: datetime
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The operation; a compensation names the one it reverses.")
    @staticmethod
    def op(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.op))

    @strawberry.field
    @staticmethod
    def level_id(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.level_id))

    @strawberry.field
    @staticmethod
    def item_id(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.item_id))

    @strawberry.field
    @staticmethod
    def store_id(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.store_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID | None:
        return ref_id(root.department_id)

    @strawberry.field
    @staticmethod
    def transfer_id(root: strawberry.Parent[m.InventoryMovement]) -> strawberry.ID | None:
        return ref_id(root.transfer_id)


@strawberry.type(description="Low stock (a level crossed its reorder level) or a lot near expiry.")
class InventoryAlert:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: AlertKind
    quantity: int = strawberry.field(description="The level's (or lot's) units when raised.")
    reorder_level: int | None
    suggested_quantity: int | None = strawberry.field(description="What to order (low stock).")
    lot: str | None
    expiry: date | None
    at: datetime
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def level_id(root: strawberry.Parent[m.InventoryAlert]) -> strawberry.ID:
        return strawberry.ID(str(root.level_id))

    @strawberry.field
    @staticmethod
    def item_id(root: strawberry.Parent[m.InventoryAlert]) -> strawberry.ID:
        return strawberry.ID(str(root.item_id))

    @strawberry.field
    @staticmethod
    def store_id(root: strawberry.Parent[m.InventoryAlert]) -> strawberry.ID:
        return strawberry.ID(str(root.store_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.InventoryAlert]) -> strawberry.ID | None:
        return ref_id(root.department_id)

    @strawberry.field(description="The level as it is now.")
    @staticmethod
    async def level(root: strawberry.Parent[m.InventoryAlert], info: Info) -> SupplyLevel | None:
        return await info.context.loaders.supply_level_by_id.load(root.level_id)

    @strawberry.field
    @staticmethod
    async def item(root: strawberry.Parent[m.InventoryAlert], info: Info) -> SupplyItem | None:
        return await info.context.loaders.supply_item_by_id.load(root.item_id)

    @strawberry.field
    @staticmethod
    async def store(root: strawberry.Parent[m.InventoryAlert], info: Info) -> Store | None:
        return await info.context.loaders.store_by_id.load(root.store_id)


@strawberry.type(description="A level at or below its reorder level, and what to order.")
class ReorderLine:
    level: SupplyLevel
    suggested_quantity: int = strawberry.field(
        description="Up to the reorder level plus the reorder quantity."
    )


@strawberry.type(description="A lot holding stock that expires soon (or has expired).")
class ExpiringSupply:
    level: SupplyLevel
    lot: str
    expiry: date
    quantity: int
    days_left: int = strawberry.field(description="Negative or zero: expired.")


@strawberry.type(description="An inventory alert was raised.")
class InventoryAlertEvent:
    change: str = strawberry.field(description="`raised`.")
    alert_id: strawberry.ID
    at: datetime
    alert: InventoryAlert | None = strawberry.field(description="The alert, read for this event.")
    context: strawberry.Private[Context]


@strawberry.type(description="What a recovery run finished.")
class InventoryRecovery:
    failed: int = strawberry.field(description="Abandoned issues whose stock went back.")
    delivered: int = strawberry.field(description="Interrupted deliveries finished.")
    operations: int = strawberry.field(description="Operations left on levels, finished.")
    alerts: int = strawberry.field(description="Low-stock alerts a crash had left unraised.")


@strawberry.input
class CreateSupplyItemInput:
    code: str = strawberry.field(description="Unique, upper case: letters, digits, - and _")
    name: str
    category: SupplyCategory
    unit: str
    unit_cost: int = strawberry.field(description="Per unit, in minor units.")
    currency: str | None = None
    tracks_expiry: bool = False


@strawberry.input
class UpdateSupplyItemInput:
    name: str | None = strawberry.UNSET
    category: SupplyCategory | None = strawberry.UNSET
    unit: str | None = strawberry.UNSET
    unit_cost: int | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    tracks_expiry: bool | None = strawberry.UNSET


@strawberry.input
class CreateStoreInput:
    name: str
    code: str
    kind: StoreKind
    department_id: strawberry.ID | None = None


@strawberry.input(description="A delivery of one item into a store (a lot for expiring items).")
class ReceiveSuppliesInput:
    store_id: strawberry.ID
    item_id: strawberry.ID
    quantity: int
    lot: str | None = None
    expiry: date | None = None
    note: str | None = None


@strawberry.input
class SupplyLineInput:
    item_id: strawberry.ID
    quantity: int


@strawberry.input(
    description="From a store to a department: into the department's store, or consumed by "
    "the department when issued from its own store (or it has none)."
)
class IssueSuppliesInput:
    store_id: strawberry.ID
    department_id: strawberry.ID
    lines: list[SupplyLineInput]
    note: str | None = None


@strawberry.input
class TransferSuppliesInput:
    from_store_id: strawberry.ID
    to_store_id: strawberry.ID
    lines: list[SupplyLineInput]
    note: str | None = None
