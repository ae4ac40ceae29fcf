"""Admissions, transfers and discharges: a patient in one bed, a bed for one patient.

No transactions; two database guarantees and an order of steps keep the invariants across
processes:

- a bed is claimed by ONE conditional update ``{_id, status: available, active}`` ->
  ``{status: occupied, admission_id, patient_id, pending: true}``: of any number of concurrent
  claims exactly one matches, so a bed never holds two admissions;
- an active admission carries ``open_patient_id`` under a unique sparse index (unset on
  discharge), so a patient never has two active admissions, hence never two beds.

Admit: validate; claim the bed for a pre-generated admission id; insert the admission (a
duplicate patient releases the bed again and answers ``CONFLICT``); confirm the claim
(``pending: false``). Transfer: claim the target bed for the same admission; one compare-and-set
on the admission moves ``bed_id`` (and ward, department, stays, version): on failure the target
is released and the answer is ``CONFLICT``; then the old bed goes to ``cleaning``. The
admission's ``bed_id`` is what clients read, so they see one bed before and one after, never
none or two; the board shows a claim not yet named by its admission as occupied and
``incoming``. Discharge: one compare-and-set ``active -> discharged`` with the signed note
(unsetting ``open_patient_id``), then the bed goes to ``cleaning``.

Recovery (``recover``): a crash between steps leaves a bed claimed by an admission that does
not name it (never inserted, a transfer that did not happen or whose old bed was not released,
a discharge whose bed was not freed). A claim whose admission is discharged is released at
once (a discharged admission never becomes active again); one whose admission is missing or
names another bed is released after ``STALE_AFTER`` (as reservations are: requests in flight
are never robbed), back to ``available`` if it never held the patient (pending), else to
``cleaning``. A claim whose admission names the bed but is still pending is confirmed. Claims
run it on a bed they find taken, so a crash never makes a bed unusable for longer than that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

import db
from auth.policy import REGISTRY
from errors import BadUserInput, Conflict
from models.admissions import (
    Admission,
    AdmissionSource,
    AdmissionStatus,
    BedStay,
    DischargeDisposition,
    DischargeNote,
)
from models.base import utcnow
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient, Sex
from models.staff import Doctor
from models.wards import Bed, BedStatus, SexPolicy, Ward
from services import common, nursing, scheduling
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.signing import canonical_json, digest
from services.validation import Problems, instant

STALE_AFTER = scheduling.STALE_AFTER
"""How old a bed claim not named by a live admission must be to count as left by a crash."""
BY_ADMITTED: Sort = (("admitted_at", ASC), ("_id", ASC))
CANONICAL_VERSION = 1
_encoder = Encoder()
_SEX_OF_POLICY = {SexPolicy.MALE: Sex.MALE, SexPolicy.FEMALE: Sex.FEMALE}
_UNADMITTABLE_VISITS = (VisitStatus.NO_SHOW, VisitStatus.LEFT)
EMERGENCY_KIND = "EmergencyVisit"
"""The declared kind of emergency visits (``models/emergency.py``), checked when present."""


def _enc(value: Any) -> Any:
    return _encoder.encode(value)


# -- reads -----------------------------------------------------------------------------------


def admission_filter(
    *,
    patient_id: ObjectId | None = None,
    ward_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    attending_doctor_id: ObjectId | None = None,
    statuses: Sequence[AdmissionStatus] = (),
    admitted_from: datetime | None = None,
    admitted_to: datetime | None = None,
) -> Query:
    problems = Problems()
    window: dict[str, datetime] = {}
    for op, moment, name in (
        ("$gte", admitted_from, "admittedFrom"),
        ("$lt", admitted_to, "admittedTo"),
    ):
        if moment is not None:
            try:
                window[op] = instant(moment, name)
            except BadUserInput as problem:
                problems.add(problem)
    if "$gte" in window and "$lt" in window:
        problems.require(window["$lt"] > window["$gte"], "admittedTo", "must be after from")
    problems.raise_any()
    query: Query = {}
    for field, value in (
        ("patient_id", patient_id),
        ("ward_id", ward_id),
        ("department_id", department_id),
        ("attending_doctor_id", attending_doctor_id),
    ):
        if value is not None:
            query[field] = value
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    if window:
        query["admitted_at"] = window
    return query


async def list_admissions(query: Query, args: PageArgs, scope: Query | None) -> Page[Admission]:
    return await paginate(Admission, both(query, scope), BY_ADMITTED, args)


async def get_admission(id: ObjectId) -> Admission:
    return await common.get_or_404(Admission, id, "Admission")


async def check_admission(
    problems: Problems,
    admission_id: ObjectId | None,
    patient_id: ObjectId | None,
    *,
    field: str = "admissionId",
    active: bool = True,
) -> None:
    """An admission named in another record's input: it exists, is the patient's, and (unless
    ``active`` is False, for facts charted afterwards) is still active."""
    if admission_id is None:
        return
    found = await db.collection(Admission).find_one(
        {"_id": admission_id}, {"patient_id": 1, "status": 1}
    )
    if not problems.require(found is not None, field, "no such admission"):
        return
    assert found is not None
    if not problems.require(
        found.get("patient_id") == patient_id, field, "is an admission of another patient"
    ):
        return
    if active:
        problems.require(
            found.get("status") == AdmissionStatus.ACTIVE.value,
            field,
            f"the admission is {found.get('status')}",
        )


# -- beds: claim, confirm, release -----------------------------------------------------------


async def bed_cas(bed_id: ObjectId, expected: Query, sets: Mapping[str, Any]) -> Bed | None:
    """One compare-and-set on a bed (status changes stamp ``status_at``); None: no match."""
    now = utcnow()
    fields = {**sets, "updated_at": now}
    if "status" in sets:
        fields["status_at"] = now
    update: dict[str, Any] = {
        "$set": {k: _enc(v) for k, v in fields.items() if v is not None},
        "$inc": {"version": 1},
    }
    unsets = {k: "" for k, v in fields.items() if v is None}
    if unsets:
        update["$unset"] = unsets
    raw = await db.collection(Bed).find_one_and_update(
        {"_id": bed_id, **expected}, update, return_document=ReturnDocument.AFTER
    )
    return None if raw is None else Bed.model_validate(raw)


_FREE = {"admission_id": None, "patient_id": None, "pending": False, "claimed_at": None}


async def _claim(bed_id: ObjectId, admission_id: ObjectId, patient_id: ObjectId) -> Bed:
    """Take an available bed for ``admission_id`` (pending), or ``CONFLICT``; a claim left by a
    crash is recovered first (once)."""
    sets = {
        "status": BedStatus.OCCUPIED,
        "admission_id": admission_id,
        "patient_id": patient_id,
        "pending": True,
        "claimed_at": utcnow(),
    }
    expected = {"status": BedStatus.AVAILABLE.value, "active": True}
    for attempt in range(2):
        claimed = await bed_cas(bed_id, expected, sets)
        if claimed is not None:
            return claimed
        if attempt == 0 and not await recover(bed_id):
            break
    bed = await Bed.get(bed_id)
    state = bed.status.value if bed is not None else "gone"
    raise Conflict(f"The bed is not available (it is {state})", field="bedId", bedStatus=state)


async def _release(bed_id: ObjectId, admission_id: ObjectId, to: BedStatus) -> Bed | None:
    """Free the bed if ``admission_id`` still holds it."""
    return await bed_cas(bed_id, {"admission_id": admission_id}, {**_FREE, "status": to})


async def _confirm(bed_id: ObjectId, admission_id: ObjectId) -> Bed | None:
    return await bed_cas(
        bed_id, {"admission_id": admission_id, "pending": True}, {"pending": False}
    )


async def recover(bed_id: ObjectId) -> bool:
    """Settle a bed claim a crash may have left (module docstring); True if the bed changed."""
    raw = await db.collection(Bed).find_one({"_id": bed_id})
    if raw is None or raw.get("status") != BedStatus.OCCUPIED.value:
        return False
    holder = raw.get("admission_id")
    admission = (
        await db.collection(Admission).find_one({"_id": holder}, {"status": 1, "bed_id": 1})
        if holder is not None
        else None
    )
    pending = bool(raw.get("pending"))
    guard = {"admission_id": holder, "version": raw.get("version", 0)}
    active = admission is not None and admission.get("status") == AdmissionStatus.ACTIVE.value
    if active and admission is not None and admission.get("bed_id") == bed_id:
        if not pending:
            return False
        done = await bed_cas(bed_id, {**guard, "pending": True}, {"pending": False})
    else:
        claimed_at = raw.get("claimed_at")
        if claimed_at is not None and claimed_at.tzinfo is None:
            claimed_at = claimed_at.replace(tzinfo=UTC)
        settled = claimed_at is None or claimed_at < utcnow() - STALE_AFTER
        if admission is not None and not active:
            to = BedStatus.CLEANING  # discharged: never active again, release at once
        elif settled:
            to = BedStatus.AVAILABLE if pending else BedStatus.CLEANING
        else:
            return False  # a claim in flight: leave it
        done = await bed_cas(bed_id, guard, {**_FREE, "status": to})
    if done is not None:
        await changed(done, "recovered")
    return done is not None


# -- validation ------------------------------------------------------------------------------


async def _place(
    problems: Problems, bed_id: Any, patient: Patient | None, field: str = "bedId"
) -> tuple[Bed, Ward] | None:
    """The bed and its ward, if the patient may lie there (active both, sex policy)."""
    if not isinstance(bed_id, ObjectId):
        problems.require(False, field, "required")
        return None
    bed = await Bed.get(bed_id)
    if not problems.require(bed is not None, field, "no such bed"):
        return None
    assert bed is not None
    ward = await Ward.get(bed.ward_id)
    if not problems.require(ward is not None and ward.active, field, "the ward is closed"):
        return None
    assert ward is not None
    problems.require(bed.active, field, "the bed is out of service")
    wanted = _SEX_OF_POLICY.get(ward.sex_policy)
    if patient is not None and wanted is not None:
        problems.require(
            patient.sex == wanted,
            field,
            f"ward {ward.code} admits {ward.sex_policy.value} patients only",
        )
    return bed, ward


async def _check_doctor(problems: Problems, doctor_id: Any) -> None:
    if not isinstance(doctor_id, ObjectId):
        problems.require(False, "attendingDoctorId", "required")
        return
    doctor = await Doctor.get(doctor_id)
    problems.require(
        doctor is not None and doctor.active, "attendingDoctorId", "no such active doctor"
    )


async def _check_source(problems: Problems, source: Any, source_id: Any, patient_id: Any) -> None:
    """An outpatient or emergency admission names the visit it comes from, of this patient;
    an elective one names none."""
    if source not in {s.value for s in AdmissionSource}:
        return  # reported by the model's validation
    if source == AdmissionSource.ELECTIVE.value:
        problems.require(source_id is None, "sourceId", "an elective admission has no source")
        return
    if not problems.require(
        isinstance(source_id, ObjectId), "sourceId", f"name the {source} visit admitted from"
    ):
        return
    if source == AdmissionSource.OUTPATIENT.value:
        visit = await OutpatientVisit.get(source_id)
        if problems.require(visit is not None, "sourceId", "no such outpatient visit"):
            assert visit is not None
            problems.require(
                visit.patient_id == patient_id, "sourceId", "is a visit of another patient"
            )
            problems.require(
                visit.status not in _UNADMITTABLE_VISITS,
                "sourceId",
                f"the visit is {visit.status.value}",
            )
        return
    emergency = REGISTRY.get(EMERGENCY_KIND)
    if emergency is None or emergency.model is None:
        return  # emergency visits not recorded in this build: kept as given
    found = await db.collection(emergency.model).find_one({"_id": source_id}, {"patient_id": 1})
    if problems.require(found is not None, "sourceId", "no such emergency visit"):
        assert found is not None
        problems.require(
            found.get("patient_id") == patient_id, "sourceId", "is a visit of another patient"
        )


# -- admit -----------------------------------------------------------------------------------


async def admit(data: Mapping[str, Any], *, by: str | None = None) -> Admission:
    """Admit a patient to a bed (keys: patient_id, bed_id, attending_doctor_id, source,
    source_id, reason, diagnosis); ``CONFLICT`` when the bed is taken or the patient is
    already admitted, and then nothing changed."""
    problems = Problems()
    patient_id = data.get("patient_id")
    patient = await Patient.get(patient_id) if isinstance(patient_id, ObjectId) else None
    problems.require(patient is not None, "patientId", "no such patient")
    place = await _place(problems, data.get("bed_id"), patient)
    await _check_doctor(problems, data.get("attending_doctor_id"))
    await _check_source(problems, data.get("source"), data.get("source_id"), patient_id)
    now = utcnow()
    admission_id = ObjectId()
    fields: dict[str, Any] = {
        "patient_id": patient_id,
        "open_patient_id": patient_id,
        "source": data.get("source"),
        "source_id": data.get("source_id"),
        "attending_doctor_id": data.get("attending_doctor_id"),
        "reason": data.get("reason"),
        "diagnosis": data.get("diagnosis"),
        "status": AdmissionStatus.ACTIVE,
        "status_at": now,
        "admitted_at": now,
        "admitted_by": by,
        "created_at": now,
        "updated_at": now,
    }
    if place is not None:
        bed, ward = place
        fields.update(bed_id=bed.id, ward_id=ward.id, department_id=ward.department_id)
        fields["stays"] = [
            BedStay(
                bed_id=bed.id,
                ward_id=ward.id,
                department_id=ward.department_id,
                from_at=now,
                by=by,
            )
        ]
    else:
        fields.update(bed_id=ObjectId(), ward_id=ObjectId(), department_id=ObjectId())
    built = problems.build(Admission, fields)
    problems.raise_any()
    assert built is not None and place is not None and patient is not None
    await _refuse_if_admitted(patient.id)  # type: ignore[arg-type]
    bed, _ = place
    claimed = await _claim(bed.id, admission_id, patient.id)  # type: ignore[arg-type]
    built.id = admission_id  # type: ignore[assignment]
    try:
        await built.insert()
    except DuplicateKeyError:
        released = await _release(bed.id, admission_id, BedStatus.AVAILABLE)  # type: ignore[arg-type]
        if released is not None:
            await changed(released, "released")
        raise Conflict("The patient is already admitted", field="patientId") from None
    except BaseException:
        released = await _release(bed.id, admission_id, BedStatus.AVAILABLE)  # type: ignore[arg-type]
        if released is not None:
            await changed(released, "released")
        raise
    confirmed = await _confirm(bed.id, admission_id)  # type: ignore[arg-type]
    stored = await get_admission(admission_id)
    await changed(stored, "admitted")
    await changed(confirmed or claimed, "occupied")
    return stored


async def _refuse_if_admitted(patient_id: ObjectId) -> None:
    """Answer early (the unique index decides under concurrency)."""
    if await Admission.find({"open_patient_id": patient_id}).count():
        raise Conflict("The patient is already admitted", field="patientId")


# -- transfer --------------------------------------------------------------------------------


def _closed(stays: Sequence[BedStay], at: datetime) -> list[BedStay]:
    return [s.model_copy(update={"to_at": at}) if s.to_at is None else s for s in stays]


async def transfer(
    admission_id: ObjectId,
    bed_id: ObjectId,
    reason: str | None = None,
    expected_version: int | None = None,
    *,
    by: str | None = None,
) -> Admission:
    """Move an active admission to another bed (module docstring): one bed visible throughout."""
    admission = await get_admission(admission_id)
    if admission.status != AdmissionStatus.ACTIVE:
        raise BadUserInput(
            f"A {admission.status.value} admission cannot be transferred",
            {"admissionId": f"the admission is {admission.status.value}"},
        )
    if expected_version is not None and expected_version != admission.version:
        raise Conflict("The admission changed meanwhile; read it again and retry")
    problems = Problems()
    if bed_id == admission.bed_id:
        problems.require(False, "bedId", "the patient is already in this bed")
        problems.raise_any()
    patient = await Patient.get(admission.patient_id)
    place = await _place(problems, bed_id, patient)
    now = utcnow()
    stay = problems.build(
        BedStay,
        {
            "bed_id": bed_id,
            "ward_id": place[1].id if place else ObjectId(),
            "department_id": place[1].department_id if place else ObjectId(),
            "from_at": now,
            "reason": reason,
            "by": by,
        },
    )
    problems.raise_any()
    assert place is not None and stay is not None
    ward = place[1]
    await _claim(bed_id, admission_id, admission.patient_id)
    stays = [*_closed(admission.stays, now), stay]
    raw = await db.collection(Admission).find_one_and_update(
        {
            "_id": admission_id,
            "status": AdmissionStatus.ACTIVE.value,
            "version": admission.version,
            "bed_id": admission.bed_id,
        },
        {
            "$set": {
                "bed_id": bed_id,
                "ward_id": ward.id,
                "department_id": ward.department_id,
                "stays": _enc(stays),
                "updated_at": now,
            },
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        released = await _release(bed_id, admission_id, BedStatus.AVAILABLE)
        if released is not None:
            await changed(released, "released")
        raise Conflict("The admission changed meanwhile; read it again and retry")
    stored = Admission.model_validate(raw)
    await changed(stored, "transferred")
    target = await _confirm(bed_id, admission_id)
    if target is not None:
        await changed(target, "occupied")
    old = await _release(admission.bed_id, admission_id, BedStatus.CLEANING)
    if old is not None:
        await changed(old, "vacated")
    await nursing.move_with_admission(admission_id)  # its orders and tasks follow to the ward
    return stored


# -- discharge -------------------------------------------------------------------------------


def _instant(value: datetime) -> str:
    at = value.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def canonical(admission: Admission, note: Mapping[str, Any]) -> str:
    """What the discharge signature covers: the admission, the words, the author, the time."""
    return canonical_json(
        {
            "v": CANONICAL_VERSION,
            "admissionId": str(admission.id),
            "patientId": str(admission.patient_id),
            "summary": note["summary"],
            "diagnosis": note.get("diagnosis"),
            "instructions": note.get("instructions"),
            "followUp": note.get("follow_up"),
            "disposition": str(note["disposition"]),
            "authorId": str(note["author_id"]),
            "signedAt": _instant(note["signed_at"]),
        }
    )


def signature(admission: Admission, note: DischargeNote) -> str:
    return digest(
        canonical(admission, {**note.model_dump(), "disposition": note.disposition.value})
    )


def verify(admission: Admission) -> bool:
    """Whether the stored discharge note still hashes to its signature."""
    note = admission.discharge
    return note is not None and signature(admission, note) == note.content_hash


async def discharge(
    admission_id: ObjectId,
    note: Mapping[str, Any],
    disposition: DischargeDisposition | str,
    author_id: ObjectId,
    expected_version: int | None = None,
) -> Admission:
    """Discharge with a signed note (``note``: summary, diagnosis, instructions, follow_up);
    the bed goes to cleaning."""
    admission = await get_admission(admission_id)
    if admission.status != AdmissionStatus.ACTIVE:
        raise BadUserInput(
            f"A {admission.status.value} admission cannot be discharged",
            {"admissionId": f"the admission is {admission.status.value}"},
        )
    if expected_version is not None and expected_version != admission.version:
        raise Conflict("The admission changed meanwhile; read it again and retry")
    now = utcnow()
    content: dict[str, Any] = {
        "summary": note.get("summary"),
        "diagnosis": note.get("diagnosis"),
        "instructions": note.get("instructions"),
        "follow_up": note.get("follow_up"),
        "disposition": disposition,
        "author_id": author_id,
        "signed_at": now,
        "content_hash": "0" * 64,
    }
    problems = Problems()
    draft = problems.build(DischargeNote, content)
    problems.raise_any()
    assert draft is not None
    signed = draft.model_copy(update={"content_hash": signature(admission, draft)})
    raw = await db.collection(Admission).find_one_and_update(
        {"_id": admission_id, "status": AdmissionStatus.ACTIVE.value, "version": admission.version},
        {
            "$set": {
                "status": AdmissionStatus.DISCHARGED.value,
                "status_at": now,
                "discharged_at": now,
                "discharge": _enc(signed),
                "stays": _enc(_closed(admission.stays, now)),
                "updated_at": now,
            },
            "$unset": {"open_patient_id": ""},
            "$inc": {"version": 1},
        },
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise Conflict("The admission changed meanwhile; read it again and retry")
    stored = Admission.model_validate(raw)
    await changed(stored, "discharged")
    bed = await _release(admission.bed_id, admission_id, BedStatus.CLEANING)
    if bed is not None:
        await changed(bed, "vacated")
    await nursing.close_for_admission(admission_id)  # no order or task outlives the stay
    return stored
