"""Emergency visits: arrival, triage, the doctor, treatment and the disposition.

Every step reads the visit, checks it, and writes it with one compare-and-set on ``version``
(no transactions). A step that loses the race without ``expected_version`` reads the visit
again and applies itself to what it finds, so two nurses triaging at once are both recorded
(in ``triage_history``; the later one is current); with ``expected_version`` the loser gets
``CONFLICT``. A step the visit no longer allows after such a race (disposed meanwhile) is a
``CONFLICT`` too, while one the visit never allowed is ``BAD_USER_INPUT``.

``open_patient_id`` and its unique index keep a patient in one open ED visit at a time.

Admission from the ED is two writes on two documents: ``services.admissions.admit`` (with
``source="emergency"``, ``source_id`` = the visit), then the visit's disposition ``admitted``.
If the second fails (the process dies, MongoDB is unreachable), the patient is admitted and the
visit is still open on the board; running ``admit_from_emergency`` again finds the admission by
its ``source_id`` and only records the disposition, so the step is idempotent and recoverable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

import db
from errors import BadUserInput, Conflict
from models.admissions import Admission, AdmissionSource
from models.base import utcnow
from models.departments import Department
from models.emergency import (
    AWAITING_TRIAGE_RANK,
    DISPOSABLE_FROM,
    GCS_HIGH,
    GCS_LOW,
    OPEN_STATUSES,
    TRIAGE_MEASUREMENTS,
    Disposition,
    DispositionKind,
    EmergencyStatus,
    EmergencyStep,
    EmergencyVisit,
    EsiLevel,
    Triage,
    TriageRole,
    TriageVitals,
    is_emergency_code,
)
from models.patients import Patient
from models.staff import Doctor
from services import admissions, common, patients
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, paginate
from services.validation import Problems, build, camel, instant, require
from services.vitals import check_measurements, check_not_future

BY_ARRIVAL: Sort = (("arrived_at", ASC), ("_id", ASC))
BOARD_ORDER: Sort = (("acuity_rank", ASC), ("arrived_at", ASC), ("_id", ASC))
ATTEMPTS = 10
"""Re-reads of a visit a step makes when racing writers keep moving it."""
_encoder = Encoder()


# -- reading ---------------------------------------------------------------------------------


def visit_filter(
    *,
    department_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    statuses: Sequence[EmergencyStatus] = (),
    level: int | None = None,
    arrived_from: datetime | None = None,
    arrived_before: datetime | None = None,
) -> Query:
    """The filter of ``emergencyVisits``: department or patient lead the indexes used."""
    if arrived_from is not None:
        arrived_from = instant(arrived_from, "filter.arrivedFrom")
    if arrived_before is not None:
        arrived_before = instant(arrived_before, "filter.arrivedTo")
    if arrived_from and arrived_before:
        require(arrived_before > arrived_from, "filter.arrivedTo", "must be after arrivedFrom")
    if level is not None:
        require(EsiLevel.LOWEST <= level <= EsiLevel.HIGHEST, "filter.level", "must be from 1 to 5")
    query: Query = {}
    if department_id is not None:
        query["department_id"] = department_id
    if patient_id is not None:
        query["patient_id"] = patient_id
    if statuses:
        query["status"] = {"$in": sorted({s.value for s in statuses})}
    if level is not None:
        query["triage.level"] = level
    window: dict[str, datetime] = {}
    if arrived_from:
        window["$gte"] = arrived_from
    if arrived_before:
        window["$lt"] = arrived_before
    if window:
        query["arrived_at"] = window
    return query


async def list_visits(query: Query, args: PageArgs) -> Page[EmergencyVisit]:
    return await paginate(EmergencyVisit, query, BY_ARRIVAL, args)


async def get_visit(id: ObjectId) -> EmergencyVisit:
    return await common.get_or_404(EmergencyVisit, id, "EmergencyVisit")


async def emergency_department(department_id: Any, problems: Problems) -> Department | None:
    """The department named, if it is an emergency department."""
    department = await Department.get(department_id) if department_id is not None else None
    if not problems.require(department is not None, "departmentId", "no such department"):
        return None
    assert department is not None
    problems.require(
        is_emergency_code(department.code),
        "departmentId",
        f"{department.code} is not an emergency department",
    )
    return department


# -- registering an arrival -------------------------------------------------------------------


def _not_future(value: Any, name: str, problems: Problems) -> datetime | None:
    return check_not_future(value, name, problems)


async def _placeholder_patient(unidentified: Mapping[str, Any], arrived: datetime) -> Patient:
    """A patient record for someone who cannot say who they are: "Unknown ED-<arrival>-<n>",
    born on 1 January of the estimated year, searchable and later corrected like any record
    (``updatePatient``), so everything recorded in the ED stays on the one patient."""
    age = unidentified.get("estimated_age")
    year = arrived.year - int(age) if isinstance(age, int) and 0 <= age <= 120 else 1900
    if not isinstance(age, int) or not 0 <= age <= 120:
        require(age is None, "unidentified.estimatedAge", "must be from 0 to 120 years")
    suffix = str(ObjectId())[-4:].upper()
    return await patients.register_patient(
        {
            "first_name": "Unknown",
            "last_name": f"ED-{arrived:%Y%m%d-%H%M}-{suffix}",
            "date_of_birth": date(max(year, 1900), 1, 1),
            "sex": unidentified.get("sex") or "unknown",
        }
    )


async def register_arrival(data: Mapping[str, Any], by: str | None = None) -> EmergencyVisit:
    """A patient arrived at an ED: a waiting visit at the top of its board.

    ``patient_id`` names a registered patient; or ``unidentified`` (estimated age, sex)
    registers a placeholder patient first (see ``_placeholder_patient``), removed again if the
    visit cannot be recorded.
    """
    problems = Problems()
    patient_id, unidentified = data.get("patient_id"), data.get("unidentified")
    problems.require(
        (patient_id is None) != (unidentified is None),
        "patientId",
        "give patientId or unidentified, not both or neither",
    )
    patient = await Patient.get(patient_id) if patient_id is not None else None
    if patient_id is not None:
        problems.require(patient is not None, "patientId", "no such patient")
    await emergency_department(data.get("department_id"), problems)
    now = utcnow()
    arrived = data.get("arrived_at") or now
    arrived = _not_future(arrived, "arrivedAt", problems) or now
    fields = {k: v for k, v in data.items() if k not in ("unidentified", "patient_id")}
    candidate = problems.build(
        EmergencyVisit,
        {**fields, "patient_id": patient_id or ObjectId(), "arrived_at": arrived, "status_at": now},
    )
    problems.raise_any()
    assert candidate is not None
    if patient is not None and await EmergencyVisit.find_one({"open_patient_id": patient.id}):
        raise _already_open(await EmergencyVisit.find_one({"open_patient_id": patient.id}))
    placeholder = None
    if patient is None:
        placeholder = patient = await _placeholder_patient(unidentified or {}, arrived)
    assert patient is not None and patient.id is not None
    visit = candidate.model_copy(
        update={
            "patient_id": patient.id,
            "open_patient_id": patient.id,
            "unidentified": placeholder is not None,
            "status": EmergencyStatus.WAITING,
            "acuity_rank": AWAITING_TRIAGE_RANK,
            "created_at": now,
            "updated_at": now,
            "history": [
                EmergencyStep(action="registered", to_status=EmergencyStatus.WAITING, at=now, by=by)
            ],
        }
    )
    try:
        await visit.insert()
    except DuplicateKeyError:
        raise _already_open(
            await EmergencyVisit.find_one({"open_patient_id": patient.id})
        ) from None
    except Exception:
        if placeholder is not None:  # nothing refers to it yet: leave no orphan identity behind
            await db.collection(Patient).delete_one({"_id": placeholder.id})
        raise
    await changed(visit, "registered")  # care, caches, the board and the event follow
    return visit


def _already_open(visit: EmergencyVisit | None) -> Conflict:
    where = f" (visit {visit.id}, {visit.status.value})" if visit is not None else ""
    return Conflict(
        f"The patient already has an open emergency visit{where}; dispose of it first",
        fields=["patientId"],
    )


# -- one step: compare-and-set on version -----------------------------------------------------


@dataclass
class Change:
    """What a step writes: fields to set, a history step, a triage to append."""

    change: str
    action: str
    to_status: EmergencyStatus
    sets: dict[str, Any] = field(default_factory=dict)
    triage: Triage | None = None
    closes: bool = False


async def _step(
    id: ObjectId,
    plan: Callable[[EmergencyVisit], Change | Awaitable[Change]],
    *,
    by: str | None,
    expected_version: int | None,
) -> EmergencyVisit:
    """Apply ``plan`` to the visit as stored, by compare-and-set on its version; re-read and
    re-plan when another writer got there first (unless ``expected_version`` pins the visit).
    """
    for attempt in range(ATTEMPTS):
        visit = await get_visit(id)
        if expected_version is not None and expected_version != visit.version:
            raise Conflict(
                f"The emergency visit is at version {visit.version}, not {expected_version}; "
                "read it again",
                fields=["version"],
            )
        try:
            planned = plan(visit)
            step = planned if isinstance(planned, Change) else await planned
        except BadUserInput as refused:
            if attempt == 0:
                raise
            # Allowed when first read, not any more: another step won the race.
            raise Conflict(f"The emergency visit changed meanwhile: {refused.message}") from None
        now = utcnow()
        history = EmergencyStep(
            action=step.action, from_status=visit.status, to_status=step.to_status, at=now, by=by
        )
        update: dict[str, Any] = {
            "$set": {
                "status": step.to_status.value,
                "updated_at": now,
                **{k: _encoder.encode(v) for k, v in step.sets.items()},
            },
            "$inc": {"version": 1},
            "$push": {"history": _encoder.encode(history)},
        }
        if step.to_status != visit.status:
            update["$set"]["status_at"] = now
        if step.triage is not None:
            update["$push"]["triage_history"] = _encoder.encode(step.triage)
        if step.closes:
            update["$unset"] = {"open_patient_id": ""}
        result = await db.collection(EmergencyVisit).update_one(
            {"_id": id, "version": visit.version}, update
        )
        if result.modified_count == 1:
            done = await get_visit(id)
            await changed(done, step.change)
            return done
        if expected_version is not None:
            raise Conflict(
                "The emergency visit changed meanwhile; read it again", fields=["version"]
            )
    raise Conflict("The emergency visit is changing too fast; retry")


def _refuse(visit: EmergencyVisit, allowed: Sequence[EmergencyStatus], what: str) -> None:
    if visit.status not in allowed:
        names = ", ".join(s.value for s in allowed)
        raise BadUserInput(
            f"A {visit.status.value} emergency visit cannot {what} (only {names})",
            {"id": f"visit is {visit.status.value}"},
        )


def _at(value: Any, name: str, after: datetime, after_what: str) -> datetime:
    """A step's instant: given or now; not in the future, not before ``after``."""
    problems = Problems()
    at = _not_future(value if value is not None else utcnow(), name, problems)
    if at is not None:
        problems.require(at >= after, name, f"must not be before {after_what}")
    problems.raise_any()
    assert at is not None
    return at


