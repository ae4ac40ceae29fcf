"""The medication administration record: doses scheduled from orders, given from the ward's
stock, held or refused; and what a ward consumed.

Scheduling: ``services.nursing`` generates a medication order's tasks and calls
``schedule_doses`` with the same due times, so every dose has its task (``task_id``); the unique
``(order_id, due_at)`` keeps it idempotent. A task cancelled (order held, completed, cancelled,
the patient discharged) or reopened (the order resumed) takes its dose with it
(``follow_task``); a dose inserted after its task was cancelled re-reads the task and follows
it, so the two never disagree for long.

The drug: the order's text resolved against the drug master (its generic name, as prescriptions
are; several products of the name told apart by one unit being the dose, then by the route). A
dose takes ``ceil(dose / strength)`` units of issue when the units compare (mg, g, mcg convert;
otherwise the same unit), else one unit per dose. An order naming no unique master product is
still charted; its doses take no stock.

Giving a dose (``give``), with no transaction:

1. the ward's usable batches of the drug (the admission's ward now; expiry after today),
   soonest expiry first; too few units: ``CONFLICT`` ``NO_WARD_STOCK``, nothing written;
2. the dose is claimed ``scheduled -> giving`` by compare-and-set on its version, with its
   planned lines: of two nurses giving one dose, one claims it and the other is ``CONFLICT``
   before any stock moves;
3. each line is one conditional decrement of its ward batch (``services.pharmacy``'s
   ``{quantity >= n}``, the operation recorded on the batch) and its ledger row
   (``administer``); a line that loses a race re-plans from fresh reads;
4. ``giving -> given``; the operations leave the batches; the dose's task is recorded done.

A refusal or an error in step 3 gives back what was taken and returns the dose to
``scheduled``. A crash leaves ``giving`` with operations on batches: ``recover`` (and
``services.pharmacy.recover`` for the operations) returns a claim older than ``GRACE`` to
``scheduled`` and gives its units back; a dose recorded ``given`` whose operations are left is
settled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from crypto.fields import open_document
from errors import BadUserInput, Conflict
from models.admissions import Admission
from models.base import utcnow
from models.drugs import Drug
from models.medication import (
    MEDICATION_ADMINISTRATION_SEALED,
    DoseLine,
    DoseStatus,
    MedicationAdministration,
)
from models.nursing import NursingTask, TaskStatus
from models.orders import DoctorOrder, MedicationDetails, OrderKind
from models.patients import fold
from models.pharmacy import MovementKind, PendingOp, StockBatch, StockLocation
from services import common, pharmacy
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, instant

GRACE = pharmacy.GRACE
"""A ``giving`` claim older than this was abandoned (a give takes milliseconds)."""
CLOCK_SLACK = timedelta(minutes=1)
MAX_ROUNDS = 20
NO_WARD_STOCK = "NO_WARD_STOCK"
HELD_TASK = "order held"  # services.nursing.HELD: the reason a hold cancels with
BY_DUE: Sort = (("due_at", ASC), ("_id", ASC))
_MASS = {"mcg": 0.001, "µg": 0.001, "ug": 0.001, "mg": 1.0, "g": 1000.0}
"""Refused in text stored sealed without its model's validation (notes, doses, and what tasks
and doses copy): it would be kept as given and never open (``crypto.fields``)."""
_encoder = Encoder()


def _doses() -> Any:
    return db.collection(MedicationAdministration)


def _ms(moment: datetime) -> datetime:
    """As MongoDB stores it (milliseconds)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- the drug of an order ------------------------------------------------------------------------


def units_per_dose(drug: Drug, dose: float, unit: str) -> int:
    """Whole units of issue one dose takes: ``ceil(dose / strength)`` when the units compare
    (the rest of a unit is discarded, as with an ampoule), else one."""
    mine, theirs = unit.strip().lower(), drug.strength.unit.strip().lower()
    if mine == theirs:
        ratio = dose / drug.strength.value
    elif mine in _MASS and theirs in _MASS:
        ratio = dose * _MASS[mine] / (drug.strength.value * _MASS[theirs])
    else:
        return 1
    return max(1, math.ceil(round(ratio, 6)))


