"""Imaging orders, studies and reports: the Radiology workflow over GraphQL."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden
from models.audit import AuditAction
from models.radiology import ImagingOrder as ImagingOrderDoc
from models.radiology import ImagingPerformerRole
from models.radiology import ImagingStudy as ImagingStudyDoc
from resolvers.common import perform
from schema.common import (
    Connection,
    IdempotencyKey,
    connection,
    create_data,
    oid,
    to_data,
    update_data,
    view,
)
from schema.context import Info
from schema.enforce import acts
from schema.radiology import (
    ImagingModality,
    ImagingOrder,
    ImagingOrderStatus,
    ImagingPriority,
    ImagingReport,
    ImagingReportDraft,
    ImagingReportDraftInput,
    ImagingStudy,
    ImagingStudyStatus,
    OrderImagingInput,
    ScheduleImagingStudyInput,
    UpdateImagingReportDraftInput,
)
from services import radiology
from services.idempotency import idempotent


def _ordering_doctor(info: Info, data: dict[str, Any]) -> str | None:
    """Doctors order in their own name; an admin may enter an order for a named doctor (the
    returned note goes to the audit trail)."""
    principal = info.context.access.principal
    given = data.get("ordering_doctor_id")
    doctor = principal.staff_id is not None and principal.has(Role.DOCTOR)
    if doctor and given in (None, principal.staff_id):
        data["ordering_doctor_id"] = principal.staff_id
        return None
    if not principal.has(Role.ADMIN):
        info.context.access.audit.denied(
            K.PATIENT, data.get("patient_id"), data.get("patient_id"), AuditAction.CREATE,
            "orderingDoctorId names another doctor",
        )  # fmt: skip
        raise Forbidden(
            "Doctors order in their own name: leave out orderingDoctorId", field="orderingDoctorId"
        )
    if given is None:
        raise BadUserInput(
            "orderingDoctorId: name the doctor you enter this for",
            {"orderingDoctorId": "required"},
        )
    return f"entered by an administrator for orderingDoctorId {given}"


async def _patient(info: Info, patient_id: Any) -> Any:
    patient = await info.context.loaders.patient_by_id.load(patient_id)
    if patient is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    return patient


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _staff(info: Info, what: str) -> ObjectId:
    """The caller's own staff record: who performs a study or writes a report."""
    staff_id = info.context.access.principal.staff_id
    if staff_id is None:
        raise Forbidden(f"Only a staff member with a staff record can {what}")
    return staff_id


@strawberry.type
class RadiologyQuery:
    @strawberry.field
    async def imaging_order(self, info: Info, id: strawberry.ID) -> ImagingOrder | None:
        return await info.context.loaders.imaging_order_by_id.load(oid(id))

    @strawberry.field(description="Imaging orders, oldest first, filtered.")
    async def imaging_orders(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        ordering_doctor_id: strawberry.ID | None = None,
        visit_id: strawberry.ID | None = None,
        status: list[ImagingOrderStatus] | None = None,
        modality: ImagingModality | None = None,
        priority: ImagingPriority | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ImagingOrder]:
        query = radiology.order_filter(
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            ordering_doctor_id=(
                oid(ordering_doctor_id, "orderingDoctorId") if ordering_doctor_id else None
            ),
            visit_id=oid(visit_id, "visitId") if visit_id else None,
            statuses=status or (),
            modality=modality,
            priority=priority,
        )
        page = await radiology.list_orders(
            query,
            info.context.page(first, after),
            await info.context.access.scope(K.IMAGING_ORDER),
        )
        return connection(ImagingOrder, page)

    @strawberry.field
    async def imaging_study(self, info: Info, id: strawberry.ID) -> ImagingStudy | None:
        return await info.context.loaders.imaging_study_by_id.load(oid(id))

    @strawberry.field(
        description="Imaging studies by booked start: a scanner's day with equipmentId, from "
        "and to (from inclusive, to exclusive)."
    )
    async def imaging_studies(
        self,
        info: Info,
        equipment_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        status: list[ImagingStudyStatus] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ImagingStudy]:
        query = radiology.study_filter(
            equipment_id=oid(equipment_id, "equipmentId") if equipment_id else None,
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            statuses=status or (),
            starts_from=from_,
            starts_before=to,
        )
        page = await radiology.list_studies(
            query,
            info.context.page(first, after),
            await info.context.access.scope(K.IMAGING_STUDY),
        )
        return connection(ImagingStudy, page)

    @strawberry.field
    async def imaging_report(self, info: Info, id: strawberry.ID) -> ImagingReport | None:
        return await info.context.loaders.imaging_report_by_id.load(oid(id))


