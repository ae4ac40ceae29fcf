"""The demo's visits agree with its appointments, and today's queue is there."""

from __future__ import annotations

from collections import Counter
from typing import Any

import db
from cache import queues
from crypto.fields import open_document
from demo import ANCHOR, ids, seed_demo
from demo.outpatient import seed_outpatient
from models.outpatient import (
    OUTPATIENT_VISIT_SEALED,
    OutpatientQueueNumber,
    OutpatientVisit,
    VisitStatus,
)
from models.patients import Patient
from models.scheduling import Appointment, AppointmentStatus
from services import care


async def test_every_completed_appointment_has_its_visit_and_the_doctor_a_queue(
    database: Any,
) -> None:
    await seed_demo(40)
    visits = await OutpatientVisit.find_all().to_list()
    by_appointment = {v.appointment_id: v for v in visits if v.appointment_id}
    completed = await Appointment.find({"status": AppointmentStatus.COMPLETED.value}).to_list()
    assert completed and set(by_appointment) == {a.id for a in completed}
    for a in completed:
        v = by_appointment[a.id]  # type: ignore[index]
        assert (v.patient_id, v.doctor_id, v.department_id) == (
            a.patient_id,
            a.doctor_id,
            a.department_id,
        )
        assert v.status == VisitStatus.COMPLETED and v.completed_at == a.end_at
        assert v.checked_in_at < a.start_at <= v.called_at <= v.seen_at <= v.completed_at  # type: ignore[operator]
        assert v.open_patient_id is None and v.ended_at == a.end_at
    numbers = Counter((v.department_id, v.queue_date, v.queue_number) for v in visits)
    assert max(numbers.values()) == 1
    for (department, day), count in Counter(
        (v.department_id, v.queue_date) for v in visits
    ).items():
        counter = await OutpatientQueueNumber.find_one(
            {"department_id": department, "queue_date": day}
        )
        assert counter is not None and counter.last == count

    live = await queues.from_mongo("doctor", ids.doctor_id(1))
    assert [e.status for e in live.entries].count(VisitStatus.WAITING) >= 2
    assert all(e.checked_in_at.date() == ANCHOR.date() for e in live.entries)
    assert {e.priority.value for e in live.entries} >= {"emergency"}
    # Care follows the visits as services.care derives it after every check-in.
    for entry in live.entries:
        visit = await OutpatientVisit.get(entry.id)
        assert visit is not None
        patient = await Patient.get(visit.patient_id)
        stored = [link.model_dump() for link in patient.care] if patient else None
        derived = await care.refresh(visit.patient_id)
        assert derived is not None and stored == [link.model_dump() for link in derived.care]

    # Seeding the visits again replaces them, with the same documents (the same once opened:
    # a sealed reason is a fresh ciphertext on every write).
    async def visits_as_stored() -> list[dict[str, Any]]:
        raws = await db.collection(OutpatientVisit).find({}).sort("_id", 1).to_list(None)
        return [open_document(OUTPATIENT_VISIT_SEALED, raw) for raw in raws]

    before = await visits_as_stored()
    await seed_outpatient()
    assert await visits_as_stored() == before
