"""Demo imaging: orders from completed outpatient visits, performed on Radiology's scanners and
reported by the demo radiologist.

Each ordering clinic asks for what its patient's condition calls for: orthopaedics a knee X-ray
for osteoarthritis, a knee MR for a cruciate sprain, a lumbar MR for a disc; the emergency room
a wrist X-ray for a fracture, a head CT after a concussion, a chest X-ray for chest pain;
general medicine a chest X-ray for COPD, an abdominal ultrasound; cardiology a chest X-ray for
heart failure. The diagnosis is the one of the treatment plan that visit started, if any (else
the clinic's usual examination). Every study is booked on a fitting scanner of Radiology at a
time no demo appointment uses that scanner, before the demo's "now", so it is completed,
charged and reported (by ``ids.doctor_id(8)``, the demo ``radiologist`` account); the latest
picked visit's order still waits to be scheduled, for the worklist. Completed studies hold no
reservations. Ids derive from the visit's appointment, times from the visit: every seed writes
the same documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder

import db
from demo import ids
from demo.clock import ANCHOR
from models.billing import BillingAccount, Charge
from models.clinical import TreatmentPlan
from models.departments import Department
from models.equipment import EquipmentStatus, MedicalEquipment
from models.outpatient import OutpatientVisit, VisitStatus
from models.radiology import (
    MODALITY_PRICES,
    RADIOLOGY_DEPARTMENT_CODE,
    ImagingAccessionCounter,
    ImagingDraftStatus,
    ImagingLaterality,
    ImagingModality,
    ImagingOrder,
    ImagingOrderStatus,
    ImagingPerformerRole,
    ImagingPriority,
    ImagingReport,
    ImagingReportDraft,
    ImagingReportKind,
    ImagingStatusChange,
    ImagingStudy,
    ImagingStudyStatus,
)
from models.scheduling import Appointment, AppointmentStatus
from models.staff import Nurse
from services import care, radiology

ORDERS_PER_CLINIC = 2
_encoder = Encoder()
L, R, N, B = (
    ImagingLaterality.LEFT,
    ImagingLaterality.RIGHT,
    ImagingLaterality.NOT_APPLICABLE,
    ImagingLaterality.BILATERAL,
)
M = ImagingModality


@dataclass(frozen=True)
class Exam:
    modality: ImagingModality
    body_part: str
    laterality: ImagingLaterality
    question: str
    findings: str
    impression: str
    minutes: int = 30


_XR_CHEST = Exam(
    M.XR, "Chest", N, "Consolidation, effusion or cardiomegaly?",
    "Heart size normal. Lungs clear. No pleural effusion. No pneumothorax.",
    "No acute cardiopulmonary abnormality.",
)  # fmt: skip
_EXAMS: dict[str, dict[str | None, Exam]] = {
    "ORTH": {
        "M17.1": Exam(
            M.XR, "Knee, weight-bearing", B, "Extent of osteoarthritis before injection?",
            "Medial joint space narrowing with marginal osteophytes and subchondral sclerosis.",
            "Moderate medial compartment osteoarthritis (Kellgren-Lawrence grade 3).",
        ),
        "S83.5": Exam(
            M.MR, "Knee", R, "Anterior cruciate ligament tear after a twisting injury?",
            "Thickened, hyperintense ACL with preserved continuity; bone bruise lateral femur.",
            "High-grade partial ACL sprain; no meniscal tear.", 45,
        ),
        "M51.2": Exam(
            M.MR, "Lumbar spine", N, "Disc herniation with root compression? Radicular pain L5.",
            "L4/5 posterolateral disc extrusion contacting the traversing left L5 root.",
            "L4/5 disc extrusion with left L5 root contact.", 45,
        ),
        "M75.1": Exam(
            M.US, "Shoulder", R, "Rotator cuff tear?",
            "Supraspinatus tendinosis with a 6 mm partial-thickness bursal-side tear.",
            "Partial-thickness supraspinatus tear.",
        ),
        None: Exam(
            M.XR, "Knee", L, "Degenerative change or fracture?",
            "No fracture. Mild tibiofemoral joint space narrowing. No effusion.",
            "Mild degenerative change; no fracture.",
        ),
    },
    "ER": {
        "S52.5": Exam(
            M.XR, "Wrist", R, "Distal radius fracture after a fall on the outstretched hand?",
            "Extra-articular distal radius fracture with 10 degrees of dorsal angulation.",
            "Colles-type distal radius fracture.",
        ),
        "S06.0": Exam(
            M.CT, "Head", N, "Intracranial haemorrhage after head trauma?",
            "No intracranial haemorrhage, mass effect or skull fracture.",
            "No acute intracranial abnormality.",
        ),
        "R07.9": _XR_CHEST,
        None: _XR_CHEST,
    },
    "GEN": {
        "J44.9": Exam(
            M.XR, "Chest", N, "Hyperinflation, infection or mass in COPD?",
            "Hyperinflated lungs with flattened diaphragms. No focal consolidation.",
            "Changes of COPD; no acute consolidation.",
        ),
        None: Exam(
            M.US, "Abdomen", N, "Gallstones or liver disease?",
            "Liver normal in size and echotexture. Gallbladder without stones. CBD 4 mm.",
            "Normal abdominal ultrasound.",
        ),
    },
    "CARD": {
        "I50.9": Exam(
            M.XR, "Chest", N, "Pulmonary oedema or effusions in heart failure?",
            "Cardiomegaly (CTR 0.58). Upper lobe diversion. Small bilateral effusions.",
            "Cardiomegaly with mild pulmonary venous congestion.",
        ),
        None: _XR_CHEST,
    },
}  # fmt: skip
"""What each clinic orders, by the diagnosis code of the visit's plan (``None``: otherwise)."""


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(f"rad:{name}".encode(), digest_size=12).digest())


