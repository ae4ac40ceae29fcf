"""The laboratory's test catalogue, and demo orders from completed outpatient visits.

Each department orders what its patients' conditions call for (cardiology: troponin, lipids and
electrolytes; general medicine: HbA1c, lipids, blood count; the emergency room: blood count,
electrolytes and CRP...). Values are drawn from the reference range with a seeded RNG, a few
high or low; one cardiology patient has a critical potassium. Ids are derived from a name, and
every timestamp from the visit, so every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder

import db
from demo.clock import WINDOW_START
from models.billing import BillingAccount, Charge, ChargeSource
from models.departments import Department
from models.laboratory import (
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
    ResultStatus,
    SampleStatus,
    SpecimenType,
)
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient, Sex, age_on
from models.staff import Doctor
from services import laboratory

F, M = Sex.FEMALE, Sex.MALE
_encoder = Encoder()


def _r(
    low: float | None,
    high: float | None,
    sex: Sex | None = None,
    ages: tuple[int, int | None] = (0, None),
) -> ReferenceRange:
    return ReferenceRange(sex=sex, min_age_years=ages[0], max_age_years=ages[1], low=low, high=high)


def _a(
    code: str,
    name: str,
    unit: str,
    ranges: list[ReferenceRange],
    critical: tuple[float | None, float | None] = (None, None),
) -> Analyte:
    return Analyte(
        code=code,
        name=name,
        unit=unit,
        ranges=ranges,
        critical_low=critical[0],
        critical_high=critical[1],
    )


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(f"lab:{name}".encode(), digest_size=12).digest())


def catalogue() -> list[LabTest]:
    """The tests (built on call: Beanie documents need an initialised database)."""
    return [_test(spec) for spec in _CATALOGUE]


def _test(spec: dict[str, Any]) -> LabTest:
    return LabTest(id=_id(f"test:{spec['code']}"), created_at=WINDOW_START, **spec)


_CATALOGUE: tuple[dict[str, Any], ...] = (
    dict(
        code="CBC",
        name="Complete blood count",
        specimen_type=SpecimenType.WHOLE_BLOOD,
        analytes=[
            _a(
                "HGB",
                "Haemoglobin",
                "g/dL",
                [
                    _r(11.5, 15.5, ages=(0, 12)),
                    _r(13.5, 17.5, M),
                    _r(12.0, 15.5, F),
                    _r(12.0, 17.5),  # other or unknown sex: the union of both
                ],
                (7.0, 20.0),
            ),
            _a("WBC", "White cells", "10*3/uL", [_r(4.0, 11.0)], (2.0, 30.0)),
            _a("PLT", "Platelets", "10*3/uL", [_r(150, 400)], (50, 1000)),
        ],
        turnaround_minutes=60,
        price=1500,
    ),
    dict(
        code="BMP",
        name="Basic metabolic panel (electrolytes, creatinine, glucose)",
        specimen_type=SpecimenType.SERUM,
        analytes=[
            _a("NA", "Sodium", "mmol/L", [_r(135, 145)], (120, 160)),
            _a("K", "Potassium", "mmol/L", [_r(3.4, 4.7, ages=(0, 18)), _r(3.5, 5.1)], (2.5, 6.0)),
            _a("CL", "Chloride", "mmol/L", [_r(98, 107)]),
            _a(
                "CREA",
                "Creatinine",
                "umol/L",
                [_r(27, 62, ages=(0, 18)), _r(62, 106, M), _r(44, 80, F), _r(44, 106)],
            ),
            _a("GLU", "Glucose (fasting)", "mmol/L", [_r(3.9, 5.5)], (2.5, 25.0)),
        ],
        turnaround_minutes=60,
        price=2500,
    ),
    dict(
        code="HBA1C",
        name="Glycated haemoglobin",
        specimen_type=SpecimenType.WHOLE_BLOOD,
        analytes=[_a("HBA1C", "HbA1c", "mmol/mol", [_r(20, 42)])],
        turnaround_minutes=24 * 60,
        price=1800,
    ),
    dict(
        code="TROP",
        name="High-sensitivity troponin I",
        specimen_type=SpecimenType.PLASMA,
        analytes=[
            _a(
                "TNIHS",
                "Troponin I (hs)",
                "ng/L",
                [_r(0, 16, F), _r(0, 34, M), _r(0, 26)],
                (None, 100),
            )
        ],
        turnaround_minutes=60,
        price=3000,
    ),
    dict(
        code="CRP",
        name="C-reactive protein",
        specimen_type=SpecimenType.SERUM,
        analytes=[_a("CRP", "C-reactive protein", "mg/L", [_r(0, 5)])],
        turnaround_minutes=120,
        price=1200,
    ),
    dict(
        code="LIPID",
        name="Lipid panel",
        specimen_type=SpecimenType.SERUM,
        analytes=[
            _a("CHOL", "Total cholesterol", "mmol/L", [_r(None, 5.2)]),
            _a("LDL", "LDL cholesterol", "mmol/L", [_r(None, 3.0)]),
            _a("HDL", "HDL cholesterol", "mmol/L", [_r(1.0, None, M), _r(1.2, None)]),
            _a("TRIG", "Triglycerides", "mmol/L", [_r(None, 1.7)]),
        ],
        turnaround_minutes=240,
        price=2200,
    ),
    dict(
        code="TSH",
        name="Thyroid-stimulating hormone",
        specimen_type=SpecimenType.SERUM,
        analytes=[_a("TSH", "TSH", "m[IU]/L", [_r(0.4, 4.0)])],
        turnaround_minutes=240,
        price=1600,
    ),
)


async def seed_catalogue() -> list[LabTest]:
    """The catalogue above, inserted with its fixed ids."""
    tests = catalogue()
    await LabTest.insert_many(tests)
    return tests


# What each department orders, by its code; CARD's orders come first, one of them critical.
PANELS: dict[str, tuple[str, ...]] = {
    "CARD": ("TROP", "BMP", "LIPID"),
    "GEN": ("HBA1C", "LIPID", "CBC"),
    "ER": ("CBC", "BMP", "CRP"),
    "PED": ("CBC", "CRP"),
    "ORTH": ("CBC", "CRP"),
}
ORDERS_PER_DEPARTMENT = 6
LAB_SEED = 20261116
TECHNICIAN = "demo:labtech"
VERIFIER = "demo:labtech-verifier"
CRITICAL = ("CARD", 0, "BMP", "K", 6.8)
"""(department, its n-th order, test, analyte, value): the demo's critical potassium."""


