"""Laboratory: the test catalogue, orders, samples with their custody, and versioned results.

Results are versions: a correction is a new ``LabResult`` that supersedes the current one,
which stays stored (``current`` False). The patient never reads ``LabResult`` rows (they include
unverified values); verification copies the verified values onto the order as its ``report``,
which the patient may read. Who did what is recorded by account (the token's subject): lab
technicians have no staff record, and "the verifier differs from the person who entered" is a
statement about accounts.
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from beanie import Document
from pydantic import BaseModel, Field, model_validator

from auth.policy import STAFF_ROLES, A, Action, C, D, R, S, declare, each, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Currency, Entity, LongText, Ref, ShortText, UtcDatetime
from models.patients import Sex

Code = str
ACCOUNT_FIELD = Field(min_length=1, max_length=200, description="The account (token subject).")


class SpecimenType(StrEnum):
    WHOLE_BLOOD = "whole_blood"  # EDTA tube: blood counts, HbA1c
    SERUM = "serum"  # chemistry
    PLASMA = "plasma"  # lithium heparin tube
    URINE = "urine"


class ReferenceRange(BaseModel):
    """The normal interval for one sex (None: any) and age band ``[min_age, max_age)``."""

    sex: Sex | None = None
    min_age_years: int = Field(default=0, ge=0, le=150)
    max_age_years: int | None = Field(default=None, ge=1, le=200)
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ReferenceRange:
        if self.low is None and self.high is None:
            raise ValueError("a reference range needs a low or a high bound")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")
        if self.max_age_years is not None and self.max_age_years <= self.min_age_years:
            raise ValueError("maxAgeYears must exceed minAgeYears")
        return self

    def applies(self, sex: Sex, age_years: int) -> bool:
        if self.sex is not None and self.sex != sex:
            return False
        return self.min_age_years <= age_years and (
            self.max_age_years is None or age_years < self.max_age_years
        )

    @property
    def label(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g}"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"


class Analyte(BaseModel):
    code: Code = Field(pattern=r"^[A-Z0-9_]{1,20}$")
    name: ShortText
    unit: str = Field(min_length=1, max_length=40, description="UCUM code, e.g. mmol/L")
    ranges: list[ReferenceRange] = Field(min_length=1, max_length=20)
    critical_low: float | None = None
    critical_high: float | None = None


class LabTest(Entity):
    """One orderable test of the catalogue, with its analytes and price."""

    code: Code = Field(pattern=r"^[A-Z0-9_]{2,20}$")
    name: ShortText
    specimen_type: SpecimenType
    analytes: list[Analyte] = Field(min_length=1, max_length=40)
    turnaround_minutes: int = Field(ge=1, le=60 * 24 * 60, description="Target order -> verified")
    price: int = Field(ge=0, le=10**9, description="Minor units of ``currency``")
    currency: Currency = "EUR"
    active: bool = True

    class Settings:
        name = "lab_tests"
        indexes = [
            pymongo.IndexModel("code", unique=True, name="one_test_per_code"),
            pymongo.IndexModel([("active", 1), ("_id", 1)]),
            pymongo.IndexModel([("specimen_type", 1), ("_id", 1)]),
        ]


class LabPriority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class LabOrderStatus(StrEnum):
    ORDERED = "ordered"  # waiting for collection (again, after a rejected sample)
    COLLECTED = "collected"
    RECEIVED = "received"
    RESULTED = "resulted"  # every analyte has a current result, not all verified
    VERIFIED = "verified"
    CANCELLED = "cancelled"


class OrderedTest(BaseModel):
    """The catalogue entry as it was when ordered: later price changes do not reach it."""

    test_id: Ref
    code: Code
    name: ShortText
    specimen_type: SpecimenType
    price: int


class LabStatusChange(BaseModel):
    status: LabOrderStatus
    at: UtcDatetime
    by: str = ACCOUNT_FIELD


class ResultFlag(StrEnum):
    NORMAL = "normal"
    LOW = "low"
    HIGH = "high"
    CRITICAL_LOW = "critical_low"
    CRITICAL_HIGH = "critical_high"

    @property
    def critical(self) -> bool:
        return self in (ResultFlag.CRITICAL_LOW, ResultFlag.CRITICAL_HIGH)


class ReportLine(BaseModel):
    """One verified value as released to the patient and the care team."""

    result_id: Ref
    test_code: Code
    analyte_code: Code
    analyte_name: ShortText
    value: float
    unit: str
    reference_range: str | None
    flag: ResultFlag
    version: int
    verified_at: UtcDatetime


class LabOrder(Entity):
    patient_id: Ref
    ordering_doctor_id: Ref
    visit_id: Ref | None = None
    admission_id: Ref | None = None
    tests: list[OrderedTest] = Field(min_length=1, max_length=30)
    priority: LabPriority = LabPriority.ROUTINE
    clinical_notes: LongText | None = None
    status: LabOrderStatus = LabOrderStatus.ORDERED
    status_history: list[LabStatusChange] = Field(default_factory=list)
    ordered_at: UtcDatetime
    collected_at: UtcDatetime | None = None
    received_at: UtcDatetime | None = None
    resulted_at: UtcDatetime | None = None
    verified_at: UtcDatetime | None = None
    verified_by: str | None = None
    cancel_reason: ShortText | None = None
    charge_amount: int = Field(ge=0)
    currency: Currency = "EUR"
    charged_at: UtcDatetime | None = None
    report: list[ReportLine] = Field(default_factory=list)
    version: int = 0

    class Settings:
        name = "lab_orders"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("ordering_doctor_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("priority", 1), ("_id", 1)]),
            pymongo.IndexModel([("priority", 1), ("_id", 1)]),
            pymongo.IndexModel([("ordered_at", 1), ("_id", 1)]),
            pymongo.IndexModel("visit_id", sparse=True),
        ]


# The ordering doctor's notes say why the tests are wanted (a suspected diagnosis), the cancel
# reason why they no longer are: encrypted at rest; nothing queries them.
LAB_ORDER_SEALED = sealed(LabOrder, "lab_orders", ("clinical_notes", "cancel_reason"), {})


class SampleStatus(StrEnum):
    COLLECTED = "collected"
    RECEIVED = "received"
    REJECTED = "rejected"


class CustodyStep(BaseModel):
    status: SampleStatus
    at: UtcDatetime
    by: str = ACCOUNT_FIELD
    reason: ShortText | None = None


class LabSample(Entity):
    order_id: Ref
    patient_id: Ref
    ordering_doctor_id: Ref
    accession_number: str = Field(pattern=r"^L\d{8}-\d{5,}$")
    specimen_type: SpecimenType
    status: SampleStatus = SampleStatus.COLLECTED
    collected_at: UtcDatetime
    collected_by: str = ACCOUNT_FIELD
    received_at: UtcDatetime | None = None
    rejection_reason: ShortText | None = None
    replaces_sample_id: Ref | None = Field(
        default=None, description="The rejected sample this one recollects."
    )
    custody: list[CustodyStep] = Field(default_factory=list)

    class Settings:
        name = "lab_samples"
        indexes = [
            pymongo.IndexModel("accession_number", unique=True, name="one_sample_per_accession"),
            pymongo.IndexModel([("order_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
        ]


class AccessionCounter(Document):
    """One counter per UTC day: ``$inc`` hands every sample its own number, across processes."""

    id: str  # type: ignore[assignment]  # "YYYYMMDD"
    seq: int = 0

    class Settings:
        name = "lab_accession_counters"


class ResultStatus(StrEnum):
    PRELIMINARY = "preliminary"  # entered, awaiting a second person
    VERIFIED = "verified"


class LabResult(Entity):
    """One version of one analyte's value; a correction is the next version."""

    order_id: Ref
    patient_id: Ref
    ordering_doctor_id: Ref
    sample_id: Ref
    test_code: Code
    analyte_code: Code
    analyte_name: ShortText
    value: float
    unit: str
    reference_low: float | None = None
    reference_high: float | None = None
    reference_range: str | None = Field(default=None, description="The range that applied.")
    flag: ResultFlag
    comment: ShortText | None = None
    status: ResultStatus = ResultStatus.PRELIMINARY
    version: int = Field(default=1, ge=1)
    current: bool = True
    supersedes_id: Ref | None = None
    correction_reason: ShortText | None = None
    entered_by: str = ACCOUNT_FIELD
    entered_at: UtcDatetime
    verified_by: str | None = None
    verified_at: UtcDatetime | None = None

    class Settings:
        name = "lab_results"
        indexes = [
            pymongo.IndexModel([("order_id", 1), ("current", 1), ("_id", 1)]),
            pymongo.IndexModel([("order_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            # One current version per analyte of an order: a racing second entry is refused.
            pymongo.IndexModel(
                [("order_id", 1), ("test_code", 1), ("analyte_code", 1), ("version", 1)],
                unique=True,
                name="one_result_per_version",
            ),
        ]


# A result's comment and a correction's reason are free clinical text about the patient:
# encrypted at rest; queries select results by order, analyte, version and flag only.
LAB_RESULT_SEALED = sealed(LabResult, "lab_results", ("comment", "correction_reason"), {})


# -- policy ---------------------------------------------------------------------------------------
# Results are clinical: the patient's clinicians (the ordering doctor by CARE), nurses of their
# care or department, and lab technicians, who work on every order the lab receives but have no
# grant on any other clinical record. The patient reads their orders and the verified report,
# never the result rows (those include unverified values). Billing sees an order's status and its
# charge, nothing clinical. Analysts have no grant on any row: they get aggregates elsewhere.

LAB = R.LAB_TECHNICIAN
_CLINICIANS = {R.DOCTOR: grant(C), R.NURSE: grant(C, D), LAB: grant(A)}
_WITH_PATIENT = {**_CLINICIANS, R.PATIENT: grant(S)}
_CATALOGUE = each((*STAFF_ROLES, LAB, R.PATIENT), grant(A))

LAB_TEST = declare(
    "LabTest",
    LabTest,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "code",
            "name",
            "specimenType",
            "analytes",
            "turnaroundMinutes",
            "active",
            "createdAt",
            "updatedAt",
        ),
        _CATALOGUE,
    ),
    group("price", Class.FINANCIAL, ("price",), _CATALOGUE),
    actions={Action.CREATE: {R.ADMIN: grant(A)}, Action.UPDATE: {R.ADMIN: grant(A)}},
)

COLLECT, RECEIVE, REJECT = "collectSamples", "receiveSample", "rejectSample"
ENTER_RESULTS, VERIFY = "enterResults", "verify"

LAB_ORDER = declare(
    "LabOrder",
    LabOrder,
    row(
        Class.OPERATIONAL,
        ("id", "patientId", "patient", "status", "orderedAt", "createdAt", "updatedAt"),
        {**_WITH_PATIENT, R.BILLING: grant(A)},
    ),
    group(
        "clinical",
        Class.CLINICAL,
        (
            "orderingDoctorId",
            "orderingDoctor",
            "visitId",
            "admissionId",
            "tests",
            "priority",
            "clinicalNotes",
            "statusHistory",
            "collectedAt",
            "receivedAt",
            "resultedAt",
            "verifiedAt",
            "cancelReason",
        ),
        _WITH_PATIENT,
    ),
    group("laboratory", Class.CLINICAL, ("samples", "results"), _CLINICIANS),
    group("report", Class.CLINICAL, ("report",), _WITH_PATIENT),
    group(
        "charge",
        Class.FINANCIAL,
        ("charge", "chargedAt"),
        {R.BILLING: grant(A), R.PATIENT: grant(S)},
    ),
    actions={
        Action.CREATE: {R.DOCTOR: grant(C)},
        Action.CANCEL: {R.DOCTOR: grant(C), LAB: grant(A)},
        COLLECT: {R.NURSE: grant(C, D), LAB: grant(A)},
        ENTER_RESULTS: {LAB: grant(A)},
        # The second person: another lab technician, or a doctor of the patient's care.
        VERIFY: {LAB: grant(A), R.DOCTOR: grant(C)},
    },
    patient="patient_id",
    clinicians=("ordering_doctor_id",),
    refs=("patient_id", "ordering_doctor_id", "visit_id"),
)

LAB_SAMPLE = declare(
    "LabSample",
    LabSample,
    row(
        Class.CLINICAL,
        (
            "id",
            "orderId",
            "patientId",
            "accessionNumber",
            "specimenType",
            "status",
            "collectedAt",
            "collectedBy",
            "receivedAt",
            "rejectionReason",
            "replacesSampleId",
            "custody",
            "order",
            "createdAt",
            "updatedAt",
        ),
        _CLINICIANS,
    ),
    actions={RECEIVE: {LAB: grant(A)}, REJECT: {LAB: grant(A)}},
    patient="patient_id",
    clinicians=("ordering_doctor_id",),
    refs=("patient_id", "order_id"),
)

# Why a sample was refused (haemolysed, mislabelled, "patient had eaten") is free text about the
# patient: encrypted at rest (samples are found by order and accession, never by reason).
LAB_SAMPLE_SEALED = sealed(LabSample, "lab_samples", ("rejection_reason",), {})

LAB_RESULT = declare(
    "LabResult",
    LabResult,
    row(
        Class.CLINICAL,
        (
            "id",
            "orderId",
            "patientId",
            "sampleId",
            "testCode",
            "analyteCode",
            "analyteName",
            "value",
            "unit",
            "referenceLow",
            "referenceHigh",
            "referenceRange",
            "flag",
            "critical",
            "comment",
            "status",
            "version",
            "current",
            "supersedesId",
            "correctionReason",
            "enteredBy",
            "enteredAt",
            "verifiedBy",
            "verifiedAt",
            "order",
            "sample",
            "createdAt",
            "updatedAt",
        ),
        _CLINICIANS,
    ),
    patient="patient_id",
    clinicians=("ordering_doctor_id",),
    refs=("patient_id", "order_id", "ordering_doctor_id"),
)