async def drug_for_order(medication: MedicationDetails) -> Drug | None:
    """The one active master product the order names; None when there is none or several."""
    key = " ".join(fold(medication.drug).split())
    candidates = await Drug.find({"match_keys": key, "active": True}).to_list()
    if len(candidates) > 1:
        one = [
            d for d in candidates if units_per_dose(d, medication.dose, medication.unit) == 1
            and _comparable(d, medication.unit)
        ]  # fmt: skip
        candidates = one or candidates
    if len(candidates) > 1:
        route = medication.route.value
        candidates = [d for d in candidates if d.route.lower() == route] or candidates
    return candidates[0] if len(candidates) == 1 else None


def _comparable(drug: Drug, unit: str) -> bool:
    mine, theirs = unit.strip().lower(), drug.strength.unit.strip().lower()
    return mine == theirs or (mine in _MASS and theirs in _MASS)


# -- scheduling ----------------------------------------------------------------------------------


async def schedule_doses(order: DoctorOrder, times: Sequence[datetime]) -> int:
    """The order's doses at ``times`` (its tasks' due times), each linked to its task; how many
    were new. Idempotent."""
    if order.kind != OrderKind.MEDICATION or order.medication is None or not times:
        return 0
    m = order.medication
    drug = await drug_for_order(m)
    units = units_per_dose(drug, m.dose, m.unit) if drug is not None else 0
    tasks = {
        _ms(t.due_at): t
        async for t in NursingTask.find(
            {"source_id": order.id, "due_at": {"$in": [_ms(at) for at in times]}}
        )
    }
    now = utcnow()
    made: list[MedicationAdministration] = []
    for at in times:
        task = tasks.get(_ms(at))
        dose = MedicationAdministration(
            order_id=order.id,
            task_id=task.id if task else None,
            admission_id=order.admission_id,
            patient_id=order.patient_id,
            ward_id=order.ward_id,
            department_id=order.department_id,
            ordered_by_id=order.ordered_by_id,
            drug_id=drug.id if drug else None,
            drug_name=m.drug,
            dose=m.dose,
            unit=m.unit,
            route=m.route,
            units=units,
            due_at=at,
            status=DoseStatus.SCHEDULED,
            status_at=now,
            created_at=now,
            updated_at=now,
        )
        try:
            await dose.insert()
        except DuplicateKeyError:
            continue
        await changed(dose, "created")
        made.append(dose)
    # A task cancelled before its dose existed (the order stopped meanwhile): follow it now.
    stopped = [d.task_id for d in made if d.task_id is not None]
    if stopped:
        async for task in NursingTask.find(
            {"_id": {"$in": stopped}, "status": TaskStatus.CANCELLED.value}
        ):
            await follow_task(task)
    return len(made)


async def _dose_cas(
    query: Query, sets: dict[str, Any], unset: Iterable[str] = ()
) -> MedicationAdministration | None:
    now = utcnow()
    update: dict[str, Any] = {
        "$set": {**{k: _encoder.encode(v) for k, v in sets.items()}, "updated_at": now},
        "$inc": {"version": 1},
    }
    if "status" in sets:
        update["$set"]["status_at"] = now
    if unset:
        update["$unset"] = {k: "" for k in unset}
    raw = await _doses().find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
    return None if raw is None else MedicationAdministration.model_validate(raw)


async def follow_task(task: NursingTask) -> None:
    """The dose of a task follows it: cancelled with it (from ``scheduled``), back to
    ``scheduled`` when a held order's task reopens. Nothing for tasks with no dose."""
    if task.order_id is None:
        return  # a care plan's task
    if task.status == TaskStatus.CANCELLED:
        expected: Query = {"status": DoseStatus.SCHEDULED.value}
        sets: dict[str, Any] = {"status": DoseStatus.CANCELLED, "reason": task.reason}
        change = "cancelled"
    elif task.status == TaskStatus.DUE:
        expected = {"status": DoseStatus.CANCELLED.value, "reason": HELD_TASK}
        sets = {"status": DoseStatus.SCHEDULED, "reason": None}
        change = "reopened"
    else:
        return
    dose = await _dose_cas({"task_id": task.id, **expected}, sets)
    if dose is not None:
        await changed(dose, change)


