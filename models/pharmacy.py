"""Pharmacy stock per batch, dispenses against prescriptions, and the stock ledger.

A ``StockBatch`` is one lot of one drug at one location: the pharmacy's store
(``StockLocation.PHARMACY``) or a ward's stock (``location`` ``"ward"`` with its ``ward_id``, which
medication administration consumes). Its ``quantity`` only ever moves by one conditional atomic
update (``services.pharmacy``), never below zero. ``pending_ops`` lists the operations applied to
the batch whose bookkeeping is not finished yet (the ledger row written, the dispense settled):
it is what makes a crash between two writes recoverable, since the applied operation is
recorded in the same atomic update that moved the quantity.

A ``Dispense`` is the pharmacy handing a prescription's drug out of its store: written
``pending`` (with its first planned lines) before any stock moves, ``completed`` once every line
is taken, or for a controlled drug ``awaiting_confirmation`` (the stock held) until a second
pharmacist confirms. ``failed`` and ``expired`` dispenses gave their stock back (compensation).

``StockMovement`` is the ledger: one row per quantity change of a batch (receive, dispense,
return, write-off, compensation), keyed by the operation, written once; a batch's quantity is
the sum of its movements. It is append-only and written directly (``published=False``).

Who reads what:
- pharmacists: everything here; admin too;
- doctors and nurses: batches and stock levels (locations, expiry, quantities), never costs; the
  dispenses of patients they treat (the prescriber is a clinician of every dispense);
- billing: batches with their cost, dispenses with their charge;
- the patient: their own dispenses and what they were charged, never batch costs;
- analysts: nothing row-level.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from auth.policy import A, Action, C, D, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from models.base import Currency, Entity, Ref, ShortText, UtcDatetime, utcnow


class StockLocation(StrEnum):
    PHARMACY = "pharmacy"  # the pharmacy's own store: dispensing takes stock from here only
    WARD = "ward"  # a ward's stock (the batch names its ``ward_id``)


ACCOUNT = Field(min_length=1, max_length=200, description="The account (token subject).")


class MovementKind(StrEnum):
    RECEIVE = "receive"
    DISPENSE = "dispense"
    RETURN = "return"
    WRITE_OFF = "write_off"
    COMPENSATION = "compensation"
    TRANSFER_OUT = "transfer_out"  # issued from the pharmacy's store to a ward
    TRANSFER_IN = "transfer_in"  # the same units arriving in the ward's stock
    ADMINISTER = "administer"  # a dose given on a ward (services.medication)


class WriteOffReason(StrEnum):
    EXPIRED = "expired"  # only a batch past its expiry
    DAMAGED = "damaged"
    RECALLED = "recalled"
    LOST = "lost"
    OTHER = "other"


class PendingOp(BaseModel):
    """An operation applied to a batch (in the same update that moved its quantity) whose
    ledger row and owner are not settled yet."""

    op: PydanticObjectId
    kind: MovementKind
    delta: int
    dispense_id: Ref | None = None
    by: str
    reason: str | None = None
    at: UtcDatetime


class StockBatch(Entity):
    drug_id: Ref
    batch_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9./-]*$")
    expiry: date = Field(description="Usable until the day before; expired from this day on.")
    quantity: int = Field(ge=0)
    location: StockLocation = StockLocation.PHARMACY
    ward_id: Ref | None = None
    unit_cost: int = Field(ge=0, le=10**9, description="Per unit of issue, in minor units")
    currency: Currency = "EUR"
    received_at: UtcDatetime = Field(default_factory=utcnow)
    received_by: str = ACCOUNT
    version: int = 0
    pending_ops: list[PendingOp] = Field(default_factory=list)

    class Settings:
        name = "stock_batches"
        indexes = [
            pymongo.IndexModel(
                [("drug_id", 1), ("batch_number", 1), ("location", 1), ("ward_id", 1)],
                unique=True,
                name="one_batch_per_location",
            ),
            # FEFO picking: a drug's batches at a location, soonest expiry first.
            pymongo.IndexModel([("drug_id", 1), ("location", 1), ("expiry", 1), ("_id", 1)]),
            pymongo.IndexModel([("expiry", 1), ("_id", 1)]),
            pymongo.IndexModel([("ward_id", 1), ("drug_id", 1)]),
            pymongo.IndexModel("pending_ops.at"),
        ]


class DispenseStatus(StrEnum):
    PENDING = "pending"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    COMPLETED = "completed"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"
    FAILED = "failed"
    EXPIRED = "expired"


HOLDING = (DispenseStatus.PENDING, DispenseStatus.AWAITING_CONFIRMATION)
"""Statuses that hold stock without the dispense being final."""
DISPENSED = (
    DispenseStatus.COMPLETED,
    DispenseStatus.PARTIALLY_RETURNED,
    DispenseStatus.RETURNED,
)
"""Statuses of a dispense that happened (the patient got the drug, some may be back)."""


class DispenseLine(BaseModel):
    op: PydanticObjectId = Field(default_factory=PydanticObjectId)
    batch_id: Ref
    batch_number: str
    expiry: date
    quantity: int = Field(gt=0)
    returned: int = Field(default=0, ge=0)


class DispenseReturn(BaseModel):
    op: PydanticObjectId = Field(default_factory=PydanticObjectId)
    batch_id: Ref
    quantity: int = Field(gt=0)
    reason: ShortText
    by: str
    at: UtcDatetime
    applied: bool = False


class Dispense(Entity):
    prescription_id: Ref
    patient_id: Ref
    prescriber_id: Ref
    drug_id: Ref
    requested: int = Field(gt=0, description="Units asked for by this dispense.")
    quantity: int = Field(default=0, ge=0, description="Units taken from stock.")
    outstanding: int = Field(default=0, ge=0, description="Units the prescription still needs.")
    controlled: bool = False
    status: DispenseStatus = DispenseStatus.PENDING
    lines: list[DispenseLine] = Field(default_factory=list)
    returns: list[DispenseReturn] = Field(default_factory=list)
    dispensed_by: str = ACCOUNT
    confirmed_by: str | None = None
    confirmed_at: UtcDatetime | None = None
    at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime = Field(description="When a pending or unconfirmed hold lapses.")
    failure: str | None = None
    unit_price: int = Field(default=0, ge=0)
    currency: Currency = "EUR"
    charged_at: UtcDatetime | None = None
    picked_up_at: UtcDatetime | None = None
    settled: bool = False
    open_for: Ref | None = Field(
        default=None, description="The prescription, while this dispense holds stock."
    )
    version: int = 0

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity

    class Settings:
        name = "dispenses"
        keep_nulls = False
        indexes = [
            # One dispense at a time per prescription: two pharmacists cannot both hand it out.
            pymongo.IndexModel(
                "open_for", unique=True, sparse=True, name="one_open_dispense_per_prescription"
            ),
            pymongo.IndexModel([("prescription_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("drug_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("expires_at", 1)]),
            pymongo.IndexModel([("settled", 1), ("status", 1)]),
            pymongo.IndexModel("returns.applied"),
        ]


class StockMovement(Entity):
    """One change of one batch's quantity; never updated or removed."""

    op: PydanticObjectId
    kind: MovementKind
    batch_id: Ref
    drug_id: Ref
    location: StockLocation
    ward_id: Ref | None = None
    delta: int
    reason: str | None = None
    by: str
    dispense_id: Ref | None = None
    at: UtcDatetime

    class Settings:
        name = "stock_movements"
        indexes = [
            pymongo.IndexModel([("op", 1), ("kind", 1)], unique=True, name="one_row_per_op"),
            pymongo.IndexModel([("batch_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("drug_id", 1), ("at", 1), ("_id", 1)]),
            pymongo.IndexModel([("dispense_id", 1), ("_id", 1)]),
        ]


# -- policy ---------------------------------------------------------------------------------------

PHARMACIST = R.PHARMACIST
_PHARMACY = {PHARMACIST: grant(A), R.ADMIN: grant(A)}
_STOCK_READERS = {**_PHARMACY, R.DOCTOR: grant(A), R.NURSE: grant(A), R.BILLING: grant(A)}
_COSTS = {**_PHARMACY, R.BILLING: grant(A)}
_STAMPS = ("id", "createdAt", "updatedAt")

STOCK_BATCH = declare(
    "StockBatch",
    StockBatch,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "drugId",
            "drug",
            "batchNumber",
            "expiry",
            "expired",
            "quantity",
            "location",
            "wardId",
            "receivedAt",
            "receivedBy",
            "version",
        ),
        _STOCK_READERS,
    ),
    group("cost", Class.FINANCIAL, ("unitCost",), _COSTS),
    actions={
        "receive": _PHARMACY,
        "writeOff": _PHARMACY,
        "issueToWard": _PHARMACY,
    },
    refs=("drug_id", "ward_id"),
)

# The care team sees what was handed to their patient (the prescriber by CARE: a clinician of
# the row); billing sees that it was dispensed and its charge.
_DISPENSE_READERS = {
    **_PHARMACY,
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
    R.BILLING: grant(A),
}
_DISPENSE_STAFF = {**_PHARMACY, R.DOCTOR: grant(C), R.NURSE: grant(C, D)}

DISPENSE = declare(
    "Dispense",
    Dispense,
    row(
        Class.CLINICAL,
        (
            *_STAMPS,
            "prescriptionId",
            "prescription",
            "patientId",
            "patient",
            "drugId",
            "drug",
            "status",
            "requested",
            "quantity",
            "outstanding",
            "controlled",
            "at",
            "pickedUpAt",
            "version",
        ),
        _DISPENSE_READERS,
    ),
    group(
        "handling",
        Class.OPERATIONAL,
        (
            "prescriberId",
            "lines",
            "returns",
            "dispensedBy",
            "confirmedBy",
            "confirmedAt",
            "expiresAt",
            "failure",
        ),
        _DISPENSE_STAFF,
    ),
    group(
        "charge",
        Class.FINANCIAL,
        ("unitPrice", "amount", "chargedAt"),
        {**_PHARMACY, R.BILLING: grant(A), R.PATIENT: grant(S)},
    ),
    actions={
        Action.CREATE: _PHARMACY,
        "confirm": {PHARMACIST: grant(A)},
        "return": _PHARMACY,
        "pickUp": _PHARMACY,
        "recover": _PHARMACY,
    },
    patient="patient_id",
    clinicians=("prescriber_id",),
    refs=("patient_id", "prescription_id", "drug_id", "prescriber_id"),
    cached=True,
)

STOCK_MOVEMENT = declare(
    "StockMovement",
    StockMovement,
    row(
        Class.OPERATIONAL,
        (
            *_STAMPS,
            "op",
            "kind",
            "batchId",
            "drugId",
            "location",
            "wardId",
            "delta",
            "reason",
            "by",
            "dispenseId",
            "at",
        ),
        _PHARMACY,
    ),
    refs=("batch_id", "drug_id", "dispense_id"),
    published=False,
    order=(("at", 1), ("_id", 1)),
)
