"""Radiology: imaging orders, the studies that perform them on a scanner, and their reports.

An order (from an outpatient visit or an admission) asks the Radiology department for one
examination: a modality, a body part, a clinical question. Scheduling it creates its one study,
which books a scanner of the department through the same reservations appointments use
(``services.scheduling``), so a device is never double-booked, whoever books it. A radiologist
reports the study: a draft only its author edits, signed into an immutable final report (with a
content hash); corrections are addenda, immutable too, that keep the final.

Who reads what (the declarations below):
- the care team: doctors with a care relationship to the patient, and the ordering doctor (a
  clinician of every order, study and report); nurses with one, or of the performing department
  (its radiographers). An order is itself a care source: while it is open the ordering doctor
  treats the patient and Radiology sees them (so its staff can read whom they examine), and
  for the configured days after the report;
- radiologists: every imaging record of their own department (the performing one), as a
  radiology department works its worklist and compares priors; drafts: their author, and the
  department's radiologists;
- the patient: their orders and studies, and final reports and addenda (drafts live in their
  own collection, which no patient grant reaches);
- billing: orders and studies with their charge fields, never the clinical question or a report;
- the Radiology front desk (admin staff of the department): the worklist, to schedule studies;
- analysts: nothing (no grant at all).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pymongo
from beanie import Document
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import (
    CONFIGURED_CARE_DAYS,
    A,
    Action,
    C,
    CareSource,
    D,
    R,
    S,
    declare,
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow
from models.scheduling import ReservationHolder, ReservedResource, register_holder

RADIOLOGY_DEPARTMENT_CODE = "RAD"
"""The department that performs imaging: its code. Orders go to it; its devices scan."""

ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]


class ImagingModality(StrEnum):
    """DICOM-style modality codes (XR: plain radiography)."""

    CT = "CT"
    MR = "MR"
    XR = "XR"
    US = "US"
    NM = "NM"
    MG = "MG"
    FL = "FL"


MODALITY_EQUIPMENT: dict[ImagingModality, frozenset[str]] = {
    ImagingModality.CT: frozenset({"ct scanner"}),
    ImagingModality.MR: frozenset({"mri scanner", "mr scanner"}),
    ImagingModality.XR: frozenset({"x-ray system"}),
    ImagingModality.US: frozenset({"ultrasound", "ultrasound system"}),
    ImagingModality.NM: frozenset({"gamma camera", "spect scanner", "pet-ct scanner"}),
    ImagingModality.MG: frozenset({"mammography", "mammography system"}),
    ImagingModality.FL: frozenset({"fluoroscopy system", "c-arm"}),
}
"""The equipment types (``MedicalEquipment.equipment_type``, case-insensitive) that can perform
each modality; a study on any other device is refused."""

MODALITY_PRICES: dict[ImagingModality, int] = {
    ImagingModality.XR: 6_000,
    ImagingModality.US: 12_000,
    ImagingModality.MG: 9_000,
    ImagingModality.FL: 15_000,
    ImagingModality.CT: 30_000,
    ImagingModality.NM: 40_000,
    ImagingModality.MR: 45_000,
}
"""What a completed study costs the patient, in minor units of the billing account's currency
(the demo's EUR): fixed per modality, recorded on the order when it is placed."""


class ImagingLaterality(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    BILATERAL = "bilateral"
    NOT_APPLICABLE = "not_applicable"


class ImagingPriority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class ImagingOrderStatus(StrEnum):
    ORDERED = "ordered"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REPORTED = "reported"
    CANCELLED = "cancelled"


ORDER_STAGES: tuple[ImagingOrderStatus, ...] = (
    ImagingOrderStatus.ORDERED,
    ImagingOrderStatus.SCHEDULED,
    ImagingOrderStatus.IN_PROGRESS,
    ImagingOrderStatus.COMPLETED,
    ImagingOrderStatus.REPORTED,
)
"""The order's path, in order; ``cancelled`` leaves it from ordered or scheduled only."""


class ImagingStudyStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ACTIVE_STUDY_STATUSES = (ImagingStudyStatus.SCHEDULED, ImagingStudyStatus.IN_PROGRESS)
"""A study holds its scanner's time while scheduled or in progress."""


class ImagingPerformerRole(StrEnum):
    RADIOGRAPHER = "radiographer"
    RADIOLOGIST = "radiologist"


class ImagingStatusChange(BaseModel):
    status: str
    at: UtcDatetime


class ImagingOrder(Entity):
    patient_id: Ref
    ordering_doctor_id: Ref
    visit_id: Ref | None = None
    admission_id: Ref | None = None
    department_id: Ref = Field(description="The performing department (Radiology).")
    modality: ImagingModality
    body_part: ShortText
    laterality: ImagingLaterality = ImagingLaterality.NOT_APPLICABLE
    clinical_question: ClinicalText
    priority: ImagingPriority = ImagingPriority.ROUTINE
    status: ImagingOrderStatus = ImagingOrderStatus.ORDERED
    status_at: UtcDatetime = Field(default_factory=utcnow)
    price: int = Field(default=0, ge=0, description="MODALITY_PRICES when ordered; minor units")
    charged_at: UtcDatetime | None = None
    study_id: Ref | None = None
    report_id: Ref | None = Field(default=None, description="The final report, once signed.")
    cancellation_reason: ShortText | None = None
    version: int = 0
    history: list[ImagingStatusChange] = Field(default_factory=list)

    class Settings:
        name = "imaging_orders"
        indexes = [
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("ordering_doctor_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("visit_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("priority", 1), ("_id", 1)]),
            pymongo.IndexModel([("modality", 1), ("status", 1), ("_id", 1)]),
        ]


# The clinical question states the suspected diagnosis, the body part what is examined, the
# cancellation reason why not: encrypted at rest (never queried; worklists filter on modality).
IMAGING_ORDER_SEALED = sealed(
    ImagingOrder,
    "imaging_orders",
    ("clinical_question", "body_part", "cancellation_reason"),
    {},
)


class ImagingStudy(Entity):
    order_id: Ref
    patient_id: Ref
    ordering_doctor_id: Ref
    department_id: Ref
    accession_number: str = Field(min_length=1, max_length=32)
    modality: ImagingModality
    equipment_id: Ref
    scheduled_start: UtcDatetime
    scheduled_end: UtcDatetime
    status: ImagingStudyStatus = ImagingStudyStatus.SCHEDULED
    status_at: UtcDatetime = Field(default_factory=utcnow)
    performed_by_id: Ref | None = None
    performed_by_role: ImagingPerformerRole | None = None
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    version: int = 0

    class Settings:
        name = "imaging_studies"
        indexes = [
            pymongo.IndexModel("accession_number", unique=True),
            pymongo.IndexModel("order_id", unique=True, name="one_study_per_order"),
            pymongo.IndexModel([("equipment_id", 1), ("scheduled_start", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("scheduled_start", 1), ("_id", 1)]),
            pymongo.IndexModel([("department_id", 1), ("scheduled_start", 1), ("_id", 1)]),
            pymongo.IndexModel([("scheduled_start", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("scheduled_start", 1)]),
        ]


class ImagingAccessionCounter(Document):
    """The last accession number handed out per day ($inc is atomic across processes)."""

    day: str = Field(pattern=r"^\d{8}$")
    last: int = 0

    class Settings:
        name = "imaging_accession_counters"
        indexes = [pymongo.IndexModel("day", unique=True, name="one_counter_per_day")]


class ImagingDraftStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class ImagingReportDraft(Entity):
    """The radiologist's working copy; signing freezes it and issues the final report (which
    has the draft's id)."""

    study_id: Ref
    order_id: Ref
    patient_id: Ref
    department_id: Ref
    author_id: Ref
    findings: ClinicalText
    impression: ClinicalText
    status: ImagingDraftStatus = ImagingDraftStatus.DRAFT
    signed_at: UtcDatetime | None = None
    version: int = 0

    class Settings:
        name = "imaging_report_drafts"
        indexes = [
            pymongo.IndexModel("study_id", unique=True, name="one_draft_per_study"),
            pymongo.IndexModel([("author_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
        ]


# The draft's text is the report to be: encrypted at rest like the signed report.
IMAGING_REPORT_DRAFT_SEALED = sealed(
    ImagingReportDraft, "imaging_report_drafts", ("findings", "impression"), {}
)


class ImagingReportKind(StrEnum):
    FINAL = "final"
    ADDENDUM = "addendum"


class ImagingReport(Entity):
    """A signed report: written once, never updated (no service writes this collection but
    by insert). ``content_hash`` is the SHA-256 of its canonical content (see
    ``services.radiology.content_hash``), so any later change would show."""

    study_id: Ref
    order_id: Ref
    patient_id: Ref
    department_id: Ref
    ordering_doctor_id: Ref
    author_id: Ref
    kind: ImagingReportKind
    findings: ClinicalText | None = None
    impression: ClinicalText | None = None
    text: ClinicalText | None = Field(default=None, description="An addendum's text.")
    amends_id: Ref | None = Field(default=None, description="The final report an addendum amends.")
    final_for_study_id: Ref | None = Field(
        default=None, description="Set on finals only: one final report per study."
    )
    signed_at: UtcDatetime
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")

    class Settings:
        name = "imaging_reports"
        indexes = [
            pymongo.IndexModel(
                "final_for_study_id", unique=True, sparse=True, name="one_final_per_study"
            ),
            pymongo.IndexModel([("amends_id", 1), ("signed_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("study_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
        ]


# The report's text (findings, impression, an addendum's text) is encrypted at rest; its
# content hash is computed over the clear text, so verifying it opens the report first.
IMAGING_REPORT_SEALED = sealed(
    ImagingReport, "imaging_reports", ("findings", "impression", "text"), {}
)


STUDY_HOLDER = register_holder(
    ReservationHolder(
        name="imaging_study",
        model=ImagingStudy,
        active=frozenset(s.value for s in ACTIVE_STUDY_STATUSES),
        start="scheduled_start",
        end="scheduled_end",
        resources={ReservedResource.EQUIPMENT: "equipment_id"},
        label="imaging study",
        extension="imagingStudyIds",
        claimed_by=("order_id", ImagingOrder, "study_id"),
    )
)
"""A study holds its scanner's slots like an appointment holds its device's."""

# -- the policy --------------------------------------------------------------------------------

_CARE_TEAM = {
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
    R.RADIOLOGIST: grant(C, D),
    R.PATIENT: grant(S),
}
# Orders and studies as work items: also billing (to charge them), the performing department's
# front desk (to schedule them) and admin; never analysts.
_WORKLIST = {**_CARE_TEAM, R.BILLING: grant(A), R.ADMIN_STAFF: grant(D), R.ADMIN: grant(A)}
_CHARGE = {
    R.BILLING: grant(A),
    R.ADMIN: grant(A),
    R.PATIENT: grant(S),
    R.DOCTOR: grant(C),
    R.RADIOLOGIST: grant(C, D),
}
# Studies are scheduled by the performing department: its radiologists, its front desk and its
# nurses (radiographers); performed by its radiologists and radiographers.
_SCHEDULERS = {
    R.RADIOLOGIST: grant(D),
    R.ADMIN_STAFF: grant(D),
    R.NURSE: grant(D),
    R.ADMIN: grant(A),
}
_PERFORMERS = {R.RADIOLOGIST: grant(D), R.NURSE: grant(D)}
_ORDERED_AT = ("id", "createdAt", "updatedAt")

IMAGING_ORDER = declare(
    "ImagingOrder",
    ImagingOrder,
    row(
        Class.CLINICAL,
        (
            *_ORDERED_AT,
            "modality",
            "bodyPart",
            "laterality",
            "priority",
            "status",
            "statusAt",
            "version",
            "history",
            "orderingDoctorId",
            "orderingDoctor",
            "visitId",
            "visit",
            "admissionId",
            "departmentId",
            "department",
            "studyId",
            "study",
        ),
        _WORKLIST,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _WORKLIST),
    group(
        "question",
        Class.CLINICAL,
        ("clinicalQuestion", "cancellationReason"),
        {**_CARE_TEAM, R.ADMIN_STAFF: grant(D)},
    ),
    group("charge", Class.FINANCIAL, ("price", "chargedAt"), _CHARGE),
    group("report", Class.CLINICAL, ("reportId", "report"), _CARE_TEAM),
    actions={
        # The ordering doctor is the caller, who must treat the patient; an admin may enter an
        # order for a named doctor (audited as such).
        Action.CREATE: {R.DOCTOR: grant(C), R.ADMIN: grant(A)},
        Action.CANCEL: {R.DOCTOR: grant(C), R.RADIOLOGIST: grant(D), R.ADMIN: grant(A)},
        "scheduleStudy": _SCHEDULERS,
    },
    patient="patient_id",
    clinicians=("ordering_doctor_id",),
    department="department_id",
    refs=("patient_id", "ordering_doctor_id", "visit_id", "department_id", "study_id"),
    cached=True,
    # While an order is open, Radiology is seeing the patient (as for an appointment there) and
    # the ordering doctor treats them; after the report, for the configured number of days
    # (long enough to act on the result); a cancelled order never.
    care=CareSource(
        clinician="ordering_doctor_id",
        department="department_id",
        ends="status_at",
        lifetime={
            ImagingOrderStatus.ORDERED: None,
            ImagingOrderStatus.SCHEDULED: None,
            ImagingOrderStatus.IN_PROGRESS: None,
            ImagingOrderStatus.COMPLETED: None,
            ImagingOrderStatus.REPORTED: CONFIGURED_CARE_DAYS,
        },
    ),
)

IMAGING_STUDY = declare(
    "ImagingStudy",
    ImagingStudy,
    row(
        Class.CLINICAL,
        (
            *_ORDERED_AT,
            "accessionNumber",
            "modality",
            "status",
            "statusAt",
            "scheduledStart",
            "scheduledEnd",
            "startedAt",
            "endedAt",
            "performedById",
            "performedByRole",
            "equipmentId",
            "equipment",
            "orderId",
            "order",
            "orderingDoctorId",
            "departmentId",
            "department",
            "version",
        ),
        _WORKLIST,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _WORKLIST),
    group("report", Class.CLINICAL, ("report", "draftReport"), _CARE_TEAM),
    actions={"start": _PERFORMERS, Action.COMPLETE: _PERFORMERS},
    patient="patient_id",
    clinicians=("performed_by_id", "ordering_doctor_id"),
    department="department_id",
    refs=("patient_id", "order_id", "equipment_id", "department_id", "ordering_doctor_id"),
    cached=True,
    order=(("scheduled_start", 1), ("_id", 1)),
)

IMAGING_REPORT_DRAFT = declare(
    "ImagingReportDraft",
    ImagingReportDraft,
    row(
        Class.CLINICAL,
        (
            *_ORDERED_AT,
            "findings",
            "impression",
            "status",
            "signedAt",
            "version",
            "studyId",
            "study",
            "orderId",
            "patientId",
            "authorId",
            "author",
        ),
        # Work in progress: its author and the department's radiologists, no one else.
        {R.RADIOLOGIST: grant(S, D)},
    ),
    actions={
        Action.CREATE: {R.RADIOLOGIST: grant(D)},
        Action.UPDATE: {R.RADIOLOGIST: grant(S)},
        "sign": {R.RADIOLOGIST: grant(S)},
    },
    patient="patient_id",
    clinicians=("author_id",),
    department="department_id",
    own=(("author_id", "staff_id"),),
    refs=("patient_id", "study_id", "order_id", "author_id"),
    cached=True,
)

IMAGING_REPORT = declare(
    "ImagingReport",
    ImagingReport,
    row(
        Class.CLINICAL,
        (
            *_ORDERED_AT,
            "kind",
            "findings",
            "impression",
            "text",
            "signedAt",
            "contentHash",
            "studyId",
            "study",
            "orderId",
            "patientId",
            "authorId",
            "author",
            "amendsId",
            "amends",
            "addenda",
        ),
        _CARE_TEAM,
    ),
    actions={"addendum": {R.RADIOLOGIST: grant(C, D)}},
    patient="patient_id",
    clinicians=("author_id", "ordering_doctor_id"),
    department="department_id",
    refs=("patient_id", "study_id", "order_id", "author_id", "amends_id"),
    cached=True,
    order=(("signed_at", 1), ("_id", 1)),
)
