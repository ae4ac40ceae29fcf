"""Start, record, complete: the checklist before incision, ordered times, charges once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bson import ObjectId

from models import BillingAccount, Reservation
from models.base import utcnow
from models.billing import ChargeSource
from models.theatre import SurgeryBooking, SurgicalRecord
from services import theatre
from tests.graphql.helpers import code, snapshot
from tests.theatre.helpers import (
    CHECKLIST,
    COMPLETE,
    READ,
    RECORD,
    START_SURGERY,
    Callers,
    booked,
    iso,
    suite,
)


async def _started(
    client_as: Any, checklist: list[str] | None = None
) -> tuple[Any, Callers, str, str]:
    s = await suite()
    c = Callers(client_as, s)
    id = await booked(c, s)
    given = {"checklist": checklist} if checklist is not None else None
    data = await c.nurse.data(START_SURGERY, id=id, input=given)
    return s, c, id, str(data["startSurgery"]["id"])


async def test_start_creates_the_record_with_the_checks_of_the_caller(client_as: Any) -> None:
    s, c, id, record_id = await _started(client_as, CHECKLIST[:2])
    record = await SurgicalRecord.get(ObjectId(record_id))
    assert record is not None and str(record.booking_id) == id
    assert {ch.checked_by_id for ch in record.checklist} == {s.theatre_nurse.id}
    stored = await SurgeryBooking.get(ObjectId(id))
    assert stored is not None and stored.status.value == "in_progress"
    assert str(stored.record_id) == record_id
    again = await c.nurse(START_SURGERY, id=id)
    assert code(again["errors"][0]) == "BAD_USER_INPUT"
    assert await SurgicalRecord.count() == 1


async def test_the_checklist_must_be_complete_before_incision(client_as: Any) -> None:
    _, c, _, record_id = await _started(client_as, CHECKLIST[:3])
    now = utcnow()
    before = await snapshot(SurgicalRecord)
    early = await c.surgeon(
        RECORD,
        id=record_id,
        input={"inTheatreAt": iso(now - timedelta(minutes=20)), "incisionAt": iso(now)},
    )
    error = early["errors"][0]
    assert code(error) == "BAD_USER_INPUT"
    assert "fasting_confirmed" in error["extensions"]["fields"]["incisionAt"]
    assert await snapshot(SurgicalRecord) == before
    # Checked now, an incision recorded earlier would precede the checks: refused too.
    await c.nurse.data(RECORD, id=record_id, input={"checklist": CHECKLIST[3:]})
    backdated = await c.surgeon(
        RECORD, id=record_id, input={"incisionAt": iso(now - timedelta(minutes=10))}
    )
    assert "before the incision" in backdated["errors"][0]["message"]
    done = await c.surgeon.data(
        RECORD, id=record_id, input={"incisionAt": iso(utcnow() + timedelta(seconds=1))}
    )
    assert done["updateSurgicalRecord"]["checklistComplete"] is True


async def test_times_must_be_in_order(client_as: Any) -> None:
    _, c, _, record_id = await _started(client_as, CHECKLIST)
    now = utcnow()
    answer = await c.nurse(
        RECORD,
        id=record_id,
        input={
            "inTheatreAt": iso(now - timedelta(minutes=10)),
            "anaesthesiaStartAt": iso(now - timedelta(minutes=20)),
        },
    )
    fields = answer["errors"][0]["extensions"]["fields"]
    assert fields == {"anaesthesiaStartAt": "must not be before inTheatreAt"}
    future = await c.nurse(
        RECORD, id=record_id, input={"inTheatreAt": iso(now + timedelta(hours=1))}
    )
    assert "future" in future["errors"][0]["extensions"]["fields"]["inTheatreAt"]
    ok = await c.nurse.data(
        RECORD, id=record_id, input={"inTheatreAt": iso(now - timedelta(minutes=10))}
    )
    late = await c.nurse(
        RECORD,
        id=record_id,
        input={"outOfTheatreAt": iso(now - timedelta(minutes=30))},
        version=ok["updateSurgicalRecord"]["version"],
    )
    assert "outOfTheatreAt" in late["errors"][0]["extensions"]["fields"]


async def _recorded(c: Callers, record_id: str) -> None:
    now = utcnow()
    times = {
        "inTheatreAt": now - timedelta(minutes=70),
        "anaesthesiaStartAt": now - timedelta(minutes=65),
        "incisionAt": now - timedelta(minutes=50),
        "closureAt": now - timedelta(minutes=10),
        "outOfTheatreAt": now - timedelta(minutes=2),
    }
    record = await SurgicalRecord.get(ObjectId(record_id))
    assert record is not None
    # The checklist was done before the times recorded (as in theatre).
    for check in record.checklist:
        check.checked_at = now - timedelta(minutes=80)
    await record.save()
    await c.nurse.data(RECORD, id=record_id, input={k: iso(v) for k, v in times.items()})
    await c.surgeon.data(
        RECORD,
        id=record_id,
        input={
            "anaesthesiaType": "GENERAL",
            "procedureCodes": ["0FT44ZZ", "47562"],
            "complications": "None.",
            "postOpDestination": "RECOVERY",
        },
    )


async def test_completion_needs_the_times_and_destination(client_as: Any) -> None:
    _, c, id, _ = await _started(client_as, CHECKLIST)
    answer = await c.nurse(COMPLETE, id=id)
    fields = answer["errors"][0]["extensions"]["fields"]
    assert set(fields) == {"inTheatreAt", "outOfTheatreAt", "postOpDestination"}


async def test_completion_frees_the_theatre_and_charges_once(client_as: Any) -> None:
    s, c, id, record_id = await _started(client_as, CHECKLIST)
    await _recorded(c, record_id)
    done = await c.surgeon.data(COMPLETE, id=id)
    completed = done["completeSurgery"]
    assert completed["status"] == "COMPLETED"
    # 68 minutes in theatre: 5 started quarter hours of 600.00/h; two codes: 1200 + 400.
    assert completed["theatreCharge"] == 5 * 60_000 // 4
    assert completed["procedureFee"] == theatre.PROCEDURE_FEE + theatre.ADDITIONAL_PROCEDURE_FEE
    assert await Reservation.find({"appointment_id": ObjectId(id)}).count() == 0
    account = await BillingAccount.find_one({"patient_id": s.patient.id})
    assert account is not None
    surgery = [ch for ch in account.charges if ch.source == ChargeSource.SURGERY]
    assert {ch.source_id for ch in surgery} == {ObjectId(id), ObjectId(record_id)}
    assert all(ch.department_id == s.surgery.id for ch in surgery)
    assert account.total_charged == completed["theatreCharge"] + completed["procedureFee"]
    again = await c.nurse(COMPLETE, id=id)
    assert code(again["errors"][0]) == "BAD_USER_INPUT"
    fresh = await BillingAccount.find_one({"patient_id": s.patient.id})
    assert fresh is not None and len(fresh.charges) == 2


async def test_two_concurrent_completions_charge_once(client_as: Any) -> None:
    s, c, id, record_id = await _started(client_as, CHECKLIST)
    await _recorded(c, record_id)
    answers = await asyncio.gather(c.nurse(COMPLETE, id=id), c.surgeon(COMPLETE, id=id))
    assert sum("errors" not in a for a in answers) >= 1
    account = await BillingAccount.find_one({"patient_id": s.patient.id})
    assert account is not None and len(account.charges) == 2
    assert account.total_charged == sum(ch.amount for ch in account.charges)


async def test_an_interrupted_completion_is_charged_by_the_next(client_as: Any) -> None:
    s, c, id, record_id = await _started(client_as, CHECKLIST)
    await _recorded(c, record_id)
    booking = await SurgeryBooking.get(ObjectId(id))
    assert booking is not None
    booking.status = booking.status.__class__("completed")  # crashed before charging
    await booking.save()
    await c.surgeon.data(COMPLETE, id=id)
    account = await BillingAccount.find_one({"patient_id": s.patient.id})
    assert account is not None and len(account.charges) == 2
    read = await c.surgeon.data(READ, id=id)
    assert read["surgeryBooking"]["theatreCharge"] is not None