# -- triage -----------------------------------------------------------------------------------


def check_vitals(vitals: Mapping[str, Any], problems: Problems) -> TriageVitals | None:
    """The triage vital signs against the vital-signs module's ranges (every problem at once,
    named ``vitals.<field>``), plus the Glasgow Coma Scale."""
    given = {name: vitals[name] for name in TRIAGE_MEASUREMENTS if vitals.get(name) is not None}
    gcs = vitals.get("gcs")
    if not given and gcs is None:
        problems.require(False, "vitals", "give at least one vital sign, or leave vitals out")
        return None
    mine = Problems()
    if given:
        check_measurements({TRIAGE_MEASUREMENTS[k].value: v for k, v in given.items()}, mine)
    names = {camel(m.value): f"vitals.{camel(k)}" for k, m in TRIAGE_MEASUREMENTS.items()}
    try:
        mine.raise_any()
    except BadUserInput as found:
        for key, reason in (found.fields or {}).items():
            problems.require(False, names.get(key, f"vitals.{key}"), reason)
    if gcs is not None:
        problems.require(
            isinstance(gcs, int) and GCS_LOW <= gcs <= GCS_HIGH,
            "vitals.gcs",
            f"must be a whole number from {GCS_LOW} to {GCS_HIGH}",
        )
    if problems:
        return None
    return build(TriageVitals, vitals)


