"""The demo's theatres: a Surgery department, completed cases charged once, upcoming ones held."""

from __future__ import annotations

from typing import Any

from demo import seed_demo
from models import BillingAccount, Department, Doctor, Reservation
from models.billing import ChargeSource
from models.theatre import (
    SURGICAL_TIMES,
    OperatingTheatre,
    SurgeryBooking,
    SurgeryStatus,
    SurgicalRecord,
)
from services import theatre


async def test_demo_cases_are_recorded_charged_and_reserved(database: Any) -> None:
    await seed_demo(20)
    surgery = await Department.find_one({"code": "SURG"})
    assert surgery is not None
    assert await OperatingTheatre.find({"department_id": surgery.id}).count() == 2
    anaesthetists = [d for d in await Doctor.find_all().to_list() if theatre.is_anaesthetist(d)]
    assert anaesthetists
    bookings = await SurgeryBooking.find_all().to_list()
    done = [b for b in bookings if b.status == SurgeryStatus.COMPLETED]
    coming = [b for b in bookings if b.status == SurgeryStatus.SCHEDULED]
    assert len(done) >= 2 and len(coming) >= 1
    for booking in done:
        record = await SurgicalRecord.find_one({"booking_id": booking.id})
        assert record is not None and theatre.checklist_complete(record)
        times = [getattr(record, name) for name in SURGICAL_TIMES]
        assert times == sorted(times)
        account = await BillingAccount.find_one({"patient_id": booking.patient_id})
        assert account is not None
        mine = {
            c.source_id
            for c in account.charges
            if c.source == ChargeSource.SURGERY and c.source_id in (booking.id, record.id)
        }
        assert mine == {booking.id, record.id}
        assert await Reservation.find({"appointment_id": booking.id}).count() == 0
    for booking in coming:
        held = await Reservation.find({"appointment_id": booking.id}).to_list()
        assert {r.resource.value for r in held} == {"theatre", "doctor", "patient"}
        assert theatre.is_anaesthetist(await Doctor.get(booking.anaesthetist_id))  # type: ignore[arg-type]
