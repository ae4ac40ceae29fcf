"""Hand-made wards, admissions, surgeries and ED visits for the inpatient aggregates: documents
inserted directly (no service), so each test states exactly the times it counts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from models.admissions import (
    Admission,
    AdmissionSource,
    AdmissionStatus,
    BedStay,
)
from models.departments import Department
from models.emergency import (
    ArrivalMode,
    Disposition,
    DispositionKind,
    EmergencyStatus,
    EmergencyVisit,
    Triage,
    TriageRole,
)
from models.patients import Patient
from models.theatre import (
    OperatingTheatre,
    PlannedProcedure,
    SurgeryBooking,
    SurgeryStatus,
    SurgicalRecord,
)
from models.wards import Ward
from tests import factories as f

Stay = tuple[Ward, datetime, datetime | None]
"""A bed stay: the ward, from, to (None: still there)."""


async def ward(dept: Department, capacity: int, **fields: Any) -> Ward:
    i = f.n()
    made = Ward(name=f"Ward {i}", code=f"W{i}", department_id=dept.id, capacity=capacity, **fields)
    return await made.insert()


async def admission(
    patient: Patient, stays: list[Stay], discharged: bool | None = None
) -> Admission:
    """An admission whose bed history is ``stays`` (in order); discharged when the last stay
    is closed, unless ``discharged`` says otherwise."""
    doctor = await f.doctor()
    last_ward, _, last_to = stays[-1]
    closed = last_to is not None if discharged is None else discharged
    made = Admission(
        patient_id=patient.id,
        open_patient_id=None if closed else patient.id,
        source=AdmissionSource.ELECTIVE,
        attending_doctor_id=doctor.id,
        department_id=last_ward.department_id,
        ward_id=last_ward.id,
        bed_id=ObjectId(),
        status=AdmissionStatus.DISCHARGED if closed else AdmissionStatus.ACTIVE,
        admitted_at=stays[0][1],
        reason="observation",
        stays=[
            BedStay(
                bed_id=ObjectId(),
                ward_id=w.id,
                department_id=w.department_id,
                from_at=since,
                to_at=until,
            )
            for w, since, until in stays
        ],
        discharged_at=last_to if closed else None,
    )
    return await made.insert()


async def theatre(dept: Department, **fields: Any) -> OperatingTheatre:
    i = f.n()
    return await OperatingTheatre(
        name=f"Theatre {i}", code=f"OT{i}", department_id=dept.id, **fields
    ).insert()


async def surgery(
    room: OperatingTheatre,
    patient: Patient,
    start: datetime,
    minutes: int,
    entered: datetime | None = None,
    left: datetime | None = None,
    status: SurgeryStatus = SurgeryStatus.COMPLETED,
) -> SurgeryBooking:
    """A booking of ``minutes`` from ``start``; with a record when ``entered`` is given."""
    surgeon, anaesthetist = await f.doctor(), await f.doctor(specialty="Anaesthesia")
    end = start + timedelta(minutes=minutes)
    booking = await SurgeryBooking(
        patient_id=patient.id,
        theatre_id=room.id,
        department_id=room.department_id,
        surgeon_id=surgeon.id,
        anaesthetist_id=anaesthetist.id,
        start_at=start,
        end_at=end,
        reserved_until=end + timedelta(minutes=room.turnover_minutes),
        procedure=PlannedProcedure(description="appendicectomy"),
        status=status,
    ).insert()
    if entered is not None:
        record = await SurgicalRecord(
            booking_id=booking.id,
            patient_id=patient.id,
            theatre_id=room.id,
            department_id=room.department_id,
            surgeon_id=surgeon.id,
            anaesthetist_id=anaesthetist.id,
            in_theatre_at=entered,
            out_of_theatre_at=left,
        ).insert()
        booking.record_id = record.id
        await booking.save()
    return booking


async def ed_visit(
    dept: Department,
    patient: Patient,
    arrived: datetime,
    triaged_after: float | None = None,
    level: int | None = None,
    disposed_after: float | None = None,
    kind: DispositionKind | None = None,
    retriaged_after: float | None = None,
) -> EmergencyVisit:
    """A visit arriving at ``arrived``, triaged (``level``) and disposed (``kind``) the given
    minutes later; re-triaged at ``retriaged_after`` (the first triage stays in the history)."""
    nurse = await f.nurse(dept)

    def triage(after: float) -> Triage:
        return Triage(
            level=level or 3,
            triaged_at=arrived + timedelta(minutes=after),
            triaged_by_id=nurse.id,
            triaged_by_role=TriageRole.NURSE,
        )

    history = [] if triaged_after is None else [triage(triaged_after)]
    current = history[0] if history else None
    if retriaged_after is not None:
        current = triage(retriaged_after)
        history.append(current)
    disposition = (
        None
        if disposed_after is None or kind is None
        else Disposition(kind=kind, at=arrived + timedelta(minutes=disposed_after))
    )
    status = (
        EmergencyStatus.DISPOSED
        if disposition
        else EmergencyStatus.TRIAGED
        if current
        else EmergencyStatus.WAITING
    )
    return await EmergencyVisit(
        patient_id=patient.id,
        department_id=dept.id,
        arrived_at=arrived,
        arrival_mode=ArrivalMode.WALK_IN,
        chief_complaint="chest pain",
        status=status,
        status_at=arrived,
        triage=current,
        triage_history=history,
        acuity_rank=0 if current is None else current.level,
        disposition=disposition,
        open_patient_id=None if disposition else patient.id,
    ).insert()
