"""Supplies over GraphQL: the item master, stores, levels, issues, counts, write-offs, alerts.

Storekeepers act by their account (the token's subject): they have no staff record. Nurses and
the departments' admin staff read their department's stores (read only); see
``models/inventory.py`` for the whole policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import date
from functools import partial
from typing import Any, TypeVar

import strawberry
from beanie import Document

from auth.policy import Action, Rel
from auth.policy import EntityKind as K
from errors import Unauthenticated
from events.types import DomainEvent
from models.inventory import InventoryAlert as AlertDoc
from models.inventory import SupplyLevel as LevelDoc
from models.inventory import SupplyTransfer as TransferDoc
from resolvers.common import perform
from resolvers.subscriptions import _Filter, _ref, _refuse_unfollowable, _visible
from schema.common import (
    Connection,
    IdempotencyKey,
    connection,
    create_data,
    oid,
    to_data,
    update_data,
    view,
)
from schema.context import Info
from schema.enforce import acts, reads
from schema.inventory import (
    AlertKind,
    CreateStoreInput,
    CreateSupplyItemInput,
    ExpiringSupply,
    InventoryAlert,
    InventoryAlertEvent,
    InventoryMovement,
    InventoryRecovery,
    IssueSuppliesInput,
    MovementKind,
    ReceiveSuppliesInput,
    ReorderLine,
    Store,
    StoreKind,
    SupplyCategory,
    SupplyItem,
    SupplyLevel,
    SupplyTransfer,
    TransferStatus,
    TransferSuppliesInput,
    UpdateSupplyItemInput,
    WriteOffReason,
)
from services import inventory
from services.idempotency import idempotent
from services.pagination import Query

ALERTS = str(AlertDoc.Settings.name)
D = TypeVar("D", bound=Document)


def _by(info: Info) -> str:
    principal = info.context.principal
    if principal is None:
        raise Unauthenticated("Sign in first")
    return principal.subject


def _opt(value: strawberry.ID | None, field: str) -> Any:
    return oid(value, field) if value else None


def _where(**fields: Any) -> Query:
    return {name: value for name, value in fields.items() if value is not None}


async def _once(
    info: Info,
    kind: str,
    action: str,
    operation: str,
    key: str | None,
    payload: dict[str, Any],
    model: type[D],
    run: Callable[[], Awaitable[D]],
    fields: list[str],
) -> D:
    """``run`` under the caller's idempotency key: a retry gets the first answer, checked and
    audited again."""
    by = _by(info)

    async def first() -> D:
        await info.context.access.require(kind, action)
        done = await run()
        info.context.access.wrote(kind, done, action, fields)
        return done

    async def replay(done: D, note: str) -> D:
        await info.context.access.require(kind, action, row=done)
        info.context.access.wrote(kind, done, action, fields, note=note)
        return done

    return await idempotent(by, operation, key, payload, model, first, replay)


@strawberry.type
class InventoryQuery:
    @strawberry.field
    async def supply_item(self, info: Info, id: strawberry.ID) -> SupplyItem | None:
        return await info.context.loaders.supply_item_by_id.load(oid(id))

    @strawberry.field(
        description="The item master by name. `search`: every word prefixes a word of the "
        "name or the code ('glo nitr' finds nitrile gloves)."
    )
    async def supply_items(
        self,
        info: Info,
        search: str | None = None,
        category: SupplyCategory | None = None,
        active: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SupplyItem]:
        query = inventory.item_filter(search=search, category=category, active=active)
        scope = await info.context.access.scope(K.SUPPLY_ITEM)
        page = await inventory.list_items(query, info.context.page(first, after), scope)
        return connection(SupplyItem, page)

    @strawberry.field(description="Stores by name.")
    async def stores(
        self,
        info: Info,
        kind: StoreKind | None = None,
        department_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Store]:
        query = _where(kind=kind and kind.value, department_id=_opt(department_id, "departmentId"))
        scope = await info.context.access.scope(K.STORE)
        page = await inventory.list_stores(query, info.context.page(first, after), scope)
        return connection(Store, page)

    @strawberry.field(
        description="What stores hold, per item and store. belowReorderLevel: only levels at "
        "or below their reorder level; includeEmpty: false leaves out levels holding nothing."
    )
    async def stock_levels(
        self,
        info: Info,
        store_id: strawberry.ID | None = None,
        item_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
        below_reorder_level: bool = False,
        include_empty: bool = True,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SupplyLevel]:
        query = inventory.level_filter(
            store_id=_opt(store_id, "storeId"),
            item_id=_opt(item_id, "itemId"),
            department_id=_opt(department_id, "departmentId"),
            below_reorder_level=below_reorder_level,
            include_empty=include_empty,
        )
        scope = await info.context.access.scope(K.SUPPLY_LEVEL)
        page = await inventory.list_levels(query, info.context.page(first, after), scope)
        return connection(SupplyLevel, page)

    @strawberry.field(description="The supplies ledger, oldest first: every quantity change.")
    async def inventory_movements(
        self,
        info: Info,
        store_id: strawberry.ID | None = None,
        item_id: strawberry.ID | None = None,
        level_id: strawberry.ID | None = None,
        transfer_id: strawberry.ID | None = None,
        kind: MovementKind | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[InventoryMovement]:
        query = _where(
            store_id=_opt(store_id, "storeId"),
            item_id=_opt(item_id, "itemId"),
            level_id=_opt(level_id, "levelId"),
            transfer_id=_opt(transfer_id, "transferId"),
            kind=kind and kind.value,
        )
        scope = await info.context.access.scope(K.INVENTORY_MOVEMENT)
        page = await inventory.list_movements(query, info.context.page(first, after), scope)
        return connection(InventoryMovement, page)

    @strawberry.field(description="Issues and transfers, oldest first.")
    async def supply_transfers(
        self,
        info: Info,
        from_store_id: strawberry.ID | None = None,
        to_store_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
        status: TransferStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SupplyTransfer]:
        query = _where(
            from_store_id=_opt(from_store_id, "fromStoreId"),
            to_store_id=_opt(to_store_id, "toStoreId"),
            department_id=_opt(department_id, "departmentId"),
            status=status and status.value,
        )
        scope = await info.context.access.scope(K.SUPPLY_TRANSFER)
        page = await inventory.list_transfers(query, info.context.page(first, after), scope)
        return connection(SupplyTransfer, page)

    @strawberry.field(description="Alerts raised, oldest first (low stock, lots near expiry).")
    async def supply_alerts(
        self,
        info: Info,
        store_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
        kind: AlertKind | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[InventoryAlert]:
        query = _where(
            store_id=_opt(store_id, "storeId"),
            department_id=_opt(department_id, "departmentId"),
            kind=kind and kind.value,
        )
        scope = await info.context.access.scope(K.INVENTORY_ALERT)
        page = await inventory.list_alerts(query, info.context.page(first, after), scope)
        return connection(InventoryAlert, page)

    @strawberry.field(
        description="What to reorder: levels at or below their reorder level (of one store, or "
        "every store the caller sees), with the quantity to order, largest first.",
        metadata=reads(K.SUPPLY_LEVEL),
    )
    async def reorder_list(
        self, info: Info, store_id: strawberry.ID | None = None
    ) -> list[ReorderLine]:
        scope = await info.context.access.scope(K.SUPPLY_LEVEL)
        lines = await inventory.reorder_list(_opt(store_id, "storeId"), scope)
        return [view(ReorderLine, line) for line in lines]

    @strawberry.field(
        description="Lots holding stock that expire within `withinDays` (expired ones "
        "included), soonest first.",
        metadata=reads(K.SUPPLY_LEVEL),
    )
    async def expiring_supplies(
        self, info: Info, within_days: int = 30, store_id: strawberry.ID | None = None
    ) -> list[ExpiringSupply]:
        scope = await info.context.access.scope(K.SUPPLY_LEVEL)
        found = await inventory.expiring(within_days, scope, _opt(store_id, "storeId"))
        return [view(ExpiringSupply, x) for x in found]


@strawberry.type
class InventoryMutation:
    @strawberry.mutation(
        description="Add a supply to the item master.",
        metadata=acts(K.SUPPLY_ITEM, Action.CREATE),
    )
    async def create_supply_item(self, info: Info, input: CreateSupplyItemInput) -> SupplyItem:
        data = create_data(input)
        run = partial(inventory.create_item, data)
        return view(SupplyItem, await perform(info, K.SUPPLY_ITEM, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Change a supply (tracksExpiry only while it is out of stock).",
        metadata=acts(K.SUPPLY_ITEM, Action.UPDATE),
    )
    async def update_supply_item(
        self, info: Info, id: strawberry.ID, input: UpdateSupplyItemInput
    ) -> SupplyItem:
        changes = update_data(input)
        row = await inventory.get_item(oid(id))
        run = partial(inventory.update_item, oid(id), changes)
        done = await perform(info, K.SUPPLY_ITEM, Action.UPDATE, run, changes, row=row)
        return view(SupplyItem, done)

    @strawberry.mutation(
        description="Open a store: CENTRAL (no department) or a DEPARTMENT's own (one each).",
        metadata=acts(K.STORE, Action.CREATE),
    )
    async def create_store(self, info: Info, input: CreateStoreInput) -> Store:
        data = create_data(input)
        run = partial(inventory.create_store, data)
        return view(Store, await perform(info, K.STORE, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Watch a level: at or below `reorderLevel` it is reordered (null stops "
        "watching); a crossing raises a low-stock alert once.",
        metadata=acts(K.SUPPLY_LEVEL, "setReorderLevel"),
    )
    async def set_reorder_level(
        self,
        info: Info,
        store_id: strawberry.ID,
        item_id: strawberry.ID,
        reorder_level: int | None,
        reorder_quantity: int = 0,
    ) -> SupplyLevel:
        run = partial(
            inventory.set_reorder_level,
            oid(store_id, "storeId"),
            oid(item_id, "itemId"),
            reorder_level,
            reorder_quantity,
        )
        fields = ["reorderLevel", "reorderQuantity"]
        done = await perform(info, K.SUPPLY_LEVEL, "setReorderLevel", run, fields)
        return view(SupplyLevel, done)

    @strawberry.mutation(
        description="Receive a delivery of one item into a store (a lot with its expiry for an "
        "item that expires).",
        metadata=acts(K.SUPPLY_LEVEL, "receive"),
    )
    async def receive_supplies(
        self, info: Info, input: ReceiveSuppliesInput, idempotency_key: IdempotencyKey = None
    ) -> SupplyLevel:
        data = to_data(input)
        by = _by(info)
        run = partial(
            inventory.receive,
            data["store_id"],
            data["item_id"],
            data["quantity"],
            by,
            lot=data.get("lot"),
            expiry=data.get("expiry"),
            note=data.get("note"),
        )
        done = await _once(
            info, K.SUPPLY_LEVEL, "receive", "receiveSupplies", idempotency_key, {"input": data},
            LevelDoc, run, ["quantity", "lots"],
        )  # fmt: skip
        return view(SupplyLevel, done)

    @strawberry.mutation(
        description="Issue supplies from a store to a department: into the department's store, "
        "or consumed by the department when issued from its own store (or it has none). All "
        "lines or none: too little of any is CONFLICT with reason INSUFFICIENT_STOCK and "
        "nothing moves. Soonest-expiring lots first; expired lots are never issued.",
        metadata=acts(K.SUPPLY_TRANSFER, Action.CREATE),
    )
    async def issue_supplies(
        self, info: Info, input: IssueSuppliesInput, idempotency_key: IdempotencyKey = None
    ) -> SupplyTransfer:
        data = to_data(input)
        lines = [inventory.LineInput(x["item_id"], x["quantity"]) for x in data["lines"]]
        run = partial(
            inventory.issue,
            data["store_id"],
            data["department_id"],
            lines,
            _by(info),
            note=data.get("note"),
        )
        done = await _once(
            info, K.SUPPLY_TRANSFER, Action.CREATE, "issueSupplies", idempotency_key,
            {"input": data}, TransferDoc, run, ["lines", "status"],
        )  # fmt: skip
        return view(SupplyTransfer, done)

    @strawberry.mutation(
        description="Move supplies from one store to another; all lines or none, like an issue.",
        metadata=acts(K.SUPPLY_TRANSFER, Action.CREATE),
    )
    async def transfer_supplies(
        self, info: Info, input: TransferSuppliesInput, idempotency_key: IdempotencyKey = None
    ) -> SupplyTransfer:
        data = to_data(input)
        lines = [inventory.LineInput(x["item_id"], x["quantity"]) for x in data["lines"]]
        run = partial(
            inventory.transfer,
            data["from_store_id"],
            data["to_store_id"],
            lines,
            _by(info),
            note=data.get("note"),
        )
        done = await _once(
            info, K.SUPPLY_TRANSFER, Action.CREATE, "transferSupplies", idempotency_key,
            {"input": data}, TransferDoc, run, ["lines", "status"],
        )  # fmt: skip
        return view(SupplyTransfer, done)

    @strawberry.mutation(
        description="Record a stock count: the level (or, for an expiring item, the lot) "
        "becomes `counted`. If stock moved since it was read, CONFLICT: count again. A lot "
        "never recorded here may be counted in with its expiry.",
        metadata=acts(K.SUPPLY_LEVEL, "adjust"),
    )
    async def adjust_stock(
        self,
        info: Info,
        store_id: strawberry.ID,
        item_id: strawberry.ID,
        counted: int,
        reason: str,
        lot: str | None = None,
        expiry: date | None = None,
    ) -> SupplyLevel:
        run = partial(
            inventory.adjust,
            oid(store_id, "storeId"),
            oid(item_id, "itemId"),
            counted,
            reason,
            _by(info),
            lot=lot,
            expiry=expiry,
        )
        done = await perform(info, K.SUPPLY_LEVEL, "adjust", run, ["quantity"])
        return view(SupplyLevel, done)

    @strawberry.mutation(
        description="Take units out of use with a reason (EXPIRED only for an expired lot); "
        "never more than there is.",
        metadata=acts(K.SUPPLY_LEVEL, "writeOff"),
    )
    async def write_off_supplies(
        self,
        info: Info,
        store_id: strawberry.ID,
        item_id: strawberry.ID,
        quantity: int,
        reason: WriteOffReason,
        lot: str | None = None,
        note: str | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> SupplyLevel:
        store, item = oid(store_id, "storeId"), oid(item_id, "itemId")
        run = partial(
            inventory.write_off, store, item, quantity, reason, _by(info), lot=lot, note=note
        )
        payload = {"storeId": store, "itemId": item, "quantity": quantity, "reason": reason,
                   "lot": lot, "note": note}  # fmt: skip
        done = await _once(
            info, K.SUPPLY_LEVEL, "writeOff", "writeOffSupplies", idempotency_key, payload,
            LevelDoc, run, ["quantity"],
        )  # fmt: skip
        return view(SupplyLevel, done)

    @strawberry.mutation(
        description="Finish what crashed: abandoned issues give their stock back, interrupted "
        "deliveries are delivered, lost low-stock alerts are raised.",
        metadata=acts(K.SUPPLY_TRANSFER, "recover"),
    )
    async def recover_inventory(self, info: Info) -> InventoryRecovery:
        await info.context.access.require(K.SUPPLY_TRANSFER, "recover")
        done = await inventory.recover()
        return InventoryRecovery(
            failed=done.failed,
            delivered=done.delivered,
            operations=done.operations,
            alerts=done.alerts,
        )


@strawberry.type
class InventorySubscription:
    @strawberry.subscription(
        description="Inventory alerts as they are raised (low stock, lots near expiry), "
        "optionally of one store or one department's stores.",
        metadata=reads(K.INVENTORY_ALERT),
    )
    async def inventory_alerts(
        self,
        info: Info,
        store_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[InventoryAlertEvent, None]:
        store = _ref(store_id, "storeId")
        department = _ref(department_id, "departmentId")
        check = _Filter(info)
        if department is not None:
            await check.department(department)
        if store is not None:
            row = await check.load("store_by_id", "Store", store)
            rels = await check.access.relations(K.STORE, row) if row is not None else {Rel.ANY}
            check.narrow(rels)
        await _refuse_unfollowable(K.INVENTORY_ALERT, check)

        def wanted(event: DomainEvent) -> bool:
            if store is not None and event.refs.get("store_id") != store:
                return False
            return department is None or event.refs.get("department_id") == department

        events = _visible(
            info,
            "inventoryAlerts",
            K.INVENTORY_ALERT,
            ALERTS,
            "inventory_alert_by_id",
            "alert",
            wanted,
        )
        async with contextlib.aclosing(events):
            async for event, row, context in events:
                yield InventoryAlertEvent(
                    change=event.change,
                    alert_id=strawberry.ID(event.id),
                    at=event.happened_at,
                    alert=view(InventoryAlert, row),
                    context=context,
                )
