"""The ED board's order and counts, admission from the ED, and two nurses triaging at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from cache import emergency as cache_emergency
from models.admissions import Admission
from models.emergency import EmergencyVisit
from models.wards import Bed
from services import emergency
from tests import factories
from tests.emergency.helpers import (
    ADMIT,
    BOARD,
    REGISTER_DESK,
    START,
    TRIAGE,
    emergency_department,
    free_bed,
)


async def _arrive(client: Any, ed_id: str, minutes_ago: int) -> str:
    patient = await factories.patient()
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    arrival = {
        "patientId": str(patient.id), "departmentId": ed_id, "arrivalMode": "WALK_IN",
        "chiefComplaint": "Unwell", "arrivedAt": at,
    }  # fmt: skip
    return str((await client.data(REGISTER_DESK, input=arrival))["registerEmergencyArrival"]["id"])


async def test_the_board_orders_by_acuity_then_arrival(client_as: Any) -> None:
    ed = await emergency_department()
    desk, nurse = client_as(**ed.claims("admin_staff")), client_as(**ed.claims("nurse"))
    early_3 = await _arrive(desk, ed.id, 90)
    late_3 = await _arrive(desk, ed.id, 60)
    level_1 = await _arrive(desk, ed.id, 10)
    level_5 = await _arrive(desk, ed.id, 120)
    untriaged = await _arrive(desk, ed.id, 5)
    for visit, level in ((late_3, 3), (early_3, 3), (level_1, 1), (level_5, 5)):
        await nurse.data(TRIAGE, id=visit, input={"level": level})

    board = (await desk.data(BOARD, departmentId=ed.id))["emergencyBoard"]
    assert [e["visitId"] for e in board["entries"]] == [
        untriaged,
        level_1,
        early_3,
        late_3,
        level_5,
    ]
    assert [e["position"] for e in board["entries"]] == [1, 2, 3, 4, 5]
    assert board["entries"][0]["level"] is None and board["entries"][0]["status"] == "WAITING"
    assert 89 <= board["entries"][2]["waitingMinutes"] <= 91
    counts = {c["level"]: c["count"] for c in board["counts"]}
    assert counts == {None: 1, 1: 1, 2: 0, 3: 2, 4: 0, 5: 1}
    assert board["awaitingTriage"] == 1 and board["open"] == 5

    # Re-triage moves a visit; the Redis board and MongoDB agree.
    await nurse.data(TRIAGE, id=level_5, input={"level": 2})
    board = (await desk.data(BOARD, departmentId=ed.id))["emergencyBoard"]
    order = [e["visitId"] for e in board["entries"]]
    assert order == [untriaged, level_1, level_5, early_3, late_3]
    assert ed.department.id is not None
    from_mongo = await cache_emergency.from_mongo(ed.department.id)
    assert [str(e.id) for e in from_mongo] == order


async def test_admission_from_the_ed_and_a_refused_one(client_as: Any) -> None:
    ed = await emergency_department()
    desk, nurse = client_as(**ed.claims("admin_staff")), client_as(**ed.claims("nurse"))
    doctor = client_as(**ed.claims("doctor"))
    first, second = await _arrive(desk, ed.id, 40), await _arrive(desk, ed.id, 30)
    for visit in (first, second):
        await nurse.data(TRIAGE, id=visit, input={"level": 2})
        await doctor.data(START, id=visit)
    bed = await free_bed()
    admit = {"bedId": str(bed.id), "attendingDoctorId": str(ed.doctor.id), "reason": "Sepsis"}

    done = (await doctor.data(ADMIT, id=first, input=admit))["admitFromEmergency"]
    assert done["status"] == "DISPOSED" and done["dispositionKind"] == "ADMITTED"
    admission = await Admission.get(done["admissionId"])
    assert admission is not None and admission.source == "emergency"
    assert str(admission.source_id) == first and admission.bed_id == bed.id
    # Repeating it answers the same admission, and makes no second one.
    again = (await doctor.data(ADMIT, id=first, input=admit))["admitFromEmergency"]
    assert again["admissionId"] == done["admissionId"]
    assert await Admission.find({"source_id": admission.source_id}).count() == 1

    # The bed is taken: the second patient's admission is refused and their visit stays open.
    refused = await doctor.error(ADMIT, id=second, input=admit)
    assert refused["extensions"]["code"] == "CONFLICT"
    still = await EmergencyVisit.get(second)
    assert still is not None and still.status == "in_treatment" and still.disposition is None
    board = (await desk.data(BOARD, departmentId=ed.id))["emergencyBoard"]
    assert [e["visitId"] for e in board["entries"]] == [second]


async def test_an_admission_whose_disposition_was_lost_is_completed_by_a_rerun(
    client_as: Any, monkeypatch: Any
) -> None:
    ed = await emergency_department()
    desk, nurse = client_as(**ed.claims("admin_staff")), client_as(**ed.claims("nurse"))
    doctor = client_as(**ed.claims("doctor"))
    visit = await _arrive(desk, ed.id, 20)
    await nurse.data(TRIAGE, id=visit, input={"level": 3})
    bed = await free_bed()
    admit = {"bedId": str(bed.id), "attendingDoctorId": str(ed.doctor.id), "reason": "Fracture"}

    real_step = emergency._step

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("MongoDB went away")

    monkeypatch.setattr(emergency, "_step", crash)
    failed = await doctor(ADMIT, id=visit, input=admit)
    assert failed.get("errors")
    admission = await emergency.admission_of(ObjectId(visit))
    assert admission is not None  # the patient is in the bed; the visit is still open
    stored = await EmergencyVisit.get(visit)
    assert stored is not None and stored.status == "triaged"

    monkeypatch.setattr(emergency, "_step", real_step)
    done = (await doctor.data(ADMIT, id=visit, input=admit))["admitFromEmergency"]
    assert done["dispositionKind"] == "ADMITTED" and done["admissionId"] == str(admission.id)
    taken = await Bed.get(bed.id)
    assert taken is not None and taken.admission_id == admission.id


async def test_two_nurses_triaging_at_once(client_as: Any) -> None:
    """Without expectedVersion both triages are recorded (the later current); with the same
    expectedVersion exactly one wins and the other gets CONFLICT."""
    ed = await emergency_department()
    desk = client_as(**ed.claims("admin_staff"))
    other_nurse = await factories.nurse(ed.department)
    a = client_as(**ed.claims("nurse"))
    b = client_as(roles=["nurse"], did=ed.id, sid=str(other_nurse.id))
    visit = await _arrive(desk, ed.id, 15)

    both = await asyncio.gather(
        a(TRIAGE, id=visit, input={"level": 3}), b(TRIAGE, id=visit, input={"level": 2})
    )
    assert all("errors" not in r for r in both)
    stored = await EmergencyVisit.get(visit)
    assert stored is not None and stored.version == 2
    assert sorted(t.level for t in stored.triage_history) == [2, 3]
    assert stored.triage == stored.triage_history[-1]

    pinned = await asyncio.gather(
        a(TRIAGE, id=visit, input={"level": 1}, v=2), b(TRIAGE, id=visit, input={"level": 4}, v=2)
    )
    codes = sorted(r["errors"][0]["extensions"]["code"] if "errors" in r else "OK" for r in pinned)
    assert codes == ["CONFLICT", "OK"]
    stored = await EmergencyVisit.get(visit)
    assert stored is not None and stored.version == 3 and len(stored.triage_history) == 3
