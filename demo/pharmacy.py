"""Demo pharmacy: the drug master for every drug the demo prescribes, the store's batches, and
the past dispenses of the prescriptions the demo marks dispensed or picked up.

Each product matches its prescriptions' text (``services.drugs.for_prescription``: generic name,
told apart by strength for the two paracetamols). Every drug has an older batch that the past
dispenses came from and a newer one; amoxicillin, ibuprofen and paracetamol 1 g have their older
batch expiring 45 days after the demo's "now", cetirizine also has an expired batch not yet
written off, and morphine (schedule II) is stocked for the controlled-drug flow. Every dispense
is completed at the time its prescription's history says ``dispensed`` (by ``demo:pharmacist``;
lorazepam, schedule IV, confirmed by ``demo:pharmacist2``), picked up when it says
``picked_up``, charged to the patient's account at the master's price, and written to the
ledger, so each batch's quantity is the sum of its movements. Ids derive from names and the
prescription: every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder

import db
from crypto.fields import open_document
from demo.clock import ANCHOR
from models.billing import BillingAccount, Charge, ChargeSource
from models.clinical import PRESCRIPTION_SEALED, Prescription, PrescriptionStatus
from models.drugs import ControlledSchedule, Drug, DrugForm, Strength
from models.patients import fold
from models.pharmacy import (
    Dispense,
    DispenseLine,
    DispenseStatus,
    MovementKind,
    StockBatch,
    StockLocation,
    StockMovement,
)
from models.staff import Doctor
from services import pharmacy

PHARMACIST = "demo:pharmacist"
SECOND_PHARMACIST = "demo:pharmacist2"
RECEIVER = "demo:pharmacy-stores"
_encoder = Encoder()
F, S = DrugForm, ControlledSchedule


@dataclass(frozen=True)
class Product:
    generic: str
    brands: tuple[str, ...]
    form: DrugForm
    strength: float
    unit: str
    route: str
    atc: str
    unit_of_issue: str
    price: int
    schedule: ControlledSchedule = S.NONE
    near_expiry: bool = False


PRODUCTS = (
    Product("Metoprolol", ("Lopressor",), F.TABLET, 50, "mg", "oral", "C07AB02", "tablet", 12),
    Product("Atorvastatin", ("Lipitor",), F.TABLET, 20, "mg", "oral", "C10AA05", "tablet", 18),
    Product("Apixaban", ("Eliquis",), F.TABLET, 5, "mg", "oral", "B01AF02", "tablet", 95),
    Product("Ramipril", ("Altace",), F.CAPSULE, 5, "mg", "oral", "C09AA05", "capsule", 10),
    Product("Ibuprofen", ("Brufen", "Advil"), F.TABLET, 400, "mg", "oral", "M01AE01", "tablet",
            8, near_expiry=True),
    Product("Paracetamol", ("Panadol",), F.TABLET, 1, "g", "oral", "N02BE01", "tablet", 6,
            near_expiry=True),
    Product("Paracetamol", ("Calpol",), F.TABLET, 250, "mg", "oral", "N02BE01", "tablet", 4),
    Product("Ondansetron", ("Zofran",), F.INJECTION, 4, "mg", "intravenous", "A04AA01",
            "ampoule", 250),
    Product("Cetirizine", ("Zyrtec",), F.TABLET, 10, "mg", "oral", "R06AE07", "tablet", 7),
    Product("Lorazepam", ("Ativan",), F.TABLET, 1, "mg", "sublingual", "N05BA06", "tablet", 15,
            S.IV),
    Product("Amoxicillin", ("Amoxil",), F.CAPSULE, 250, "mg", "oral", "J01CA04", "capsule", 9,
            near_expiry=True),
    Product("Salbutamol", ("Ventolin",), F.INHALER, 100, "mcg", "inhaled", "R03AC02",
            "inhaler (200 doses)", 650),
    Product("Hydrocortisone", (), F.CREAM, 1, "%", "topical", "D07AA02", "tube (30 g)", 480),
    Product("Naproxen", ("Naprosyn",), F.TABLET, 500, "mg", "oral", "M01AE02", "tablet", 11),
    Product("Diclofenac", ("Voltaren",), F.GEL, 1, "%", "topical", "M02AA15", "tube (100 g)", 720),
    Product("Enoxaparin", ("Clexane",), F.INJECTION, 40, "mg", "subcutaneous", "B01AB05",
            "prefilled syringe", 420),
    Product("Metformin", ("Glucophage",), F.TABLET, 500, "mg", "oral", "A10BA02", "tablet", 5),
    Product("Levothyroxine", ("Synthroid",), F.TABLET, 50, "mcg", "oral", "H03AA01", "tablet", 6),
    Product("Omeprazole", ("Prilosec",), F.CAPSULE, 20, "mg", "oral", "A02BC01", "capsule", 9),
    Product("Amlodipine", ("Norvasc",), F.TABLET, 5, "mg", "oral", "C08CA01", "tablet", 8),
    Product("Tiotropium", ("Spiriva",), F.CAPSULE, 18, "mcg", "inhaled", "R03BB04",
            "inhalation capsule", 160),
    Product("Morphine", ("MST",), F.INJECTION, 10, "mg", "intravenous", "N02AA01", "ampoule",
            300, S.II),
)  # fmt: skip
"""Every drug the demo's clinics prescribe (demo/catalog.py), and morphine."""

