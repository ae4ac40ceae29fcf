"""Billing accounts: one per patient, charges and payments in integer minor units."""

from __future__ import annotations

from enum import StrEnum

import pymongo
from beanie import PydanticObjectId
from pydantic import BaseModel, Field

from auth.policy import A, Action, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from models.base import Currency, Entity, Name, Ref, ShortText, UtcDatetime


class ChargeSource(StrEnum):
    APPOINTMENT = "appointment"  # the visit itself: consultation or missed-appointment fee
    TREATMENT = "treatment"
    EQUIPMENT_USE = "equipment_use"
    MANUAL = "manual"
    LAB_ORDER = "lab_order"  # a verified laboratory order (services/laboratory.py)
    IMAGING_STUDY = "imaging_study"  # a completed imaging study (services/radiology.py)


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


class Payment(BaseModel):
    id: PydanticObjectId = Field(default_factory=PydanticObjectId)
    amount: int = Field(gt=0)
    method: PaymentMethod
    reference: ShortText | None = None
    received_at: UtcDatetime


class Insurance(BaseModel):
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

    @property
    def balance(self) -> int:
        """What the patient still owes; negative is credit."""
        return self.total_charged - self.total_paid

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
    },
    patient="patient_id",
    refs=("patient_id",),
    cached=True,
)