@strawberry.type
class RadiologyMutation:
    @strawberry.mutation(
        description="Order an examination from Radiology, from a visit or an admission.",
        metadata=acts(K.IMAGING_ORDER, Action.CREATE),
    )
    async def order_imaging(
        self, info: Info, input: OrderImagingInput, idempotency_key: IdempotencyKey = None
    ) -> ImagingOrder:
        data = create_data(input)
        note = _ordering_doctor(info, data)

        async def run() -> ImagingOrderDoc:
            patient = await _patient(info, data.get("patient_id"))
            create = partial(radiology.create_order, data)
            return await perform(
                info, K.IMAGING_ORDER, Action.CREATE, create, data, note=note, patient=patient
            )

        async def replay(first: ImagingOrderDoc, replayed: str) -> ImagingOrderDoc:
            patient = await _patient(info, first.patient_id)
            await info.context.access.require(K.IMAGING_ORDER, Action.CREATE, patient=patient)
            info.context.access.wrote(K.IMAGING_ORDER, first, Action.CREATE, data, note=replayed)
            return first

        order = await idempotent(
            _subject(info), "orderImaging", idempotency_key, {"input": data},
            ImagingOrderDoc, run, replay,
        )  # fmt: skip
        return view(ImagingOrder, order)

    @strawberry.mutation(
        description="Cancel an order not yet performed; its booking frees the scanner.",
        metadata=acts(K.IMAGING_ORDER, Action.CANCEL),
    )
    async def cancel_imaging_order(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> ImagingOrder:
        row = await radiology.get_order(oid(id))
        run = partial(radiology.cancel_order, oid(id), reason)
        done = await perform(info, K.IMAGING_ORDER, Action.CANCEL, run, ["status"], row=row)
        return view(ImagingOrder, done)

    @strawberry.mutation(
        description="Book the order's study on a scanner that fits its modality. CONFLICT when "
        "the scanner is booked then (by a study or an appointment).",
        metadata=acts(K.IMAGING_ORDER, "scheduleStudy"),
    )
    async def schedule_imaging_study(
        self,
        info: Info,
        order_id: strawberry.ID,
        input: ScheduleImagingStudyInput,
        idempotency_key: IdempotencyKey = None,
    ) -> ImagingStudy:
        data = to_data(input)
        id = oid(order_id, "orderId")

        async def run() -> ImagingStudyDoc:
            row = await radiology.get_order(id)
            await info.context.access.require(K.IMAGING_ORDER, "scheduleStudy", row=row)
            study = await radiology.schedule_study(id, data)
            info.context.access.wrote(K.IMAGING_STUDY, study, "scheduleStudy", data)
            return study

        async def replay(first: ImagingStudyDoc, replayed: str) -> ImagingStudyDoc:
            row = await radiology.get_order(id)
            await info.context.access.require(K.IMAGING_ORDER, "scheduleStudy", row=row)
            info.context.access.wrote(K.IMAGING_STUDY, first, "scheduleStudy", data, note=replayed)
            return first

        study = await idempotent(
            _subject(info), "scheduleImagingStudy", idempotency_key,
            {"orderId": str(id), "input": data}, ImagingStudyDoc, run, replay,
        )  # fmt: skip
        return view(ImagingStudy, study)

    @strawberry.mutation(
        description="The caller starts performing the study (radiologist or radiographer).",
        metadata=acts(K.IMAGING_STUDY, "start"),
    )
    async def start_imaging_study(self, info: Info, id: strawberry.ID) -> ImagingStudy:
        row = await radiology.get_study(oid(id))
        await info.context.access.require(K.IMAGING_STUDY, "start", row=row)
        principal = info.context.access.principal
        role = (
            ImagingPerformerRole.RADIOLOGIST
            if principal.has(Role.RADIOLOGIST)
            else ImagingPerformerRole.RADIOGRAPHER
        )
        performer = _staff(info, "perform a study")
        done = await radiology.start_study(oid(id), performer, role)
        info.context.access.wrote(K.IMAGING_STUDY, done, "start", ["status"])
        return view(ImagingStudy, done)

    @strawberry.mutation(
        description="The images are taken: frees the scanner and charges the patient once.",
        metadata=acts(K.IMAGING_STUDY, Action.COMPLETE),
    )
    async def complete_imaging_study(self, info: Info, id: strawberry.ID) -> ImagingStudy:
        row = await radiology.get_study(oid(id))
        run = partial(radiology.complete_study, oid(id))
        done = await perform(info, K.IMAGING_STUDY, Action.COMPLETE, run, ["status"], row=row)
        return view(ImagingStudy, done)

    @strawberry.mutation(
        description="Start the study's report as the caller (a radiologist).",
        metadata=acts(K.IMAGING_REPORT_DRAFT, Action.CREATE),
    )
    async def create_imaging_report_draft(
        self, info: Info, study_id: strawberry.ID, input: ImagingReportDraftInput
    ) -> ImagingReportDraft:
        data = to_data(input)
        study = await radiology.get_study(oid(study_id, "studyId"))
        await info.context.access.require(K.IMAGING_REPORT_DRAFT, Action.CREATE, row=study)
        author = _staff(info, "write a report")
        draft = await radiology.create_draft(oid(study_id, "studyId"), author, data)
        info.context.access.wrote(K.IMAGING_REPORT_DRAFT, draft, Action.CREATE, data)
        return view(ImagingReportDraft, draft)

    @strawberry.mutation(
        description="Change the caller's own draft; `version` (optional) guards a stale edit.",
        metadata=acts(K.IMAGING_REPORT_DRAFT, Action.UPDATE),
    )
    async def update_imaging_report_draft(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateImagingReportDraftInput,
        version: int | None = None,
    ) -> ImagingReportDraft:
        changes = update_data(input)
        row = await radiology.get_draft(oid(id))
        run = partial(radiology.update_draft, oid(id), changes, version)
        done = await perform(info, K.IMAGING_REPORT_DRAFT, Action.UPDATE, run, changes, row=row)
        return view(ImagingReportDraft, done)

    @strawberry.mutation(
        description="Sign the caller's own draft: the final report, immutable, with its hash.",
        metadata=acts(K.IMAGING_REPORT_DRAFT, "sign"),
    )
    async def sign_imaging_report(self, info: Info, id: strawberry.ID) -> ImagingReport:
        row = await radiology.get_draft(oid(id))
        await info.context.access.require(K.IMAGING_REPORT_DRAFT, "sign", row=row)
        report = await radiology.sign(oid(id))
        info.context.access.wrote(K.IMAGING_REPORT, report, "sign", ["status"])
        return view(ImagingReport, report)

    @strawberry.mutation(
        description="Amend a final report: a signed addendum; the final stays as it was.",
        metadata=acts(K.IMAGING_REPORT, "addendum"),
    )
    async def add_imaging_addendum(
        self, info: Info, report_id: strawberry.ID, text: str
    ) -> ImagingReport:
        row = await radiology.get_report(oid(report_id, "reportId"))
        await info.context.access.require(K.IMAGING_REPORT, "addendum", row=row)
        author = _staff(info, "amend a report")
        added = await radiology.add_addendum(oid(report_id, "reportId"), author, text)
        info.context.access.wrote(K.IMAGING_REPORT, added, "addendum", ["text"])
        return view(ImagingReport, added)