OLD_RECEIVED = ANCHOR - timedelta(days=365)
NEW_RECEIVED = ANCHOR - timedelta(days=20)


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(f"pharm:{name}".encode(), digest_size=12).digest())


def _drug(p: Product) -> Drug:
    key = f"{p.generic}:{p.strength:g}{p.unit}"
    drug = Drug(
        id=_id(f"drug:{key}"),
        generic_name=p.generic,
        brand_names=list(p.brands),
        form=p.form,
        strength=Strength(value=p.strength, unit=p.unit),
        route=p.route,
        atc_code=p.atc,
        schedule=p.schedule,
        unit_of_issue=p.unit_of_issue,
        price=p.price,
        created_at=OLD_RECEIVED,
        updated_at=OLD_RECEIVED,
    )
    drug.refresh_derived()
    return drug


def _match(drugs: list[Drug], prescription: dict[str, Any]) -> Drug | None:
    key = " ".join(fold(prescription["drug"]).split())
    found = [d for d in drugs if key in d.match_keys]
    if len(found) > 1:
        dose = " ".join(fold(prescription["dose"]).split())
        found = [d for d in found if fold(d.strength.text()) == dose]
    return found[0] if len(found) == 1 else None


def _units(drug: Drug, prescription: dict[str, Any]) -> int:
    """Tablets and capsules as prescribed (dose x frequency x days); else one pack."""
    if drug.form in (F.TABLET, F.CAPSULE):
        rx = Prescription.model_validate(prescription)
        return pharmacy.prescribed_units(rx, drug) or 10
    if drug.form == F.INJECTION and drug.route.value != "intravenous":
        return int(prescription["duration_days"])
    return 1


def _at(history: list[dict[str, Any]], status: PrescriptionStatus) -> datetime | None:
    for entry in history:
        if entry["status"] == status.value:
            at: datetime = entry["at"]
            return at if at.tzinfo else at.replace(tzinfo=ANCHOR.tzinfo)
    return None


def _day(moment: datetime) -> date:
    return moment.date()


async def seed_pharmacy() -> int:
    """Write the master, batches, past dispenses, their ledger and charges; returns dispenses."""
    drugs = [_drug(p) for p in PRODUCTS]
    await Drug.insert_many(drugs)
    products = dict(zip((d.id for d in drugs), PRODUCTS, strict=True))
    raw = (
        await db.collection(Prescription)
        .find({"status_history.status": PrescriptionStatus.DISPENSED.value})
        .sort("_id", 1)
        .to_list(None)
    )
    doctors = {d["_id"]: d.get("department_id") for d in await db.collection(Doctor).find(
        {}, projection={"department_id": 1}).to_list(None)}  # fmt: skip
    planned: dict[PydanticObjectId, list[tuple[dict[str, Any], int, datetime]]] = defaultdict(list)
    for rx in raw:
        rx = open_document(PRESCRIPTION_SEALED, rx)  # its drug is sealed (models.clinical)
        drug = _match(drugs, rx)
        dispensed_at = _at(rx["status_history"], PrescriptionStatus.DISPENSED)
        if drug is None or drug.id is None or dispensed_at is None:
            continue
        planned[drug.id].append((rx, _units(drug, rx), dispensed_at))
    batches: list[StockBatch] = []
    movements: list[StockMovement] = []
    dispenses: list[Dispense] = []
    charges: list[tuple[PydanticObjectId, Charge]] = []
    for drug in drugs:
        assert drug.id is not None
        product = products[drug.id]
        out = sum(units for _, units, _ in planned[drug.id])
        old_expiry = ANCHOR + timedelta(days=45 if product.near_expiry else 400)
        old = _batch(drug, "A", out + (30 if product.near_expiry else 300), OLD_RECEIVED,
                     old_expiry, out)  # fmt: skip
        new = _batch(drug, "B", 200, NEW_RECEIVED, ANCHOR + timedelta(days=700), 0)
        own = [old, new]
        if product.generic == "Cetirizine":  # an expired batch, not written off yet
            own.append(_batch(drug, "X", 40, OLD_RECEIVED, ANCHOR - timedelta(days=15), 0))
        batches += own
        for batch in own:
            received = batch.quantity + (out if batch is old else 0)
            movements.append(_movement(batch, MovementKind.RECEIVE, received, batch.received_at))
        for rx, units, at in planned[drug.id]:
            dispense, charge = _dispense(drug, old, rx, units, at, doctors)
            dispenses.append(dispense)
            movements.append(_movement(old, MovementKind.DISPENSE, -units, at, dispense))
            if charge is not None:
                charges.append((rx["patient_id"], charge))
    await StockBatch.insert_many(batches)
    await StockMovement.insert_many(movements)
    if dispenses:
        await Dispense.insert_many(dispenses)
    for patient_id, charge in charges:
        await db.collection(BillingAccount).update_one(
            {"patient_id": patient_id},
            {
                "$push": {"charges": _encoder.encode(charge)},
                "$inc": {"total_charged": charge.amount},
                "$max": {"updated_at": charge.created_at},
            },
        )
    return len(dispenses)


