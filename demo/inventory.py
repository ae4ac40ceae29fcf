"""Demo supplies: the item master, the central stores and a supply room per demo department,
stock levels with reorder levels, lots, and two weeks of past issues.

Every level's quantity is the sum of its ledger rows: each item was received into the central
stores 30 days before the demo's "now", and issued to the departments' supply rooms since (one
issue per department and week, gloves, masks, swabs and wipes). N95 respirators, IV cannulas and
glucose test strips ended at or below their reorder level in the central stores (their low-stock
alerts are raised), so are the Emergency department's gloves; sterile dressing packs and suture
kits have a lot expiring 20 days after the demo's "now" beside a later one, and the glucose
strips one expiring in 10 days, for the near-expiry job to find. Ids derive from names: every
seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from beanie import PydanticObjectId

from demo.clock import ANCHOR
from models.departments import Department
from models.inventory import (
    AlertKind,
    InventoryAlert,
    InventoryMovement,
    Lot,
    LotTake,
    MovementKind,
    Store,
    StoreKind,
    SupplyCategory,
    SupplyItem,
    SupplyLevel,
    SupplyTransfer,
    TransferLine,
    TransferStatus,
)
from models.patients import name_tokens
from services.inventory import suggested_order

KEEPER = "demo:storekeeper"
C = SupplyCategory


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    category: SupplyCategory
    unit: str
    cost: int
    received: int
    reorder: int
    reorder_quantity: int
    lots: tuple[tuple[str, int, int], ...] = ()  # (lot, days after ANCHOR, quantity)


PRODUCTS = (
    Product("GLV-NIT-M", "Nitrile gloves, medium", C.PPE, "box of 100", 650, 400, 60, 200),
    Product("GLV-NIT-L", "Nitrile gloves, large", C.PPE, "box of 100", 650, 200, 40, 100),
    Product("MSK-SURG", "Surgical masks type IIR", C.PPE, "box of 50", 480, 300, 50, 150),
    Product("MSK-N95", "N95 respirators", C.PPE, "box of 20", 2400, 30, 40, 60),
    Product("GZE-10", "Gauze swabs 10 x 10 cm", C.DRESSING, "pack of 100", 320, 250, 40, 120),
    Product("WIPE-ALC", "Alcohol wipes", C.CONSUMABLE, "box of 200", 290, 200, 30, 100),
    Product("CAN-20G", "IV cannula 20G", C.CONSUMABLE, "box of 50", 3900, 12, 15, 30),
    Product("SYR-5", "Syringes 5 ml", C.CONSUMABLE, "box of 100", 900, 120, 20, 60),
    Product("SYR-10", "Syringes 10 ml", C.CONSUMABLE, "box of 100", 1100, 90, 20, 60),
    Product("BAG-SPEC", "Specimen bags", C.CONSUMABLE, "pack of 250", 1500, 40, 8, 20),
    Product("SHARPS-5", "Sharps containers 5 l", C.CONSUMABLE, "each", 450, 60, 10, 30),
    Product("LIN-SHEET", "Bed sheets", C.LINEN, "each", 900, 500, 100, 200),
    Product("LIN-GOWN", "Patient gowns", C.LINEN, "each", 1200, 300, 60, 120),
    Product("CLN-SURF", "Surface disinfectant 1 l", C.CLEANING, "bottle", 700, 80, 20, 40),
    Product("CLN-HAND", "Hand sanitiser 500 ml", C.CLEANING, "bottle", 550, 150, 30, 80),
    Product("OFF-A4", "Printer paper A4", C.OFFICE, "ream", 450, 100, 20, 50),
    Product("OFF-LBL", "Patient wristband labels", C.OFFICE, "roll", 1300, 25, 5, 10),
    Product("STER-DRS", "Sterile dressing packs", C.SURGICAL, "pack", 380, 0, 30, 100,
            lots=(("SD-2611", 20, 40), ("SD-2703", 140, 60))),
    Product("STER-SUT", "Suture kits 3-0", C.SURGICAL, "kit", 950, 0, 10, 30,
            lots=(("SK-2611", 20, 12), ("SK-2705", 180, 20))),
    Product("GLU-STRIP", "Blood glucose test strips", C.CONSUMABLE, "box of 50", 1800, 0, 10,
            25, lots=(("GS-2611", 10, 6),)),
)  # fmt: skip
ISSUED = ("GLV-NIT-M", "MSK-SURG", "GZE-10", "WIPE-ALC")
"""What each department's supply room was issued each week (ten of each)."""
PER_ISSUE = 10
EMERGENCY = "ER"


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(f"inv:{name}".encode(), digest_size=12).digest())


