"""GraphQL types and inputs for the laboratory: catalogue, orders, samples, results."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import laboratory as m
from schema.common import Connection, Long, Money, connection, entity_id, ref_id
from schema.context import Context, Info
from schema.patients import Sex

if TYPE_CHECKING:
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.SpecimenType, description="What a test is run on.")
SpecimenType = m.SpecimenType
strawberry.enum(m.LabPriority, description="How soon: routine, urgent, or stat (at once).")
LabPriority = m.LabPriority
strawberry.enum(m.LabOrderStatus, description="ordered -> collected -> received -> resulted -> "
                "verified; or cancelled before results.")  # fmt: skip
LabOrderStatus = m.LabOrderStatus
strawberry.enum(m.SampleStatus, description="A sample's custody: collected, received, rejected.")
SampleStatus = m.SampleStatus
strawberry.enum(m.ResultFlag, description="The value against its reference range and limits.")
ResultFlag = m.ResultFlag
strawberry.enum(m.ResultStatus, description="preliminary until a second person verifies it.")
ResultStatus = m.ResultStatus


@strawberry.type(description="The normal interval for a sex (null: any) and age band.")
class LabReferenceRange:
    sex: Sex | None
    min_age_years: int
    max_age_years: int | None = strawberry.field(description="Exclusive; null: no upper bound.")
    low: float | None
    high: float | None


@strawberry.type(description="One measured quantity of a test.")
class LabAnalyte:
    code: str
    name: str
    unit: str = strawberry.field(description="UCUM unit code.")
    ranges: list[LabReferenceRange]
    critical_low: float | None
    critical_high: float | None


@strawberry.type(description="An orderable test of the laboratory catalogue.")
class LabTest:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    code: str
    name: str
    specimen_type: SpecimenType
    analytes: list[LabAnalyte]
    turnaround_minutes: int = strawberry.field(description="Target from order to verified.")
    active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="What the test costs.")
    @staticmethod
    def price(root: strawberry.Parent[m.LabTest]) -> Money | None:
        return Money(amount=Long(root.price), currency=root.currency)


@strawberry.type(description="A test as ordered (its name and price when ordered).")
class OrderedLabTest:
    code: str
    name: str
    specimen_type: SpecimenType

    @strawberry.field
    @staticmethod
    def test_id(root: strawberry.Parent[m.OrderedTest]) -> strawberry.ID:
        return strawberry.ID(str(root.test_id))


@strawberry.type
class LabOrderStatusChange:
    status: LabOrderStatus
    at: datetime
    by: str = strawberry.field(description="The account that made the change.")


@strawberry.type(description="A verified value as released to the patient and the care team.")
class LabReportLine:
    test_code: str
    analyte_code: str
    analyte_name: str
    value: float
    unit: str
    reference_range: str | None
    flag: ResultFlag
    version: int
    verified_at: datetime


@strawberry.type(description="Tests ordered for one patient, followed to verified results.")
class LabOrder:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    status: LabOrderStatus
    ordered_at: datetime
    created_at: datetime
    updated_at: datetime
    priority: LabPriority | None
    tests: list[OrderedLabTest] | None
    clinical_notes: str | None
    status_history: list[LabOrderStatusChange] | None
    collected_at: datetime | None
    received_at: datetime | None
    resulted_at: datetime | None
    verified_at: datetime | None
    cancel_reason: str | None
    charged_at: datetime | None = strawberry.field(
        description="When the charge reached the patient's account (once, on verification)."
    )
    report: list[LabReportLine] | None = strawberry.field(
        description="The verified values (empty until verified)."
    )

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.LabOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def ordering_doctor_id(root: strawberry.Parent[m.LabOrder]) -> strawberry.ID | None:
        return ref_id(root.ordering_doctor_id)

    @strawberry.field(description="The outpatient visit it was ordered in, if any.")
    @staticmethod
    def visit_id(root: strawberry.Parent[m.LabOrder]) -> strawberry.ID | None:
        return ref_id(root.visit_id)

    @strawberry.field(description="The admission it was ordered in, if any.")
    @staticmethod
    def admission_id(root: strawberry.Parent[m.LabOrder]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field(description="The sum of the tests' prices when ordered.")
    @staticmethod
    def charge(root: strawberry.Parent[m.LabOrder]) -> Money | None:
        return Money(amount=Long(root.charge_amount), currency=root.currency)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.LabOrder], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def ordering_doctor(
        root: strawberry.Parent[m.LabOrder], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.ordering_doctor_id)

    @strawberry.field(description="Its samples, oldest first (rejected ones included).")
    @staticmethod
    async def samples(
        root: strawberry.Parent[m.LabOrder],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[LabSample] | None:
        key = (root.id, info.context.page(first, after), ())
        return connection(LabSample, await info.context.loaders.lab_samples_by_order.load(key))

    @strawberry.field(
        description="Its results: the current version of each analyte, or every version."
    )
    @staticmethod
    async def results(
        root: strawberry.Parent[m.LabOrder],
        info: Info,
        all_versions: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[LabResult] | None:
        filt = () if all_versions else (("current", True),)
        key = (root.id, info.context.page(first, after), filt)
        return connection(LabResult, await info.context.loaders.lab_results_by_order.load(key))


@strawberry.type
class LabCustodyStep:
    status: SampleStatus
    at: datetime
    by: str
    reason: str | None


@strawberry.type(description="A specimen taken for an order, tracked by its accession number.")
class LabSample:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    accession_number: str
    specimen_type: SpecimenType
    status: SampleStatus
    collected_at: datetime
    collected_by: str
    received_at: datetime | None
    rejection_reason: str | None
    custody: list[LabCustodyStep]
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.LabSample]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.LabSample]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field(description="The rejected sample this one recollects.")
    @staticmethod
    def replaces_sample_id(root: strawberry.Parent[m.LabSample]) -> strawberry.ID | None:
        return ref_id(root.replaces_sample_id)

    @strawberry.field
    @staticmethod
    async def order(root: strawberry.Parent[m.LabSample], info: Info) -> LabOrder | None:
        return await info.context.loaders.lab_order_by_id.load(root.order_id)


@strawberry.type(description="One version of one analyte's value.")
class LabResult:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    test_code: str
    analyte_code: str
    analyte_name: str
    value: float
    unit: str = strawberry.field(description="UCUM unit code.")
    reference_low: float | None
    reference_high: float | None
    reference_range: str | None = strawberry.field(
        description="The range that applied (the patient's sex and age at collection)."
    )
    flag: ResultFlag
    comment: str | None
    status: ResultStatus
    version: int
    current: bool = strawberry.field(description="False once a correction superseded it.")
    correction_reason: str | None
    entered_by: str
    entered_at: datetime
    verified_by: str | None
    verified_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def critical(root: strawberry.Parent[m.LabResult]) -> bool:
        return root.flag.critical

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.LabResult]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.LabResult]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def sample_id(root: strawberry.Parent[m.LabResult]) -> strawberry.ID:
        return strawberry.ID(str(root.sample_id))

    @strawberry.field
    @staticmethod
    def supersedes_id(root: strawberry.Parent[m.LabResult]) -> strawberry.ID | None:
        return ref_id(root.supersedes_id)

    @strawberry.field
    @staticmethod
    async def order(root: strawberry.Parent[m.LabResult], info: Info) -> LabOrder | None:
        return await info.context.loaders.lab_order_by_id.load(root.order_id)

    @strawberry.field
    @staticmethod
    async def sample(root: strawberry.Parent[m.LabResult], info: Info) -> LabSample | None:
        return await info.context.loaders.lab_sample_by_id.load(root.sample_id)


@strawberry.type(description="A lab result was entered, corrected or verified.")
class LabResultEvent:
    change: str = strawberry.field(description="`entered`, `corrected`, `verified`, ...")
    result_id: strawberry.ID
    at: datetime
    result: LabResult | None = strawberry.field(description="The result as it is now.")
    context: strawberry.Private[Context]


@strawberry.input
class CreateLabOrderInput:
    patient_id: strawberry.ID
    test_codes: list[str] = strawberry.field(description='Catalogue codes, e.g. ["BMP"].')
    priority: LabPriority = LabPriority.ROUTINE
    visit_id: strawberry.ID | None = strawberry.field(
        default=None, description="The patient's outpatient visit it is ordered in."
    )
    admission_id: strawberry.ID | None = None
    clinical_notes: str | None = None


@strawberry.input
class LabResultInput:
    test_code: str
    analyte_code: str
    value: float
    comment: str | None = None
    correction_reason: str | None = strawberry.field(
        default=None, description="Required when it replaces a verified value."
    )


@strawberry.input
class LabReferenceRangeInput:
    sex: Sex | None = None
    min_age_years: int = 0
    max_age_years: int | None = None
    low: float | None = None
    high: float | None = None


@strawberry.input
class LabAnalyteInput:
    code: str
    name: str
    unit: str
    ranges: list[LabReferenceRangeInput]
    critical_low: float | None = None
    critical_high: float | None = None


@strawberry.input
class CreateLabTestInput:
    code: str
    name: str
    specimen_type: SpecimenType
    analytes: list[LabAnalyteInput]
    turnaround_minutes: int
    price: int = strawberry.field(description="Minor units of the currency.")
    currency: str = "EUR"


@strawberry.input(description="Only the fields given change; the code never does.")
class UpdateLabTestInput:
    name: str | None = strawberry.UNSET
    analytes: list[LabAnalyteInput] | None = strawberry.UNSET
    turnaround_minutes: int | None = strawberry.UNSET
    price: int | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
