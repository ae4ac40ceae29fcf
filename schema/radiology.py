"""GraphQL types and inputs for imaging orders, studies, report drafts and signed reports."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import radiology as m
from schema.common import Connection, Long, connection, entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.equipment import MedicalEquipment
    from schema.outpatient import OutpatientVisit
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.ImagingModality, description="DICOM-style modality (XR: plain radiography).")
ImagingModality = m.ImagingModality
strawberry.enum(m.ImagingLaterality)
ImagingLaterality = m.ImagingLaterality
strawberry.enum(m.ImagingPriority)
ImagingPriority = m.ImagingPriority
strawberry.enum(
    m.ImagingOrderStatus,
    description="ordered -> scheduled -> in_progress -> completed -> reported; or cancelled "
    "(from ordered or scheduled).",
)
ImagingOrderStatus = m.ImagingOrderStatus
strawberry.enum(m.ImagingStudyStatus)
ImagingStudyStatus = m.ImagingStudyStatus
strawberry.enum(m.ImagingPerformerRole)
ImagingPerformerRole = m.ImagingPerformerRole
strawberry.enum(m.ImagingDraftStatus)
ImagingDraftStatus = m.ImagingDraftStatus
strawberry.enum(m.ImagingReportKind)
ImagingReportKind = m.ImagingReportKind


@strawberry.type
class ImagingStatusChange:
    status: ImagingOrderStatus
    at: datetime


@strawberry.type(description="A request to Radiology for one examination of one patient.")
class ImagingOrder:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    modality: ImagingModality
    body_part: str
    laterality: ImagingLaterality
    clinical_question: str | None
    priority: ImagingPriority
    status: ImagingOrderStatus
    status_at: datetime
    cancellation_reason: str | None
    version: int
    history: list[ImagingStatusChange]
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="What the completed study costs, in minor units.")
    @staticmethod
    def price(root: strawberry.Parent[m.ImagingOrder]) -> Long | None:
        return Long(root.price)

    @strawberry.field(description="When the study's charge reached the billing account.")
    @staticmethod
    def charged_at(root: strawberry.Parent[m.ImagingOrder]) -> datetime | None:
        return root.charged_at

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def ordering_doctor_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.ordering_doctor_id))

    @strawberry.field
    @staticmethod
    def visit_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID | None:
        return ref_id(root.visit_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field(description="The performing department.")
    @staticmethod
    def department_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def study_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID | None:
        return ref_id(root.study_id)

    @strawberry.field
    @staticmethod
    def report_id(root: strawberry.Parent[m.ImagingOrder]) -> strawberry.ID | None:
        return ref_id(root.report_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.ImagingOrder], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def ordering_doctor(
        root: strawberry.Parent[m.ImagingOrder], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.ordering_doctor_id)

    @strawberry.field
    @staticmethod
    async def visit(
        root: strawberry.Parent[m.ImagingOrder], info: Info
    ) -> Annotated[OutpatientVisit, strawberry.lazy("schema.outpatient")] | None:
        if root.visit_id is None:
            return None
        return await info.context.loaders.outpatient_visit_by_id.load(root.visit_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.ImagingOrder], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="The study that performs the order, once scheduled.")
    @staticmethod
    async def study(root: strawberry.Parent[m.ImagingOrder], info: Info) -> ImagingStudy | None:
        if root.study_id is None:
            return None
        return await info.context.loaders.imaging_study_by_id.load(root.study_id)

    @strawberry.field(description="The final report, once signed.")
    @staticmethod
    async def report(root: strawberry.Parent[m.ImagingOrder], info: Info) -> ImagingReport | None:
        if root.report_id is None:
            return None
        return await info.context.loaders.imaging_report_by_id.load(root.report_id)


@strawberry.type(description="An examination on a scanner: booked, performed, reported.")
class ImagingStudy:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    accession_number: str
    modality: ImagingModality
    status: ImagingStudyStatus
    status_at: datetime
    scheduled_start: datetime
    scheduled_end: datetime
    started_at: datetime | None
    ended_at: datetime | None
    performed_by_role: ImagingPerformerRole | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="The radiologist (a doctor) or radiographer (a nurse).")
    @staticmethod
    def performed_by_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID | None:
        return ref_id(root.performed_by_id)

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field
    @staticmethod
    def ordering_doctor_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID:
        return strawberry.ID(str(root.ordering_doctor_id))

    @strawberry.field
    @staticmethod
    def equipment_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID:
        return strawberry.ID(str(root.equipment_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.ImagingStudy]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.ImagingStudy], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def order(root: strawberry.Parent[m.ImagingStudy], info: Info) -> ImagingOrder | None:
        return await info.context.loaders.imaging_order_by_id.load(root.order_id)

    @strawberry.field(description="The scanner booked.")
    @staticmethod
    async def equipment(
        root: strawberry.Parent[m.ImagingStudy], info: Info
    ) -> Annotated[MedicalEquipment, strawberry.lazy("schema.equipment")] | None:
        return await info.context.loaders.equipment_by_id.load(root.equipment_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.ImagingStudy], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="The final report, once signed.")
    @staticmethod
    async def report(root: strawberry.Parent[m.ImagingStudy], info: Info) -> ImagingReport | None:
        return await info.context.loaders.imaging_report_by_final_for_study.load(root.id)

    @strawberry.field(description="The radiologist's working draft (radiologists only).")
    @staticmethod
    async def draft_report(
        root: strawberry.Parent[m.ImagingStudy], info: Info
    ) -> ImagingReportDraft | None:
        return await info.context.loaders.imaging_report_draft_by_study.load(root.id)


@strawberry.type(description="A report being written: only its author changes or signs it.")
class ImagingReportDraft:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    findings: str
    impression: str
    status: ImagingDraftStatus
    signed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def study_id(root: strawberry.Parent[m.ImagingReportDraft]) -> strawberry.ID:
        return strawberry.ID(str(root.study_id))

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.ImagingReportDraft]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ImagingReportDraft]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def author_id(root: strawberry.Parent[m.ImagingReportDraft]) -> strawberry.ID:
        return strawberry.ID(str(root.author_id))

    @strawberry.field
    @staticmethod
    async def study(
        root: strawberry.Parent[m.ImagingReportDraft], info: Info
    ) -> ImagingStudy | None:
        return await info.context.loaders.imaging_study_by_id.load(root.study_id)

    @strawberry.field
    @staticmethod
    async def author(
        root: strawberry.Parent[m.ImagingReportDraft], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.author_id)


@strawberry.type(
    description="A signed report (final, or an addendum to one): never changes; contentHash is "
    "the SHA-256 of its canonical content."
)
class ImagingReport:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    kind: ImagingReportKind
    findings: str | None
    impression: str | None
    text: str | None = strawberry.field(description="An addendum's text.")
    signed_at: datetime
    content_hash: str
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def study_id(root: strawberry.Parent[m.ImagingReport]) -> strawberry.ID:
        return strawberry.ID(str(root.study_id))

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.ImagingReport]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.ImagingReport]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field(description="The signing radiologist.")
    @staticmethod
    def author_id(root: strawberry.Parent[m.ImagingReport]) -> strawberry.ID:
        return strawberry.ID(str(root.author_id))

    @strawberry.field
    @staticmethod
    def amends_id(root: strawberry.Parent[m.ImagingReport]) -> strawberry.ID | None:
        return ref_id(root.amends_id)

    @strawberry.field
    @staticmethod
    async def study(root: strawberry.Parent[m.ImagingReport], info: Info) -> ImagingStudy | None:
        return await info.context.loaders.imaging_study_by_id.load(root.study_id)

    @strawberry.field
    @staticmethod
    async def author(
        root: strawberry.Parent[m.ImagingReport], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(root.author_id)

    @strawberry.field(description="The final report this addendum amends.")
    @staticmethod
    async def amends(root: strawberry.Parent[m.ImagingReport], info: Info) -> ImagingReport | None:
        if root.amends_id is None:
            return None
        return await info.context.loaders.imaging_report_by_id.load(root.amends_id)

    @strawberry.field(description="Addenda to this final report, oldest first.")
    @staticmethod
    async def addenda(
        root: strawberry.Parent[m.ImagingReport],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ImagingReport]:
        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.imaging_reports_by_amends.load(key)
        return connection(ImagingReport, page)


@strawberry.input
class OrderImagingInput:
    patient_id: strawberry.ID
    ordering_doctor_id: strawberry.ID | None = strawberry.field(
        default=None, description="The caller; only an admin may name another doctor."
    )
    visit_id: strawberry.ID | None = strawberry.field(
        default=None, description="The outpatient visit it comes from (or admissionId)."
    )
    admission_id: strawberry.ID | None = None
    modality: ImagingModality
    body_part: str
    laterality: ImagingLaterality = ImagingLaterality.NOT_APPLICABLE
    clinical_question: str
    priority: ImagingPriority = ImagingPriority.ROUTINE


@strawberry.input(description="A scanner of the performing department and a time on the grid.")
class ScheduleImagingStudyInput:
    equipment_id: strawberry.ID
    start_at: datetime
    end_at: datetime


@strawberry.input
class ImagingReportDraftInput:
    findings: str
    impression: str


@strawberry.input(description="Only the fields given change; only while a draft.")
class UpdateImagingReportDraftInput:
    findings: str | None = strawberry.UNSET
    impression: str | None = strawberry.UNSET