def _ceil(moment: datetime, step: timedelta = timedelta(minutes=30)) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    return epoch + -((epoch - moment) // step) * step


Window = tuple[datetime, datetime]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _busy(device: MedicalEquipment) -> list[Window]:
    """Every time a demo appointment uses the device (cancelled ones aside)."""
    cursor = db.collection(Appointment).find(
        {"equipment_id": device.id, "status": {"$ne": AppointmentStatus.CANCELLED.value}},
        projection={"start_at": 1, "end_at": 1},
    )
    return [(_utc(r["start_at"]), _utc(r["end_at"])) async for r in cursor]


def _free_slot(after: datetime, length: timedelta, busy: list[Window]) -> datetime | None:
    """The first half-hour start from ``after`` whose window no booking overlaps, within
    three days and ending before the demo's "now" with time to report."""
    start = _ceil(_utc(after))
    while start < after + timedelta(days=3):
        end = start + length
        if end + timedelta(hours=3) > ANCHOR:
            return None
        if not any(s < end and start < e for s, e in busy):
            return start
        start += timedelta(minutes=30)
    return None


async def _diagnosis(visit: OutpatientVisit) -> str | None:
    """The diagnosis code of the treatment plan this visit's appointment started, if any."""
    appointment = await Appointment.get(visit.appointment_id) if visit.appointment_id else None
    if appointment is None:
        return None
    plan = await TreatmentPlan.find_one(  # the model: its diagnosis is stored encrypted
        {"patient_id": visit.patient_id, "doctor_id": appointment.doctor_id,
         "created_at": appointment.end_at},
    )  # fmt: skip
    code = plan.diagnosis.code if plan is not None else None
    return str(code) if code else None


async def seed_radiology() -> int:
    """Imaging orders from the earliest completed visits per clinic; returns how many."""
    department = await Department.find_one({"code": RADIOLOGY_DEPARTMENT_CODE})
    if department is None:
        return 0
    usable = (EquipmentStatus.AVAILABLE, EquipmentStatus.IN_USE)
    devices = [
        d
        for d in await MedicalEquipment.find({"department_id": department.id}).to_list()
        if d.status in usable
    ]
    devices.sort(key=lambda d: str(d.id))
    nurses = await Nurse.find({"department_id": department.id}).sort("+_id").to_list()
    clinics = {
        d.id: d.code for d in await Department.find({"code": {"$in": list(_EXAMS)}}).to_list()
    }
    visits = (
        await OutpatientVisit.find(
            {"status": VisitStatus.COMPLETED.value, "department_id": {"$in": list(clinics)}}
        )
        .sort("+appointment_id")
        .to_list()
    )
    busy = {d.id: await _busy(d) for d in devices}
    taken: dict[str, int] = {}
    picked: list[tuple[OutpatientVisit, Exam, MedicalEquipment, datetime]] = []
    for visit in visits:
        code = clinics[visit.department_id]
        if taken.get(code, 0) >= ORDERS_PER_CLINIC or visit.doctor_id is None:
            continue
        if visit.completed_at is None or visit.appointment_id is None:
            continue
        exams = _EXAMS[code]
        exam = exams.get(await _diagnosis(visit)) or exams[None]
        device = next((d for d in devices if radiology.fits(exam.modality, d)), None)
        if device is None:
            continue
        length = timedelta(minutes=exam.minutes)
        start = _free_slot(visit.completed_at + timedelta(minutes=30), length, busy[device.id])
        if start is None:
            continue
        busy[device.id].append((start, start + length))
        taken[code] = taken.get(code, 0) + 1
        picked.append((visit, exam, device, start))
    if not picked:
        return 0
    picked.sort(key=lambda p: p[3])
    counters: dict[str, int] = {}
    patients = set()
    for n, (visit, exam, device, start) in enumerate(picked):
        pending = n == len(picked) - 1 and len(picked) > 1
        day = start.strftime("%Y%m%d")
        counters[day] = counters.get(day, 0) + 1
        accession = f"{RADIOLOGY_DEPARTMENT_CODE}{day}{counters[day]:05d}"
        performer = nurses[n % len(nurses)].id if nurses and exam.modality in (M.XR, M.US) else None
        await _write(visit, exam, department, device, start, accession, performer, pending)
        patients.add(visit.patient_id)
    for day, last in counters.items():  # live numbering continues after the demo's
        await db.collection(ImagingAccessionCounter).update_one(
            {"day": day}, {"$max": {"last": last}}, upsert=True
        )
    for patient_id in sorted(patients):
        await care.refresh(patient_id)  # orders are care sources, as services.changes does
    return len(picked)


async def _write(
    visit: OutpatientVisit,
    exam: Exam,
    department: Department,
    device: MedicalEquipment,
    start: datetime,
    accession: str,
    performer: PydanticObjectId | None,
    pending: bool,
) -> None:
    assert visit.doctor_id is not None and visit.completed_at is not None
    key = f"appointment:{visit.appointment_id}"
    radiologist = ids.doctor_id(8)
    ordered_at = visit.completed_at - timedelta(minutes=5)
    end = start + timedelta(minutes=exam.minutes)
    signed = end + timedelta(hours=2)
    order_id, study_id, report_id = _id(f"{key}:order"), _id(f"{key}:study"), _id(f"{key}:report")
    steps = [(ImagingOrderStatus.ORDERED, ordered_at)]
    if not pending:
        steps += [
            (ImagingOrderStatus.SCHEDULED, ordered_at + timedelta(minutes=10)),
            (ImagingOrderStatus.IN_PROGRESS, start),
            (ImagingOrderStatus.COMPLETED, end),
            (ImagingOrderStatus.REPORTED, signed),
        ]
    order = ImagingOrder(
        id=order_id,
        patient_id=visit.patient_id,
        ordering_doctor_id=visit.doctor_id,
        visit_id=visit.id,
        department_id=department.id,
        modality=exam.modality,
        body_part=exam.body_part,
        laterality=exam.laterality,
        clinical_question=exam.question,
        priority=ImagingPriority.ROUTINE,
        status=steps[-1][0],
        status_at=steps[-1][1],
        price=MODALITY_PRICES[exam.modality],
        charged_at=None if pending else end,
        study_id=None if pending else study_id,
        report_id=None if pending else report_id,
        version=len(steps) - 1,
        history=[ImagingStatusChange(status=s.value, at=at) for s, at in steps],
        created_at=ordered_at,
        updated_at=steps[-1][1],
    )
    await order.insert()
    if pending:
        return
    study = ImagingStudy(
        id=study_id,
        order_id=order_id,
        patient_id=visit.patient_id,
        ordering_doctor_id=visit.doctor_id,
        department_id=department.id,
        accession_number=accession,
        modality=exam.modality,
        equipment_id=device.id,
        scheduled_start=start,
        scheduled_end=end,
        status=ImagingStudyStatus.COMPLETED,
        status_at=end,
        performed_by_id=performer or radiologist,
        performed_by_role=(
            ImagingPerformerRole.RADIOGRAPHER if performer else ImagingPerformerRole.RADIOLOGIST
        ),
        started_at=start,
        ended_at=end,
        version=2,
        created_at=ordered_at + timedelta(minutes=10),
        updated_at=end,
    )
    draft = ImagingReportDraft(
        id=report_id,
        study_id=study_id,
        order_id=order_id,
        patient_id=visit.patient_id,
        department_id=department.id,
        author_id=radiologist,
        findings=exam.findings,
        impression=exam.impression,
        status=ImagingDraftStatus.SIGNED,
        signed_at=signed,
        version=1,
        created_at=end + timedelta(minutes=30),
        updated_at=signed,
    )
    report = ImagingReport(
        id=report_id,
        study_id=study_id,
        order_id=order_id,
        patient_id=visit.patient_id,
        department_id=department.id,
        ordering_doctor_id=visit.doctor_id,
        author_id=radiologist,
        kind=ImagingReportKind.FINAL,
        findings=exam.findings,
        impression=exam.impression,
        final_for_study_id=study_id,
        signed_at=signed,
        content_hash="0" * 64,
        created_at=signed,
        updated_at=signed,
    )
    report.content_hash = radiology.content_hash(report)
    await study.insert()
    await draft.insert()
    await report.insert()
    laterality = "" if exam.laterality == N else f" ({exam.laterality.value})"
    charge = Charge(
        id=_id(f"{key}:charge"),
        description=f"Imaging {exam.modality.value}: {exam.body_part}{laterality}",
        amount=MODALITY_PRICES[exam.modality],
        source=radiology.CHARGE_SOURCE,
        source_id=study_id,
        department_id=department.id,
        created_at=end,
    )
    await db.collection(BillingAccount).update_one(
        {"patient_id": visit.patient_id},
        {
            "$push": {"charges": _encoder.encode(charge)},
            "$inc": {"total_charged": charge.amount},
            "$max": {"updated_at": end},
        },
    )
