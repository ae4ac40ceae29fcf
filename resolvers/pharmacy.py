"""Pharmacy stock and dispensing over GraphQL. Pharmacists act by their account (the token's
subject): they have no staff record, and "confirmed by another person" is about accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from errors import BadUserInput, Forbidden, Unauthenticated
from models.audit import AuditAction
from models.pharmacy import Dispense as DispenseDoc
from models.pharmacy import StockBatch as StockBatchDoc
from schema.common import Connection, IdempotencyKey, connection, create_data, oid, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.pharmacy import (
    Dispense,
    DispenseStatus,
    MovementKind,
    PharmacyRecovery,
    ReceiveStockInput,
    StockBatch,
    StockLevel,
    StockLocation,
    StockMovement,
    WriteOffReason,
)
from services import clinical, pharmacy
from services.idempotency import idempotent
from services.pagination import Query


def _by(info: Info) -> str:
    principal = info.context.principal
    if principal is None:
        raise Unauthenticated("Sign in first")
    return principal.subject


def _opt(value: strawberry.ID | None, field: str) -> ObjectId | None:
    return oid(value, field) if value else None


async def _patient_of(info: Info, patient_id: ObjectId) -> Any:
    patient = await info.context.loaders.patient_by_id.load(patient_id)
    if patient is None:
        raise BadUserInput("prescriptionId: its patient is gone", {"prescriptionId": "no patient"})
    return patient


@strawberry.type
class PharmacyQuery:
    @strawberry.field
    async def stock_batch(self, info: Info, id: strawberry.ID) -> StockBatch | None:
        return await info.context.loaders.stock_batch_by_id.load(oid(id))

    @strawberry.field(
        description="Batches, in the order received. Empty batches only with includeEmpty; "
        "expiringBefore: expiring on or before that day (expired ones included)."
    )
    async def stock_batches(
        self,
        info: Info,
        drug_id: strawberry.ID | None = None,
        location: StockLocation | None = None,
        ward_id: strawberry.ID | None = None,
        expiring_before: datetime | None = None,
        include_empty: bool = False,
        include_expired: bool = True,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[StockBatch]:
        query = pharmacy.batch_filter(
            drug_id=_opt(drug_id, "drugId"),
            location=location,
            ward_id=_opt(ward_id, "wardId"),
            expiring_before=expiring_before,
            include_empty=include_empty,
            include_expired=include_expired,
        )
        page = await pharmacy.list_batches(
            query, info.context.page(first, after), await info.context.access.scope(K.STOCK_BATCH)
        )
        return connection(StockBatch, page)

    @strawberry.field(
        description="A drug's stock per location: usable units (unexpired batches) and expired.",
        metadata=reads(K.STOCK_BATCH),
    )
    async def stock_level(self, info: Info, drug_id: strawberry.ID) -> list[StockLevel]:
        levels = await pharmacy.stock_level(oid(drug_id, "drugId"))
        return [view(StockLevel, level) for level in levels]

    @strawberry.field
    async def dispense(self, info: Info, id: strawberry.ID) -> Dispense | None:
        return await info.context.loaders.dispense_by_id.load(oid(id))

    @strawberry.field(description="Dispenses, oldest first, filtered.")
    async def dispenses(
        self,
        info: Info,
        prescription_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        drug_id: strawberry.ID | None = None,
        status: list[DispenseStatus] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Dispense]:
        query = pharmacy.dispense_filter(
            prescription_id=_opt(prescription_id, "prescriptionId"),
            patient_id=_opt(patient_id, "patientId"),
            drug_id=_opt(drug_id, "drugId"),
            statuses=status or (),
        )
        page = await pharmacy.list_dispenses(
            query, info.context.page(first, after), await info.context.access.scope(K.DISPENSE)
        )
        return connection(Dispense, page)

    @strawberry.field(description="The stock ledger, oldest first: every quantity change.")
    async def stock_movements(
        self,
        info: Info,
        drug_id: strawberry.ID | None = None,
        batch_id: strawberry.ID | None = None,
        dispense_id: strawberry.ID | None = None,
        kind: MovementKind | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[StockMovement]:
        query: Query = {}
        for field, value in (
            ("drug_id", _opt(drug_id, "drugId")),
            ("batch_id", _opt(batch_id, "batchId")),
            ("dispense_id", _opt(dispense_id, "dispenseId")),
            ("kind", kind and kind.value),
        ):
            if value is not None:
                query[field] = value
        page = await pharmacy.list_movements(
            query,
            info.context.page(first, after),
            await info.context.access.scope(K.STOCK_MOVEMENT),
        )
        return connection(StockMovement, page)


@strawberry.type
class PharmacyMutation:
    @strawberry.mutation(
        description="Receive a delivery: a new batch, or more of the same batch there.",
        metadata=acts(K.STOCK_BATCH, "receive"),
    )
    async def receive_stock(
        self, info: Info, input: ReceiveStockInput, idempotency_key: IdempotencyKey = None
    ) -> StockBatch:
        data = create_data(input)
        by = _by(info)

        async def run() -> StockBatchDoc:
            await info.context.access.require(K.STOCK_BATCH, "receive")
            batch = await pharmacy.receive(data, by)
            info.context.access.wrote(K.STOCK_BATCH, batch, "receive", ["quantity"])
            return batch

        async def replay(first: StockBatchDoc, note: str) -> StockBatchDoc:
            await info.context.access.require(K.STOCK_BATCH, "receive")
            info.context.access.wrote(K.STOCK_BATCH, first, "receive", ["quantity"], note=note)
            return first

        batch = await idempotent(
            by, "receiveStock", idempotency_key, {"input": data}, StockBatchDoc, run, replay
        )
        return view(StockBatch, batch)

    @strawberry.mutation(
        description="Take units of a batch out of use (all of it when quantity is left out).",
        metadata=acts(K.STOCK_BATCH, "writeOff"),
    )
    async def write_off_stock(
        self,
        info: Info,
        batch_id: strawberry.ID,
        reason: WriteOffReason,
        quantity: int | None = None,
        note: str | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> StockBatch:
        id = oid(batch_id, "batchId")
        by = _by(info)
        fields = ["quantity", "reason"]

        async def run() -> StockBatchDoc:
            row = await pharmacy.get_batch(id)
            await info.context.access.require(K.STOCK_BATCH, "writeOff", row=row)
            batch = await pharmacy.write_off(id, quantity, reason, note, by)
            info.context.access.wrote(K.STOCK_BATCH, batch, "writeOff", fields)
            return batch

        async def replay(first: StockBatchDoc, replayed: str) -> StockBatchDoc:
            await info.context.access.require(K.STOCK_BATCH, "writeOff", row=first)
            info.context.access.wrote(K.STOCK_BATCH, first, "writeOff", fields, note=replayed)
            return first

        payload = {"batchId": str(id), "reason": reason, "quantity": quantity, "note": note}
        batch = await idempotent(
            by, "writeOffStock", idempotency_key, payload, StockBatchDoc, run, replay
        )
        return view(StockBatch, batch)

    @strawberry.mutation(
        description="Dispense a prescription from the pharmacy store, soonest expiry first "
        "(expired batches never). quantity: units now (default: what the prescription still "
        "needs, when its dose and frequency say). Too little stock: CONFLICT with reason "
        "INSUFFICIENT_STOCK, unless allowPartial (then `outstanding` says what is owed). A "
        "controlled drug's dispense holds the stock until another pharmacist confirms it.",
        metadata=acts(K.DISPENSE, Action.CREATE),
    )
    async def dispense_prescription(
        self,
        info: Info,
        prescription_id: strawberry.ID,
        quantity: int | None = None,
        allow_partial: bool = False,
        idempotency_key: IdempotencyKey = None,
    ) -> Dispense:
        id = oid(prescription_id, "prescriptionId")
        by = _by(info)
        fields = ["prescriptionId", "quantity", "status"]

        async def allowed() -> None:
            prescription = await clinical.get_prescription(id)
            patient = await _patient_of(info, prescription.patient_id)
            await info.context.access.require(K.DISPENSE, Action.CREATE, patient=patient)

        async def run() -> DispenseDoc:
            await allowed()
            done = await pharmacy.dispense(
                id, quantity=quantity, allow_partial=allow_partial, by=by
            )
            info.context.access.wrote(K.DISPENSE, done, Action.CREATE, fields)
            return done

        async def replay(first: DispenseDoc, note: str) -> DispenseDoc:
            await allowed()
            info.context.access.wrote(K.DISPENSE, first, Action.CREATE, fields, note=note)
            return first

        payload = {"prescriptionId": str(id), "quantity": quantity, "allowPartial": allow_partial}
        done = await idempotent(
            by, "dispensePrescription", idempotency_key, payload, DispenseDoc, run, replay
        )
        return view(Dispense, done)

    @strawberry.mutation(
        description="Confirm a controlled dispense as the second pharmacist (FORBIDDEN for its "
        "own dispenser); completes it, moves the prescription on and charges it.",
        metadata=acts(K.DISPENSE, "confirm"),
    )
    async def confirm_dispense(self, info: Info, id: strawberry.ID) -> Dispense:
        row = await pharmacy.get_dispense(oid(id))
        await info.context.access.require(K.DISPENSE, "confirm", row=row)
        try:
            done = await pharmacy.confirm(oid(id), _by(info))
        except Forbidden as refused:  # the two-person rule: the refusal is audited too
            info.context.access.audit.denied(
                K.DISPENSE, row.id, row.patient_id, AuditAction.UPDATE, refused.message
            )
            raise
        info.context.access.wrote(K.DISPENSE, done, "confirm", ["status", "confirmedBy"])
        return view(Dispense, done)

    @strawberry.mutation(
        description="Units of a dispense come back into their batch (or the named one), with a "
        "reason; never more than were dispensed.",
        metadata=acts(K.DISPENSE, "return"),
    )
    async def return_stock(
        self,
        info: Info,
        dispense_id: strawberry.ID,
        quantity: int,
        reason: str,
        batch_id: strawberry.ID | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Dispense:
        id = oid(dispense_id, "dispenseId")
        batch = _opt(batch_id, "batchId")
        by = _by(info)
        fields = ["returns", "status"]

        async def run() -> DispenseDoc:
            row = await pharmacy.get_dispense(id)
            await info.context.access.require(K.DISPENSE, "return", row=row)
            done = await pharmacy.return_stock(id, quantity, reason, by, batch)
            info.context.access.wrote(K.DISPENSE, done, "return", fields)
            return done

        async def replay(first: DispenseDoc, note: str) -> DispenseDoc:
            await info.context.access.require(K.DISPENSE, "return", row=first)
            info.context.access.wrote(K.DISPENSE, first, "return", fields, note=note)
            return first

        payload = {"dispenseId": str(id), "quantity": quantity, "reason": reason, "batch": batch}
        done = await idempotent(
            by, "returnStock", idempotency_key, payload, DispenseDoc, run, replay
        )
        return view(Dispense, done)

    @strawberry.mutation(
        description="The patient took the drug: the prescription becomes PICKED_UP (and its "
        "prescriber is notified).",
        metadata=acts(K.DISPENSE, "pickUp"),
    )
    async def record_pick_up(self, info: Info, dispense_id: strawberry.ID) -> Dispense:
        id = oid(dispense_id, "dispenseId")
        row = await pharmacy.get_dispense(id)
        await info.context.access.require(K.DISPENSE, "pickUp", row=row)
        done = await pharmacy.record_pick_up(id)
        info.context.access.wrote(K.DISPENSE, done, "pickUp", ["pickedUpAt"])
        return view(Dispense, done)

    @strawberry.mutation(
        description="Finish what crashed or lapsed: abandoned dispenses and unconfirmed holds "
        "give their stock back; interrupted ones are settled.",
        metadata=acts(K.DISPENSE, "recover"),
    )
    async def recover_pharmacy(self, info: Info) -> PharmacyRecovery:
        await info.context.access.require(K.DISPENSE, "recover")
        done = await pharmacy.recover()
        return PharmacyRecovery(
            failed=done.failed,
            expired=done.expired,
            settled=done.settled,
            operations=done.operations,
            returns=done.returns,
        )
