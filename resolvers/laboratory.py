"""Laboratory: the catalogue, orders and their workflow, and the live feed of results."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from errors import BadUserInput, Forbidden
from events.types import DomainEvent
from models.laboratory import COLLECT, ENTER_RESULTS, RECEIVE, REJECT, VERIFY
from models.laboratory import LabResult as LabResultDoc
from resolvers.common import perform
from resolvers.subscriptions import _Filter, _ref, _refuse_unfollowable, _visible
from schema.common import Connection, connection, create_data, oid, to_data, update_data, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.laboratory import (
    CreateLabOrderInput,
    CreateLabTestInput,
    LabOrder,
    LabOrderStatus,
    LabPriority,
    LabResult,
    LabResultEvent,
    LabResultInput,
    LabSample,
    LabTest,
    SpecimenType,
    UpdateLabTestInput,
)
from services import laboratory

RESULTS = str(LabResultDoc.Settings.name)


def _by(info: Info) -> str:
    """Who acts: the caller's account (lab technicians have no staff record)."""
    return info.context.access.principal.subject


@strawberry.type
class LaboratoryQuery:
    @strawberry.field(description="The test catalogue, filtered.")
    async def lab_tests(
        self,
        info: Info,
        active: bool | None = None,
        specimen_type: SpecimenType | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[LabTest]:
        page = await laboratory.list_lab_tests(
            active,
            specimen_type,
            info.context.page(first, after),
            await info.context.access.scope(K.LAB_TEST),
        )
        return connection(LabTest, page)

    @strawberry.field
    async def lab_test(self, info: Info, id: strawberry.ID) -> LabTest | None:
        return await info.context.loaders.lab_test_by_id.load(oid(id))

    @strawberry.field
    async def lab_order(self, info: Info, id: strawberry.ID) -> LabOrder | None:
        return await info.context.loaders.lab_order_by_id.load(oid(id))

    @strawberry.field(description="Lab orders, oldest first, filtered; `orderedTo` is exclusive.")
    async def lab_orders(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        ordered_by: Annotated[
            strawberry.ID | None, strawberry.argument(description="The ordering doctor.")
        ] = None,
        visit_id: strawberry.ID | None = None,
        status: LabOrderStatus | None = None,
        priority: LabPriority | None = None,
        ordered_from: datetime | None = None,
        ordered_to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[LabOrder]:
        filters = {
            "patient_id": oid(patient_id, "patientId") if patient_id else None,
            "ordering_doctor_id": oid(ordered_by, "orderedBy") if ordered_by else None,
            "visit_id": oid(visit_id, "visitId") if visit_id else None,
            "status": status,
            "priority": priority,
            "ordered_from": ordered_from,
            "ordered_to": ordered_to,
        }
        page = await laboratory.list_lab_orders(
            filters, info.context.page(first, after), await info.context.access.scope(K.LAB_ORDER)
        )
        return connection(LabOrder, page)

    @strawberry.field
    async def lab_sample(self, info: Info, id: strawberry.ID) -> LabSample | None:
        return await info.context.loaders.lab_sample_by_id.load(oid(id))

    @strawberry.field
    async def lab_result(self, info: Info, id: strawberry.ID) -> LabResult | None:
        return await info.context.loaders.lab_result_by_id.load(oid(id))


@strawberry.type
class LaboratoryMutation:
    @strawberry.mutation(
        description="Add a test to the catalogue.", metadata=acts(K.LAB_TEST, Action.CREATE)
    )
    async def create_lab_test(self, info: Info, input: CreateLabTestInput) -> LabTest:
        data = create_data(input)
        run = partial(laboratory.create_lab_test, data)
        return view(LabTest, await perform(info, K.LAB_TEST, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Change a catalogue test; orders keep what they were placed with.",
        metadata=acts(K.LAB_TEST, Action.UPDATE),
    )
    async def update_lab_test(
        self, info: Info, id: strawberry.ID, input: UpdateLabTestInput
    ) -> LabTest:
        changes = update_data(input)
        test = await laboratory.get_lab_test(oid(id))
        run = partial(laboratory.update_lab_test, oid(id), changes)
        done = await perform(info, K.LAB_TEST, Action.UPDATE, run, changes, row=test)
        return view(LabTest, done)

    @strawberry.mutation(
        description="Order tests for a patient; the ordering doctor is the caller.",
        metadata=acts(K.LAB_ORDER, Action.CREATE),
    )
    async def create_lab_order(self, info: Info, input: CreateLabOrderInput) -> LabOrder:
        data = create_data(input)
        principal = info.context.access.principal
        if principal.staff_id is None:
            raise Forbidden("Lab orders are placed by a doctor in their own name")
        data["ordering_doctor_id"] = principal.staff_id
        patient = await info.context.loaders.patient_by_id.load(data["patient_id"])
        if patient is None:
            raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
        run = partial(laboratory.create_lab_order, data, _by(info))
        order = await perform(info, K.LAB_ORDER, Action.CREATE, run, data, patient=patient)
        return view(LabOrder, order)

    @strawberry.mutation(
        description="Cancel an order before it has results.",
        metadata=acts(K.LAB_ORDER, Action.CANCEL),
    )
    async def cancel_lab_order(self, info: Info, id: strawberry.ID, reason: str) -> LabOrder:
        order = await laboratory.get_lab_order(oid(id))
        run = partial(laboratory.cancel_lab_order, oid(id), reason, _by(info))
        done = await perform(info, K.LAB_ORDER, Action.CANCEL, run, ["status"], row=order)
        return view(LabOrder, done)

    @strawberry.mutation(
        description="Collect the samples the order needs (again, after a rejection); each gets "
        "an accession number.",
        metadata=acts(K.LAB_ORDER, COLLECT),
    )
    async def collect_lab_samples(
        self, info: Info, order_id: strawberry.ID, collected_at: datetime | None = None
    ) -> LabOrder:
        order = await laboratory.get_lab_order(oid(order_id, "orderId"))
        run = partial(laboratory.collect_samples, oid(order_id, "orderId"), _by(info), collected_at)
        done = await perform(info, K.LAB_ORDER, COLLECT, run, ["samples"], row=order)
        return view(LabOrder, done)

    @strawberry.mutation(
        description="The lab receives a sample.", metadata=acts(K.LAB_SAMPLE, RECEIVE)
    )
    async def receive_lab_sample(self, info: Info, id: strawberry.ID) -> LabSample:
        sample = await laboratory.get_lab_sample(oid(id))
        run = partial(laboratory.receive_sample, oid(id), _by(info))
        done = await perform(info, K.LAB_SAMPLE, RECEIVE, run, ["status"], row=sample)
        return view(LabSample, done)

    @strawberry.mutation(
        description="Reject a sample with a reason; the order waits for a recollection.",
        metadata=acts(K.LAB_SAMPLE, REJECT),
    )
    async def reject_lab_sample(self, info: Info, id: strawberry.ID, reason: str) -> LabSample:
        sample = await laboratory.get_lab_sample(oid(id))
        run = partial(laboratory.reject_sample, oid(id), reason, _by(info))
        done = await perform(info, K.LAB_SAMPLE, REJECT, run, ["status"], row=sample)
        return view(LabSample, done)

    @strawberry.mutation(
        description="Enter (or correct) values; each becomes its analyte's next version.",
        metadata=acts(K.LAB_ORDER, ENTER_RESULTS),
    )
    async def enter_lab_results(
        self, info: Info, order_id: strawberry.ID, results: list[LabResultInput]
    ) -> list[LabResult]:
        items: list[dict[str, Any]] = to_data(results, "results")
        order = await laboratory.get_lab_order(oid(order_id, "orderId"))
        access = info.context.access
        await access.require(K.LAB_ORDER, ENTER_RESULTS, row=order)
        entered = await laboratory.enter_results(oid(order_id, "orderId"), items, _by(info))
        for result in entered:
            access.wrote(K.LAB_RESULT, result, ENTER_RESULTS, ["value", "flag"])
        return [view(LabResult, r) for r in entered]

    @strawberry.mutation(
        description="Verify the order's results (a second person: not who entered them); the "
        "order's charge then reaches the patient's account, once.",
        metadata=acts(K.LAB_ORDER, VERIFY),
    )
    async def verify_lab_order(self, info: Info, id: strawberry.ID) -> LabOrder:
        order = await laboratory.get_lab_order(oid(id))
        run = partial(laboratory.verify_order, oid(id), _by(info))
        done = await perform(info, K.LAB_ORDER, VERIFY, run, ["status", "report"], row=order)
        return view(LabOrder, done)


@strawberry.type
class LaboratorySubscription:
    @strawberry.subscription(
        description="Lab results entered, corrected or verified that the caller may see, "
        "optionally of one order, patient or ordering doctor, or critical ones only.",
        metadata=reads(K.LAB_RESULT),
    )
    async def lab_result_entered(
        self,
        info: Info,
        order_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        doctor_id: strawberry.ID | None = None,
        critical_only: bool = False,
    ) -> AsyncGenerator[LabResultEvent, None]:
        filters = {
            name: value
            for name, value in (
                ("order_id", _ref(order_id, "orderId")),
                ("patient_id", _ref(patient_id, "patientId")),
                ("ordering_doctor_id", _ref(doctor_id, "doctorId")),
            )
            if value is not None
        }
        check = _Filter(info)
        if "patient_id" in filters:
            await check.patient(filters["patient_id"])
        if "ordering_doctor_id" in filters:
            await check.doctor(filters["ordering_doctor_id"])
        if "order_id" in filters:
            row = await check.load("lab_order_by_id", "LabOrder", filters["order_id"])
            if row is not None:
                check.narrow(await check.access.relations(K.LAB_ORDER, row))
        await _refuse_unfollowable(K.LAB_RESULT, check, filters.get("patient_id"))

        def wanted(event: DomainEvent) -> bool:
            return all(event.refs.get(name) == value for name, value in filters.items())

        def keep(event: DomainEvent, row: Any) -> bool:
            return not critical_only or bool(row.flag.critical)

        events = _visible(
            info,
            "labResultEntered",
            K.LAB_RESULT,
            RESULTS,
            "lab_result_by_id",
            "lab_result",
            wanted,
            keep,
        )
        async with contextlib.aclosing(events):
            async for event, row, context in events:
                yield LabResultEvent(
                    change=event.change,
                    result_id=strawberry.ID(event.id),
                    at=event.happened_at,
                    result=view(LabResult, row),
                    context=context,
                )