async def refuse_direct_recording(task: NursingTask) -> None:
    """A medication task is recorded through its dose (which takes the stock), never alone."""
    if task.order_id is None:
        return
    if await _doses().count_documents({"task_id": task.id}, limit=1):
        raise Conflict(
            "This task is a medication dose: record it with giveMedication, holdMedication or "
            "refuseMedication",
            reason="RECORD_ON_MAR",
            fields=["id"],
        )


async def move_with_admission(admission: Admission) -> None:
    """Scheduled doses follow a transferred admission to its new ward."""
    query = {
        "admission_id": admission.id,
        "status": DoseStatus.SCHEDULED.value,
        "$or": [
            {"ward_id": {"$ne": admission.ward_id}},
            {"department_id": {"$ne": admission.department_id}},
        ],
    }
    async for raw in _doses().find(query, {"_id": 1}):
        sets = {"ward_id": admission.ward_id, "department_id": admission.department_id}
        dose = await _dose_cas({"_id": raw["_id"], "status": DoseStatus.SCHEDULED.value}, sets)
        if dose is not None:
            await changed(dose, "moved")


# -- recording -----------------------------------------------------------------------------------


async def get_dose(id: ObjectId) -> MedicationAdministration:
    return await common.get_or_404(MedicationAdministration, id, "MedicationAdministration")


async def _recordable(id: ObjectId, now: datetime) -> MedicationAdministration:
    dose = await get_dose(id)
    if dose.status == DoseStatus.GIVING and dose.claimed_at and dose.claimed_at <= now - GRACE:
        await _abandon(dose)  # a give that crashed: the dose is free again
        dose = await get_dose(id)
    if dose.status != DoseStatus.SCHEDULED:
        raise Conflict(f"This dose is {dose.status.value} already; read it again", fields=["id"])
    return dose


async def _usable(dose: MedicationAdministration, ward_id: ObjectId) -> list[StockBatch]:
    """The ward's usable batches of the dose's drug, soonest expiry first (FEFO)."""
    cursor = db.collection(StockBatch).find(
        {
            "drug_id": dose.drug_id,
            "location": StockLocation.WARD.value,
            "ward_id": ward_id,
            "expiry": {"$gt": pharmacy.day_start(utcnow())},
            "quantity": {"$gt": 0},
        },
        sort=[("expiry", 1), ("_id", 1)],
    )
    return [StockBatch.model_validate(raw) async for raw in cursor]


def _plan(batches: Sequence[StockBatch], wanted: int) -> list[DoseLine]:
    lines = []
    for batch in batches:
        if wanted <= 0:
            break
        take = min(batch.quantity, wanted)
        lines.append(
            DoseLine(
                batch_id=batch.id,
                batch_number=batch.batch_number,
                expiry=batch.expiry,
                quantity=take,
            )
        )
        wanted -= take
    return lines


def _no_stock(available: int, wanted: int) -> Conflict:
    return Conflict(
        f"The ward holds {available} usable unit(s) of this drug for a dose of {wanted}: "
        "nothing was recorded (ask the pharmacy to issue stock to the ward)",
        reason=NO_WARD_STOCK,
        available=available,
        fields=["id"],
    )


def _when(problems: Problems, value: datetime | None, now: datetime, name: str) -> datetime:
    at = now
    if value is not None:
        try:
            at = instant(value, name)
        except BadUserInput as problem:
            problems.add(problem)
    problems.require(at <= now + CLOCK_SLACK, name, "is in the future")
    return at


