"""Laboratory workflow: order -> samples collected and received -> results -> verified -> charged.

Every step is a compare-and-set on the order's ``status`` and ``version`` (no transactions), so
of two racing steps on one order exactly one takes effect and the other gets ``CONFLICT``; the
order's version is claimed before anything else is written, so a refused step writes nothing.

- Accession numbers come from a per-day counter incremented atomically (``$inc`` with upsert),
  with a unique index on the samples behind it: numbers never repeat, whichever process asks.
- Results are versions. Entering a value for an analyte that has one makes the next version and
  leaves the old one stored (``current`` False); correcting a verified value needs a reason and
  sends the order back to ``resulted`` until it is verified again.
- The reference range is the first of the analyte's ranges that fits the patient's sex and age
  (whole years) at the sample's collection; the flag follows from it and the critical limits.
- Verification is by a second person: no current unverified result may have been entered by
  the verifying account. It copies the current values onto the order's ``report`` (what the
  patient may read) and then adds the order's charge to the patient's account, once: the
  charge's (source, order id) is unique on the account (``services.billing``), and the order
  records ``charged_at`` afterwards.
- A critical value notifies the ordering doctor at once: a notification keyed on the result
  version (so each is queued once), and the result's domain event, which the
  ``labResultEntered`` subscription delivers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, Forbidden
from models.base import utcnow
from models.billing import BillingAccount, ChargeSource
from models.laboratory import (
    AccessionCounter,
    Analyte,
    CustodyStep,
    LabOrder,
    LabOrderStatus,
    LabPriority,
    LabResult,
    LabSample,
    LabStatusChange,
    LabTest,
    OrderedTest,
    ReferenceRange,
    ReportLine,
    ResultFlag,
    ResultStatus,
    SampleStatus,
    SpecimenType,
)
from models.notifications import NotificationKind, Recipient, RecipientKind
from models.outpatient import OutpatientVisit
from models.patients import Patient, Sex, age_on
from models.staff import Doctor
from services import admissions, billing, common, notifications
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.validation import Problems, build, instant, require

log = logging.getLogger(__name__)
_encoder = Encoder()

LIVE_SAMPLES = (SampleStatus.COLLECTED, SampleStatus.RECEIVED)
RESULTABLE = (LabOrderStatus.RECEIVED, LabOrderStatus.RESULTED, LabOrderStatus.VERIFIED)
CANCELLABLE = (LabOrderStatus.ORDERED, LabOrderStatus.COLLECTED, LabOrderStatus.RECEIVED)
MAX_RESULTS_PER_CALL = 100


# -- catalogue ------------------------------------------------------------------------------------


async def list_lab_tests(
    active: bool | None,
    specimen_type: SpecimenType | None,
    args: PageArgs,
    scope: Query | None = None,
) -> Page[LabTest]:
    query: Query = {}
    if active is not None:
        query["active"] = active
    if specimen_type is not None:
        query["specimen_type"] = specimen_type.value
    return await paginate(LabTest, both(query, scope), BY_ID, args)


async def get_lab_test(id: ObjectId) -> LabTest:
    return await common.get_or_404(LabTest, id, "LabTest")


def _check_analytes(test: LabTest) -> None:
    codes = [a.code for a in test.analytes]
    require(len(set(codes)) == len(codes), "analytes", "analyte codes must be unique")
    for i, a in enumerate(test.analytes):
        if a.critical_low is not None and a.critical_high is not None:
            require(
                a.critical_low < a.critical_high,
                f"analytes.{i}.criticalLow",
                "must be below criticalHigh",
            )


async def create_lab_test(data: Mapping[str, Any]) -> LabTest:
    test = build(LabTest, data)
    _check_analytes(test)
    return await common.insert(test, "lab test")


async def update_lab_test(id: ObjectId, changes: Mapping[str, Any]) -> LabTest:
    """Orders keep the name and price they were placed with, so the catalogue may change."""
    test = await get_lab_test(id)
    require("code" not in changes, "code", "a test's code never changes")
    updated = await common.update(test, changes, "lab test")
    _check_analytes(updated)
    return updated


# -- orders ---------------------------------------------------------------------------------------


async def list_lab_orders(
    filters: Mapping[str, Any], args: PageArgs, scope: Query | None = None
) -> Page[LabOrder]:
    """``filters``: patient_id, ordering_doctor_id, visit_id, status, priority,
    ordered_from (inclusive), ordered_to (exclusive)."""
    query: Query = {
        k: v.value if isinstance(v, LabOrderStatus | LabPriority) else v
        for k in ("patient_id", "ordering_doctor_id", "visit_id", "status", "priority")
        if (v := filters.get(k)) is not None
    }
    start, end = filters.get("ordered_from"), filters.get("ordered_to")
    if start is not None or end is not None:
        window: Query = {}
        if start is not None:
            window["$gte"] = instant(start, "orderedFrom")
        if end is not None:
            window["$lt"] = instant(end, "orderedTo")
        if start is not None and end is not None:
            require(window["$lt"] > window["$gte"], "orderedTo", "must be after orderedFrom")
        query["ordered_at"] = window
    return await paginate(LabOrder, both(query, scope), BY_ID, args)


async def get_lab_order(id: ObjectId) -> LabOrder:
    return await common.get_or_404(LabOrder, id, "LabOrder")


async def create_lab_order(data: Mapping[str, Any], by: str) -> LabOrder:
    """``data``: patient_id, ordering_doctor_id, test_codes, priority, visit_id or admission_id,
    clinical_notes. Every problem of the input is reported at once."""
    problems = Problems()
    codes = [str(c).strip().upper() for c in data.get("test_codes") or []]
    problems.require(bool(codes), "testCodes", "order at least one test")
    problems.require(len(codes) <= 30, "testCodes", "at most 30 tests per order")
    problems.require(len(set(codes)) == len(codes), "testCodes", "a test is ordered once")
    patient = await Patient.get(data["patient_id"])
    problems.require(patient is not None, "patientId", "no such patient")
    doctor = await Doctor.get(data["ordering_doctor_id"])
    problems.require(
        doctor is not None and doctor.active, "orderingDoctorId", "no such active doctor"
    )
    visit_id, admission_id = data.get("visit_id"), data.get("admission_id")
    problems.require(
        visit_id is None or admission_id is None, "visitId", "give a visit or an admission"
    )
    if visit_id is not None:
        visit = await OutpatientVisit.get(visit_id)
        if problems.require(visit is not None, "visitId", "no such visit"):
            assert visit is not None
            problems.require(
                visit.patient_id == data["patient_id"], "visitId", "is another patient's visit"
            )
    await admissions.check_admission(problems, admission_id, data["patient_id"])
    found = {t.code: t for t in await LabTest.find({"code": {"$in": codes}}).to_list()}
    for i, code in enumerate(codes):
        test = found.get(code)
        problems.require(
            test is not None and test.active, f"testCodes.{i}", f"no active test {code}"
        )
    problems.raise_any()
    now = utcnow()
    tests = [
        OrderedTest(
            test_id=t.id,
            code=t.code,
            name=t.name,
            specimen_type=t.specimen_type,
            price=t.price,
        )
        for t in (found[c] for c in codes)
        if t.id is not None
    ]
    currencies = {found[c].currency for c in codes}
    require(len(currencies) == 1, "testCodes", "tests priced in different currencies")
    order = build(
        LabOrder,
        {
            "patient_id": data["patient_id"],
            "ordering_doctor_id": data["ordering_doctor_id"],
            "visit_id": visit_id,
            "admission_id": admission_id,
            "tests": [t.model_dump() for t in tests],
            "priority": data.get("priority") or LabPriority.ROUTINE,
            "clinical_notes": data.get("clinical_notes"),
            "status": LabOrderStatus.ORDERED,
            "status_history": [{"status": LabOrderStatus.ORDERED, "at": now, "by": by}],
            "ordered_at": now,
            "charge_amount": sum(t.price for t in tests),
            "currency": currencies.pop(),
            "created_at": now,
        },
    )
    return await common.insert(order, "lab order")


async def _advance(
    order: LabOrder,
    to: LabOrderStatus | None,
    by: str,
    now: datetime,
    sets: Mapping[str, Any] | None = None,
    allowed: Sequence[LabOrderStatus] | None = None,
) -> LabOrder:
    """Compare-and-set on the order's status and version; ``CONFLICT`` when it moved meanwhile.
    ``to`` None keeps the status (the version still moves, serialising writers)."""
    statuses = [s.value for s in (allowed or (order.status,))]
    update: dict[str, Any] = {
        "$set": {"updated_at": now, **{k: _encoder.encode(v) for k, v in (sets or {}).items()}},
        "$inc": {"version": 1},
    }
    if to is not None:
        update["$set"]["status"] = to.value
        change = LabStatusChange(status=to, at=now, by=by)
        update["$push"] = {"status_history": _encoder.encode(change)}
    raw = await db.collection(LabOrder).find_one_and_update(
        {"_id": order.id, "version": order.version, "status": {"$in": statuses}},
        update,
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The lab order changed meanwhile; read it again and retry")
    return LabOrder.model_validate(raw)


def _require_status(order: LabOrder, allowed: Sequence[LabOrderStatus], doing: str) -> None:
    if order.status not in allowed:
        names = ", ".join(s.value for s in allowed)
        raise BadUserInput(
            f"Cannot {doing} a {order.status.value} order (only {names})",
            {"id": f"order is {order.status.value}"},
        )


async def cancel_lab_order(id: ObjectId, reason: str, by: str) -> LabOrder:
    order = await get_lab_order(id)
    reason = (reason or "").strip()
    require(0 < len(reason) <= 200, "reason", "give a reason of at most 200 characters")
    _require_status(order, CANCELLABLE, "cancel")
    done = await _advance(order, LabOrderStatus.CANCELLED, by, utcnow(), {"cancel_reason": reason})
    await changed(done, "cancelled")
    return done


# -- samples --------------------------------------------------------------------------------------


async def next_accession(now: datetime) -> str:
    """``L<YYYYMMDD>-<n>``: the day's counter, incremented atomically (any process, any race)."""
    day = now.strftime("%Y%m%d")
    counters = db.collection(AccessionCounter)
    for _ in range(3):
        try:
            raw = await counters.find_one_and_update(
                {"_id": day},
                {"$inc": {"seq": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # two first-of-the-day upserts: the loser increments next
            continue
        return f"L{day}-{int(raw['seq']):05d}"
    raise Conflict("Could not number the sample; retry")


async def samples_of(order_id: ObjectId | None) -> list[LabSample]:
    return await LabSample.find({"order_id": order_id}).sort("+_id").to_list()


async def collect_samples(
    order_id: ObjectId, by: str, collected_at: datetime | None = None
) -> LabOrder:
    """Collect one sample per specimen type the order still needs (all at first; after a
    rejection, the rejected types again)."""
    order = await get_lab_order(order_id)
    now = utcnow()
    when = now if collected_at is None else instant(collected_at, "collectedAt")
    require(when <= now, "collectedAt", "must not be in the future")
    require(when >= order.ordered_at, "collectedAt", "must not be before the order")
    _require_status(order, (LabOrderStatus.ORDERED,), "collect samples for")
    existing = await samples_of(order.id)
    live = {s.specimen_type for s in existing if s.status in LIVE_SAMPLES}
    rejected = {s.specimen_type: s.id for s in existing if s.status == SampleStatus.REJECTED}
    needed = sorted({t.specimen_type for t in order.tests} - live)
    require(bool(needed), "id", "every specimen of this order is collected")
    samples = [
        LabSample(
            id=PydanticObjectId(),  # insert_many leaves ids unset; events and links need them
            order_id=order_id,
            patient_id=order.patient_id,
            ordering_doctor_id=order.ordering_doctor_id,
            accession_number=await next_accession(now),
            specimen_type=kind,
            collected_at=when,
            collected_by=by,
            replaces_sample_id=rejected.get(kind),
            custody=[CustodyStep(status=SampleStatus.COLLECTED, at=when, by=by)],
            created_at=now,
        )
        for kind in needed
    ]
    done = await _advance(order, LabOrderStatus.COLLECTED, by, now, {"collected_at": when})
    await LabSample.insert_many(samples)
    for sample in samples:
        await changed(sample, "collected")
    await changed(done, "collected")
    return done


async def get_lab_sample(id: ObjectId) -> LabSample:
    return await common.get_or_404(LabSample, id, "LabSample")


async def _custody(
    sample: LabSample,
    allowed: Sequence[SampleStatus],
    step: CustodyStep,
    sets: Mapping[str, Any],
) -> LabSample:
    raw = await db.collection(LabSample).find_one_and_update(
        {"_id": sample.id, "status": {"$in": [s.value for s in allowed]}},
        {
            "$set": {"status": step.status.value, "updated_at": step.at, **sets},
            "$push": {"custody": _encoder.encode(step)},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The sample changed meanwhile; read it again and retry")
    return LabSample.model_validate(raw)


async def receive_sample(sample_id: ObjectId, by: str) -> LabSample:
    """The lab takes the sample in; the order is ``received`` once all its samples are."""
    sample = await get_lab_sample(sample_id)
    require(sample.status == SampleStatus.COLLECTED, "id", f"the sample is {sample.status.value}")
    now = utcnow()
    step = CustodyStep(status=SampleStatus.RECEIVED, at=now, by=by)
    done = await _custody(sample, (SampleStatus.COLLECTED,), step, {"received_at": now})
    await changed(done, "received")
    order = await get_lab_order(sample.order_id)
    live = [s for s in await samples_of(order.id) if s.status in LIVE_SAMPLES]
    if order.status == LabOrderStatus.COLLECTED and all(
        s.status == SampleStatus.RECEIVED for s in live
    ):
        try:
            moved = await _advance(order, LabOrderStatus.RECEIVED, by, now, {"received_at": now})
        except Conflict:
            pass  # a concurrent receipt moved it (or a rejection sent it back): theirs stands
        else:
            await changed(moved, "received")
    return done


async def reject_sample(sample_id: ObjectId, reason: str, by: str) -> LabSample:
    """Refuse a sample (haemolysed, mislabelled...): the order waits for a recollection."""
    sample = await get_lab_sample(sample_id)
    reason = (reason or "").strip()
    require(0 < len(reason) <= 200, "reason", "give a reason of at most 200 characters")
    require(sample.status in LIVE_SAMPLES, "id", f"the sample is {sample.status.value}")
    order = await get_lab_order(sample.order_id)
    _require_status(
        order, (LabOrderStatus.COLLECTED, LabOrderStatus.RECEIVED), "reject a sample of"
    )
    now = utcnow()
    # The order first: a rejection racing a result entry or another step loses cleanly.
    moved = await _advance(order, LabOrderStatus.ORDERED, by, now)
    step = CustodyStep(status=SampleStatus.REJECTED, at=now, by=by, reason=reason)
    done = await _custody(sample, LIVE_SAMPLES, step, {"rejection_reason": reason})
    await changed(done, "rejected")
    await changed(moved, "sample_rejected")
    return done


# -- results --------------------------------------------------------------------------------------


def reference_for(analyte: Analyte, sex: Sex, age_years: int) -> ReferenceRange | None:
    """The first range for this sex (or any sex) and age band; None when none fits."""
    return next((r for r in analyte.ranges if r.applies(sex, age_years)), None)


def flag_for(value: float, analyte: Analyte, reference: ReferenceRange | None) -> ResultFlag:
    if analyte.critical_low is not None and value < analyte.critical_low:
        return ResultFlag.CRITICAL_LOW
    if analyte.critical_high is not None and value > analyte.critical_high:
        return ResultFlag.CRITICAL_HIGH
    if reference is not None and reference.low is not None and value < reference.low:
        return ResultFlag.LOW
    if reference is not None and reference.high is not None and value > reference.high:
        return ResultFlag.HIGH
    return ResultFlag.NORMAL


async def current_results(order_id: ObjectId | None) -> list[LabResult]:
    return await LabResult.find({"order_id": order_id, "current": True}).sort("+_id").to_list()


async def enter_results(
    order_id: ObjectId, items: Sequence[Mapping[str, Any]], by: str
) -> list[LabResult]:
    """Record values (``test_code``, ``analyte_code``, ``value``, ``comment``,
    ``correction_reason``); each becomes the analyte's next version."""
    order = await get_lab_order(order_id)
    problems = Problems()
    problems.require(bool(items), "results", "give at least one result")
    problems.require(
        len(items) <= MAX_RESULTS_PER_CALL, "results", f"at most {MAX_RESULTS_PER_CALL}"
    )
    _require_status(order, RESULTABLE, "enter results for")
    patient = await Patient.get(order.patient_id)
    if patient is None:
        raise Conflict("The order's patient no longer exists")
    ordered = {t.code: t for t in order.tests}
    catalogue = {
        t.code: t
        for t in await LabTest.find({"_id": {"$in": [t.test_id for t in order.tests]}}).to_list()
    }
    samples = {
        s.specimen_type: s for s in await samples_of(order.id) if s.status == SampleStatus.RECEIVED
    }
    current = {(r.test_code, r.analyte_code): r for r in await current_results(order.id)}
    now = utcnow()
    new: list[LabResult] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        where = f"results.{i}"
        test_code = str(item.get("test_code", "")).strip().upper()
        analyte_code = str(item.get("analyte_code", "")).strip().upper()
        value = item.get("value")
        test = catalogue.get(test_code)
        if not problems.require(
            test_code in ordered and test is not None, f"{where}.testCode", "not in this order"
        ):
            continue
        assert test is not None
        analyte = next((a for a in test.analytes if a.code == analyte_code), None)
        if not problems.require(
            analyte is not None, f"{where}.analyteCode", f"not an analyte of {test_code}"
        ):
            continue
        assert analyte is not None
        key = (test_code, analyte_code)
        problems.require(key not in seen, f"{where}.analyteCode", "given twice")
        seen.add(key)
        finite = isinstance(value, int | float) and math.isfinite(value) and abs(value) < 1e12
        if not problems.require(finite, f"{where}.value", "must be a finite number"):
            continue
        number = float(value)  # type: ignore[arg-type]  # checked just above
        sample = samples.get(ordered[test_code].specimen_type)
        if not problems.require(
            sample is not None, f"{where}.testCode", "no received sample for this test"
        ):
            continue
        assert sample is not None
        previous = current.get(key)
        reason = (item.get("correction_reason") or "").strip() or None
        if previous is not None and previous.status == ResultStatus.VERIFIED:
            problems.require(
                reason is not None,
                f"{where}.correctionReason",
                "required to correct a verified value",
            )
        reference = reference_for(
            analyte, patient.sex, age_on(patient.date_of_birth, sample.collected_at.date())
        )
        result = problems.build(
            LabResult,
            {
                "id": PydanticObjectId(),  # set here: insert_many does not set it
                "order_id": order.id,
                "patient_id": order.patient_id,
                "ordering_doctor_id": order.ordering_doctor_id,
                "sample_id": sample.id,
                "test_code": test_code,
                "analyte_code": analyte_code,
                "analyte_name": analyte.name,
                "value": float(number),
                "unit": analyte.unit,
                "reference_low": reference.low if reference else None,
                "reference_high": reference.high if reference else None,
                "reference_range": reference.label if reference else None,
                "flag": flag_for(float(number), analyte, reference),
                "comment": item.get("comment"),
                "version": previous.version + 1 if previous else 1,
                "supersedes_id": previous.id if previous else None,
                "correction_reason": reason,
                "entered_by": by,
                "entered_at": now,
                "created_at": now,
            },
        )
        if result is not None:
            new.append(result)
    problems.raise_any()
    covered = set(current) | {(r.test_code, r.analyte_code) for r in new}
    wanted = {(code, a.code) for code, t in catalogue.items() for a in t.analytes}
    complete = wanted <= covered
    status = LabOrderStatus.RESULTED if complete else LabOrderStatus.RECEIVED
    to = None if status == order.status else status
    sets = {"resulted_at": now} if to == LabOrderStatus.RESULTED else {}
    # Claim the order's version first: of two racing entries (or an entry and a verification)
    # one proceeds; the unique (order, analyte, version) index stands behind it.
    moved = await _advance(order, to, by, now, sets)
    try:
        await LabResult.insert_many(new)
    except DuplicateKeyError:
        raise Conflict("Another entry for these analytes came first; read again") from None
    superseded = [r.supersedes_id for r in new if r.supersedes_id is not None]
    if superseded:
        await db.collection(LabResult).update_many(
            {"_id": {"$in": superseded}}, {"$set": {"current": False, "updated_at": now}}
        )
        for old in await LabResult.find({"_id": {"$in": superseded}}).to_list():
            await changed(old, "superseded")
    for result in new:
        await changed(result, "corrected" if result.supersedes_id else "entered")
        if result.flag.critical:
            await notify_critical(result)
    await changed(moved, "resulted" if to == LabOrderStatus.RESULTED else "results_entered")
    return new


async def notify_critical(result: LabResult) -> bool:
    """Queue the ordering doctor's message for a critical value (once per result version). It
    names the order and the urgency, not the analyte or the value: those are read in SHMS."""
    kind = NotificationKind.LAB_CRITICAL_RESULT
    return await notifications.enqueue(
        f"{kind.value}:{result.id}",
        Recipient(kind=RecipientKind.DOCTOR, id=result.ordering_doctor_id),
        kind,
        "Critical laboratory result",
        f"Lab order {result.order_id} has a critical result: review it now.",
    )


# -- verification and charge ----------------------------------------------------------------------


async def verify_order(order_id: ObjectId, by: str) -> LabOrder:
    order = await get_lab_order(order_id)
    _require_status(order, (LabOrderStatus.RESULTED,), "verify")
    results = await current_results(order.id)
    pending = [r for r in results if r.status == ResultStatus.PRELIMINARY]
    if any(r.entered_by == by for r in pending):
        raise Forbidden("A second person verifies: you entered results of this order")
    now = utcnow()
    report = [
        ReportLine(
            result_id=r.id,
            test_code=r.test_code,
            analyte_code=r.analyte_code,
            analyte_name=r.analyte_name,
            value=r.value,
            unit=r.unit,
            reference_range=r.reference_range,
            flag=r.flag,
            version=r.version,
            verified_at=r.verified_at or now,
        )
        for r in results
        if r.id is not None
    ]
    done = await _advance(
        order,
        LabOrderStatus.VERIFIED,
        by,
        now,
        {"verified_at": now, "verified_by": by, "report": report},
    )
    ids = [r.id for r in pending]
    if ids:
        await db.collection(LabResult).update_many(
            {"_id": {"$in": ids}, "status": ResultStatus.PRELIMINARY.value},
            {
                "$set": {
                    "status": "verified",
                    "verified_by": by,
                    "verified_at": now,
                    "updated_at": now,
                }
            },
        )
        for result in await LabResult.find({"_id": {"$in": ids}}).to_list():
            await changed(result, "verified")
    await changed(done, "verified")
    return await settle_charge(done)


def charge_description(order: LabOrder) -> str:
    """The bill's line: how many tests, never which (billing sees no clinical detail)."""
    count = len(order.tests)
    return f"Laboratory order ({count} test{'' if count == 1 else 's'})"


async def settle_charge(order: LabOrder) -> LabOrder:
    """Add a verified order's charge to the patient's account, once (safe to repeat or race)."""
    if order.charged_at is not None or order.verified_at is None or order.charge_amount <= 0:
        return order
    account = await BillingAccount.find_one({"patient_id": order.patient_id})
    if account is None:
        try:
            account = await billing.open_billing_account(order.patient_id, order.currency)
        except Conflict:  # opened meanwhile
            account = await BillingAccount.find_one({"patient_id": order.patient_id})
    assert account is not None and account.id is not None
    if account.currency != order.currency:
        log.warning("lab order %s is priced in %s, account in %s: not charged", order.id,
                    order.currency, account.currency)  # fmt: skip
        return order
    try:
        await billing.add_charge(
            account.id,
            {
                "description": charge_description(order),
                "amount": order.charge_amount,
                "currency": order.currency,
                "source": ChargeSource.LAB_ORDER.value,
                "source_id": order.id,
            },
        )
    except Conflict:
        fresh = await BillingAccount.get(account.id)
        if fresh is None or not any(c.source_id == order.id for c in fresh.charges):
            raise
    raw = await db.collection(LabOrder).find_one_and_update(
        {"_id": order.id, "charged_at": None},
        {"$set": {"charged_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        return await get_lab_order(order.id)
    charged = LabOrder.model_validate(raw)
    await changed(charged, "charged")
    return charged
