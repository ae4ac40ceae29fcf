"""Admissions over GraphQL: admit, transfer, discharge, and the lists of who is in.

Who may act comes from the declaration (``models/admissions.py``): the action is judged on the
admission (for a new one: a draft naming the patient, the attending doctor and the bed's
department, so a doctor admits a patient they treat, into their own department, or as the
attending). The front desk admits electively only: ``admitPatient`` asks ``admitElectively``
for an elective admission and ``admit`` for any other.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden
from models.admissions import Admission as AdmissionDoc
from models.admissions import AdmissionSource as SourceEnum
from models.audit import AuditAction
from resolvers.common import perform
from schema.admissions import (
    Admission,
    AdmissionStatus,
    AdmitPatientInput,
    DischargeDisposition,
    DischargeNoteInput,
)
from schema.common import Connection, IdempotencyKey, connection, create_data, oid, to_data, view
from schema.context import Info
from schema.enforce import acts
from services import admissions
from services.idempotency import idempotent

ADMIT, ADMIT_ELECTIVELY = "admit", "admitElectively"
TRANSFER, DISCHARGE = "transfer", "discharge"


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _attending(info: Info, data: dict[str, Any]) -> None:
    """A doctor admitting is the attending unless they name a colleague; anyone else names
    one."""
    principal = info.context.access.principal
    if data.get("attending_doctor_id") is not None:
        return
    if principal.staff_id is not None and principal.has(Role.DOCTOR):
        data["attending_doctor_id"] = principal.staff_id
        return
    raise BadUserInput(
        "attendingDoctorId: name the attending doctor", {"attendingDoctorId": "required"}
    )


async def _draft(info: Info, data: dict[str, Any]) -> AdmissionDoc:
    """What the policy judges an admission on before it exists: its patient, attending doctor
    and the bed's department (an unknown patient or bed is bad input, not a refusal)."""
    patient_id, bed_id = data.get("patient_id"), data.get("bed_id")
    if await info.context.loaders.patient_by_id.load(patient_id) is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    bed = await info.context.loaders.bed_by_id.load(bed_id)
    if bed is None:
        raise BadUserInput("bedId: no such bed", {"bedId": "no such bed"})
    return AdmissionDoc.model_construct(
        patient_id=patient_id,
        attending_doctor_id=data.get("attending_doctor_id"),
        department_id=bed.department_id,
        ward_id=bed.ward_id,
        bed_id=bed.id,
    )


def _action(data: dict[str, Any]) -> str:
    return ADMIT_ELECTIVELY if data.get("source") == SourceEnum.ELECTIVE.value else ADMIT


async def _admission(info: Info, id: strawberry.ID, action: str) -> AdmissionDoc:
    admission = await admissions.get_admission(oid(id))
    await info.context.access.require(K.ADMISSION, action, row=admission)
    return admission


def _author(info: Info, admission: AdmissionDoc) -> tuple[ObjectId, str | None]:
    """Who signs the discharge note: the discharging doctor; an admin signs for the attending
    doctor (the note in the audit trail says so)."""
    principal = info.context.access.principal
    if principal.staff_id is not None and principal.has(Role.DOCTOR):
        return principal.staff_id, None
    if principal.has(Role.ADMIN):
        return admission.attending_doctor_id, "signed by an administrator for the attending doctor"
    info.context.access.audit.denied(
        K.ADMISSION, admission.id, admission.patient_id, AuditAction.UPDATE, "not a doctor"
    )
    raise Forbidden("Only a doctor signs a discharge note")


@strawberry.type
class AdmissionsQuery:
    @strawberry.field
    async def admission(self, info: Info, id: strawberry.ID) -> Admission | None:
        return await info.context.loaders.admission_by_id.load(oid(id))

    @strawberry.field(description="Admissions by admission time (admittedFrom inclusive).")
    async def admissions(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        ward_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
        attending_doctor_id: strawberry.ID | None = None,
        status: list[AdmissionStatus] | None = None,
        admitted_from: datetime | None = None,
        admitted_to: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Admission]:
        query = admissions.admission_filter(
            patient_id=oid(patient_id, "patientId") if patient_id else None,
            ward_id=oid(ward_id, "wardId") if ward_id else None,
            department_id=oid(department_id, "departmentId") if department_id else None,
            attending_doctor_id=(
                oid(attending_doctor_id, "attendingDoctorId") if attending_doctor_id else None
            ),
            statuses=status or (),
            admitted_from=admitted_from,
            admitted_to=admitted_to,
        )
        page = await admissions.list_admissions(
            query, info.context.page(first, after), await info.context.access.scope(K.ADMISSION)
        )
        return connection(Admission, page)


@strawberry.type
class AdmissionsMutation:
    @strawberry.mutation(
        description="Admit a patient to a free bed under an attending doctor: CONFLICT when the "
        "bed is taken or the patient already lies in one (and then nothing changed).",
        metadata=acts(K.ADMISSION, ADMIT_ELECTIVELY),
    )
    async def admit_patient(
        self, info: Info, input: AdmitPatientInput, idempotency_key: IdempotencyKey = None
    ) -> Admission:
        data = create_data(input)
        _attending(info, data)
        action = _action(data)
        by = _subject(info)

        async def run() -> AdmissionDoc:
            draft = await _draft(info, data)
            admit = partial(admissions.admit, data, by=by)
            return await perform(info, K.ADMISSION, action, admit, data, row=draft)

        async def replay(first: AdmissionDoc, replayed: str) -> AdmissionDoc:
            await info.context.access.require(K.ADMISSION, action, row=first)
            info.context.access.wrote(K.ADMISSION, first, action, data, note=replayed)
            return first

        admission = await idempotent(
            by, "admitPatient", idempotency_key, {"input": data}, AdmissionDoc, run, replay
        )
        return view(Admission, admission)

    @strawberry.mutation(
        description="Move the patient to another free bed; the admission names one bed before "
        "and one after, never none or two. The old bed goes to cleaning.",
        metadata=acts(K.ADMISSION, TRANSFER),
    )
    async def transfer_patient(
        self,
        info: Info,
        admission_id: strawberry.ID,
        bed_id: strawberry.ID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Admission:
        admission = await _admission(info, admission_id, TRANSFER)
        target = oid(bed_id, "bedId")
        run = partial(
            admissions.transfer,
            admission.id,  # type: ignore[arg-type]
            target,
            reason,
            expected_version,
            by=_subject(info),
        )
        fields = ["bed_id", "ward_id", "department_id", "stays"]
        done = await perform(info, K.ADMISSION, TRANSFER, run, fields, row=admission)
        return view(Admission, done)

    @strawberry.mutation(
        description="Discharge with a discharge note signed by the caller; the bed goes to "
        "cleaning.",
        metadata=acts(K.ADMISSION, DISCHARGE),
    )
    async def discharge_patient(
        self,
        info: Info,
        admission_id: strawberry.ID,
        note: DischargeNoteInput,
        disposition: DischargeDisposition,
        expected_version: int | None = None,
    ) -> Admission:
        admission = await _admission(info, admission_id, DISCHARGE)
        author, signed_for = _author(info, admission)
        content = to_data(note)
        run = partial(
            admissions.discharge,
            admission.id,  # type: ignore[arg-type]
            content,
            disposition,
            author,
            expected_version,
        )
        fields = ["status", "discharged_at", "discharge"]
        done = await perform(
            info, K.ADMISSION, DISCHARGE, run, fields, note=signed_for, row=admission
        )
        return view(Admission, done)