async def give(
    id: ObjectId,
    nurse_id: ObjectId,
    given_at: datetime | None,
    note: str | None,
    by: str | None,
) -> MedicationAdministration:
    """Record a scheduled dose given at ``given_at`` (default now), taking its units from the
    ward's stock (see the module docstring)."""
    now = utcnow()
    dose = await _recordable(id, now)
    problems = Problems()
    at = _when(problems, given_at, now, "givenAt")
    admission = await Admission.get(dose.admission_id)
    if admission is not None:
        problems.require(at >= admission.admitted_at, "givenAt", "is before the admission")
    if note is not None:
        problems.require(0 < len(note.strip()) <= 5000, "note", "1 to 5000 characters")
    problems.raise_any()
    ward_id = admission.ward_id if admission is not None else dose.ward_id
    lines: list[DoseLine] = []
    if dose.units > 0 and dose.drug_id is not None:
        batches = await _usable(dose, ward_id)
        available = sum(b.quantity for b in batches)
        if available < dose.units:
            raise _no_stock(available, dose.units)
        lines = _plan(batches, dose.units)
    claimed = await _dose_cas(
        {"_id": id, "status": DoseStatus.SCHEDULED.value, "version": dose.version},
        {"status": DoseStatus.GIVING, "lines": lines, "claimed_at": now, "ward_id": ward_id},
    )
    if claimed is None:
        raise Conflict("The dose changed meanwhile (recorded or cancelled); read it again")
    taken: list[DoseLine] = []
    try:
        await _take(claimed, lines, ward_id, by or "unknown", taken)
    except BaseException:
        await _give_back(claimed, taken, by or "unknown")
        raise
    sets = {
        "status": DoseStatus.GIVEN,
        "given_at": at,
        "recorded_at": now,
        "recorded_by_id": nurse_id,
        "recorded_by": by,
        "note": note.strip() if note else None,
    }
    given = await _dose_cas(
        {"_id": id, "status": DoseStatus.GIVING.value, "claimed_at": now}, sets, ["claimed_at"]
    )
    if given is None:  # recovered as abandoned meanwhile: its units went back
        raise Conflict("The dose was released meanwhile (it took too long); give it again")
    await _settle(given)
    await changed(given, "given")
    await _record_task(given, TaskStatus.DONE, at, note)
    return given


async def _take(
    dose: MedicationAdministration,
    lines: list[DoseLine],
    ward_id: ObjectId,
    by: str,
    taken: list[DoseLine],
) -> None:
    """Decrement the planned lines; a lost race re-plans the rest from fresh reads."""
    remaining = dose.units if lines else 0
    for _ in range(MAX_ROUNDS):
        for line in lines:
            pending = _line_op(dose, line, by)
            batch = await pharmacy.apply_op(line.batch_id, pending)
            if batch is None:
                break
            taken.append(line)
            remaining -= line.quantity
            await pharmacy.record_movement(batch, pending)
        if remaining == 0:
            return
        fresh = await _usable(dose, ward_id)
        available = sum(b.quantity for b in fresh)
        if available < remaining:
            raise _no_stock(available + dose.units - remaining, dose.units)
        lines = _plan(fresh, remaining)
        # The new lines are on the dose before they touch stock (recoverable).
        pushed = await _doses().update_one(
            {"_id": dose.id, "status": DoseStatus.GIVING.value, "claimed_at": dose.claimed_at},
            {"$push": {"lines": {"$each": [_encoder.encode(x) for x in lines]}}},
        )
        if pushed.matched_count == 0:
            raise Conflict("The dose was released meanwhile (it took too long); give it again")
    raise Conflict("The ward's stock of this drug is changing too fast; retry", fields=["id"])


def _line_op(dose: MedicationAdministration, line: DoseLine, by: str) -> PendingOp:
    return PendingOp(
        op=line.op,
        kind=MovementKind.ADMINISTER,
        delta=-line.quantity,
        by=by,
        reason=f"dose {dose.id}",
        at=utcnow(),
    )


async def _give_back(dose: MedicationAdministration, taken: Sequence[DoseLine], by: str) -> None:
    """A give refused or broken part way: the units taken go back, the dose is scheduled."""
    for line in taken:
        await pharmacy.compensate_op(line.batch_id, line.op, by)
    back = await _dose_cas(
        {"_id": dose.id, "status": DoseStatus.GIVING.value, "claimed_at": dose.claimed_at},
        {"status": DoseStatus.SCHEDULED, "lines": []},
        ["claimed_at"],
    )
    if back is not None:
        await changed(back, "released")


