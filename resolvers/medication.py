"""The medication administration record over GraphQL: doses, recording them, a ward's
consumption, and the pharmacy issuing stock to a ward."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import strawberry
from bson import ObjectId

from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden, Unauthenticated
from models.pharmacy import StockBatch as StockBatchDoc
from models.staff import Nurse
from models.wards import Ward
from resolvers.common import perform
from schema.common import Connection, IdempotencyKey, connection, oid, view
from schema.context import Info
from schema.enforce import acts
from schema.medication import (
    MedicationAdministration,
    MedicationAdministrationFilter,
    WardMedicationConsumption,
)
from schema.pharmacy import StockBatch
from services import common, medication, ward_stock
from services.idempotency import idempotent


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


async def _recorder(info: Info, given: ObjectId | None) -> tuple[ObjectId, str | None]:
    """Nurses record in their own name; an admin records for a named nurse (audited)."""
    principal = info.context.access.principal
    nurse = principal.staff_id is not None and principal.has(Role.NURSE)
    if nurse and given in (None, principal.staff_id):
        assert principal.staff_id is not None
        return principal.staff_id, None
    if not principal.has(Role.ADMIN):
        raise Forbidden("Nurses record in their own name: leave out recordedById")
    if given is None:
        raise BadUserInput("recordedById: name the nurse", {"recordedById": "required"})
    if await Nurse.find({"_id": given}).count() == 0:
        raise BadUserInput("recordedById: no such nurse", {"recordedById": "no such nurse"})
    return given, f"recorded by an administrator for recordedById {given}"


@strawberry.type
class MedicationQuery:
    @strawberry.field
    async def medication_administration(
        self, info: Info, id: strawberry.ID
    ) -> MedicationAdministration | None:
        return await info.context.loaders.medication_administration_by_id.load(oid(id))

    @strawberry.field(description="Scheduled and recorded doses by due time, filtered.")
    async def medication_administrations(
        self,
        info: Info,
        filter: MedicationAdministrationFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[MedicationAdministration]:
        f = filter or MedicationAdministrationFilter()
        query = medication.dose_filter(
            admission_id=oid(f.admission_id, "filter.admissionId") if f.admission_id else None,
            ward_id=oid(f.ward_id, "filter.wardId") if f.ward_id else None,
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            order_id=oid(f.order_id, "filter.orderId") if f.order_id else None,
            statuses=f.status or (),
            due_from=f.due_from,
            due_to=f.due_to,
        )
        scope = await info.context.access.scope(K.MEDICATION_ADMINISTRATION)
        page = await medication.list_doses(query, info.context.page(first, after), scope)
        return connection(MedicationAdministration, page)

    @strawberry.field(
        description="Per drug: doses given on the ward given in [from, to), the units they "
        "took, and the ward's usable stock now. For the pharmacy that restocks the ward."
    )
    async def ward_medication_consumption(
        self,
        info: Info,
        ward_id: strawberry.ID,
        since: Annotated[datetime, strawberry.argument(name="from")],
        until: Annotated[datetime, strawberry.argument(name="to")],
    ) -> WardMedicationConsumption:
        ward = oid(ward_id, "wardId")
        await common.ensure_exists(Ward, ward, "wardId", "ward")
        return view(
            WardMedicationConsumption, await medication.ward_consumption(ward, since, until)
        )


@strawberry.type
class MedicationMutation:
    @strawberry.mutation(
        description="Record a scheduled dose given at givenAt (default now; not in the future, "
        "not before the admission), taking its units from the ward's stock, soonest expiry "
        "first. Too little usable ward stock: CONFLICT with reason NO_WARD_STOCK, nothing "
        "recorded. CONFLICT when it was recorded or cancelled meanwhile.",
        metadata=acts(K.MEDICATION_ADMINISTRATION, "give"),
    )
    async def give_medication(
        self,
        info: Info,
        id: strawberry.ID,
        given_at: datetime | None = None,
        note: str | None = None,
        recorded_by_id: strawberry.ID | None = None,
    ) -> MedicationAdministration:
        row = await medication.get_dose(oid(id))
        kind = K.MEDICATION_ADMINISTRATION
        await info.context.access.require(kind, "give", row=row)
        nurse, audit = await _recorder(
            info, oid(recorded_by_id, "recordedById") if recorded_by_id else None
        )
        run = partial(medication.give, row.id, nurse, given_at, note, _subject(info))  # type: ignore[arg-type]
        done = await perform(
            info, kind, "give", run, ["status", "given_at", "note", "lines"], note=audit, row=row
        )
        return view(MedicationAdministration, done)

    @strawberry.mutation(
        description="Record a scheduled dose held (not given on purpose), with the reason. No "
        "stock moves.",
        metadata=acts(K.MEDICATION_ADMINISTRATION, "hold"),
    )
    async def hold_medication(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str,
        recorded_by_id: strawberry.ID | None = None,
    ) -> MedicationAdministration:
        return await _not_given(info, id, "hold", reason, recorded_by_id)

    @strawberry.mutation(
        description="Record that the patient refused a scheduled dose, with the reason. No "
        "stock moves.",
        metadata=acts(K.MEDICATION_ADMINISTRATION, "refuse"),
    )
    async def refuse_medication(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str,
        recorded_by_id: strawberry.ID | None = None,
    ) -> MedicationAdministration:
        return await _not_given(info, id, "refuse", reason, recorded_by_id)

    @strawberry.mutation(
        description="Issue units of a pharmacy batch to a ward's stock (the ward's batch of the "
        "same number). Too little in the batch: CONFLICT with reason INSUFFICIENT_STOCK, "
        "nothing moved. Returns the ward's batch.",
        metadata=acts(K.STOCK_BATCH, "issueToWard"),
    )
    async def issue_stock_to_ward(
        self,
        info: Info,
        batch_id: strawberry.ID,
        ward_id: strawberry.ID,
        quantity: int,
        idempotency_key: IdempotencyKey = None,
    ) -> StockBatch:
        batch, ward = oid(batch_id, "batchId"), oid(ward_id, "wardId")
        principal = info.context.principal
        if principal is None:
            raise Unauthenticated("Sign in first")
        by = principal.subject
        fields = ["quantity", "wardId"]

        async def run() -> StockBatchDoc:
            await info.context.access.require(K.STOCK_BATCH, "issueToWard")
            done = await ward_stock.issue_to_ward(batch, ward, quantity, by)
            info.context.access.wrote(K.STOCK_BATCH, done, "issueToWard", fields)
            return done

        async def replay(first: StockBatchDoc, note: str) -> StockBatchDoc:
            await info.context.access.require(K.STOCK_BATCH, "issueToWard")
            info.context.access.wrote(K.STOCK_BATCH, first, "issueToWard", fields, note=note)
            return first

        payload = {"batchId": str(batch), "wardId": str(ward), "quantity": quantity}
        done = await idempotent(
            by, "issueStockToWard", idempotency_key, payload, StockBatchDoc, run, replay
        )
        return view(StockBatch, done)


async def _not_given(
    info: Info, id: strawberry.ID, action: str, reason: str, recorded_by_id: strawberry.ID | None
) -> MedicationAdministration:
    row = await medication.get_dose(oid(id))
    kind = K.MEDICATION_ADMINISTRATION
    await info.context.access.require(kind, action, row=row)
    nurse, audit = await _recorder(
        info, oid(recorded_by_id, "recordedById") if recorded_by_id else None
    )
    record = medication.hold if action == "hold" else medication.refuse
    run = partial(record, row.id, nurse, reason, _subject(info))  # type: ignore[arg-type]
    done = await perform(info, kind, action, run, ["status", "reason"], note=audit, row=row)
    return view(MedicationAdministration, done)
