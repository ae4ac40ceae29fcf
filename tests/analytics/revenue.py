"""Hand-made drugs, dispenses, batches, payers, claims and accounts for the pharmacy and revenue
aggregates: documents inserted directly (no service), so each test states exactly what it counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bson import ObjectId

from models.billing import BillingAccount, Charge, ChargeSource, Payment, PaymentMethod
from models.clinical import Route
from models.drugs import Drug, DrugForm, Strength
from models.insurance import (
    Claim,
    ClaimLine,
    ClaimOutcome,
    ClaimStatus,
    ClaimStatusChange,
    Payer,
)
from models.patients import Patient
from models.pharmacy import (
    Dispense,
    DispenseLine,
    DispenseStatus,
    StockBatch,
    StockLocation,
)
from models.staff import Doctor
from tests import factories as f


async def drug(name: str = "amoxicillin", price: int = 50) -> Drug:
    i = f.n()
    made = Drug(
        generic_name=f"{name}{i}",
        form=DrugForm.CAPSULE,
        strength=Strength(value=500, unit="mg"),
        route=Route.ORAL,
        atc_code="J01CA04",
        unit_of_issue="capsule",
        price=price,
    )
    made.refresh_derived()
    return await made.insert()


async def dispense(
    product: Drug,
    patient: Patient,
    prescriber: Doctor,
    at: datetime,
    quantity: int,
    status: DispenseStatus = DispenseStatus.COMPLETED,
    returned: int = 0,
) -> Dispense:
    line = DispenseLine(
        batch_id=ObjectId(),
        batch_number="B1",
        expiry=date(2030, 1, 1),
        quantity=max(quantity, 1),
        returned=returned,
    )
    return await Dispense(
        prescription_id=ObjectId(),
        patient_id=patient.id,
        prescriber_id=prescriber.id,
        drug_id=product.id,
        requested=max(quantity, 1),
        quantity=quantity,
        status=status,
        lines=[line],
        dispensed_by="test:pharmacist",
        at=at,
        expires_at=at + timedelta(minutes=30),
        unit_price=product.price,
    ).insert()


async def batch(
    product: Drug,
    expiry: date,
    quantity: int,
    unit_cost: int,
    ward_id: ObjectId | None = None,
) -> StockBatch:
    return await StockBatch(
        drug_id=product.id,
        batch_number=f"B{f.n()}",
        expiry=expiry,
        quantity=quantity,
        location=StockLocation.WARD if ward_id else StockLocation.PHARMACY,
        ward_id=ward_id,
        unit_cost=unit_cost,
        received_by="test:stores",
    ).insert()


async def payer(code: str) -> Payer:
    return await Payer(name=f"Insurer {code}", code=f"{code}{f.n()}").insert()


async def claim(
    insurer: Payer,
    patient: Patient,
    billed: int,
    covered: int,
    status: ClaimStatus,
    submitted: datetime | None,
    *,
    outcome: ClaimOutcome | None = None,
    approved: int | None = None,
    decided: datetime | None = None,
    paid: datetime | None = None,
    insurer_paid: int = 0,
    resubmitted: datetime | None = None,
) -> Claim:
    """One claim of one line; its history says when it was first submitted and paid."""
    start = submitted or datetime(2026, 1, 1, tzinfo=UTC)
    history = [ClaimStatusChange(status=ClaimStatus.DRAFT, at=start - timedelta(hours=1))]
    if submitted is not None:
        history.append(ClaimStatusChange(status=ClaimStatus.SUBMITTED, at=submitted))
    if decided is not None:
        history.append(ClaimStatusChange(status=ClaimStatus.ADJUDICATED, at=decided))
    if paid is not None:
        history.append(ClaimStatusChange(status=ClaimStatus.PAID, at=paid))
    if resubmitted is not None:
        history.append(ClaimStatusChange(status=ClaimStatus.RESUBMITTED, at=resubmitted))
    line = ClaimLine(
        charge_id=ObjectId(),
        source=ChargeSource.MANUAL,
        description="consultation",
        service_date=start,
        billed=billed,
        covered=covered,
        approved=approved,
    )
    return await Claim(
        number=f"CLM-{f.n()}",
        patient_id=patient.id,
        account_id=ObjectId(),
        policy_id=ObjectId(),
        payer_id=insurer.id,
        currency="EUR",
        benefit_year=2026,
        lines=[line],
        status=status,
        outcome=outcome,
        insurer_paid=insurer_paid,
        submitted_at=resubmitted or submitted,
        adjudicated_at=decided,
        status_at=history[-1].at,
        history=history,
    ).insert()


async def account(
    patient: Patient,
    charges: list[tuple[int, datetime]],
    paid: int = 0,
    insurer_due: int = 0,
    written_off: int = 0,
) -> BillingAccount:
    """An account with ``charges`` (amount, when) and one patient payment of ``paid``."""
    made = [
        Charge(description="care", amount=amount, source=ChargeSource.MANUAL, created_at=when)
        for amount, when in charges
    ]
    payments = (
        [Payment(amount=paid, method=PaymentMethod.CARD, received_at=charges[0][1])] if paid else []
    )
    return await BillingAccount(
        patient_id=patient.id,
        charges=made,
        payments=payments,
        total_charged=sum(a for a, _ in charges),
        total_paid=paid,
        insurer_due=insurer_due,
        written_off=written_off,
    ).insert()