async def seed_laboratory() -> int:
    """The catalogue, then verified orders from the earliest completed visits per department;
    returns how many orders. Without outpatient visits, only the catalogue."""
    tests = {t.code: t for t in await seed_catalogue()}
    rng = random.Random(LAB_SEED)
    departments = {d.id: d for d in await Department.find({}).to_list()}
    visits = (
        await OutpatientVisit.find({"status": VisitStatus.COMPLETED.value})
        .sort("+appointment_id")
        .to_list()
    )
    taken: dict[str, int] = {}
    orders: list[LabOrder] = []
    samples: list[LabSample] = []
    results: list[LabResult] = []
    for visit in visits:
        department = departments.get(visit.department_id)
        code = department.code if department is not None else ""
        if code not in PANELS or taken.get(code, 0) >= ORDERS_PER_DEPARTMENT:
            continue
        if visit.doctor_id is None or visit.completed_at is None:
            continue
        patient = await Patient.get(visit.patient_id)
        if patient is None:
            continue
        n = taken.get(code, 0)
        taken[code] = n + 1
        critical = CRITICAL[2:] if (code, n) == CRITICAL[:2] else None
        panel = [tests[c] for c in PANELS[code]]
        built = _order(visit, patient, panel, len(orders), rng, critical)
        orders.append(built[0])
        samples += built[1]
        results += built[2]
    if orders:
        await _charge(orders, departments)
        await LabOrder.insert_many(orders)
        await LabSample.insert_many(samples)
        await LabResult.insert_many(results)
    return len(orders)


async def _charge(orders: list[LabOrder], departments: Mapping[Any, Department]) -> None:
    """Each verified order's charge on its patient's account, as verification adds it."""
    for order in orders:
        doctor = await Doctor.get(order.ordering_doctor_id)
        charge = Charge(
            id=_id(f"charge:{order.id}"),
            description=laboratory.charge_description(order),
            amount=order.charge_amount,
            source=ChargeSource.LAB_ORDER,
            source_id=order.id,
            department_id=doctor.department_id if doctor is not None else None,
            created_at=order.verified_at or order.ordered_at,
        )
        done = await db.collection(BillingAccount).update_one(
            {"patient_id": order.patient_id, "currency": order.currency},
            {
                "$push": {"charges": _encoder.encode(charge)},
                "$inc": {"total_charged": charge.amount},
            },
        )
        if done.matched_count:
            order.charged_at = charge.created_at