def _line(key: str, item: SupplyItem, quantity: int) -> TransferLine:
    """A line with operation ids derived from ``key`` (a default would be random)."""
    return TransferLine(
        item_id=item.id, quantity=quantity, out_op=_id(f"out:{key}"), in_op=_id(f"in:{key}")
    )


def _day(days: int) -> date:
    return (ANCHOR + timedelta(days=days)).date()


class _Ledger:
    """Levels as they build up, and the ledger rows that built them."""

    def __init__(self) -> None:
        self.levels: dict[tuple[object, object], SupplyLevel] = {}
        self.rows: list[InventoryMovement] = []

    def level(self, item: SupplyItem, store: Store, at: datetime) -> SupplyLevel:
        key = (item.id, store.id)
        if key not in self.levels:
            self.levels[key] = SupplyLevel(
                id=_id(f"level:{item.code}:{store.code}"), item_id=item.id, store_id=store.id,
                department_id=store.department_id, created_at=at, updated_at=at,
            )  # fmt: skip
        return self.levels[key]

    def move(
        self,
        level: SupplyLevel,
        kind: MovementKind,
        delta: int,
        at: datetime,
        *,
        lots: tuple[LotTake, ...] = (),
        transfer: SupplyTransfer | None = None,
        reason: str | None = None,
        op: PydanticObjectId | None = None,
    ) -> None:
        level.quantity += delta
        level.version += 1
        level.updated_at = at
        n = len(self.rows) + 1
        self.rows.append(
            InventoryMovement(
                id=_id(f"move:{n}"),
                op=op or _id(f"op:{n}"),
                kind=kind,
                level_id=level.id,
                item_id=level.item_id,
                store_id=level.store_id,
                department_id=level.department_id,
                delta=delta,
                lots=list(lots),
                reason=reason,
                by=KEEPER,
                transfer_id=transfer.id if transfer else None,
                at=at,
                created_at=at,
                updated_at=at,
            )
        )


