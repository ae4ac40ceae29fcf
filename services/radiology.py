"""Imaging orders, their studies on Radiology's scanners, reports, and the study's charge.

No transactions: each step is a compare-and-set on one document, and every document an order
spreads over has one authority for its stage, so a crash between two writes leaves a state the
next step completes rather than a contradiction:

- the ORDER is the authority while ``ordered`` and for ``cancelled`` and ``reported``;
- its STUDY is the authority for ``scheduled -> in_progress -> completed``; the order follows it
  (``_follow``: a monotone update that only moves the order forward), and every later step of
  the order first brings it up to its study (``_settle``), charging a completed study once;
- scheduling: the scanner's slots are reserved first (``services.scheduling.reserve``, the same
  unique index that keeps appointments apart: a clash is ``CONFLICT`` and changes nothing), then
  the study is inserted (one per order: a unique index), then the order moves ``ordered ->
  scheduled`` by compare-and-set; a failure undoes the earlier steps. A study left behind by a
  crash (its order never pointed at it) is removed by the next scheduling of the order once it
  is older than ``STALE_AFTER``, and its reservations count as orphans meanwhile;
- reports: a draft (one per study, only its author edits it) is signed by a compare-and-set
  ``draft -> signed`` that freezes it; the final report is then inserted with the draft's id
  (so a repeated sign finds it instead of writing a second), and the order moves ``completed ->
  reported``. Signing again resumes an interrupted signature. Final reports and addenda are
  only ever inserted: nothing in SHMS updates ``imaging_reports``;
- the charge: one per study, on the patient's billing account, source ``imaging_study`` and the
  study's id; ``services.billing`` refuses a second charge of the same source atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from cache import runtime
from errors import BadUserInput, Conflict
from models.base import utcnow
from models.billing import BillingAccount, ChargeSource
from models.departments import Department
from models.equipment import EquipmentStatus, MedicalEquipment
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient
from models.radiology import (
    MODALITY_EQUIPMENT,
    MODALITY_PRICES,
    ORDER_STAGES,
    RADIOLOGY_DEPARTMENT_CODE,
    STUDY_HOLDER,
    ImagingAccessionCounter,
    ImagingDraftStatus,
    ImagingModality,
    ImagingOrder,
    ImagingOrderStatus,
    ImagingPerformerRole,
    ImagingPriority,
    ImagingReport,
    ImagingReportDraft,
    ImagingReportKind,
    ImagingStatusChange,
    ImagingStudy,
    ImagingStudyStatus,
)
from models.scheduling import SLOT, ReservedResource, grid_slots, on_grid
from models.staff import Doctor, Nurse
from services import admissions, billing, common, scheduling, signing
from services.changes import changed
from services.pagination import ASC, BY_ID, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, build, require

BY_START: Sort = (("scheduled_start", ASC), ("_id", ASC))
MAX_STUDY = timedelta(hours=4)
"""The longest booking a study may hold its scanner for."""
STALE_AFTER = scheduling.STALE_AFTER
CHARGE_SOURCE = ChargeSource.IMAGING_STUDY
_ORDERING_VISITS = (VisitStatus.IN_CONSULTATION, VisitStatus.COMPLETED)
"""A visit orders imaging while the patient is seen, or after (results are often ordered on)."""
_encoder = Encoder()


def _history(status: str, at: datetime) -> dict[str, Any]:
    encoded: dict[str, Any] = _encoder.encode(ImagingStatusChange(status=status, at=at))
    return encoded


# -- reads -----------------------------------------------------------------------------------


def order_filter(
    *,
    patient_id: ObjectId | None = None,
    ordering_doctor_id: ObjectId | None = None,
    visit_id: ObjectId | None = None,
    statuses: Sequence[ImagingOrderStatus] = (),
    modality: ImagingModality | None = None,
    priority: ImagingPriority | None = None,
) -> Query:
    query: Query = {}
    for field, value in (
        ("patient_id", patient_id),
        ("ordering_doctor_id", ordering_doctor_id),
        ("visit_id", visit_id),
        ("modality", modality and modality.value),
        ("priority", priority and priority.value),
    ):
        if value is not None:
            query[field] = value
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    return query


async def list_orders(query: Query, args: PageArgs, scope: Query | None) -> Page[ImagingOrder]:
    return await paginate(ImagingOrder, both(query, scope), BY_ID, args)


def study_filter(
    *,
    equipment_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    statuses: Sequence[ImagingStudyStatus] = (),
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
) -> Query:
    """Studies of a scanner (or patient) whose booking starts in ``[from, to)``."""
    problems = Problems()
    starts_from, starts_before = problems.window(starts_from, starts_before)
    problems.raise_any()
    query: Query = {}
    if equipment_id is not None:
        query["equipment_id"] = equipment_id
    if patient_id is not None:
        query["patient_id"] = patient_id
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    window: dict[str, datetime] = {}
    if starts_from:
        window["$gte"] = starts_from
    if starts_before:
        window["$lt"] = starts_before
    if window:
        query["scheduled_start"] = window
    return query


async def list_studies(query: Query, args: PageArgs, scope: Query | None) -> Page[ImagingStudy]:
    return await paginate(ImagingStudy, both(query, scope), BY_START, args)


async def get_order(id: ObjectId) -> ImagingOrder:
    return await common.get_or_404(ImagingOrder, id, "ImagingOrder")


async def get_study(id: ObjectId) -> ImagingStudy:
    return await common.get_or_404(ImagingStudy, id, "ImagingStudy")


async def get_draft(id: ObjectId) -> ImagingReportDraft:
    return await common.get_or_404(ImagingReportDraft, id, "ImagingReportDraft")


async def get_report(id: ObjectId) -> ImagingReport:
    return await common.get_or_404(ImagingReport, id, "ImagingReport")


# -- orders ----------------------------------------------------------------------------------


async def radiology_department() -> Department | None:
    return await Department.find_one({"code": RADIOLOGY_DEPARTMENT_CODE})


async def _check_source(problems: Problems, order: ImagingOrder) -> None:
    """The order comes from exactly one visit or admission of this patient."""
    if (order.visit_id is None) == (order.admission_id is None):
        problems.add(
            BadUserInput(
                "Name the visit or the admission the order comes from (exactly one)",
                {"visitId": "give visitId or admissionId", "admissionId": "not both"},
            )
        )
        return
    if order.visit_id is not None:
        visit = await OutpatientVisit.get(order.visit_id)
        if problems.require(visit is not None, "visitId", "no such visit"):
            assert visit is not None
            problems.require(
                visit.patient_id == order.patient_id, "visitId", "is a visit of another patient"
            )
            problems.require(
                visit.status in _ORDERING_VISITS,
                "visitId",
                f"the visit is {visit.status.value}; imaging is ordered once the patient is seen",
            )
        return
    await admissions.check_admission(problems, order.admission_id, order.patient_id)


async def create_order(data: Mapping[str, Any]) -> ImagingOrder:
    """Place an order for Radiology; every problem of the input is reported at once."""
    problems = Problems()
    department = await radiology_department()
    now = utcnow()
    fields = {
        **data,
        "department_id": department.id if department else ObjectId(),
        "status": ImagingOrderStatus.ORDERED,
        "status_at": now,
        "created_at": now,
        "updated_at": now,
        "history": [ImagingStatusChange(status=ImagingOrderStatus.ORDERED.value, at=now)],
    }
    for server_owned in ("study_id", "report_id", "charged_at", "price", "version"):
        fields.pop(server_owned, None)
    order = problems.build(ImagingOrder, fields)
    if department is None:
        problems.add(
            BadUserInput(
                f"No imaging department (code {RADIOLOGY_DEPARTMENT_CODE}) exists",
                {"input": f"no department with code {RADIOLOGY_DEPARTMENT_CODE}"},
            )
        )
    patient_id = data.get("patient_id")
    if "patientId" not in problems:
        await problems.check(common.ensure_exists(Patient, patient_id, "patientId", "patient"))
    doctor_id = data.get("ordering_doctor_id")
    if "orderingDoctorId" not in problems and isinstance(doctor_id, ObjectId):
        doctor = await Doctor.get(doctor_id)
        problems.require(
            doctor is not None and doctor.active, "orderingDoctorId", "no such active doctor"
        )
    if order is not None:
        await _check_source(problems, order)
    problems.raise_any()
    assert order is not None
    order.price = MODALITY_PRICES[order.modality]
    return await common.insert(order, "imaging order")


async def _order_cas(
    order: ImagingOrder,
    expected: Query,
    sets: Mapping[str, Any],
    status: ImagingOrderStatus | None = None,
) -> ImagingOrder | None:
    """Apply ``sets`` (and a status change) if the order still matches ``expected``; the order
    as stored, or None when it did not match."""
    now = utcnow()
    update: dict[str, Any] = {
        "$set": {k: _encoder.encode(v) for k, v in {**sets, "updated_at": now}.items()},
        "$inc": {"version": 1},
    }
    if status is not None:
        update["$set"].update({"status": status.value, "status_at": now})
        update["$push"] = {"history": _history(status.value, now)}
    raw = await db.collection(ImagingOrder).find_one_and_update(
        {"_id": order.id, **expected}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else ImagingOrder.model_validate(raw)


async def cancel_order(id: ObjectId, reason: str | None) -> ImagingOrder:
    """Cancel before the examination starts; a scheduled study frees its scanner at once."""
    order = await get_order(id)
    study = await get_study(order.study_id) if order.study_id is not None else None
    if study is not None and study.status != ImagingStudyStatus.SCHEDULED:
        order = await _settle(order, study)  # the study moved on: answer with its real stage
    if order.status not in (ImagingOrderStatus.ORDERED, ImagingOrderStatus.SCHEDULED):
        raise BadUserInput(
            f"A {order.status.value} imaging order cannot be cancelled"
            " (only an ordered or scheduled one)",
            {"id": f"order is {order.status.value}"},
        )
    sets = {"cancellation_reason": reason}
    if reason is not None:
        build(ImagingOrder, {**order.model_dump(), **sets})  # validates the reason's length
    if study is not None:  # the study is the authority once scheduled: it goes first
        cancelled = await _study_cas(
            study.id,  # type: ignore[arg-type]
            {"status": ImagingStudyStatus.SCHEDULED.value},
            {},
            ImagingStudyStatus.CANCELLED,
        )
        if cancelled is None:
            raise Conflict("The study changed meanwhile; read the order again and retry")
        await scheduling.release_holder(cancelled.id)  # type: ignore[arg-type]
        await changed(cancelled, "cancelled")
        expected: Query = {"status": ImagingOrderStatus.SCHEDULED.value}
    else:
        expected = {"status": ImagingOrderStatus.ORDERED.value, "version": order.version}
    stored = await _order_cas(order, expected, sets, ImagingOrderStatus.CANCELLED)
    if stored is None:
        raise Conflict("The imaging order changed meanwhile; read it again and retry")
    await changed(stored, "cancelled")
    return stored


# -- studies ---------------------------------------------------------------------------------


def fits(modality: ImagingModality, equipment: MedicalEquipment) -> bool:
    return equipment.equipment_type.strip().lower() in MODALITY_EQUIPMENT[modality]


async def next_accession(now: datetime) -> str:
    """``RAD`` + the UTC day + a number per day: unique (the counter is one atomic $inc, and
    the study's unique index backs it)."""
    day = now.strftime("%Y%m%d")
    counters = db.collection(ImagingAccessionCounter)
    raw: dict[str, Any] | None = None
    for attempt in range(2):
        try:
            raw = await counters.find_one_and_update(
                {"day": day},
                {"$inc": {"last": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            break
        except DuplicateKeyError:  # two first numbers of a day upserted together: retry
            if attempt:
                raise
    assert raw is not None
    return f"{RADIOLOGY_DEPARTMENT_CODE}{day}{int(raw['last']):05d}"


async def _equipment_problems(
    problems: Problems, order: ImagingOrder, equipment_id: Any
) -> MedicalEquipment | None:
    if not problems.require(isinstance(equipment_id, ObjectId), "equipmentId", "is required"):
        return None
    equipment = await MedicalEquipment.get(equipment_id)
    if not problems.require(equipment is not None, "equipmentId", "no such equipment"):
        return None
    assert equipment is not None
    problems.require(
        equipment.department_id == order.department_id,
        "equipmentId",
        "is not a device of the performing department",
    )
    problems.require(
        fits(order.modality, equipment),
        "equipmentId",
        f"a {equipment.equipment_type} cannot perform {order.modality.value} studies",
    )
    problems.require(
        equipment.status not in (EquipmentStatus.OUT_OF_SERVICE, EquipmentStatus.MAINTENANCE),
        "equipmentId",
        f"the device is {equipment.status.value.replace('_', ' ')}",
    )
    return equipment


def _time_problems(problems: Problems, start: Any, end: Any, now: datetime) -> None:
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        problems.require(isinstance(start, datetime), "startAt", "is required")
        problems.require(isinstance(end, datetime), "endAt", "is required")
        return
    start_at, end_at = problems.instant(start, "startAt"), problems.instant(end, "endAt")
    if start_at is None or end_at is None:
        return
    grid = f"must be on the {SLOT.seconds // 60}-minute grid (like 09:00, 09:05, 09:10)"
    problems.require(on_grid(start_at), "startAt", grid)
    problems.require(on_grid(end_at), "endAt", grid)
    if problems.require(end_at > start_at, "endAt", "must be after startAt"):
        problems.require(end_at - start_at <= MAX_STUDY, "endAt", "a study may last 4 hours")
    problems.require(start_at > now - SLOT, "startAt", "must not be in the past")


def _keys(study: ImagingStudy) -> set[scheduling.Key]:
    return {
        (ReservedResource.EQUIPMENT, study.equipment_id, slot)
        for slot in grid_slots(study.scheduled_start, study.scheduled_end)
    }


async def _insert_study(study: ImagingStudy, order: ImagingOrder) -> None:
    """Insert the order's one study; a study a crashed scheduling left behind (its order never
    named it, and it is older than ``STALE_AFTER``) is removed first."""
    for attempt in range(2):
        try:
            await study.insert()
            return
        except DuplicateKeyError:
            other = await ImagingStudy.find_one({"order_id": order.id})
            fresh = await ImagingOrder.get(order.id)
            orphan = (
                other is not None
                and fresh is not None
                and fresh.study_id != other.id
                and other.status == ImagingStudyStatus.SCHEDULED
                and other.created_at < utcnow() - STALE_AFTER
            )
            if attempt or not orphan:
                raise Conflict(
                    "This order already has a study (or is being scheduled); read it again",
                    fields=["orderId"],
                ) from None
            assert other is not None and other.id is not None
            await _drop_study(other.id, {"status": ImagingStudyStatus.SCHEDULED.value})
            await scheduling.release_holder(other.id)


async def _drop_study(id: ObjectId, expected: Query | None = None) -> None:
    """Delete a study that never became its order's (a failed or crashed scheduling), and
    any copy a read put in the document cache."""
    await db.collection(ImagingStudy).delete_one({"_id": id, **(expected or {})})
    forget = getattr(runtime.current().cache, "forget", None)  # the Redis document cache's
    if forget is not None:
        await forget(ImagingStudy, id)


async def schedule_study(order_id: ObjectId, data: Mapping[str, Any]) -> ImagingStudy:
    """Book the order's study on a scanner that fits its modality; never over another booking."""
    order = await get_order(order_id)
    problems = Problems()
    now = utcnow()
    if order.status != ImagingOrderStatus.ORDERED:
        problems.add(
            BadUserInput(
                f"Only an ordered imaging order can be scheduled; this one is {order.status.value}",
                {"orderId": f"order is {order.status.value}"},
            )
        )
    start, end = data.get("start_at"), data.get("end_at")
    _time_problems(problems, start, end, now)
    await _equipment_problems(problems, order, data.get("equipment_id"))
    problems.raise_any()
    assert isinstance(start, datetime) and isinstance(end, datetime)
    study = ImagingStudy(
        id=PydanticObjectId(),  # chosen now: the reservations name it before it exists
        order_id=order_id,
        patient_id=order.patient_id,
        ordering_doctor_id=order.ordering_doctor_id,
        department_id=order.department_id,
        accession_number="pending",
        modality=order.modality,
        equipment_id=data["equipment_id"],
        scheduled_start=start,
        scheduled_end=end,
        status=ImagingStudyStatus.SCHEDULED,
        status_at=now,
        created_at=now,
        updated_at=now,
    )
    assert study.id is not None
    taken = await scheduling.reserve(study.id, _keys(study), STUDY_HOLDER)
    try:
        study.accession_number = await next_accession(now)
        await _insert_study(study, order)
    except BaseException:
        await scheduling.release_reservations(taken)
        raise
    stored = await _order_cas(
        order,
        {"status": ImagingOrderStatus.ORDERED.value, "version": order.version},
        {"study_id": study.id},
        ImagingOrderStatus.SCHEDULED,
    )
    if stored is None:  # cancelled or scheduled by someone else meanwhile: undo ours
        await _drop_study(study.id)
        await scheduling.release_reservations(taken)
        raise Conflict("The imaging order changed meanwhile; read it again and retry")
    await changed(study, "scheduled")
    await changed(stored, "scheduled")
    return study


async def _study_cas(
    id: ObjectId,
    expected: Query,
    sets: Mapping[str, Any],
    status: ImagingStudyStatus,
) -> ImagingStudy | None:
    now = utcnow()
    update = {
        "$set": {
            **{k: _encoder.encode(v) for k, v in sets.items()},
            "status": status.value,
            "status_at": now,
            "updated_at": now,
        },
        "$inc": {"version": 1},
    }
    raw = await db.collection(ImagingStudy).find_one_and_update(
        {"_id": id, **expected}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else ImagingStudy.model_validate(raw)


_FOLLOWS = {
    ImagingStudyStatus.SCHEDULED: ImagingOrderStatus.SCHEDULED,
    ImagingStudyStatus.IN_PROGRESS: ImagingOrderStatus.IN_PROGRESS,
    ImagingStudyStatus.COMPLETED: ImagingOrderStatus.COMPLETED,
    ImagingStudyStatus.CANCELLED: ImagingOrderStatus.CANCELLED,
}


async def _settle(order: ImagingOrder, study: ImagingStudy) -> ImagingOrder:
    """Bring the order up to its study's stage (only ever forward) and charge a completed
    study once; safe to repeat, from any process."""
    target = _FOLLOWS.get(study.status)
    if target is not None and order.study_id == study.id:
        earlier = (
            ORDER_STAGES[: ORDER_STAGES.index(target)]
            if target != ImagingOrderStatus.CANCELLED
            else (ImagingOrderStatus.ORDERED, ImagingOrderStatus.SCHEDULED)
        )
        if order.status in earlier:
            moved = await _order_cas(
                order, {"status": {"$in": [s.value for s in earlier]}}, {}, target
            )
            if moved is not None:
                await changed(moved, target.value)
                order = moved
            else:
                order = await get_order(order.id)  # type: ignore[arg-type]
    if study.status == ImagingStudyStatus.COMPLETED and order.charged_at is None:
        await _charge(order, study)
        charged = await _order_cas(order, {"charged_at": None}, {"charged_at": utcnow()})
        if charged is not None:
            await changed(charged, "charged")
            order = charged
    return order


async def _charge(order: ImagingOrder, study: ImagingStudy) -> None:
    """The study's charge on the patient's account, at most once (billing's guard decides)."""
    account = await BillingAccount.find_one({"patient_id": order.patient_id})
    if account is None:
        try:
            account = await billing.open_billing_account(order.patient_id)
        except Conflict:  # opened by a concurrent request
            account = await BillingAccount.find_one({"patient_id": order.patient_id})
    assert account is not None and account.id is not None
    if _charged(account, study):
        return
    laterality = "" if order.laterality.value == "not_applicable" else f" ({order.laterality})"
    charge = {
        "description": f"Imaging {order.modality.value}: {order.body_part}{laterality}"[:200],
        "amount": order.price or MODALITY_PRICES[order.modality],
        "currency": account.currency,
        "source": CHARGE_SOURCE,
        "source_id": study.id,
    }
    try:
        await billing.add_charge(account.id, charge)
    except Conflict:
        fresh = await BillingAccount.get(account.id)
        if fresh is None or not _charged(fresh, study):
            raise


def _charged(account: BillingAccount, study: ImagingStudy) -> bool:
    return any(c.source == CHARGE_SOURCE and c.source_id == study.id for c in account.charges)


async def _performer(performer_id: ObjectId, role: ImagingPerformerRole) -> None:
    model = Doctor if role == ImagingPerformerRole.RADIOLOGIST else Nurse
    await common.ensure_exists(model, performer_id, "performedById", role.value)


async def start_study(
    id: ObjectId, performer_id: ObjectId, role: ImagingPerformerRole
) -> ImagingStudy:
    study = await get_study(id)
    require(
        study.status == ImagingStudyStatus.SCHEDULED,
        "id",
        f"only a scheduled study can start; this one is {study.status.value}",
    )
    await _performer(performer_id, role)
    now = utcnow()
    stored = await _study_cas(
        id,
        {"status": ImagingStudyStatus.SCHEDULED.value, "version": study.version},
        {"performed_by_id": performer_id, "performed_by_role": role, "started_at": now},
        ImagingStudyStatus.IN_PROGRESS,
    )
    if stored is None:
        raise Conflict("The study changed meanwhile; read it again and retry")
    await changed(stored, "started")
    await _settle(await get_order(stored.order_id), stored)
    return stored


async def complete_study(id: ObjectId) -> ImagingStudy:
    """The images are taken: the scanner's remaining time is freed and the study charged."""
    study = await get_study(id)
    require(
        study.status == ImagingStudyStatus.IN_PROGRESS,
        "id",
        f"only a study in progress can complete; this one is {study.status.value}",
    )
    stored = await _study_cas(
        id,
        {"status": ImagingStudyStatus.IN_PROGRESS.value, "version": study.version},
        {"ended_at": utcnow()},
        ImagingStudyStatus.COMPLETED,
    )
    if stored is None:
        raise Conflict("The study changed meanwhile; read it again and retry")
    await scheduling.release_holder(id)  # inactive now: its time is free at once
    await changed(stored, "completed")
    await _settle(await get_order(stored.order_id), stored)
    return stored


# -- reports ---------------------------------------------------------------------------------


def content_hash(report: ImagingReport) -> str:
    """SHA-256 over the report's canonical content: who signed what, about which study, when."""
    content = {
        "id": str(report.id),
        "kind": report.kind.value,
        "study_id": str(report.study_id),
        "order_id": str(report.order_id),
        "patient_id": str(report.patient_id),
        "author_id": str(report.author_id),
        "amends_id": str(report.amends_id) if report.amends_id else None,
        "findings": report.findings,
        "impression": report.impression,
        "text": report.text,
        "signed_at": report.signed_at.isoformat(),
    }
    return signing.digest(signing.canonical_json(content))


_REPORTABLE = (ImagingStudyStatus.IN_PROGRESS, ImagingStudyStatus.COMPLETED)


async def create_draft(
    study_id: ObjectId, author_id: ObjectId, data: Mapping[str, Any]
) -> ImagingReportDraft:
    study = await get_study(study_id)
    problems = Problems()
    now = utcnow()
    draft = problems.build(
        ImagingReportDraft,
        {
            "findings": data.get("findings"),
            "impression": data.get("impression"),
            "study_id": study_id,
            "order_id": study.order_id,
            "patient_id": study.patient_id,
            "department_id": study.department_id,
            "author_id": author_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    problems.require(
        study.status in _REPORTABLE,
        "studyId",
        f"a {study.status.value} study cannot be reported",
    )
    if await ImagingReport.find({"final_for_study_id": study_id}).count():
        problems.require(False, "studyId", "is reported already; add an addendum instead")
    problems.raise_any()
    assert draft is not None
    return await common.insert(draft, "report draft")


async def update_draft(
    id: ObjectId, changes: Mapping[str, Any], version: int | None
) -> ImagingReportDraft:
    draft = await get_draft(id)
    require(draft.status == ImagingDraftStatus.DRAFT, "id", "a signed report cannot change")
    require(set(changes) <= {"findings", "impression"}, "input", "only the text may change")
    expected: dict[str, Any] = {"status": ImagingDraftStatus.DRAFT.value}
    if version is not None:
        require(version == draft.version, "version", f"the draft is at version {draft.version}")
    expected["version"] = draft.version
    merged = {**changes, "version": draft.version + 1}
    return await common.update(draft, merged, "report draft", expected=expected)


async def sign(id: ObjectId) -> ImagingReport:
    """Freeze the draft and issue its final report; repeating it finishes a sign interrupted
    midway and otherwise answers ``CONFLICT``."""
    draft = await get_draft(id)
    study = await get_study(draft.study_id)
    order = await _settle(await get_order(draft.order_id), study)
    require(
        study.status == ImagingStudyStatus.COMPLETED,
        "id",
        f"the study is {study.status.value}; a report is signed once it is completed",
    )
    existing = await ImagingReport.get(id)
    done = order.status == ImagingOrderStatus.REPORTED
    if draft.status == ImagingDraftStatus.SIGNED and existing is not None and done:
        raise Conflict("This report is signed already", fields=["id"])
    if draft.status == ImagingDraftStatus.DRAFT:
        now = utcnow()
        raw = await db.collection(ImagingReportDraft).find_one_and_update(
            {"_id": id, "status": ImagingDraftStatus.DRAFT.value, "version": draft.version},
            {
                "$set": {
                    "status": ImagingDraftStatus.SIGNED.value,
                    "signed_at": now,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if raw is None:
            raise Conflict("The draft changed meanwhile (or was signed); read it again")
        draft = ImagingReportDraft.model_validate(raw)
        await changed(draft, "signed")
    assert draft.signed_at is not None
    report = existing or await _issue_final(draft, order)
    reported = await _order_cas(
        order,
        {"status": ImagingOrderStatus.COMPLETED.value},
        {"report_id": report.id},
        ImagingOrderStatus.REPORTED,
    )
    if reported is not None:
        await changed(reported, "reported")
    return report


async def _issue_final(draft: ImagingReportDraft, order: ImagingOrder) -> ImagingReport:
    assert draft.signed_at is not None
    report = ImagingReport(
        id=draft.id,
        study_id=draft.study_id,
        order_id=draft.order_id,
        patient_id=draft.patient_id,
        department_id=draft.department_id,
        ordering_doctor_id=order.ordering_doctor_id,
        author_id=draft.author_id,
        kind=ImagingReportKind.FINAL,
        findings=draft.findings,
        impression=draft.impression,
        final_for_study_id=draft.study_id,
        signed_at=draft.signed_at,
        content_hash="0" * 64,
        created_at=draft.signed_at,
        updated_at=draft.signed_at,
    )
    report.content_hash = content_hash(report)
    try:
        await report.insert()
    except DuplicateKeyError:  # a concurrent resume of this sign inserted it
        found = await ImagingReport.get(draft.id)
        if found is None:
            raise Conflict("This study has a final report already", fields=["id"]) from None
        return found
    await changed(report, "created")
    return report


async def add_addendum(report_id: ObjectId, author_id: ObjectId, text: str) -> ImagingReport:
    """A correction or addition, signed at once; the final it amends stays as it was."""
    final = await get_report(report_id)
    require(final.kind == ImagingReportKind.FINAL, "reportId", "addenda amend a final report")
    now = utcnow()
    addendum = build(
        ImagingReport,
        {
            "study_id": final.study_id,
            "order_id": final.order_id,
            "patient_id": final.patient_id,
            "department_id": final.department_id,
            "ordering_doctor_id": final.ordering_doctor_id,
            "author_id": author_id,
            "kind": ImagingReportKind.ADDENDUM,
            "text": text,
            "amends_id": final.id,
            "signed_at": now,
            "content_hash": "0" * 64,
            "created_at": now,
            "updated_at": now,
        },
    )
    addendum.id = PydanticObjectId()
    addendum.content_hash = content_hash(addendum)
    return await common.insert(addendum, "addendum")