def _order(
    visit: OutpatientVisit,
    patient: Patient,
    tests: list[LabTest],
    n: int,
    rng: random.Random,
    critical: tuple[str | float, ...] | None,
) -> tuple[LabOrder, list[LabSample], list[LabResult]]:
    assert visit.doctor_id is not None and visit.completed_at is not None
    key = f"visit:{visit.appointment_id or visit.id}"
    ordered_at = visit.seen_at or visit.completed_at
    collected_at = ordered_at + timedelta(minutes=20)
    received_at = collected_at + timedelta(minutes=25)
    resulted_at = received_at + timedelta(minutes=40)
    verified_at = resulted_at + timedelta(minutes=15)
    order_id = _id(f"{key}:order")
    day = collected_at.strftime("%Y%m%d")
    samples: dict[SpecimenType, LabSample] = {}
    for kind in sorted({t.specimen_type for t in tests}):
        samples[kind] = LabSample(
            id=_id(f"{key}:sample:{kind.value}"),
            order_id=order_id,
            patient_id=patient.id,
            ordering_doctor_id=visit.doctor_id,
            # 9xxxx: the demo's own numbers, clear of the live counter's for the same day.
            accession_number=f"L{day}-9{n:03d}{len(samples)}",
            specimen_type=kind,
            status=SampleStatus.RECEIVED,
            collected_at=collected_at,
            collected_by=TECHNICIAN,
            received_at=received_at,
            custody=[
                CustodyStep(status=SampleStatus.COLLECTED, at=collected_at, by=TECHNICIAN),
                CustodyStep(status=SampleStatus.RECEIVED, at=received_at, by=TECHNICIAN),
            ],
            created_at=collected_at,
            updated_at=received_at,
        )
    age = age_on(patient.date_of_birth, collected_at.date())
    results: list[LabResult] = []
    for test in tests:
        for analyte in test.analytes:
            reference = laboratory.reference_for(analyte, patient.sex, age)
            if critical is not None and (test.code, analyte.code) == critical[:2]:
                value = float(critical[2])
            else:
                value = _value(reference, rng)
            results.append(
                LabResult(
                    id=_id(f"{key}:{test.code}:{analyte.code}:1"),
                    order_id=order_id,
                    patient_id=patient.id,
                    ordering_doctor_id=visit.doctor_id,
                    sample_id=samples[test.specimen_type].id,
                    test_code=test.code,
                    analyte_code=analyte.code,
                    analyte_name=analyte.name,
                    value=value,
                    unit=analyte.unit,
                    reference_low=reference.low if reference else None,
                    reference_high=reference.high if reference else None,
                    reference_range=reference.label if reference else None,
                    flag=laboratory.flag_for(value, analyte, reference),
                    status=ResultStatus.VERIFIED,
                    entered_by=TECHNICIAN,
                    entered_at=resulted_at,
                    verified_by=VERIFIER,
                    verified_at=verified_at,
                    created_at=resulted_at,
                    updated_at=verified_at,
                )
            )
    history = [
        LabStatusChange(status=s, at=at, by=by)
        for s, at, by in (
            (LabOrderStatus.ORDERED, ordered_at, f"demo:doctor:{visit.doctor_id}"),
            (LabOrderStatus.COLLECTED, collected_at, TECHNICIAN),
            (LabOrderStatus.RECEIVED, received_at, TECHNICIAN),
            (LabOrderStatus.RESULTED, resulted_at, TECHNICIAN),
            (LabOrderStatus.VERIFIED, verified_at, VERIFIER),
        )
    ]
    order = LabOrder(
        id=order_id,
        patient_id=patient.id,
        ordering_doctor_id=visit.doctor_id,
        visit_id=visit.id,
        tests=[
            OrderedTest(
                test_id=t.id, code=t.code, name=t.name, specimen_type=t.specimen_type, price=t.price
            )
            for t in tests
            if t.id is not None
        ],
        priority=LabPriority.STAT if critical is not None else LabPriority.ROUTINE,
        status=LabOrderStatus.VERIFIED,
        status_history=history,
        ordered_at=ordered_at,
        collected_at=collected_at,
        received_at=received_at,
        resulted_at=resulted_at,
        verified_at=verified_at,
        verified_by=VERIFIER,
        charge_amount=sum(t.price for t in tests),
        report=[
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
                verified_at=verified_at,
            )
            for r in results
            if r.id is not None
        ],
        created_at=ordered_at,
        updated_at=verified_at,
        version=5,
    )
    return order, list(samples.values()), results


def _value(reference: object, rng: random.Random) -> float:
    """Mostly inside the range, sometimes a little outside it."""
    low = getattr(reference, "low", None)
    high = getattr(reference, "high", None)
    if low is None and high is None:
        return 1.0
    if low is None:
        low = high * 0.4  # type: ignore[operator]
    if high is None:
        high = low * 1.8
    span = high - low
    roll = rng.random()
    if roll < 0.12:
        value = high + span * rng.uniform(0.05, 0.3)
    elif roll < 0.2:
        value = max(low - span * rng.uniform(0.05, 0.2), 0.0)
    else:
        value = rng.uniform(low, high)
    return round(value, 1)