def new_triage(
    visit: EmergencyVisit, data: Mapping[str, Any], by_id: ObjectId, role: TriageRole
) -> Triage:
    problems = Problems()
    level = data.get("level")
    problems.require(
        isinstance(level, int) and EsiLevel.LOWEST <= level <= EsiLevel.HIGHEST,
        "level",
        "must be an ESI level from 1 (resuscitation) to 5 (non-urgent)",
    )
    at = _not_future(data.get("triaged_at") or utcnow(), "triagedAt", problems)
    if at is not None:
        problems.require(at >= visit.arrived_at, "triagedAt", "must not be before the arrival")
    vitals = check_vitals(data["vitals"], problems) if data.get("vitals") is not None else None
    problems.raise_any()
    return build(
        Triage,
        {
            "level": level,
            "triaged_at": at,
            "triaged_by_id": by_id,
            "triaged_by_role": role,
            "vitals": vitals,
            "note": data.get("note"),
        },
    )


async def triage(
    id: ObjectId,
    data: Mapping[str, Any],
    *,
    by_id: ObjectId,
    role: TriageRole,
    by: str | None = None,
    expected_version: int | None = None,
) -> EmergencyVisit:
    """Triage (or re-triage) an open visit: the new triage is current, every one is kept."""

    def plan(visit: EmergencyVisit) -> Change:
        _refuse(visit, OPEN_STATUSES, "be triaged")
        found = new_triage(visit, data, by_id, role)
        first = visit.triage is None
        return Change(
            change="triaged" if first else "retriaged",
            action="triaged" if first else "retriaged",
            to_status=(
                EmergencyStatus.TRIAGED if visit.status == EmergencyStatus.WAITING else visit.status
            ),
            sets={"triage": found, "acuity_rank": found.level},
            triage=found,
        )

    return await _step(id, plan, by=by, expected_version=expected_version)