def _batch(
    drug: Drug, suffix: str, quantity: int, received: datetime, expiry: datetime, out: int
) -> StockBatch:
    """A batch as it stands at the demo's "now": ``out`` units of it were dispensed."""
    code = drug.atc_code[-4:]
    number = f"{code}{received:%y%m}-{suffix}"
    return StockBatch(
        id=_id(f"batch:{drug.id}:{suffix}"),
        drug_id=drug.id,
        batch_number=number,
        expiry=_day(expiry),
        quantity=quantity - out,
        location=StockLocation.PHARMACY,
        unit_cost=max(1, drug.price * 6 // 10),
        received_at=received,
        received_by=RECEIVER,
        created_at=received,
        updated_at=received,
    )


def _movement(
    batch: StockBatch,
    kind: MovementKind,
    delta: int,
    at: datetime,
    dispense: Dispense | None = None,
) -> StockMovement:
    key = f"{batch.id}:{kind.value}:{dispense.id if dispense else ''}"
    return StockMovement(
        id=_id(f"movement:{key}"),
        op=_id(f"op:{key}"),
        kind=kind,
        batch_id=batch.id,
        drug_id=batch.drug_id,
        location=batch.location,
        delta=delta,
        by=dispense.dispensed_by if dispense else RECEIVER,
        dispense_id=dispense.id if dispense else None,
        at=at,
        created_at=at,
        updated_at=at,
    )


def _dispense(
    drug: Drug,
    batch: StockBatch,
    rx: dict[str, Any],
    units: int,
    at: datetime,
    doctors: dict[Any, Any],
) -> tuple[Dispense, Charge | None]:
    picked = _at(rx["status_history"], PrescriptionStatus.PICKED_UP)
    dispense_id = _id(f"dispense:{rx['_id']}")
    dispense = Dispense(
        id=dispense_id,
        prescription_id=rx["_id"],
        patient_id=rx["patient_id"],
        prescriber_id=rx["prescriber_id"],
        drug_id=drug.id,
        requested=units,
        quantity=units,
        outstanding=0,
        controlled=drug.controlled,
        status=DispenseStatus.COMPLETED,
        lines=[
            DispenseLine(
                op=_id(f"op:{batch.id}:dispense:{dispense_id}"),  # its ledger row's op
                batch_id=batch.id,
                batch_number=batch.batch_number,
                expiry=batch.expiry,
                quantity=units,
            )
        ],
        dispensed_by=PHARMACIST,
        confirmed_by=SECOND_PHARMACIST if drug.controlled else None,
        confirmed_at=at + timedelta(minutes=5) if drug.controlled else None,
        at=at,
        expires_at=at,
        unit_price=drug.price,
        currency=drug.currency,
        charged_at=at,
        picked_up_at=picked,
        settled=True,
        created_at=at,
        updated_at=picked or at,
    )
    if dispense.amount == 0:
        return dispense, None
    charge = Charge(
        id=_id(f"charge:{rx['_id']}"),
        description=f"Pharmacy: {drug.generic_name} {drug.strength.text()} x {units}",
        amount=dispense.amount,
        source=ChargeSource.DISPENSE,
        source_id=dispense.id,
        department_id=doctors.get(rx["prescriber_id"]),
        created_at=at,
    )
    return dispense, charge
