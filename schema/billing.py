"""GraphQL types and inputs for billing accounts, charges and payments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import billing as m
from schema.common import Long, Money, entity_id, oid, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.patients import Patient

strawberry.enum(m.ChargeSource, description="What a charge bills for.")
ChargeSource = m.ChargeSource
strawberry.enum(m.PaymentMethod)
PaymentMethod = m.PaymentMethod
strawberry.enum(m.PaymentPayer, description="Who paid: the patient or an insurer on a claim.")
PaymentPayer = m.PaymentPayer
strawberry.enum(m.WriteOffKind)
WriteOffKind = m.WriteOffKind


@strawberry.type(description="One billed item; amounts are in the account's currency.")
class Charge:
    id: strawberry.ID
    description: str
    amount: Money
    source: ChargeSource
    source_id: strawberry.ID | None = strawberry.field(description="The treatment or device billed")
    department_id: strawberry.ID | None
    created_at: datetime
    claim_id: strawberry.ID | None = strawberry.field(
        default=None, description="The insurance claim this charge is on, if any."
    )

    @classmethod
    def of(cls, charge: m.Charge, currency: str) -> Charge:
        return cls(
            claim_id=ref_id(charge.claim_id),
            id=strawberry.ID(str(charge.id)),
            description=charge.description,
            amount=Money(amount=Long(charge.amount), currency=currency),
            source=charge.source,
            source_id=ref_id(charge.source_id),
            department_id=ref_id(charge.department_id),
            created_at=charge.created_at,
        )

    @strawberry.field
    async def department(
        self, info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        if self.department_id is None:
            return None
        return await info.context.loaders.department_by_id.load(oid(self.department_id))


@strawberry.type
class Payment:
    id: strawberry.ID
    amount: Money
    method: PaymentMethod
    reference: str | None
    received_at: datetime
    payer: PaymentPayer = PaymentPayer.PATIENT
    claim_id: strawberry.ID | None = strawberry.field(
        default=None, description="The claim an insurer paid against."
    )

    @classmethod
    def of(cls, payment: m.Payment, currency: str) -> Payment:
        return cls(
            payer=payment.payer,
            claim_id=ref_id(payment.claim_id),
            id=strawberry.ID(str(payment.id)),
            amount=Money(amount=Long(payment.amount), currency=currency),
            method=payment.method,
            reference=payment.reference,
            received_at=payment.received_at,
        )


@strawberry.type(description="Owed money given up; negative reverses an earlier adjustment.")
class WriteOff:
    id: strawberry.ID
    amount: Money
    kind: WriteOffKind
    reason: str
    claim_id: strawberry.ID | None
    at: datetime

    @classmethod
    def of(cls, entry: m.WriteOff, currency: str) -> WriteOff:
        return cls(
            id=strawberry.ID(str(entry.id)),
            amount=Money(amount=Long(entry.amount), currency=currency),
            kind=entry.kind,
            reason=entry.reason,
            claim_id=ref_id(entry.claim_id),
            at=entry.at,
        )


@strawberry.type(
    description="Deprecated: free-form insurance details; claims use insurancePolicies."
)
class Insurance:
    provider: str
    policy_number: str
    group_number: str | None
    valid_until: datetime | None


@strawberry.type(description="A patient's account: what was charged, what was paid, what is owed.")
class BillingAccount:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    currency: str
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.BillingAccount]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.BillingAccount], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    insurance: Insurance | None = strawberry.field(
        description="Billing staff and the patient only."
    )

    @strawberry.field(description="Charges, oldest first.")
    @staticmethod
    def charges(root: strawberry.Parent[m.BillingAccount]) -> list[Charge]:
        return [Charge.of(c, root.currency) for c in root.charges]

    @strawberry.field(description="Payments, oldest first.")
    @staticmethod
    def payments(root: strawberry.Parent[m.BillingAccount]) -> list[Payment]:
        return [Payment.of(p, root.currency) for p in root.payments]

    @strawberry.field
    @staticmethod
    def total_charged(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.total_charged), currency=root.currency)

    @strawberry.field
    @staticmethod
    def total_paid(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.total_paid), currency=root.currency)

    @strawberry.field(
        description="What is still owed, insurerDue + patientDue; negative means credit."
    )
    @staticmethod
    def balance(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.balance), currency=root.currency)

    @strawberry.field(description="What insurers are expected to pay on open claims.")
    @staticmethod
    def insurer_due(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.insurer_due), currency=root.currency)

    @strawberry.field(description="What the patient still owes; recordPayment pays this.")
    @staticmethod
    def patient_due(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.patient_due), currency=root.currency)

    @strawberry.field
    @staticmethod
    def insurer_paid(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.insurer_paid), currency=root.currency)

    @strawberry.field
    @staticmethod
    def patient_paid(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.patient_paid), currency=root.currency)

    @strawberry.field(description="totalCharged = totalPaid + insurerDue + patientDue + this.")
    @staticmethod
    def written_off(root: strawberry.Parent[m.BillingAccount]) -> Money:
        return Money(amount=Long(root.written_off), currency=root.currency)

    @strawberry.field(description="Write-offs, oldest first.")
    @staticmethod
    def write_offs(root: strawberry.Parent[m.BillingAccount]) -> list[WriteOff]:
        return [WriteOff.of(w, root.currency) for w in root.write_offs]


@strawberry.input
class MoneyInput:
    amount: Long = strawberry.field(description="Integer minor units, e.g. cents")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR")


@strawberry.input
class InsuranceInput:
    provider: str
    policy_number: str
    group_number: str | None = None
    valid_until: datetime | None = None


@strawberry.input
class OpenBillingAccountInput:
    patient_id: strawberry.ID
    currency: str = "EUR"
    insurance: InsuranceInput | None = None


@strawberry.input
class AddChargeInput:
    description: str
    amount: MoneyInput
    source: ChargeSource
    source_id: strawberry.ID | None = strawberry.field(
        default=None, description="The treatment or device billed; none for manual charges"
    )
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only for manual charges; derived from the source otherwise"
    )


@strawberry.input
class RecordPaymentInput:
    amount: MoneyInput
    method: PaymentMethod
    reference: str | None = None