async def _settle(dose: MedicationAdministration) -> None:
    """A given dose's operations leave their batches (their ledger rows first). Repeatable."""
    for line in dose.lines:
        raw = await db.collection(StockBatch).find_one(
            {"_id": line.batch_id, "pending_ops.op": line.op}
        )
        if raw is None:
            continue
        batch = StockBatch.model_validate(raw)
        await pharmacy.record_movement(batch, next(p for p in batch.pending_ops if p.op == line.op))
        await pharmacy.release_ops(line.batch_id, [line.op])
        batch.pending_ops = [p for p in batch.pending_ops if p.op != line.op]
        await changed(batch, "administered")


async def _abandon(dose: MedicationAdministration) -> bool:
    """A claim nobody finished: back to ``scheduled``, its units (if taken) back."""
    back = await _dose_cas(
        {"_id": dose.id, "status": DoseStatus.GIVING.value, "claimed_at": dose.claimed_at},
        {"status": DoseStatus.SCHEDULED, "lines": []},
        ["claimed_at"],
    )
    if back is None:
        return False
    for line in dose.lines:
        await pharmacy.compensate_op(line.batch_id, line.op, pharmacy.SYSTEM)
    await changed(back, "released")
    return True


async def finish_op(batch: StockBatch, pending: PendingOp, now: datetime) -> bool:
    """An ``administer`` operation left on a batch past its grace (``pharmacy.recover``):
    settled if its dose was given with it, left while its give may still run, else given back."""
    raw = await _doses().find_one({"lines.op": pending.op})
    dose = None if raw is None else MedicationAdministration.model_validate(raw)
    if dose is not None and dose.status == DoseStatus.GIVING:
        if dose.claimed_at is not None and dose.claimed_at > now - GRACE:
            return False
        await _abandon(dose)
        return True
    if dose is not None and dose.status == DoseStatus.GIVEN:
        await _settle(dose)
        return True
    return await pharmacy.compensate_op(batch.id, pending.op, pharmacy.SYSTEM)  # type: ignore[arg-type]


async def recover(now: datetime | None = None) -> int:
    """Claims older than ``GRACE`` go back to ``scheduled`` with their units; how many."""
    now = now or utcnow()
    stale = _doses().find({"status": DoseStatus.GIVING.value, "claimed_at": {"$lte": now - GRACE}})
    released = 0
    for raw in await stale.to_list(None):
        released += await _abandon(MedicationAdministration.model_validate(raw))
    return released


async def hold(
    id: ObjectId, nurse_id: ObjectId, reason: str, by: str | None
) -> MedicationAdministration:
    """Not given on purpose (nil by mouth, blood pressure too low ...): no stock moves."""
    return await _not_given(id, DoseStatus.HELD, nurse_id, reason, by)


async def refuse(
    id: ObjectId, nurse_id: ObjectId, reason: str, by: str | None
) -> MedicationAdministration:
    """The patient refused the dose: no stock moves."""
    return await _not_given(id, DoseStatus.REFUSED, nurse_id, reason, by)


async def _not_given(
    id: ObjectId, status: DoseStatus, nurse_id: ObjectId, reason: str, by: str | None
) -> MedicationAdministration:
    now = utcnow()
    dose = await _recordable(id, now)
    text = (reason or "").strip()
    if not 0 < len(text) <= 200:
        raise BadUserInput(
            "reason: give a reason of at most 200 characters", {"reason": "1 to 200 characters"}
        )
    sets = {
        "status": status,
        "reason": text,
        "recorded_at": now,
        "recorded_by_id": nurse_id,
        "recorded_by": by,
    }
    done = await _dose_cas(
        {"_id": id, "status": DoseStatus.SCHEDULED.value, "version": dose.version}, sets
    )
    if done is None:
        raise Conflict("The dose changed meanwhile (recorded or cancelled); read it again")
    await changed(done, status.value)
    await _record_task(done, TaskStatus.SKIPPED, None, f"{status.value}: {text}"[:200])
    return done