async def seed_inventory() -> None:
    """Write the demo's supplies (see the module docstring)."""
    departments = await Department.find_all().sort("code").to_list()
    received_at = ANCHOR - timedelta(days=30)
    items = {
        p.code: SupplyItem(
            id=_id(f"item:{p.code}"),
            code=p.code,
            name=p.name,
            category=p.category,
            unit=p.unit,
            unit_cost=p.cost,
            tracks_expiry=bool(p.lots),
            search_tokens=name_tokens(p.name, p.code),
            created_at=received_at,
            updated_at=received_at,
        )
        for p in PRODUCTS
    }
    central = Store(
        id=_id("store:CENTRAL"), name="Central stores", code="CENTRAL", kind=StoreKind.CENTRAL,
        created_at=received_at, updated_at=received_at,
    )  # fmt: skip
    rooms = {
        d.code: Store(
            id=_id(f"store:{d.code}"),
            name=f"{d.name} supply room",
            code=f"{d.code}-STORE",
            kind=StoreKind.DEPARTMENT,
            department_id=d.id,
            created_at=received_at,
            updated_at=received_at,
        )
        for d in departments
    }
    book = _Ledger()
    for p in PRODUCTS:
        level = book.level(items[p.code], central, received_at)
        level.reorder_level, level.reorder_quantity = p.reorder, p.reorder_quantity
        if p.lots:
            for lot, days, quantity in p.lots:
                expiry = _day(days)
                level.lots.append(Lot(lot=lot, expiry=expiry, quantity=quantity))
                take = LotTake(lot=lot, expiry=expiry, quantity=quantity)
                book.move(level, MovementKind.RECEIVE, quantity, received_at, lots=(take,))
        else:
            book.move(level, MovementKind.RECEIVE, p.received, received_at)
    transfers: list[SupplyTransfer] = []
    for week in (14, 7):
        for n, department in enumerate(departments):
            at = ANCHOR - timedelta(days=week, hours=-9 - n)
            room = rooms[department.code]
            doc = SupplyTransfer(
                id=_id(f"issue:{department.code}:{week}"), kind=MovementKind.ISSUE,
                from_store_id=central.id, to_store_id=room.id, department_id=department.id,
                lines=[_line(f"{department.code}:{week}:{c}", items[c], PER_ISSUE) for c in ISSUED],
                status=TransferStatus.COMPLETED, note="weekly top-up", by=KEEPER, at=at,
                expires_at=at, created_at=at, updated_at=at, version=2,
            )  # fmt: skip
            transfers.append(doc)
            for code, line in zip(ISSUED, doc.lines, strict=True):
                source = book.level(items[code], central, at)
                target = book.level(items[code], room, at)
                book.move(source, MovementKind.ISSUE, -PER_ISSUE, at, transfer=doc, op=line.out_op)
                book.move(target, MovementKind.ISSUE, PER_ISSUE, at, transfer=doc, op=line.in_op)
    for room in rooms.values():
        for code in ISSUED:
            book.level(items[code], room, received_at).reorder_level = PER_ISSUE
    # The emergency department got through its gloves: used from its own room.
    if EMERGENCY in rooms:
        at = ANCHOR - timedelta(days=1)
        room = rooms[EMERGENCY]
        used = book.level(items["GLV-NIT-M"], room, at)
        doc = SupplyTransfer(
            id=_id("issue:ER:used"), kind=MovementKind.ISSUE, from_store_id=room.id,
            department_id=room.department_id, from_department_id=room.department_id,
            lines=[_line("ER:used", items["GLV-NIT-M"], used.quantity - 4)],
            status=TransferStatus.COMPLETED, note="used on the floor", by=KEEPER, at=at,
            expires_at=at, created_at=at, updated_at=at, version=2,
        )  # fmt: skip
        transfers.append(doc)
        out = doc.lines[0].out_op
        book.move(used, MovementKind.ISSUE, -(used.quantity - 4), at, transfer=doc, op=out)
    alerts = []
    for level in book.levels.values():
        if level.reorder_level is not None and level.quantity <= level.reorder_level:
            level.low, level.low_episode = True, 1
            alerts.append(
                InventoryAlert(
                    id=_id(f"alert:{level.id}"),
                    key=f"{AlertKind.LOW_STOCK.value}:{level.id}:1",
                    kind=AlertKind.LOW_STOCK,
                    level_id=level.id,
                    item_id=level.item_id,
                    store_id=level.store_id,
                    department_id=level.department_id,
                    quantity=level.quantity,
                    reorder_level=level.reorder_level,
                    suggested_quantity=suggested_order(level),
                    at=level.updated_at,
                    created_at=level.updated_at,
                    updated_at=level.updated_at,
                )
            )
    await SupplyItem.insert_many(list(items.values()))
    await Store.insert_many([central, *rooms.values()])
    await SupplyLevel.insert_many(list(book.levels.values()))
    await InventoryMovement.insert_many(book.rows)
    await SupplyTransfer.insert_many(transfers)
    if alerts:
        await InventoryAlert.insert_many(alerts)
