"""Doctor orders of admissions over GraphQL: place, hold, resume, complete, cancel."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden
from models.admissions import Admission
from models.audit import AuditAction
from resolvers.common import perform
from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.enforce import acts
from schema.orders import DoctorOrder, DoctorOrderInput, OrderKind, OrderStatus
from services import orders


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _ordering_doctor(info: Info, data: dict[str, Any]) -> str | None:
    """Doctors order in their own name; an admin may enter an order for a named doctor (the
    returned note goes to the audit trail)."""
    principal = info.context.access.principal
    given = data.get("ordered_by_id")
    doctor = principal.staff_id is not None and principal.has(Role.DOCTOR)
    if doctor and given in (None, principal.staff_id):
        data["ordered_by_id"] = principal.staff_id
        return None
    if not principal.has(Role.ADMIN):
        info.context.access.audit.denied(
            K.DOCTOR_ORDER, None, None, AuditAction.CREATE, "orderedById names another doctor"
        )
        raise Forbidden(
            "Doctors order in their own name: leave out orderedById", field="orderedById"
        )
    if given is None:
        raise BadUserInput(
            "orderedById: name the doctor you enter this for", {"orderedById": "required"}
        )
    return f"entered by an administrator for orderedById {given}"


async def patient_of_admission(info: Info, admission_id: ObjectId) -> Any:
    """The patient an order is about, through its admission (which must exist)."""
    admission = await Admission.get(admission_id)
    if admission is None:
        raise BadUserInput("admissionId: no such admission", {"admissionId": "no such admission"})
    return await info.context.loaders.patient_by_id.load(admission.patient_id)


@strawberry.type
class OrdersQuery:
    @strawberry.field
    async def doctor_order(self, info: Info, id: strawberry.ID) -> DoctorOrder | None:
        return await info.context.loaders.doctor_order_by_id.load(oid(id))

    @strawberry.field(description="Doctor orders, oldest first, of an admission, patient or ward.")
    async def doctor_orders(
        self,
        info: Info,
        admission_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        ward_id: strawberry.ID | None = None,
        status: list[OrderStatus] | None = None,
        kind: list[OrderKind] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DoctorOrder]:
        query = orders.order_filter(
            admission_id=oid(admission_id, "admissionId") if admission_id else None,
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            ward_id=oid(ward_id, "wardId") if ward_id else None,
            statuses=status or (),
            kinds=kind or (),
        )
        page = await orders.list_orders(
            query, info.context.page(first, after), await info.context.access.scope(K.DOCTOR_ORDER)
        )
        return connection(DoctorOrder, page)


async def _change(info: Info, id: strawberry.ID, action: str, run: Any) -> DoctorOrder:
    row = await orders.get_order(oid(id))
    done = await perform(info, K.DOCTOR_ORDER, action, partial(run, row.id), ["status"], row=row)
    return view(DoctorOrder, done)


@strawberry.type
class OrdersMutation:
    @strawberry.mutation(
        description="Order for an active admission: medication, laboratory, imaging, diet, "
        "activity or nursing, with a schedule; its nursing tasks are generated at once.",
        metadata=acts(K.DOCTOR_ORDER, Action.CREATE),
    )
    async def create_doctor_order(self, info: Info, input: DoctorOrderInput) -> DoctorOrder:
        data = create_data(input)
        note = _ordering_doctor(info, data)
        patient = await patient_of_admission(info, data["admission_id"])
        create = partial(orders.create_order, data, _subject(info))
        order = await perform(
            info, K.DOCTOR_ORDER, Action.CREATE, create, data, note=note, patient=patient
        )
        return view(DoctorOrder, order)

    @strawberry.mutation(
        description="Pause an active order: its tasks still ahead are cancelled.",
        metadata=acts(K.DOCTOR_ORDER, "hold"),
    )
    async def hold_doctor_order(
        self, info: Info, id: strawberry.ID, reason: str | None = None, version: int | None = None
    ) -> DoctorOrder:
        run = partial(_bind, orders.hold_order, reason=reason, by=_subject(info), version=version)
        return await _change(info, id, "hold", run)

    @strawberry.mutation(
        description="Resume a held order: its tasks are generated again from now.",
        metadata=acts(K.DOCTOR_ORDER, "resume"),
    )
    async def resume_doctor_order(
        self, info: Info, id: strawberry.ID, version: int | None = None
    ) -> DoctorOrder:
        run = partial(_bind, orders.resume_order, by=_subject(info), version=version)
        return await _change(info, id, "resume", run)

    @strawberry.mutation(
        description="The order is fulfilled: its tasks still due are cancelled.",
        metadata=acts(K.DOCTOR_ORDER, Action.COMPLETE),
    )
    async def complete_doctor_order(
        self, info: Info, id: strawberry.ID, version: int | None = None
    ) -> DoctorOrder:
        run = partial(_bind, orders.complete_order, by=_subject(info), version=version)
        return await _change(info, id, Action.COMPLETE, run)

    @strawberry.mutation(
        description="Withdraw the order (with a reason): its tasks still due are cancelled, "
        "and its laboratory or imaging order while it can be.",
        metadata=acts(K.DOCTOR_ORDER, Action.CANCEL),
    )
    async def cancel_doctor_order(
        self, info: Info, id: strawberry.ID, reason: str, version: int | None = None
    ) -> DoctorOrder:
        run = partial(_bind, orders.cancel_order, reason=reason, by=_subject(info), version=version)
        return await _change(info, id, Action.CANCEL, run)


async def _bind(step: Any, id: ObjectId, **kwargs: Any) -> Any:
    return await step(id, **kwargs)
