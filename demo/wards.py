"""Demo wards, beds and admissions.

Every clinical department's wards (``DepartmentSpec.wards``; not Radiology's imaging suite nor
the emergency room's triage and resuscitation bays, which are not wards) get eight beds, and
the department's nurses go to the ward their staff record names (``Nurse.ward_id``). Patients
seen in a clinic before the demo's "now" are admitted to their department's wards: in each
ward the first one from their completed outpatient visit (under the doctor who saw them), the
next electively, both still in; two earlier ones were discharged with a signed note after a
stay of a few days, one of them after a transfer between beds. A bed freed this morning is
still being cleaned and one bed is blocked for repairs. Wards admit by their sex policy and
children go to the paediatric wards only. Ids derive from names and visits, times from the demo
clock: every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from beanie import PydanticObjectId

import db
from demo.catalog import DEPARTMENTS
from demo.clock import ANCHOR
from models.admissions import (
    Admission,
    AdmissionSource,
    AdmissionStatus,
    BedStay,
    DischargeDisposition,
    DischargeNote,
)
from models.departments import Department
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient, Sex, age_on
from models.staff import Nurse
from models.wards import Bed, BedStatus, SexPolicy, Ward, WardType
from services import admissions, care

BEDS_PER_WARD = 8
NOT_WARDS = frozenset({"Imaging Suite", "Triage", "Resuscitation Bay"})


@dataclass(frozen=True)
class WardSpec:
    code: str
    type: WardType
    sex_policy: SexPolicy = SexPolicy.MIXED


WARDS: dict[str, WardSpec] = {
    "Cardiac Care Unit": WardSpec("CARD-CCU", WardType.ICU),
    "Ward A2": WardSpec("CARD-A2", WardType.GENERAL),
    "Observation Unit": WardSpec("ER-OBS", WardType.EMERGENCY_OBSERVATION),
    "Children's Ward": WardSpec("PED-CHW", WardType.PAEDIATRIC),
    "Neonatal Unit": WardSpec("PED-NEO", WardType.PAEDIATRIC),
    "Ward A3": WardSpec("ORTH-A3", WardType.SURGICAL),
    "Day Surgery": WardSpec("ORTH-DS", WardType.SURGICAL),
    "Ward B1": WardSpec("GEN-B1", WardType.GENERAL, SexPolicy.MALE),
    "Ward B2": WardSpec("GEN-B2", WardType.GENERAL, SexPolicy.FEMALE),
}
ADMITTED = "Admitted from clinic for observation and treatment"


def _id(*parts: object) -> PydanticObjectId:
    key = ":".join(str(p) for p in ("ward-demo", *parts)).encode()
    return PydanticObjectId(hashlib.blake2b(key, digest_size=12).digest())


def _fits(ward: Ward, patient: Patient, on: date) -> bool:
    if ward.sex_policy == SexPolicy.MALE and patient.sex != Sex.MALE:
        return False
    if ward.sex_policy == SexPolicy.FEMALE and patient.sex != Sex.FEMALE:
        return False
    born = patient.date_of_birth
    child = born is not None and age_on(born, on) < 18
    return child == (ward.type == WardType.PAEDIATRIC)


def _note(admission: Admission, at: datetime, summary: str) -> DischargeNote:
    draft = DischargeNote(
        summary=summary,
        instructions="Rest, and return if symptoms come back.",
        follow_up="Outpatient clinic in two weeks",
        disposition=DischargeDisposition.HOME,
        author_id=admission.attending_doctor_id,
        signed_at=at,
        content_hash="0" * 64,
    )
    return draft.model_copy(update={"content_hash": admissions.signature(admission, draft)})


class _Ward:
    """One ward's beds and the admissions written into them."""

    def __init__(self, ward: Ward) -> None:
        self.ward = ward
        self.beds = [
            Bed(
                id=_id(ward.code, "bed", n),
                ward_id=ward.id,
                department_id=ward.department_id,
                label=f"{ward.code.split('-')[-1]}-{n:02d}",
                created_at=ANCHOR - timedelta(days=365),
                updated_at=ANCHOR - timedelta(days=365),
                status_at=ANCHOR - timedelta(days=365),
            )
            for n in range(1, BEDS_PER_WARD + 1)
        ]
        self.admissions: list[Admission] = []

    def stay(self, bed: Bed, start: datetime, end: datetime | None, reason: str | None) -> BedStay:
        return BedStay(
            bed_id=bed.id,
            ward_id=self.ward.id,
            department_id=self.ward.department_id,
            from_at=start,
            to_at=end,
            reason=reason,
        )

    def admit(
        self, visit: OutpatientVisit, bed: Bed, start: datetime, *, from_visit: bool
    ) -> Admission:
        doctor = visit.doctor_id
        assert doctor is not None
        admission = Admission(
            id=_id(self.ward.code, "admission", visit.id),
            patient_id=visit.patient_id,
            open_patient_id=visit.patient_id,
            source=AdmissionSource.OUTPATIENT if from_visit else AdmissionSource.ELECTIVE,
            source_id=visit.id if from_visit else None,
            attending_doctor_id=doctor,
            department_id=self.ward.department_id,
            ward_id=self.ward.id,
            bed_id=bed.id,
            status_at=start,
            admitted_at=start,
            reason=visit.reason or ADMITTED,
            stays=[self.stay(bed, start, None, None)],
            created_at=start,
            updated_at=start,
        )
        bed.status, bed.admission_id, bed.patient_id = (
            BedStatus.OCCUPIED,
            admission.id,
            admission.patient_id,
        )
        bed.claimed_at = bed.status_at = bed.updated_at = start
        bed.version += 1
        self.admissions.append(admission)
        return admission

    def discharge(self, admission: Admission, bed: Bed, at: datetime) -> None:
        admission.stays[-1].to_at = at
        admission.status = AdmissionStatus.DISCHARGED
        admission.status_at = admission.discharged_at = admission.updated_at = at
        admission.open_patient_id = None
        admission.discharge = _note(admission, at, "Recovered; discharged home.")
        admission.version += 1
        bed.status, bed.admission_id, bed.patient_id, bed.claimed_at = (
            BedStatus.CLEANING,
            None,
            None,
            None,
        )
        bed.status_at = bed.updated_at = at
        bed.version += 1

    def transfer(self, admission: Admission, old: Bed, new: Bed, at: datetime) -> None:
        admission.stays[-1].to_at = at
        admission.stays.append(self.stay(new, at, None, "Moved nearer the nursing station"))
        admission.bed_id = new.id  # type: ignore[assignment]
        admission.version += 1
        new.status, new.admission_id, new.patient_id = (
            BedStatus.OCCUPIED,
            admission.id,
            admission.patient_id,
        )
        new.claimed_at = new.status_at = new.updated_at = at
        new.version += 1
        old.status, old.admission_id, old.patient_id, old.claimed_at = (
            BedStatus.AVAILABLE,  # cleaned since
            None,
            None,
            None,
        )
        old.status_at = old.updated_at = at + timedelta(hours=2)
        old.version += 2


