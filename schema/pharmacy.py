"""GraphQL types and inputs for pharmacy stock, dispenses and the stock ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import pharmacy as m
from models.base import utcnow
from schema.common import Long, Money, entity_id, ref_id
from schema.context import Info
from schema.drugs import Drug
from services.pharmacy import StockLevel as Level

if TYPE_CHECKING:
    from schema.clinical import Prescription
    from schema.patients import Patient

strawberry.enum(m.StockLocation, description="PHARMACY: the pharmacy's store; WARD: a ward's.")
StockLocation = m.StockLocation
strawberry.enum(
    m.DispenseStatus,
    description="pending -> completed (or awaiting_confirmation -> completed for a controlled "
    "drug) -> partially_returned -> returned; failed and expired gave their stock back.",
)
DispenseStatus = m.DispenseStatus
strawberry.enum(m.MovementKind)
MovementKind = m.MovementKind
strawberry.enum(m.WriteOffReason, description="EXPIRED only for a batch past its expiry.")
WriteOffReason = m.WriteOffReason


@strawberry.type(description="One lot of one drug at one location; never below zero.")
class StockBatch:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    batch_number: str
    expiry: date = strawberry.field(description="Expired from this day on.")
    quantity: int
    location: StockLocation
    received_at: datetime
    received_by: str = strawberry.field(description="The receiving account.")
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def drug_id(root: strawberry.Parent[m.StockBatch]) -> strawberry.ID:
        return strawberry.ID(str(root.drug_id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.StockBatch]) -> strawberry.ID | None:
        return ref_id(root.ward_id)

    @strawberry.field(description="Whether the batch is past its expiry (today, UTC).")
    @staticmethod
    def expired(root: strawberry.Parent[m.StockBatch]) -> bool:
        return root.expiry <= utcnow().date()

    @strawberry.field(description="What one unit cost the pharmacy.")
    @staticmethod
    def unit_cost(root: strawberry.Parent[m.StockBatch]) -> Money | None:
        return Money(amount=Long(root.unit_cost), currency=root.currency)

    @strawberry.field
    @staticmethod
    async def drug(root: strawberry.Parent[m.StockBatch], info: Info) -> Drug | None:
        return await info.context.loaders.drug_by_id.load(root.drug_id)


@strawberry.type(description="What a dispense took from one batch.")
class DispenseLine:
    quantity: int
    returned: int
    batch_number: str
    expiry: date

    @strawberry.field
    @staticmethod
    def batch_id(root: strawberry.Parent[m.DispenseLine]) -> strawberry.ID:
        return strawberry.ID(str(root.batch_id))


@strawberry.type(description="Units of a dispense that came back into a batch.")
class DispenseReturn:
    quantity: int
    reason: str
    by: str
    at: datetime
    applied: bool

    @strawberry.field
    @staticmethod
    def batch_id(root: strawberry.Parent[m.DispenseReturn]) -> strawberry.ID:
        return strawberry.ID(str(root.batch_id))


@strawberry.type(description="The pharmacy handing a prescription's drug out of its store.")
class Dispense:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    status: DispenseStatus
    requested: int = strawberry.field(description="Units this dispense asked for.")
    quantity: int = strawberry.field(description="Units taken from stock.")
    outstanding: int = strawberry.field(description="Units the prescription still needs.")
    controlled: bool
    at: datetime
    picked_up_at: datetime | None
    version: int
    lines: list[DispenseLine] | None
    returns: list[DispenseReturn] | None
    dispensed_by: str | None = strawberry.field(description="The dispensing account.")
    confirmed_by: str | None = strawberry.field(description="The second pharmacist's account.")
    confirmed_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="When an unconfirmed hold lapses.")
    failure: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def prescription_id(root: strawberry.Parent[m.Dispense]) -> strawberry.ID:
        return strawberry.ID(str(root.prescription_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Dispense]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def prescriber_id(root: strawberry.Parent[m.Dispense]) -> strawberry.ID | None:
        return strawberry.ID(str(root.prescriber_id))

    @strawberry.field
    @staticmethod
    def drug_id(root: strawberry.Parent[m.Dispense]) -> strawberry.ID:
        return strawberry.ID(str(root.drug_id))

    @strawberry.field(description="Per unit, from the drug master when dispensed.")
    @staticmethod
    def unit_price(root: strawberry.Parent[m.Dispense]) -> Money | None:
        return Money(amount=Long(root.unit_price), currency=root.currency)

    @strawberry.field(description="What the patient's account was charged: price x quantity.")
    @staticmethod
    def amount(root: strawberry.Parent[m.Dispense]) -> Money | None:
        return Money(amount=Long(root.amount), currency=root.currency)

    @strawberry.field
    @staticmethod
    def charged_at(root: strawberry.Parent[m.Dispense]) -> datetime | None:
        return root.charged_at

    @strawberry.field
    @staticmethod
    async def drug(root: strawberry.Parent[m.Dispense], info: Info) -> Drug | None:
        return await info.context.loaders.drug_by_id.load(root.drug_id)

    @strawberry.field
    @staticmethod
    async def prescription(
        root: strawberry.Parent[m.Dispense], info: Info
    ) -> Annotated[Prescription, strawberry.lazy("schema.clinical")] | None:
        return await info.context.loaders.prescription_by_id.load(root.prescription_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Dispense], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)


@strawberry.type(description="One change of one batch's quantity (the ledger; never changes).")
class StockMovement:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: MovementKind
    location: StockLocation
    delta: int = strawberry.field(description="Signed: what the batch's quantity moved by.")
    reason: str | None
    by: str
    at: datetime
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The operation; a compensation names the one it reverses.")
    @staticmethod
    def op(root: strawberry.Parent[m.StockMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.op))

    @strawberry.field
    @staticmethod
    def batch_id(root: strawberry.Parent[m.StockMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.batch_id))

    @strawberry.field
    @staticmethod
    def drug_id(root: strawberry.Parent[m.StockMovement]) -> strawberry.ID:
        return strawberry.ID(str(root.drug_id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.StockMovement]) -> strawberry.ID | None:
        return ref_id(root.ward_id)

    @strawberry.field
    @staticmethod
    def dispense_id(root: strawberry.Parent[m.StockMovement]) -> strawberry.ID | None:
        return ref_id(root.dispense_id)


@strawberry.type(description="What one location holds of a drug (no costs).")
class StockLevel:
    location: StockLocation
    quantity: int = strawberry.field(description="Usable units: in batches not expired.")
    expired_quantity: int = strawberry.field(description="Units in expired batches.")
    batches: int = strawberry.field(description="Usable batches.")
    earliest_expiry: date | None

    @strawberry.field
    @staticmethod
    def drug_id(root: strawberry.Parent[Level]) -> strawberry.ID:
        return strawberry.ID(str(root.drug_id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[Level]) -> strawberry.ID | None:
        return ref_id(root.ward_id)


@strawberry.type(description="What a recovery run finished.")
class PharmacyRecovery:
    failed: int = strawberry.field(description="Abandoned pending dispenses, compensated.")
    expired: int = strawberry.field(description="Unconfirmed holds that lapsed, compensated.")
    settled: int = strawberry.field(description="Completed dispenses finished.")
    operations: int = strawberry.field(description="Operations left on batches, finished.")
    returns: int = strawberry.field(description="Returns brought into their batches.")


@strawberry.input(description="A delivery into the pharmacy store or a ward's stock.")
class ReceiveStockInput:
    drug_id: strawberry.ID
    batch_number: str
    expiry: date
    quantity: int
    unit_cost: int = strawberry.field(description="Per unit of issue, in minor units.")
    location: StockLocation = StockLocation.PHARMACY
    ward_id: strawberry.ID | None = None