async def _record_task(
    dose: MedicationAdministration, status: TaskStatus, at: datetime | None, text: str | None
) -> None:
    """The dose's task is recorded with it (from ``due``; one recorded otherwise stays)."""
    if dose.task_id is None:
        return
    now = utcnow()
    sets: dict[str, Any] = {
        "status": status.value,
        "status_at": now,
        "updated_at": now,
        "done_by_id": dose.recorded_by_id,
        "recorded_by": dose.recorded_by,
    }
    if status == TaskStatus.DONE:
        sets |= {"done_at": at, "note": text.strip() if text else None}
    else:
        sets["reason"] = text
    raw = await db.collection(NursingTask).find_one_and_update(
        {"_id": dose.task_id, "status": TaskStatus.DUE.value},
        {"$set": sets, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is not None:
        await changed(NursingTask.model_validate(raw), status.value)


# -- reads ---------------------------------------------------------------------------------------


def dose_filter(
    *,
    admission_id: ObjectId | None = None,
    ward_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    order_id: ObjectId | None = None,
    statuses: Iterable[DoseStatus] = (),
    due_from: datetime | None = None,
    due_to: datetime | None = None,
) -> Query:
    """``due_from`` inclusive, ``due_to`` exclusive."""
    query: Query = {}
    for name, value in (
        ("admission_id", admission_id),
        ("ward_id", ward_id),
        ("patient_id", patient_id),
        ("order_id", order_id),
    ):
        if value is not None:
            query[name] = value
    wanted = [s.value for s in statuses]
    if wanted:
        query["status"] = {"$in": wanted}
    due: dict[str, datetime] = {}
    if due_from is not None:
        due["$gte"] = instant(due_from, "dueFrom")
    if due_to is not None:
        due["$lt"] = instant(due_to, "dueTo")
    if due:
        query["due_at"] = due
    return query


async def list_doses(
    query: Query, args: PageArgs, scope: Query | None
) -> Page[MedicationAdministration]:
    return await paginate(MedicationAdministration, both(query, scope), BY_DUE, args)


@dataclass
class DrugConsumption:
    """One drug on one ward over a period: doses given, units they took, what is left."""

    drug_id: ObjectId | None
    drug_name: str
    doses_given: int = 0
    units_consumed: int = 0
    stock_remaining: int = 0


@dataclass
class WardConsumption:
    ward_id: ObjectId
    since: datetime
    until: datetime
    drugs: list[DrugConsumption] = field(default_factory=list)


async def ward_consumption(ward_id: ObjectId, since: datetime, until: datetime) -> WardConsumption:
    """Per drug: doses given on the ward in ``[since, until)`` and the units they took, with
    the ward's usable stock now (drugs stocked there but not given are listed too)."""
    since, until = instant(since, "from"), instant(until, "to")
    if until <= since:
        raise BadUserInput("to: must be after from", {"to": "must be after from"})
    per: dict[Any, DrugConsumption] = {}
    cursor = _doses().find(
        {
            "ward_id": ward_id,
            "status": DoseStatus.GIVEN.value,
            "given_at": {"$gte": since, "$lt": until},
        },
        {"drug_id": 1, "drug_name": 1, "lines.quantity": 1},
    )
    async for stored in cursor:
        raw = open_document(MEDICATION_ADMINISTRATION_SEALED, stored)  # drug_name is sealed
        drug_id = raw.get("drug_id")
        key = drug_id if drug_id is not None else fold(raw["drug_name"])
        row = per.setdefault(key, DrugConsumption(drug_id, raw["drug_name"]))
        row.doses_given += 1
        row.units_consumed += sum(int(ln["quantity"]) for ln in raw.get("lines", []))
    stock = db.collection(StockBatch).find(
        {
            "location": StockLocation.WARD.value,
            "ward_id": ward_id,
            "expiry": {"$gt": pharmacy.day_start(utcnow())},
            "quantity": {"$gt": 0},
        },
        {"drug_id": 1, "quantity": 1},
    )
    async for raw in stock:
        row = per.setdefault(raw["drug_id"], DrugConsumption(raw["drug_id"], ""))
        row.stock_remaining += int(raw["quantity"])
    names = {
        d.id: d.generic_name
        async for d in Drug.find({"_id": {"$in": [k for k in per if isinstance(k, ObjectId)]}})
    }
    for key, row in per.items():
        if isinstance(key, ObjectId) and key in names:
            row.drug_name = names[key]
    drugs = sorted(per.values(), key=lambda r: (fold(r.drug_name), str(r.drug_id)))
    return WardConsumption(ward_id, since, until, drugs)