# -- the doctor and treatment -----------------------------------------------------------------


async def ed_doctor(doctor_id: ObjectId, department_id: ObjectId, name: str) -> Doctor:
    doctor = await Doctor.get(doctor_id)
    require(doctor is not None and doctor.active, name, "no such doctor")
    assert doctor is not None
    require(doctor.department_id == department_id, name, "the doctor does not work in this ED")
    return doctor


async def assign_doctor(
    id: ObjectId,
    doctor_id: ObjectId,
    *,
    by: str | None = None,
    expected_version: int | None = None,
) -> EmergencyVisit:
    """The ED doctor responsible for the visit (again: handed over to another)."""
    visit = await get_visit(id)
    await ed_doctor(doctor_id, visit.department_id, "doctorId")

    def plan(visit: EmergencyVisit) -> Change:
        _refuse(visit, OPEN_STATUSES, "be assigned a doctor")
        return Change(
            change="doctor_assigned",
            action="doctor_assigned",
            to_status=visit.status,
            sets={"assigned_doctor_id": doctor_id},
        )

    return await _step(id, plan, by=by, expected_version=expected_version)


async def start_treatment(
    id: ObjectId,
    doctor_id: ObjectId,
    *,
    by: str | None = None,
    expected_version: int | None = None,
) -> EmergencyVisit:
    """The doctor sees the patient: ``in_treatment`` from waiting (resuscitation does not wait
    for triage) or triaged; the doctor becomes the assigned one."""
    visit = await get_visit(id)
    await ed_doctor(doctor_id, visit.department_id, "doctorId")

    def plan(visit: EmergencyVisit) -> Change:
        _refuse(visit, (EmergencyStatus.WAITING, EmergencyStatus.TRIAGED), "start treatment")
        return Change(
            change="treatment_started",
            action="treatment_started",
            to_status=EmergencyStatus.IN_TREATMENT,
            sets={"assigned_doctor_id": doctor_id, "seen_at": utcnow()},
        )

    return await _step(id, plan, by=by, expected_version=expected_version)


# -- dispositions -----------------------------------------------------------------------------


def _disposition(
    visit: EmergencyVisit, kind: DispositionKind, data: Mapping[str, Any], by_id: ObjectId | None
) -> Change:
    allowed = sorted(DISPOSABLE_FROM[kind], key=OPEN_STATUSES.index)
    _refuse(visit, allowed, f"be disposed as {kind.value}")
    steps = [visit.arrived_at, visit.seen_at, visit.triage.triaged_at if visit.triage else None]
    latest = max(t for t in steps if t is not None)
    at = _at(data.get("at"), "at", latest, "the visit's last step")
    problems = Problems()
    destination = data.get("destination")
    if kind == DispositionKind.TRANSFERRED:
        problems.require(bool(destination), "destination", "name the receiving facility")
    else:
        problems.require(destination is None, "destination", "only a transfer has one")
    problems.raise_any()
    disposition = build(
        Disposition,
        {
            "kind": kind,
            "at": at,
            "by_id": by_id,
            "admission_id": data.get("admission_id"),
            "destination": destination,
            "note": data.get("note"),
        },
    )
    return Change(
        change=f"disposed_{kind.value}",
        action=f"disposed_{kind.value}",
        to_status=EmergencyStatus.DISPOSED,
        sets={"disposition": disposition},
        closes=True,
    )


