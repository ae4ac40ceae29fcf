"""The emergency department over GraphQL: arrivals, triage, treatment, dispositions, the board.

Who may act is the declaration's (``models/emergency.py``): an arrival is judged against the
ED it is registered in and the patient (as a visit row), every later step against the visit.
Clinical authors act in their own name: the triaging nurse or doctor is the caller, and so is
the doctor who starts treatment or disposes; only an admin names another doctor (audited).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from bson import ObjectId

from auth.policy import ROW, Action
from auth.policy import EntityKind as K
from auth.roles import Role
from cache import emergency as live_board
from errors import BadUserInput, Forbidden, NotFound
from events.types import DomainEvent
from models.base import utcnow
from models.emergency import EmergencyVisit as VisitDoc
from models.emergency import TriageRole
from resolvers.common import perform
from resolvers.subscriptions import live
from schema.common import Connection, connection, create_data, oid, view
from schema.context import Info
from schema.emergency import (
    AdmitFromEmergencyInput,
    DispositionKind,
    EmergencyBoard,
    EmergencyBoardEvent,
    EmergencyVisit,
    EmergencyVisitFilter,
    RegisterEmergencyArrivalInput,
    TriageEmergencyVisitInput,
    board,
)
from schema.enforce import acts, reads
from services import emergency

REGISTER = "register"
TRIAGE = "triage"
ASSIGN = "assignDoctor"
START = "startTreatment"
DISPOSE = "dispose"
ADMIT = "admit"
LWBS = "leftWithoutBeingSeen"
VISITS = str(VisitDoc.Settings.name)
FIELD = "emergencyBoardChanged"


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _staff(info: Info, what: str) -> ObjectId:
    staff_id = info.context.access.principal.staff_id
    if staff_id is None:
        raise Forbidden(f"Only a staff member with a staff record can {what}")
    return staff_id


def _doctor(info: Info, named: strawberry.ID | None, what: str) -> tuple[ObjectId, str | None]:
    """The doctor of a step: the calling doctor, or the one an admin names (with the note for
    the audit trail)."""
    principal = info.context.access.principal
    given = oid(named, "doctorId") if named is not None else None
    doctor = principal.has(Role.DOCTOR) and principal.staff_id is not None
    if doctor and given in (None, principal.staff_id):
        assert principal.staff_id is not None
        return principal.staff_id, None
    if not principal.has(Role.ADMIN):
        raise Forbidden(f"Doctors {what} in their own name: leave out doctorId", field="doctorId")
    if given is None:
        raise BadUserInput("doctorId: name the doctor", {"doctorId": "required"})
    return given, f"entered by an administrator for doctorId {given}"


async def _visit(info: Info, id: strawberry.ID, action: str) -> VisitDoc:
    """The visit a step acts on, if the caller may (their role was checked before)."""
    visit = await emergency.get_visit(oid(id))
    await info.context.access.require(K.EMERGENCY_VISIT, action, row=visit)
    return visit


async def _step(
    info: Info, id: strawberry.ID, action: str, run: Any, fields: list[str], note: str | None = None
) -> EmergencyVisit:
    await _visit(info, id, action)
    done: VisitDoc = await run()
    info.context.access.wrote(K.EMERGENCY_VISIT, done, action, fields, note=note)
    return view(EmergencyVisit, done)


async def _ed(info: Info, department_id: strawberry.ID) -> ObjectId:
    key = oid(department_id, "departmentId")
    if await info.context.loaders.department_by_id.load(key) is None:
        raise NotFound("Department", str(key))
    return key


@strawberry.type
class EmergencyQuery:
    @strawberry.field(description="One emergency visit by id; null if there is none.")
    async def emergency_visit(self, info: Info, id: strawberry.ID) -> EmergencyVisit | None:
        return await info.context.loaders.emergency_visit_by_id.load(oid(id))

    @strawberry.field(description="Emergency visits by arrival, filtered.")
    async def emergency_visits(
        self,
        info: Info,
        filter: EmergencyVisitFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[EmergencyVisit]:
        f = filter or EmergencyVisitFilter()
        query = emergency.visit_filter(
            department_id=oid(f.department_id, "filter.departmentId") if f.department_id else None,
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            statuses=f.status or (),
            level=f.level,
            arrived_from=f.arrived_from,
            arrived_before=f.arrived_to,
        )
        scope = await info.context.access.scope(K.EMERGENCY_VISIT)
        page = await emergency.list_visits(
            {"$and": [query, scope]} if scope else query, info.context.page(first, after)
        )
        return connection(EmergencyVisit, page)

    @strawberry.field(
        description="An ED's tracking board: open visits, awaiting triage first, then ESI 1 to "
        "5, then by arrival, with waiting minutes and counts per level. Served from Redis; who "
        "the patient is only through each entry's `visit`, under the visit's policy."
    )
    async def emergency_board(self, info: Info, department_id: strawberry.ID) -> EmergencyBoard:
        key = await _ed(info, department_id)
        return board(key, await live_board.board(key), utcnow())


@strawberry.type
class EmergencyMutation:
    @strawberry.mutation(
        description="A patient arrived at an ED: a waiting visit, at the top of the board until "
        "triaged. One open ED visit per patient.",
        metadata=acts(K.EMERGENCY_VISIT, REGISTER),
    )
    async def register_emergency_arrival(
        self, info: Info, input: RegisterEmergencyArrivalInput
    ) -> EmergencyVisit:
        data = create_data(input)
        access = info.context.access
        row = {"patient_id": data.get("patient_id"), "department_id": data.get("department_id")}
        if data.get("unidentified") is not None:
            # A placeholder patient is a new patient record: the right to register patients too.
            await access.require(K.PATIENT, Action.CREATE)
        run = partial(emergency.register_arrival, data, _subject(info))
        visit = await perform(info, K.EMERGENCY_VISIT, REGISTER, run, data, row=row)
        return view(EmergencyVisit, visit)

    @strawberry.mutation(
        description="Triage (or re-triage) an open visit, in the caller's name: the ESI level "
        "and the triage vital signs. Every triage is kept; the latest is current. With "
        "`expectedVersion`, a visit changed meanwhile is a CONFLICT; without it, a concurrent "
        "triage is recorded too.",
        metadata=acts(K.EMERGENCY_VISIT, TRIAGE),
    )
    async def triage_emergency_visit(
        self,
        info: Info,
        id: strawberry.ID,
        input: TriageEmergencyVisitInput,
        expected_version: int | None = None,
    ) -> EmergencyVisit:
        data = create_data(input)
        by_id = _staff(info, "triage")
        principal = info.context.access.principal
        role = TriageRole.NURSE if principal.has(Role.NURSE) else TriageRole.DOCTOR
        run = partial(
            emergency.triage, oid(id), data, by_id=by_id, role=role, by=_subject(info),
            expected_version=expected_version,
        )  # fmt: skip
        return await _step(info, id, TRIAGE, run, ["triage", "status"])

    @strawberry.mutation(
        description="Make a doctor of the ED responsible for the visit (the caller; a doctor "
        "may hand over to another ED doctor by naming them; an admin names one).",
        metadata=acts(K.EMERGENCY_VISIT, ASSIGN),
    )
    async def assign_emergency_doctor(
        self,
        info: Info,
        id: strawberry.ID,
        doctor_id: strawberry.ID | None = None,
        expected_version: int | None = None,
    ) -> EmergencyVisit:
        principal = info.context.access.principal
        note = None
        if principal.has(Role.DOCTOR) and principal.staff_id is not None:
            doctor = oid(doctor_id, "doctorId") if doctor_id is not None else principal.staff_id
        else:
            doctor, note = _doctor(info, doctor_id, "take patients")
        run = partial(
            emergency.assign_doctor, oid(id), doctor, by=_subject(info),
            expected_version=expected_version,
        )  # fmt: skip
        return await _step(info, id, ASSIGN, run, ["assigned_doctor_id"], note)

    @strawberry.mutation(
        description="The doctor sees the patient (waiting or triaged -> in_treatment) and "
        "becomes the assigned doctor; in the caller's name (an admin names the doctor).",
        metadata=acts(K.EMERGENCY_VISIT, START),
    )
    async def start_emergency_treatment(
        self,
        info: Info,
        id: strawberry.ID,
        doctor_id: strawberry.ID | None = None,
        expected_version: int | None = None,
    ) -> EmergencyVisit:
        doctor, note = _doctor(info, doctor_id, "see patients")
        run = partial(
            emergency.start_treatment, oid(id), doctor, by=_subject(info),
            expected_version=expected_version,
        )  # fmt: skip
        return await _step(info, id, START, run, ["status", "assigned_doctor_id", "seen_at"], note)

    @strawberry.mutation(
        description="End the visit: discharged, or transferred (name the receiving facility). "
        "Admissions go through admitFromEmergency, walk-outs through leftWithoutBeingSeen.",
        metadata=acts(K.EMERGENCY_VISIT, DISPOSE),
    )
    async def dispose_emergency_visit(
        self,
        info: Info,
        id: strawberry.ID,
        kind: DispositionKind,
        at: datetime | None = None,
        destination: str | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> EmergencyVisit:
        data = {"at": at, "destination": destination, "note": note}
        run = partial(
            emergency.dispose, oid(id), DispositionKind(kind), data,
            by_id=info.context.access.principal.staff_id, by=_subject(info),
            expected_version=expected_version,
        )  # fmt: skip
        return await _step(info, id, DISPOSE, run, ["status", "disposition"])

    @strawberry.mutation(
        description="Admit the patient to a ward bed (an admission with source `emergency`), "
        "then dispose of the visit as admitted. Idempotent: run again after a failure, it "
        "finds the admission made from this visit and only records the disposition. A bed "
        "taken meanwhile is a CONFLICT and leaves the visit as it was.",
        metadata=acts(K.EMERGENCY_VISIT, ADMIT),
    )
    async def admit_from_emergency(
        self, info: Info, id: strawberry.ID, input: AdmitFromEmergencyInput
    ) -> EmergencyVisit:
        data = create_data(input)
        visit = await _visit(info, id, ADMIT)
        access = info.context.access
        patient = await info.context.loaders.patient_by_id.load(visit.patient_id)
        await access.require(K.ADMISSION, ADMIT, patient=patient)  # the admission's own rule
        done, admission = await emergency.admit_from_emergency(
            oid(id), data, by_id=access.principal.staff_id, by=_subject(info)
        )
        access.wrote(K.ADMISSION, admission, ADMIT, ["bed_id", "attending_doctor_id", "reason"])
        access.wrote(K.EMERGENCY_VISIT, done, ADMIT, ["status", "disposition"])
        return view(EmergencyVisit, done)

    @strawberry.mutation(
        description="The patient left before a doctor saw them (from waiting or triaged).",
        metadata=acts(K.EMERGENCY_VISIT, LWBS),
    )
    async def left_without_being_seen(
        self,
        info: Info,
        id: strawberry.ID,
        at: datetime | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> EmergencyVisit:
        run = partial(
            emergency.left_without_being_seen, oid(id), at, note, by=_subject(info),
            expected_version=expected_version,
        )  # fmt: skip
        return await _step(info, id, LWBS, run, ["status", "disposition"])


async def _board_of(event: DomainEvent, key: ObjectId) -> list[Any]:
    """The board after ``event``, read once for every screen showing it (its entries hold no
    patient data; each viewer's policy applies when the entries' visits resolve)."""
    reads: dict[ObjectId, asyncio.Future[Any]] = event.__dict__.setdefault("_shms_ed_boards", {})
    read = reads.get(key)
    if read is None:
        read = reads[key] = asyncio.ensure_future(live_board.board(key))
    if read.done():
        return list(read.result())
    return list(await asyncio.shield(read))


@strawberry.type
class EmergencySubscription:
    @strawberry.subscription(
        description="An ED board screen: the board at once, then again after every change of "
        "one of its visits (arrival, triage, treatment, disposition).",
        metadata=reads(K.EMERGENCY_BOARD),
    )
    async def emergency_board_changed(
        self, info: Info, department_id: strawberry.ID
    ) -> AsyncGenerator[EmergencyBoardEvent, None]:
        key = await _ed(info, department_id)
        # Refused when opened (FORBIDDEN, audited) rather than left silent.
        await info.context.access.field(K.EMERGENCY_BOARD, ROW, {"ed_department_id": key})
        async with live(info, FIELD, [VISITS]) as events:
            now = utcnow()
            yield EmergencyBoardEvent(
                change="snapshot", at=now, board=board(key, await live_board.board(key), now)
            )
            async for event in events:
                if event.refs.get("department_id") != str(key):
                    continue
                # Decided afresh per event: a caller disabled meanwhile is refused here.
                await info.context.for_event(FIELD).access.scope(K.EMERGENCY_BOARD)
                entries = await _board_of(event, key)
                yield EmergencyBoardEvent(
                    change=event.change, at=event.happened_at, board=board(key, entries, utcnow())
                )
