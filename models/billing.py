"""Billing accounts: one per patient, charges and payments in integer minor units."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from auth.policy import A, Action, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Currency, Entity, Name, Ref, ShortText, UtcDatetime


class ChargeSource(StrEnum):
    APPOINTMENT = "appointment"  # the visit itself: consultation or missed-appointment fee
    TREATMENT = "treatment"
    EQUIPMENT_USE = "equipment_use"
    MANUAL = "manual"
    LAB_ORDER = "lab_order"  # a verified laboratory order (services/laboratory.py)
    IMAGING_STUDY = "imaging_study"  # a completed imaging study (services/radiology.py)
    DISPENSE = "dispense"  # a completed pharmacy dispense (services/pharmacy.py)
    SURGERY = "surgery"  # a completed surgery: theatre time and procedure (services/theatre.py)


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    INSURANCE = "insurance"


class Charge(BaseModel):
    id: PydanticObjectId = Field(default_factory=PydanticObjectId)
    description: ShortText
    amount: int = Field(gt=0, description="Minor units of the account currency")
    source: ChargeSource
    source_id: Ref | None = None
    department_id: Ref | None = None
    created_at: UtcDatetime
    # The insurance claim this charge is on (models/insurance.py): set by a compare-and-set on
    # this array element, so a charge is on at most one open claim; cleared when it is voided.
    claim_id: Ref | None = None


class PaymentPayer(StrEnum):
    PATIENT = "patient"  # recordPayment: reduces what the patient owes
    INSURER = "insurer"  # recordInsurerPayment against a claim: reduces what the insurer owes


class Payment(BaseModel):
    id: PydanticObjectId = Field(default_factory=PydanticObjectId)
    amount: int = Field(gt=0)
    method: PaymentMethod
    reference: ShortText | None = None
    received_at: UtcDatetime
    payer: PaymentPayer = PaymentPayer.PATIENT
    claim_id: Ref | None = None


class WriteOffKind(StrEnum):
    CONTRACTUAL = "contractual"  # a claim's adjudication or closing: the payer's contract
    BAD_DEBT = "bad_debt"
    CHARITY = "charity"
    SMALL_BALANCE = "small_balance"


class WriteOff(BaseModel):
    """Owed money the hospital gives up; negative only to reverse a claim's earlier adjustment
    when the claim is adjudicated again after an appeal."""

    id: PydanticObjectId = Field(default_factory=PydanticObjectId)
    amount: int
    kind: WriteOffKind
    reason: ShortText
    claim_id: Ref | None = None
    at: UtcDatetime


class Insurance(BaseModel):
    """Deprecated in favour of ``InsurancePolicy`` (models/insurance.py), which claims are
    built on; kept, still readable and writable, for clients of ``updateInsurance``. The demo
    keeps it equal to the patient's primary policy; nothing else reads it."""

    provider: Name
    policy_number: str = Field(min_length=1, max_length=64)
    group_number: str | None = Field(default=None, max_length=64)
    valid_until: UtcDatetime | None = None


class BillingAccount(Entity):
    patient_id: Ref
    currency: Currency = "EUR"
    charges: list[Charge] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    total_charged: int = 0
    total_paid: int = 0
    insurance: Insurance | None = None
    # The split of what is owed (services/insurance.py): only claims move insurer_due, only
    # insurer payments insurer_paid, only write-offs written_off, each with $inc in the update
    # that records the event. patient_due is what remains, so no other writer of charges or
    # payments has to know about claims; services.insurance.reconcile checks the ledger.
    insurer_due: int = 0
    insurer_paid: int = 0
    written_off: int = 0
    write_offs: list[WriteOff] = Field(default_factory=list)

    @property
    def balance(self) -> int:
        """What is still owed, by the insurer and the patient; negative is credit."""
        return self.total_charged - self.total_paid - self.written_off

    @property
    def patient_due(self) -> int:
        """What the patient still owes: charges less payments, write-offs and the insurer's due."""
        return self.total_charged - self.total_paid - self.insurer_due - self.written_off

    @property
    def patient_paid(self) -> int:
        return self.total_paid - self.insurer_paid

    class Settings:
        name = "billing_accounts"
        indexes = [
            pymongo.IndexModel("patient_id", unique=True),
            pymongo.IndexModel([("charges.source_id", 1), ("charges.source", 1)]),
            # Revenue analytics select accounts by their charges' dates (and department).
            pymongo.IndexModel([("charges.created_at", 1)]),
            pymongo.IndexModel([("charges.department_id", 1), ("charges.created_at", 1)]),
        ]


_ACCOUNT_HOLDERS = {R.BILLING: grant(A), R.PATIENT: grant(S)}

BILLING_ACCOUNT = declare(
    "BillingAccount",
    BillingAccount,
    row(
        Class.FINANCIAL,
        (
            "id",
            "currency",
            "patient",
            "patientId",
            "charges",
            "payments",
            "totalCharged",
            "totalPaid",
            "balance",
            "insurerDue",
            "patientDue",
            "insurerPaid",
            "patientPaid",
            "writtenOff",
            "writeOffs",
            "createdAt",
            "updatedAt",
        ),
        _ACCOUNT_HOLDERS,
    ),
    group("insurance", Class.FINANCIAL, ("insurance",), _ACCOUNT_HOLDERS),
    actions={
        Action.CREATE: {R.BILLING: grant(A)},
        Action.CHARGE: {R.BILLING: grant(A)},
        Action.PAY: {R.BILLING: grant(A)},
        Action.UPDATE: _ACCOUNT_HOLDERS,  # insurance details
        "writeOff": {R.BILLING: grant(A), R.ADMIN: grant(A)},
    },
    patient="patient_id",
    refs=("patient_id",),
    cached=True,
)

# A charge's description names what was given (a drug, a procedure): sealed element by element,
# bound to the charge's id, as charges are appended (``$push``). Amounts, sources and dates stay
# clear for balances, claims and revenue analytics.
BILLING_SEALED = sealed(
    BillingAccount, "billing_accounts", (), {}, items={"charges": ("id", ("description",))}
)