async def dispose(
    id: ObjectId,
    kind: DispositionKind,
    data: Mapping[str, Any],
    *,
    by_id: ObjectId | None,
    by: str | None = None,
    expected_version: int | None = None,
) -> EmergencyVisit:
    """Discharged or transferred (admitted goes through ``admit_from_emergency``, which makes
    the admission; left without being seen through ``left_without_being_seen``)."""
    if kind == DispositionKind.ADMITTED:
        raise BadUserInput(
            "Admit through admitFromEmergency: it finds the bed and makes the admission",
            {"kind": "use admitFromEmergency"},
        )
    if kind == DispositionKind.LEFT_WITHOUT_BEING_SEEN:
        raise BadUserInput("Use leftWithoutBeingSeen", {"kind": "use leftWithoutBeingSeen"})
    return await _step(
        id, lambda v: _disposition(v, kind, data, by_id), by=by, expected_version=expected_version
    )


async def left_without_being_seen(
    id: ObjectId,
    at: datetime | None = None,
    note: str | None = None,
    *,
    by: str | None = None,
    expected_version: int | None = None,
) -> EmergencyVisit:
    """The patient left before a doctor saw them."""
    kind = DispositionKind.LEFT_WITHOUT_BEING_SEEN
    data = {"at": at, "note": note}
    return await _step(
        id, lambda v: _disposition(v, kind, data, None), by=by, expected_version=expected_version
    )


async def admission_of(visit_id: ObjectId) -> Admission | None:
    """The admission made from this ED visit, if any (``source_id`` is indexed)."""
    return await Admission.find_one(
        {"source": AdmissionSource.EMERGENCY.value, "source_id": visit_id}
    )


async def admit_from_emergency(
    id: ObjectId,
    data: Mapping[str, Any],
    *,
    by_id: ObjectId | None,
    by: str | None = None,
) -> tuple[EmergencyVisit, Admission]:
    """Admit the patient to a bed (``services.admissions.admit``), then dispose of the visit
    as ``admitted`` naming the admission; idempotent (see the module)."""
    visit = await get_visit(id)
    existing = await admission_of(id)
    if visit.status == EmergencyStatus.DISPOSED:
        d = visit.disposition
        if d is not None and d.kind == DispositionKind.ADMITTED and existing is not None:
            return visit, existing  # done already: a repeated call answers the same
        raise BadUserInput(
            f"The visit was disposed as {d.kind.value if d else 'unknown'}; it cannot be admitted",
            {"id": "visit is disposed"},
        )
    _refuse(
        visit,
        sorted(DISPOSABLE_FROM[DispositionKind.ADMITTED], key=OPEN_STATUSES.index),
        "be admitted",
    )
    admission = existing
    if admission is None:
        request = {
            "patient_id": visit.patient_id,
            "bed_id": data.get("bed_id"),
            "attending_doctor_id": data.get("attending_doctor_id"),
            "source": AdmissionSource.EMERGENCY.value,
            "source_id": visit.id,
            "reason": data.get("reason"),
            "diagnosis": data.get("diagnosis"),
        }
        try:
            admission = await admissions.admit(request, by=by)
        except Conflict:
            # A concurrent admitFromEmergency of this visit may have won: that admission is ours.
            admission = await admission_of(id)
            if admission is None:
                raise
    assert admission is not None and admission.id is not None
    admitted = {"admission_id": admission.id, "note": data.get("note")}
    try:
        done = await _step(
            id,
            lambda v: _disposition(v, DispositionKind.ADMITTED, admitted, by_id),
            by=by,
            expected_version=None,
        )
    except (BadUserInput, Conflict) as refused:
        # Disposed otherwise meanwhile (say, left without being seen as the bed was found):
        # the admission stands and names this visit; say so rather than hide it.
        raise Conflict(
            f"The patient was admitted (admission {admission.id}) but the visit could not be "
            f"disposed as admitted: {refused.message}"
        ) from None
    return done, admission
