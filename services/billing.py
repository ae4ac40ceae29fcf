"""Billing accounts: one per patient; charges and payments in integer minor units.

Every money movement is one ``find_one_and_update`` that pushes the entry and moves the running
total together, so the totals can never disagree with the entries. The invariants are part of
the update's filter, so they hold under concurrent requests too:
- a (source, source_id) is charged at most once per account (``$elemMatch`` under ``$not``),
  so one appointment can carry its consultation fee and its equipment use, each once;
- a payment never exceeds what the patient owes (``$expr`` on the totals; what insurers owe on
  claims is not the patient's to pay, services/insurance.py): overpayment is refused with
  ``BAD_USER_INPUT`` rather than kept as credit, because refunds do not exist yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict, NotFound
from models.base import Entity, Ref, utcnow
from models.billing import BillingAccount, Charge, ChargeSource, Payment
from models.clinical import Treatment, TreatmentPlan
from models.departments import Department
from models.equipment import MedicalEquipment
from models.laboratory import LabOrder
from models.patients import Patient
from models.pharmacy import DISPENSED, Dispense
from models.radiology import ImagingStudy, ImagingStudyStatus
from models.scheduling import Appointment
from models.staff import Doctor
from models.theatre import SurgeryBooking, SurgeryStatus, SurgicalRecord
from services import common
from services.changes import changed
from services.pagination import BY_ID, Page, PageArgs, Query, both, paginate
from services.validation import build, field_path, require

E = TypeVar("E", bound=Entity)

_encoder = Encoder()

CHARGE_FIELDS = frozenset(
    {"description", "amount", "currency", "source", "source_id", "department_id"}
)
PAYMENT_FIELDS = frozenset({"amount", "currency", "method", "reference"})
# Far above any real bill, and far below int64: an amount Mongo cannot store must be bad input.
MAX_AMOUNT = 10**12


async def list_billing_accounts(
    patient_id: ObjectId | None, args: PageArgs, scope: Query | None = None
) -> Page[BillingAccount]:
    query: Query = {} if patient_id is None else {"patient_id": patient_id}
    return await paginate(BillingAccount, both(query, scope), BY_ID, args)


async def get_billing_account(id: ObjectId) -> BillingAccount:
    return await common.get_or_404(BillingAccount, id, "BillingAccount")


async def get_account_for_patient(patient_id: ObjectId) -> BillingAccount | None:
    """``None`` when the patient has no account yet; ``NOT_FOUND`` when there is no patient."""
    account = await BillingAccount.find_one({"patient_id": patient_id})
    if account is None:
        await common.get_or_404(Patient, patient_id, "Patient")
    return account


async def open_billing_account(
    patient_id: ObjectId, currency: str = "EUR", insurance: Mapping[str, Any] | None = None
) -> BillingAccount:
    account = build(
        BillingAccount, {"patient_id": patient_id, "currency": currency, "insurance": insurance}
    )
    await common.ensure_exists(Patient, patient_id, "patientId", "patient")
    try:
        # The unique index on patient_id decides a race between two openings, not a pre-check.
        await account.insert()
    except DuplicateKeyError:
        raise Conflict(
            f"Patient {patient_id} already has an account", fields=["patientId"]
        ) from None
    await changed(account, "created")
    return account


async def update_insurance(
    account_id: ObjectId, insurance: Mapping[str, Any] | None
) -> BillingAccount:
    """``None`` removes the insurance; only that field is written, so totals are never touched."""
    account = await get_billing_account(account_id)
    return await common.update(account, {"insurance": insurance}, "billing account")


def _only(data: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Refuse server-owned fields (ids, timestamps) instead of silently dropping them."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadUserInput(
            "Unknown fields: " + ", ".join(field_path([f]) for f in unknown),
            {field_path([f]): "is not accepted here" for f in unknown},
        )
    return {k: v for k, v in data.items() if k != "currency"}  # checked against the account


def _require_currency(account: BillingAccount, currency: Any) -> None:
    require(currency is not None, "currency", "is required")
    require(
        currency == account.currency, "currency", f"must be the account currency {account.currency}"
    )


def _source(doc: E | None, entity: str) -> E:
    if doc is None:
        raise BadUserInput(f"sourceId: no such {entity}", {"sourceId": f"no such {entity}"})
    return doc


async def _source_department(account: BillingAccount, charge: Charge) -> Ref | None:
    """Where the charge is booked: derived from its source, given only for manual charges."""
    if charge.source == ChargeSource.MANUAL:
        require(charge.source_id is None, "sourceId", "manual charges have no source")
        await common.ensure_exists(Department, charge.department_id, "departmentId", "department")
        return charge.department_id
    require(charge.source_id is not None, "sourceId", f"is required for {charge.source.value}")
    derived: Ref | None
    if charge.source == ChargeSource.TREATMENT:
        treatment = _source(await Treatment.get(charge.source_id), "treatment")
        require(
            treatment.patient_id == account.patient_id,
            "sourceId",
            "is a treatment of another patient",
        )
        plan = await TreatmentPlan.get(treatment.plan_id)
        doctor = None if plan is None else await Doctor.get(plan.doctor_id)
        derived = None if doctor is None else doctor.department_id
    elif charge.source == ChargeSource.APPOINTMENT:
        appointment = _source(await Appointment.get(charge.source_id), "appointment")
        _require_own(account, appointment.patient_id, "appointment")
        derived = appointment.department_id
    elif charge.source == ChargeSource.LAB_ORDER:
        order = _source(await LabOrder.get(charge.source_id), "lab order")
        _require_own(account, order.patient_id, "order")
        require(order.verified_at is not None, "sourceId", "is a lab order not yet verified")
        doctor = await Doctor.get(order.ordering_doctor_id)
        derived = None if doctor is None else doctor.department_id
    elif charge.source == ChargeSource.IMAGING_STUDY:
        study = _source(await ImagingStudy.get(charge.source_id), "imaging study")
        _require_own(account, study.patient_id, "imaging study")
        completed = study.status == ImagingStudyStatus.COMPLETED
        require(completed, "sourceId", "is an imaging study not completed")
        derived = study.department_id
    elif charge.source == ChargeSource.SURGERY:  # theatre time (the booking), procedure (record)
        booking = await SurgeryBooking.get(charge.source_id)
        record = None if booking is not None else await SurgicalRecord.get(charge.source_id)
        if record is not None:
            booking = await SurgeryBooking.get(record.booking_id)
        booking = _source(booking, "surgery booking or surgical record")
        _require_own(account, booking.patient_id, "surgery")
        completed = booking.status == SurgeryStatus.COMPLETED
        require(completed, "sourceId", "is a surgery not completed")
        derived = booking.department_id
    elif charge.source == ChargeSource.DISPENSE:  # the drug handed out, at the master's price
        dispense = _source(await Dispense.get(charge.source_id), "dispense")
        _require_own(account, dispense.patient_id, "dispense")
        require(dispense.status in DISPENSED, "sourceId", "is a dispense not completed")
        prescriber = await Doctor.get(dispense.prescriber_id)
        derived = None if prescriber is None else prescriber.department_id
    else:
        derived = await _equipment_use_department(account, ObjectId(charge.source_id))
    if charge.department_id is not None:
        require(
            charge.department_id == derived,
            "departmentId",
            "is derived from the source; leave it out",
        )
    return derived


def _charged(account: BillingAccount, charge: Charge) -> bool:
    return any(
        (c.source, c.source_id) == (charge.source, charge.source_id) for c in account.charges
    )


def _require_own(account: BillingAccount, patient_id: ObjectId, entity: str) -> None:
    require(patient_id == account.patient_id, "sourceId", f"is an {entity} of another patient")


async def _equipment_use_department(account: BillingAccount, source_id: ObjectId) -> Ref | None:
    """Equipment is billed per use: the appointment that booked it or the treatment that used it.

    The charge belongs to the device's department, whoever booked or used it.
    """
    use: Appointment | Treatment | None = await Appointment.get(source_id)
    if use is None:
        use = await Treatment.get(source_id)
    if use is None:
        reason = "no such appointment or treatment"
        raise BadUserInput(f"sourceId: {reason}", {"sourceId": reason})
    _require_own(account, use.patient_id, type(use).__name__.lower())
    require(use.equipment_id is not None, "sourceId", "used no equipment")
    assert use.equipment_id is not None
    device = _source(await MedicalEquipment.get(use.equipment_id), "equipment")
    return device.department_id


def _already_charged(source_id: ObjectId) -> Conflict:
    return Conflict(f"{source_id} is already charged on this account", fields=["sourceId"])


async def _write(account: BillingAccount, guard: Query, update: Query) -> BillingAccount | None:
    raw = await db.collection(BillingAccount).find_one_and_update(
        {"_id": account.id, "currency": account.currency, **guard},
        update,
        return_document=ReturnDocument.AFTER,
    )
    return None if raw is None else BillingAccount.model_validate(raw)


async def _reread(account_id: ObjectId) -> BillingAccount:
    fresh = await BillingAccount.get(account_id)
    if fresh is None:
        raise NotFound("BillingAccount", str(account_id))
    return fresh


async def add_charge(account_id: ObjectId, data: Mapping[str, Any]) -> BillingAccount:
    account = await get_billing_account(account_id)
    fields = _only(data, CHARGE_FIELDS)
    _require_currency(account, data.get("currency"))
    now = utcnow()
    charge = build(Charge, {**fields, "created_at": now})
    require(charge.amount <= MAX_AMOUNT, "amount", f"must be at most {MAX_AMOUNT}")
    charge.department_id = await _source_department(account, charge)
    source_id = charge.source_id
    if source_id is not None and _charged(account, charge):
        raise _already_charged(source_id)
    same = {"source": charge.source.value, "source_id": source_id}
    guard: Query = {} if source_id is None else {"charges": {"$not": {"$elemMatch": same}}}
    updated = await _write(
        account,
        guard,
        {
            "$push": {"charges": _encoder.encode(charge)},
            "$inc": {"total_charged": charge.amount},
            "$set": {"updated_at": now},
        },
    )
    if updated is None:
        fresh = await _reread(account_id)
        if source_id is not None and _charged(fresh, charge):
            raise _already_charged(source_id)
        raise Conflict(f"BillingAccount {account_id} changed meanwhile; retry")
    await changed(updated, "charged")
    return updated


def _exceeds(account: BillingAccount, amount: int) -> BadUserInput:
    # What the patient owes: insurers' dues on claims are not the patient's to pay.
    owed = max(account.patient_due, 0)
    reason = f"exceeds the outstanding balance of {owed} ({account.currency})"
    return BadUserInput(f"amount: {amount} {reason}", {"amount": reason})


def patient_due_at_least(amount: int) -> Query:
    """The account's patient due (models.billing: charges less payments, write-offs and what
    insurers owe) is at least ``amount``: a filter, so concurrent writes cannot overdraw it."""
    taken = [
        "$total_paid",
        {"$ifNull": ["$insurer_due", 0]},
        {"$ifNull": ["$written_off", 0]},
        amount,
    ]
    return {"$expr": {"$lte": [{"$add": taken}, "$total_charged"]}}


async def record_payment(account_id: ObjectId, data: Mapping[str, Any]) -> BillingAccount:
    account = await get_billing_account(account_id)
    fields = _only(data, PAYMENT_FIELDS)
    _require_currency(account, data.get("currency"))
    now = utcnow()
    payment = build(Payment, {**fields, "received_at": now})
    require(payment.amount <= MAX_AMOUNT, "amount", f"must be at most {MAX_AMOUNT}")
    if payment.amount > account.patient_due:
        raise _exceeds(account, payment.amount)
    # The check again, atomically: concurrent payments (or claims) cannot overdraw together.
    fits = patient_due_at_least(payment.amount)
    updated = await _write(
        account,
        fits,
        {
            "$push": {"payments": _encoder.encode(payment)},
            "$inc": {"total_paid": payment.amount},
            "$set": {"updated_at": now},
        },
    )
    if updated is None:
        raise _exceeds(await _reread(account_id), payment.amount)
    await changed(updated, "paid")
    return updated
