"""Doctor orders: placing them, and moving them ``active <-> held -> completed | cancelled``.

Each status change is one compare-and-set on the order's status and version, with a history
entry; its effect on the nursing tasks follows (``services.nursing``): holding cancels the due
tasks still ahead, resuming reopens those and generates on from the resume, completing or
cancelling cancels every task still due. A crash between the two leaves tasks the next
generation or stop corrects (a stopped order's tasks are cancelled whenever generation meets
them, and the stop itself can be repeated on the next change).

A laboratory or imaging order also places its LabOrder or ImagingOrder, with the admission as
its source, before the doctor order is inserted; if that insert fails the placed order is
cancelled again (compensation). Where the laboratory does not yet take admissions as a source,
the tests are recorded on the doctor order only (``labOrderId`` stays null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument

import db
from errors import BadUserInput, Conflict
from models.base import utcnow
from models.laboratory import LabTest
from models.orders import (
    INSTRUCTION_KINDS,
    ORDER_TRANSITIONS,
    DoctorOrder,
    OrderKind,
    OrderStatus,
    OrderStatusChange,
)
from models.staff import Doctor
from services import common, laboratory, nursing, radiology
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.validation import Problems

_encoder = Encoder()
_DETAILS = {
    OrderKind.MEDICATION: "medication",
    OrderKind.LABORATORY: "laboratory",
    OrderKind.IMAGING: "imaging",
}


async def get_order(id: ObjectId) -> DoctorOrder:
    return await common.get_or_404(DoctorOrder, id, "DoctorOrder")


def order_filter(
    *,
    admission_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    ward_id: ObjectId | None = None,
    statuses: Sequence[OrderStatus] = (),
    kinds: Sequence[OrderKind] = (),
) -> Query:
    query: Query = {}
    for field, value in (
        ("admission_id", admission_id),
        ("patient_id", patient_id),
        ("ward_id", ward_id),
    ):
        if value is not None:
            query[field] = value
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    if kinds:
        query["kind"] = {"$in": [k.value for k in kinds]}
    return query


async def list_orders(query: Query, args: PageArgs, scope: Query | None) -> Page[DoctorOrder]:
    return await paginate(DoctorOrder, both(query, scope), BY_ID, args)


def _kind_problems(problems: Problems, data: Mapping[str, Any]) -> OrderKind | None:
    """The details of the order's kind are given, and no other kind's."""
    try:
        kind = OrderKind(str(data.get("kind")))
    except ValueError:
        problems.require(False, "kind", "unknown kind")
        return None
    for other, field in _DETAILS.items():
        given = data.get(field) is not None
        if other == kind:
            problems.require(given, field, f"give the {field} details of a {kind.value} order")
        else:
            problems.require(not given, field, f"only for a {other.value} order")
    if kind in INSTRUCTION_KINDS:
        problems.require(
            bool(str(data.get("instruction") or "").strip()),
            "instruction",
            f"give the instruction of a {kind.value} order",
        )
    return kind


async def _lab_problems(problems: Problems, codes: Sequence[str]) -> None:
    wanted = [str(c).strip().upper() for c in codes]
    found = {
        t.code for t in await LabTest.find({"code": {"$in": wanted}, "active": True}).to_list()
    }
    for i, code in enumerate(wanted):
        problems.require(code in found, f"laboratory.testCodes.{i}", f"no active test {code}")
    problems.require(
        len(set(wanted)) == len(wanted), "laboratory.testCodes", "a test is ordered once"
    )


async def create_order(data: Mapping[str, Any], by: str | None) -> DoctorOrder:
    """Place an order for an active admission; every problem of the input at once. Its tasks
    are generated at once (for the horizon)."""
    problems = Problems()
    now = utcnow()
    admission = await nursing.active_admission(problems, data.get("admission_id"))
    kind = _kind_problems(problems, data)
    schedule = nursing.schedule_problems(problems, data.get("schedule"), now, "schedule")
    doctor_id = data.get("ordered_by_id")
    doctor = await Doctor.get(doctor_id) if isinstance(doctor_id, ObjectId) else None
    problems.require(doctor is not None and doctor.active, "orderedById", "no such active doctor")
    fields = {
        "admission_id": data.get("admission_id"),
        "patient_id": admission.patient_id if admission else ObjectId(),
        "ward_id": admission.ward_id if admission else ObjectId(),
        "department_id": admission.department_id if admission else ObjectId(),
        "ordered_by_id": doctor_id,
        "kind": kind or OrderKind.NURSING,
        "medication": data.get("medication"),
        "laboratory": data.get("laboratory"),
        "imaging": data.get("imaging"),
        "instruction": data.get("instruction"),
        "schedule": schedule,
        "status": OrderStatus.ACTIVE,
        "status_at": now,
        "history": [OrderStatusChange(status=OrderStatus.ACTIVE, at=now, by=by)],
        "tasks_from": now,
        "created_at": now,
        "updated_at": now,
    }
    order = problems.build(DoctorOrder, fields) if schedule is not None else None
    if order is not None and order.laboratory is not None:
        await _lab_problems(problems, order.laboratory.test_codes)
    problems.raise_any()
    assert order is not None and admission is not None
    order.id = ObjectId()  # type: ignore[assignment]
    await _place_linked(order, by)
    try:
        order = await common.insert(order, "doctor order")
    except BaseException:
        await _cancel_linked(order, "the doctor order was not recorded", by)
        raise
    await nursing.generate_for_order(order, now)
    return order


async def _place_linked(order: DoctorOrder, by: str | None) -> None:
    """The LabOrder or ImagingOrder a laboratory or imaging order stands for."""
    source = {
        "patient_id": order.patient_id,
        "ordering_doctor_id": order.ordered_by_id,
        "admission_id": order.admission_id,
    }
    if order.laboratory is not None:
        try:
            lab = await laboratory.create_lab_order(
                {**source, "test_codes": order.laboratory.test_codes}, by or "system"
            )
        except BadUserInput as refused:
            if set(refused.fields or {}) != {"admissionId"}:
                raise
            return  # the laboratory takes no admissions yet: recorded here only
        order.lab_order_id = lab.id
    if order.imaging is not None:
        i = order.imaging
        imaging = await radiology.create_order(
            {
                **source,
                "modality": i.modality,
                "body_part": i.body_part,
                "laterality": i.laterality,
                "clinical_question": i.clinical_question,
            }
        )
        order.imaging_order_id = imaging.id


async def _cancel_linked(order: DoctorOrder, reason: str, by: str | None) -> None:
    """Cancel the placed LabOrder or ImagingOrder if it has not gone beyond cancelling."""
    try:
        if order.lab_order_id is not None:
            await laboratory.cancel_lab_order(order.lab_order_id, reason, by or "system")
        if order.imaging_order_id is not None:
            await radiology.cancel_order(order.imaging_order_id, reason)
    except (BadUserInput, Conflict):
        pass  # collected or performed already: it stands on its own


async def _move(
    order: DoctorOrder,
    to: OrderStatus,
    by: str | None,
    reason: str | None,
    version: int | None,
    sets: Mapping[str, Any] | None = None,
) -> DoctorOrder:
    if to not in ORDER_TRANSITIONS[order.status]:
        raise BadUserInput(
            f"A {order.status.value} order cannot become {to.value}",
            {"id": f"order is {order.status.value}"},
        )
    if version is not None and version != order.version:
        raise Conflict(
            f"The order is at version {order.version}; read it again", fields=["version"]
        )
    if reason is not None:
        reason = reason.strip()
        if not 0 < len(reason) <= 200:
            raise BadUserInput("reason: 1 to 200 characters", {"reason": "1 to 200 characters"})
    now = utcnow()
    change = OrderStatusChange(status=to, at=now, by=by, reason=reason)
    raw = await db.collection(DoctorOrder).find_one_and_update(
        {"_id": order.id, "status": order.status.value, "version": order.version},
        {
            "$set": {
                "status": to.value,
                "status_at": now,
                "updated_at": now,
                "reason": reason,
                **{k: _encoder.encode(v) for k, v in (sets or {}).items()},
            },
            "$push": {"history": _encoder.encode(change)},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The order changed meanwhile; read it again and retry")
    stored = DoctorOrder.model_validate(raw)
    await changed(stored, to.value)
    return stored


async def hold_order(
    id: ObjectId, reason: str | None, by: str | None, version: int | None = None
) -> DoctorOrder:
    """Pause: the due tasks still ahead are cancelled (those already late stay to be done)."""
    order = await _move(await get_order(id), OrderStatus.HELD, by, reason, version)
    await nursing.cancel_tasks({"source_id": order.id, "due_at": {"$gte": utcnow()}}, nursing.HELD)
    return order


async def resume_order(id: ObjectId, by: str | None, version: int | None = None) -> DoctorOrder:
    """Active again: tasks its hold cancelled that are still ahead reopen, and tasks are
    generated from now on (a one-off whose time passed while held is not)."""
    now = utcnow()
    order = await _move(
        await get_order(id), OrderStatus.ACTIVE, by, None, version, {"tasks_until": now}
    )
    await nursing.reopen_held(order.id, now)  # type: ignore[arg-type]
    await nursing.generate_for_order(order, now)
    return order


async def complete_order(id: ObjectId, by: str | None, version: int | None = None) -> DoctorOrder:
    order = await _move(await get_order(id), OrderStatus.COMPLETED, by, None, version)
    await nursing.cancel_tasks({"source_id": order.id}, "order completed")
    return order


async def cancel_order(
    id: ObjectId, reason: str, by: str | None, version: int | None = None
) -> DoctorOrder:
    """Withdraw the order: its tasks still due are cancelled, and its lab or imaging order
    too while that can still be cancelled."""
    order = await _move(await get_order(id), OrderStatus.CANCELLED, by, reason or "", version)
    await nursing.cancel_tasks({"source_id": order.id}, "order cancelled")
    await _cancel_linked(order, f"doctor order cancelled: {order.reason}"[:200], by)
    return order
