"""Demo operating theatres: a Surgery department with two theatres, its team, three completed
cases (records and charges) and two upcoming ones.

The base facility has no surgical department, so this adds one (code ``SURG``) with an
anaesthetist, a general surgeon, two theatre nurses and a theatre scheduler; the orthopaedic
cases are operated by Orthopaedics' joint-replacement surgeon. The patients are the demo's
first ones (a case is left out when its patient does not exist in a small seed). Completed
cases lie before the demo's "now" at times their patients have no appointment; they hold no
reservations, and each charged the patient's account (theatre time and procedure fee) as
``services.theatre`` does. Upcoming cases hold their reservations as ``services.theatre``
holds them (a clash with a demo appointment moves the case a day on). Ids derive from names
and times from ``ANCHOR``: every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.odm.utils.encoder import Encoder

import db
from demo import ids
from demo.clock import ANCHOR
from demo.facility import OPENED_AT
from models.billing import BillingAccount, Charge
from models.departments import Department
from models.patients import Patient
from models.scheduling import Appointment, AppointmentStatus, Reservation
from models.staff import AdminDuty, AdminStaff, Doctor, Nurse
from models.theatre import (
    ANAESTHESIA_HOLDER,
    SURGERY_HOLDER,
    AnaesthesiaType,
    ChecklistCheck,
    ChecklistItem,
    OperatingTheatre,
    PlannedProcedure,
    PostOpDestination,
    SurgeryBooking,
    SurgeryPriority,
    SurgeryStatus,
    SurgicalRecord,
)
from services import care, theatre

_encoder = Encoder()


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.blake2b(f"thr:{name}".encode(), digest_size=12).digest())


@dataclass(frozen=True)
class Case:
    key: str
    patient: int
    surgeon: str  # "general" or "orthopaedic"
    theatre: str
    day: int  # days from ANCHOR (weekends move to Monday)
    hour: int
    minutes: int
    procedure: str
    codes: tuple[str, ...]
    anaesthesia: AnaesthesiaType
    destination: PostOpDestination
    priority: SurgeryPriority = SurgeryPriority.ELECTIVE
    complications: str | None = None


CASES = (
    Case("chole", 2, "general", "OT1", -9, 8, 90, "Laparoscopic cholecystectomy", ("0FT44ZZ",),
         AnaesthesiaType.GENERAL, PostOpDestination.WARD),
    Case("tkr", 3, "orthopaedic", "OT2", -6, 9, 120, "Total knee replacement, right",
         ("0SRC0JZ",), AnaesthesiaType.REGIONAL, PostOpDestination.WARD,
         complications="Minor tourniquet-related bruising; no treatment needed."),
    Case("hernia", 4, "general", "OT1", -3, 13, 60, "Inguinal hernia repair with mesh, left",
         ("0YU60JZ",), AnaesthesiaType.GENERAL, PostOpDestination.HOME),
    Case("chole2", 5, "general", "OT1", 2, 8, 90, "Laparoscopic cholecystectomy", ("0FT44ZZ",),
         AnaesthesiaType.GENERAL, PostOpDestination.WARD),
    Case("scope", 6, "orthopaedic", "OT2", 3, 10, 60, "Knee arthroscopy, meniscal repair",
         ("0SQC4ZZ",), AnaesthesiaType.REGIONAL, PostOpDestination.HOME,
         priority=SurgeryPriority.URGENT),
)  # fmt: skip


def _weekday(moment: datetime) -> datetime:
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    return moment


async def _team(department: Department) -> dict[str, Any]:
    assert department.id is not None
    made: dict[str, Any] = {
        "anaesthetist": Doctor(
            id=_id("anaesthetist"), first_name="Ines", last_name="Vogt",
            department_id=department.id, specialty="Anaesthesiology",
            licence_number="MD-SURG-ANA-001",
        ),
        "general": Doctor(
            id=_id("surgeon"), first_name="Samuel", last_name="Okafor",
            department_id=department.id, specialty="General Surgery",
            licence_number="MD-SURG-GEN-001",
        ),
        "nurse1": Nurse(
            id=_id("nurse1"), first_name="Greta", last_name="Lindqvist",
            department_id=department.id, licence_number="RN-SURG-001", ward="Theatres",
        ),
        "nurse2": Nurse(
            id=_id("nurse2"), first_name="Tomasz", last_name="Nowak",
            department_id=department.id, licence_number="RN-SURG-002", ward="Recovery",
        ),
        "scheduler": AdminStaff(
            id=_id("scheduler"), first_name="Hana", last_name="Sato",
            department_id=department.id, duties=[AdminDuty.SCHEDULING],
        ),
    }  # fmt: skip
    for doc in made.values():
        doc.created_at = doc.updated_at = OPENED_AT
        await doc.insert()
    return made


async def _busy(patient_id: PydanticObjectId, start: datetime, end: datetime) -> bool:
    found = await db.collection(Appointment).find_one(
        {
            "patient_id": patient_id,
            "status": {"$ne": AppointmentStatus.CANCELLED.value},
            "start_at": {"$lt": end},
            "end_at": {"$gt": start},
        },
        projection={"_id": 1},
    )
    return found is not None


async def seed_theatre() -> dict[str, int]:
    """The department, its team, theatres and cases; how many of each facility record it
    added (for the seed's summary)."""
    department = Department(
        id=_id("department"), name="Surgery", code="SURG", location="Building B, Floor 1",
        description="Operating theatres, anaesthesia and recovery.",
        created_at=OPENED_AT, updated_at=OPENED_AT,
    )  # fmt: skip
    await department.insert()
    assert department.id is not None
    team = await _team(department)
    orthopaedics = await Department.find_one({"code": "ORTH"})
    ortho = (
        await Doctor.find_one({"department_id": orthopaedics.id, "specialty": "Joint Replacement"})
        if orthopaedics is not None
        else None
    )
    theatres = {
        code: OperatingTheatre(
            id=_id(code), name=name, code=code, department_id=department.id,
            turnover_minutes=turnover, created_at=OPENED_AT, updated_at=OPENED_AT,
        )
        for code, name, turnover in (("OT1", "Theatre 1", 30), ("OT2", "Theatre 2 (ortho)", 45))
    }  # fmt: skip
    for room in theatres.values():
        await room.insert()
    surgeons = {"general": team["general"], "orthopaedic": ortho}
    patients: set[PydanticObjectId] = set()
    for case in CASES:
        surgeon = surgeons[case.surgeon]
        patient_id = ids.patient_id(case.patient)
        if surgeon is None or await Patient.find_one({"_id": patient_id}) is None:
            continue
        if await _case(case, theatres[case.theatre], surgeon, team, patient_id):
            patients.add(patient_id)
    for patient_id in sorted(patients):
        await care.refresh(patient_id)  # bookings are care sources, as services.changes does
    return {"departments": 1, "doctors": 2, "nurses": 2, "admin_staff": 1}


async def _case(
    case: Case,
    room: OperatingTheatre,
    surgeon: Doctor,
    team: dict[str, Any],
    patient_id: PydanticObjectId,
) -> bool:
    assert surgeon.id is not None and room.id is not None
    day = _weekday(ANCHOR + timedelta(days=case.day))
    past = case.day < 0
    for attempt in range(5):
        start = _weekday(day + timedelta(days=attempt)) + timedelta(hours=case.hour)
        end = start + timedelta(minutes=case.minutes)
        if past and (end > ANCHOR or await _busy(patient_id, start, end)):
            continue
        booking = SurgeryBooking(
            id=_id(f"{case.key}:booking"),
            patient_id=patient_id,
            theatre_id=room.id,
            department_id=room.department_id,
            surgeon_id=surgeon.id,
            anaesthetist_id=team["anaesthetist"].id,
            start_at=start,
            end_at=end,
            reserved_until=end + timedelta(minutes=room.turnover_minutes),
            procedure=PlannedProcedure(description=case.procedure, codes=list(case.codes)),
            priority=case.priority,
            status=SurgeryStatus.COMPLETED if past else SurgeryStatus.SCHEDULED,
            status_at=end if past else start - timedelta(days=7),
            created_at=start - timedelta(days=7),
            updated_at=end if past else start - timedelta(days=7),
        )
        if not past:
            if not await _hold(case, booking):
                continue
            await booking.insert()
            return True
        await _completed(case, booking, room, team)
        return True
    return False


async def _hold(case: Case, booking: SurgeryBooking) -> bool:
    """Insert an upcoming case's reservations, as ``services.theatre.reserve_all`` holds them
    but with ids and times derived from the case; False (nothing written) when a slot is held
    already."""
    assert booking.id is not None
    wanted = theatre.reservation_keys(
        booking, booking.start_at, booking.end_at, booking.reserved_until
    )
    docs = [
        Reservation(
            id=_id(f"{case.key}:{resource.value}:{resource_id}:{slot.isoformat()}"),
            resource=resource,
            resource_id=resource_id,
            slot=slot,
            appointment_id=booking.id,
            holder=holder.name,
            created_at=booking.created_at,
        )
        for holder, keys in zip((SURGERY_HOLDER, ANAESTHESIA_HOLDER), wanted, strict=True)
        for resource, resource_id, slot in sorted(keys, key=lambda k: (k[2], k[0].value))
    ]
    taken = await db.collection(Reservation).find_one(
        {
            "$or": [
                {"resource": d.resource.value, "resource_id": d.resource_id, "slot": d.slot}
                for d in docs
            ]
        },
        projection={"_id": 1},
    )
    if taken is not None:
        return False
    await Reservation.insert_many(docs)
    return True


async def _completed(
    case: Case, booking: SurgeryBooking, room: OperatingTheatre, team: dict[str, Any]
) -> None:
    """A past case: its record (checklist done before incision, times in order), and the two
    charges on the patient's account."""
    start, end = booking.start_at, booking.end_at
    nurse = team["nurse1"].id
    record = SurgicalRecord(
        id=_id(f"{case.key}:record"),
        booking_id=booking.id,
        patient_id=booking.patient_id,
        theatre_id=booking.theatre_id,
        department_id=booking.department_id,
        surgeon_id=booking.surgeon_id,
        anaesthetist_id=booking.anaesthetist_id,
        checklist=[
            ChecklistCheck(item=item, checked_by_id=nurse, checked_at=start - timedelta(minutes=20))
            for item in ChecklistItem
        ],
        anaesthesia_type=case.anaesthesia,
        in_theatre_at=start,
        anaesthesia_start_at=start + timedelta(minutes=5),
        incision_at=start + timedelta(minutes=20),
        closure_at=end - timedelta(minutes=15),
        out_of_theatre_at=end - timedelta(minutes=5),
        procedure_codes=list(case.codes),
        complications=case.complications,
        post_op_destination=case.destination,
        notes="Swab and instrument counts correct.",
        completed_at=end,
        version=4,
        created_at=start,
        updated_at=end,
    )
    time_fee, procedure_fee = theatre.theatre_charge(room, record), theatre.procedure_fee(record)
    booking.record_id = record.id
    booking.theatre_charge, booking.procedure_fee, booking.charged_at = time_fee, procedure_fee, end
    booking.version = 3
    await booking.insert()
    await record.insert()
    charges = [
        Charge(
            id=_id(f"{case.key}:charge:time"),
            description=f"Theatre time {room.code}",  # as services.theatre words it
            amount=time_fee,
            source=theatre.CHARGE_SOURCE,
            source_id=booking.id,
            department_id=booking.department_id,
            created_at=end,
        ),
        Charge(
            id=_id(f"{case.key}:charge:procedure"),
            description=f"Surgical procedure ({', '.join(case.codes)})",
            amount=procedure_fee,
            source=theatre.CHARGE_SOURCE,
            source_id=record.id,
            department_id=booking.department_id,
            created_at=end,
        ),
    ]
    await db.collection(BillingAccount).update_one(
        {"patient_id": booking.patient_id},
        {
            "$push": {"charges": {"$each": [_encoder.encode(c) for c in charges]}},
            "$inc": {"total_charged": time_fee + procedure_fee},
            "$max": {"updated_at": end},
        },
    )