def _story(unit: _Ward, visits: list[OutpatientVisit], blocked: bool) -> None:
    """Two discharged (one after a transfer), two still in; a bed cleaning; maybe one blocked."""
    beds = unit.beds
    history, current = visits[:2], visits[2:4]
    for n, visit in enumerate(history):
        start = ANCHOR - timedelta(days=20 - 8 * n, hours=-10)
        admission = unit.admit(visit, beds[n], start, from_visit=True)
        bed = beds[n]
        if n == 0:
            unit.transfer(admission, beds[0], beds[5], start + timedelta(days=1))
            bed = beds[5]
        unit.discharge(admission, bed, start + timedelta(days=3 + n))
        bed.status = BedStatus.AVAILABLE  # cleaned long since
    for n, visit in enumerate(current):
        start = ANCHOR - timedelta(days=2 - n, hours=-9)
        unit.admit(visit, beds[2 + n], start, from_visit=n == 0)
    if history:  # this morning's discharge: its bed is still being cleaned
        freed = beds[4]
        freed.status, freed.status_at = BedStatus.CLEANING, ANCHOR + timedelta(hours=7)
        freed.version += 2
    if blocked:
        broken = beds[-1]
        broken.status, broken.blocked_reason = BedStatus.BLOCKED, "Bed frame under repair"
        broken.status_at = ANCHOR - timedelta(days=1)
        broken.version += 1


async def seed_wards() -> int:
    """Wards, beds and admissions for the seeded departments; how many admissions."""
    codes = {spec.code: spec for spec in DEPARTMENTS}
    departments = await Department.find({"code": {"$in": sorted(codes)}}).to_list()
    units: list[_Ward] = []
    for dept in sorted(departments, key=lambda d: d.code):
        for name in codes[dept.code].wards:
            spec = WARDS.get(name)
            if name in NOT_WARDS or spec is None:
                continue
            ward = Ward(
                id=_id(spec.code),
                name=name,
                code=spec.code,
                department_id=dept.id,
                type=spec.type,
                sex_policy=spec.sex_policy,
                capacity=BEDS_PER_WARD,
                location=codes[dept.code].location,
                created_at=ANCHOR - timedelta(days=365),
                updated_at=ANCHOR - timedelta(days=365),
            )
            units.append(_Ward(ward))
    if not units:
        return 0
    await Ward.insert_many([u.ward for u in units])
    for unit in units:  # the department's nurses on this ward, by their recorded ward name
        await db.collection(Nurse).update_many(
            {"department_id": unit.ward.department_id, "ward": unit.ward.name},
            {"$set": {"ward_id": unit.ward.id}},
        )
    taken: set[PydanticObjectId] = set()
    for i, unit in enumerate(units):
        visits = (
            await OutpatientVisit.find(
                {
                    "department_id": unit.ward.department_id,
                    "status": VisitStatus.COMPLETED.value,
                    "doctor_id": {"$ne": None},
                },
            )
            .sort("+completed_at", "+_id")
            .to_list()
        )
        patients = {
            p.id: p
            for p in await Patient.find(
                {"_id": {"$in": sorted({v.patient_id for v in visits})}}
            ).to_list()
        }
        chosen: list[OutpatientVisit] = []
        for visit in visits:
            patient = patients.get(visit.patient_id)
            if patient is None or patient.id in taken:
                continue
            if not _fits(unit.ward, patient, ANCHOR.date()):
                continue
            taken.add(patient.id)  # type: ignore[arg-type]
            chosen.append(visit)
            if len(chosen) == 4:
                break
        _story(unit, chosen, blocked=i % 3 == 0)
    await Bed.insert_many([b for u in units for b in u.beds])
    written = [a for u in units for a in u.admissions]
    if written:
        await Admission.insert_many(written)
    for patient_id in sorted({a.patient_id for a in written}):
        await care.refresh(patient_id)
    return len(written)
