"""GraphQL types and inputs for emergency visits, their triage and disposition, and the ED
board."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from bson import ObjectId

from cache import emergency as live
from models import emergency as m
from models.base import utcnow
from schema.common import entity_id, ref_id
from schema.context import Info
from schema.patients import Sex

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.patients import Patient
    from schema.staff import Doctor

strawberry.enum(m.ArrivalMode, name="EmergencyArrivalMode", description="How the patient came.")
ArrivalMode = m.ArrivalMode
strawberry.enum(
    m.EmergencyStatus,
    name="EmergencyVisitStatus",
    description="waiting (not triaged yet), triaged, in_treatment (seen by a doctor), disposed.",
)
EmergencyStatus = m.EmergencyStatus
strawberry.enum(m.DispositionKind, name="EmergencyDispositionKind")
DispositionKind = m.DispositionKind
strawberry.enum(m.TriageRole, name="EmergencyTriageRole")
TriageRole = m.TriageRole

_LEVEL = "ESI level: 1 resuscitation, 2 emergent, 3 urgent, 4 less urgent, 5 non-urgent."


def meaning(level: int | None) -> str | None:
    return m.EsiLevel.MEANINGS.get(level) if level is not None else None


def _id(value: ObjectId | None) -> strawberry.ID | None:
    return ref_id(value)


@strawberry.type(description="Vital signs taken at triage (units and ranges as VitalSigns).")
class EmergencyTriageVitals:
    heart_rate: int | None = strawberry.field(description="/min, 20-250")
    systolic: int | None = strawberry.field(description="mm[Hg], 50-300")
    diastolic: int | None = strawberry.field(description="mm[Hg], 20-200")
    respiratory_rate: int | None = strawberry.field(description="/min, 4-80")
    spo2: float | None = strawberry.field(description="%, 50-100")
    temperature: float | None = strawberry.field(description="Cel, 25-45")
    pain_score: int | None = strawberry.field(description="0 (none) to 10 (worst)")
    gcs: int | None = strawberry.field(description="Glasgow Coma Scale total, 3-15")


@strawberry.type(description="One triage: the ESI level, its vital signs, who and when.")
class EmergencyTriage:
    level: int = strawberry.field(description=_LEVEL)
    triaged_at: datetime
    triaged_by_role: TriageRole
    vitals: EmergencyTriageVitals | None
    note: str | None

    @strawberry.field(description="What the level means.")
    @staticmethod
    def level_meaning(root: strawberry.Parent[m.Triage]) -> str:
        return m.EsiLevel.MEANINGS[root.level]

    @strawberry.field(description="The nurse or doctor who triaged.")
    @staticmethod
    def triaged_by_id(root: strawberry.Parent[m.Triage]) -> strawberry.ID:
        return strawberry.ID(str(root.triaged_by_id))


@strawberry.type(description="How the visit ended.")
class EmergencyDisposition:
    kind: DispositionKind
    at: datetime
    destination: str | None = strawberry.field(description="The receiving facility (transfers).")
    note: str | None

    @strawberry.field
    @staticmethod
    def by_id(root: strawberry.Parent[m.Disposition]) -> strawberry.ID | None:
        return _id(root.by_id)

    @strawberry.field(description="The admission, when admitted.")
    @staticmethod
    def admission_id(root: strawberry.Parent[m.Disposition]) -> strawberry.ID | None:
        return _id(root.admission_id)


@strawberry.type(description="One step of an emergency visit.")
class EmergencyVisitStep:
    action: str
    from_status: EmergencyStatus | None
    to_status: EmergencyStatus
    at: datetime
    by: str | None = strawberry.field(description="The subject of whoever took the step.")


@strawberry.type(description="One arrival at an emergency department, from arrival to disposition.")
class EmergencyVisit:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    arrived_at: datetime
    arrival_mode: ArrivalMode
    unidentified: bool = strawberry.field(
        description="Registered under a placeholder identity until the patient is identified."
    )
    status: EmergencyStatus
    status_at: datetime
    seen_at: datetime | None = strawberry.field(description="When treatment started.")
    version: int = strawberry.field(
        description="Grows with every change; pass it back as `expectedVersion` to act only "
        "on the visit as you saw it."
    )
    created_at: datetime
    updated_at: datetime
    chief_complaint: str | None = strawberry.field(description="Why the patient came (clinical).")
    triage: EmergencyTriage | None = strawberry.field(description="The current triage.")
    triage_history: list[EmergencyTriage] | None = strawberry.field(
        description="Every triage, oldest first (re-triage keeps the earlier ones)."
    )
    disposition: EmergencyDisposition | None
    history: list[EmergencyVisitStep] | None = strawberry.field(
        description="Every step, oldest first (staff only)."
    )

    @strawberry.field(description=_LEVEL + " Null until triaged.")
    @staticmethod
    def triage_level(root: strawberry.Parent[m.EmergencyVisit]) -> int | None:
        return root.triage.level if root.triage is not None else None

    @strawberry.field
    @staticmethod
    def triage_level_meaning(root: strawberry.Parent[m.EmergencyVisit]) -> str | None:
        return meaning(root.triage.level if root.triage is not None else None)

    @strawberry.field(
        description="Minutes from arrival until a doctor saw the patient (or until now)."
    )
    @staticmethod
    def waiting_minutes(root: strawberry.Parent[m.EmergencyVisit]) -> int:
        until = root.seen_at or (root.disposition.at if root.disposition else None) or utcnow()
        return max(0, int((until - root.arrived_at).total_seconds() // 60))

    @strawberry.field
    @staticmethod
    def disposition_kind(root: strawberry.Parent[m.EmergencyVisit]) -> DispositionKind | None:
        return root.disposition.kind if root.disposition is not None else None

    @strawberry.field
    @staticmethod
    def disposed_at(root: strawberry.Parent[m.EmergencyVisit]) -> datetime | None:
        return root.disposition.at if root.disposition is not None else None

    @strawberry.field(description="The admission made from this visit, if admitted.")
    @staticmethod
    def admission_id(root: strawberry.Parent[m.EmergencyVisit]) -> strawberry.ID | None:
        return _id(root.disposition.admission_id if root.disposition is not None else None)

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.EmergencyVisit]) -> strawberry.ID | None:
        return _id(root.patient_id)

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.EmergencyVisit]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def assigned_doctor_id(root: strawberry.Parent[m.EmergencyVisit]) -> strawberry.ID | None:
        return _id(root.assigned_doctor_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.EmergencyVisit], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The emergency department.")
    @staticmethod
    async def department(
        root: strawberry.Parent[m.EmergencyVisit], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="The ED doctor responsible; null until assigned.")
    @staticmethod
    async def assigned_doctor(
        root: strawberry.Parent[m.EmergencyVisit], info: Info
    ) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        if root.assigned_doctor_id is None:
            return None
        return await info.context.loaders.doctor_by_id.load(root.assigned_doctor_id)


# -- the board ---------------------------------------------------------------------------------


@strawberry.type(description="One open visit on the ED board: acuity, status, times; no names.")
class EmergencyBoardEntry:
    ed_department_id: strawberry.Private[ObjectId]
    visit_ref: strawberry.Private[ObjectId]
    position: int = strawberry.field(description="Place on the board, from 1.")
    level: int | None = strawberry.field(description=_LEVEL + " Null: awaiting triage.")
    level_meaning: str | None
    status: EmergencyStatus
    arrival_mode: ArrivalMode
    arrived_at: datetime
    triaged_at: datetime | None
    seen_at: datetime | None
    waiting_minutes: int = strawberry.field(
        description="Minutes from arrival until seen by a doctor, or until the board was read."
    )
    assigned_doctor_id: strawberry.ID | None

    @strawberry.field
    @staticmethod
    def visit_id(root: strawberry.Parent[EmergencyBoardEntry]) -> strawberry.ID:
        return strawberry.ID(str(root.visit_ref))

    @strawberry.field(
        description="The visit itself, under its own policy (who the patient is, the complaint "
        "for the clinical team)."
    )
    @staticmethod
    async def visit(
        root: strawberry.Parent[EmergencyBoardEntry], info: Info
    ) -> EmergencyVisit | None:
        return await info.context.loaders.emergency_visit_by_id.load(root.visit_ref)


@strawberry.type(description="Open visits per ESI level (level null: awaiting triage).")
class EmergencyLevelCount:
    level: int | None
    count: int


@strawberry.type(
    description="An emergency department's tracking board: open visits, awaiting triage "
    "first, then by ESI level (1 first), then by arrival."
)
class EmergencyBoard:
    ed_department_id: strawberry.Private[ObjectId]
    entries: list[EmergencyBoardEntry]
    counts: list[EmergencyLevelCount] = strawberry.field(
        description="Open visits per level: awaiting triage, then 1 to 5 (zeros included)."
    )
    awaiting_triage: int
    open: int = strawberry.field(description="Open visits in all.")
    updated_at: datetime = strawberry.field(description="When this board was read.")

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[EmergencyBoard]) -> strawberry.ID:
        return strawberry.ID(str(root.ed_department_id))


def board(department_id: ObjectId, entries: list[live.BoardEntry], at: datetime) -> EmergencyBoard:
    counts = {level: 0 for level in (None, *range(m.EsiLevel.LOWEST, m.EsiLevel.HIGHEST + 1))}
    for e in entries:
        counts[e.level] = counts.get(e.level, 0) + 1
    return EmergencyBoard(
        ed_department_id=department_id,
        entries=[
            EmergencyBoardEntry(
                ed_department_id=department_id,
                visit_ref=e.id,
                position=n,
                level=e.level,
                level_meaning=meaning(e.level),
                status=e.status,
                arrival_mode=e.arrival_mode,
                arrived_at=e.arrived_at,
                triaged_at=e.triaged_at,
                seen_at=e.seen_at,
                waiting_minutes=e.waiting_minutes(at),
                assigned_doctor_id=_id(e.assigned_doctor_id),
            )
            for n, e in enumerate(entries, start=1)
        ],
        counts=[EmergencyLevelCount(level=k, count=v) for k, v in counts.items()],
        awaiting_triage=counts[None],
        open=len(entries),
        updated_at=at,
    )


@strawberry.type(description="The ED board changed (or its first state).")
class EmergencyBoardEvent:
    change: str = strawberry.field(
        description="`snapshot` for the first state, else the visit change: `registered`, "
        "`triaged`, `retriaged`, `doctor_assigned`, `treatment_started`, `disposed_<kind>`."
    )
    at: datetime
    board: EmergencyBoard | None


# -- inputs ------------------------------------------------------------------------------------


@strawberry.input
class EmergencyVisitFilter:
    department_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    status: list[EmergencyStatus] | None = None
    level: int | None = strawberry.field(default=None, description="The current ESI level.")
    arrived_from: datetime | None = strawberry.field(
        default=None, description="Arrived at or after this instant."
    )
    arrived_to: datetime | None = strawberry.field(
        default=None, description="Arrived before this instant."
    )


@strawberry.input(description="Someone who cannot be identified on arrival.")
class UnidentifiedPatientInput:
    sex: Sex | None = None
    estimated_age: int | None = strawberry.field(default=None, description="Years, 0-120.")


@strawberry.input(description="A patient arrived at an emergency department.")
class RegisterEmergencyArrivalInput:
    patient_id: strawberry.ID | None = strawberry.field(
        default=None, description="A registered patient; or give `unidentified`."
    )
    unidentified: UnidentifiedPatientInput | None = strawberry.field(
        default=None,
        description='Registers a placeholder patient ("Unknown ED-<arrival>"), corrected '
        "with updatePatient once the patient is identified. Needs the right to register "
        "patients (front desk, admin).",
    )
    department_id: strawberry.ID
    arrival_mode: ArrivalMode
    chief_complaint: str
    arrived_at: datetime | None = strawberry.field(default=None, description="Default: now.")


@strawberry.input(description="Triage vital signs; every one optional, at least one given.")
class EmergencyTriageVitalsInput:
    heart_rate: int | None = None
    systolic: int | None = None
    diastolic: int | None = None
    respiratory_rate: int | None = None
    spo2: float | None = None
    temperature: float | None = None
    pain_score: int | None = None
    gcs: int | None = None


@strawberry.input(description="A triage (or re-triage) of an open visit.")
class TriageEmergencyVisitInput:
    level: int = strawberry.field(description=_LEVEL)
    vitals: EmergencyTriageVitalsInput | None = None
    triaged_at: datetime | None = strawberry.field(
        default=None, description="Default: now; not before the arrival, not in the future."
    )
    note: str | None = None


@strawberry.input(description="Admit the patient of an ED visit to a ward bed.")
class AdmitFromEmergencyInput:
    bed_id: strawberry.ID
    attending_doctor_id: strawberry.ID
    reason: str
    diagnosis: str | None = None
    note: str | None = strawberry.field(default=None, description="The disposition's note.")
