"""Racing writers: two callers never get the same patient, two check-ins make one visit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId

import db
from errors import Conflict
from models.outpatient import OutpatientVisit, VisitStatus
from models.scheduling import Appointment, AppointmentStatus
from services import outpatient
from tests import factories
from tests.outpatient.helpers import CALL_NEXT, CHECK_IN, WALK_IN, booked, clinic


async def _queue_of(gql: Any, size: int) -> tuple[Any, list[str]]:
    dept, doctor = await clinic()
    ids = []
    for _ in range(size):
        made = await gql.data(
            WALK_IN,
            input={
                "patientId": str((await factories.patient()).id),
                "departmentId": str(dept.id),
                "doctorId": str(doctor.id),
            },
        )
        ids.append(made["walkInOutpatient"]["id"])
    return doctor, ids


async def test_two_callers_at_once_never_call_the_same_patient(gql: Any) -> None:
    doctor, ids = await _queue_of(gql, 1)
    answers = await asyncio.gather(
        *(gql.data(CALL_NEXT, room=f"Room {i}", doctorId=str(doctor.id)) for i in range(2))
    )
    called = [a["callNextOutpatient"] for a in answers]
    assert sorted(c is None for c in called) == [False, True]  # one patient, one caller
    winner = next(c for c in called if c is not None)
    assert winner["id"] == ids[0]
    stored = await OutpatientVisit.get(winner["id"])
    assert stored is not None and stored.called_to == winner["calledTo"]
    assert len([h for h in stored.history if h.to_status == "called"]) == 1


async def test_many_callers_take_distinct_patients_in_queue_order(gql: Any) -> None:
    doctor, ids = await _queue_of(gql, 5)
    answers = await asyncio.gather(
        *(gql.data(CALL_NEXT, room=str(i), doctorId=str(doctor.id)) for i in range(8))
    )
    taken = [a["callNextOutpatient"]["id"] for a in answers if a["callNextOutpatient"]]
    assert sorted(taken) == sorted(ids)  # each patient called exactly once, nobody twice
    assert sum(a["callNextOutpatient"] is None for a in answers) == 3


async def test_callers_that_read_the_same_head_each_get_their_own_patient(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst interleaving, forced: both callers read the queue's head before either takes
    it (as two processes would); the loser's conditional update fails and it takes the next."""
    doctor, ids = await _queue_of(gql, 2)
    barrier = asyncio.Barrier(2)
    real = db.collection

    class Racing:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def find(self, *args: Any, **kwargs: Any) -> Any:
            cursor = self._inner.find(*args, **kwargs)
            if len(args) < 2 or "version" not in args[1]:
                return cursor  # not call_next reading the queue's heads
            to_list = cursor.to_list

            async def together(length: Any) -> Any:
                heads = await to_list(length)
                await barrier.wait()  # both have the same heads in hand now
                return heads

            cursor.to_list = together
            return cursor

    def racing(model: Any) -> Any:
        return Racing(real(model)) if model is OutpatientVisit else real(model)

    monkeypatch.setattr(db, "collection", racing)
    first, second = await asyncio.gather(
        outpatient.call_next(room="A", doctor_id=doctor.id),
        outpatient.call_next(room="B", doctor_id=doctor.id),
    )
    assert first is not None and second is not None
    assert sorted([str(first.id), str(second.id)]) == sorted(ids)


async def test_racing_check_ins_of_one_appointment_make_one_visit(gql: Any) -> None:
    _, doctor = await clinic()
    _, appointment = await booked(doctor)
    answers = await asyncio.gather(
        *(gql(CHECK_IN, input={"appointmentId": str(appointment.id)}) for _ in range(3))
    )
    ids = {a["data"]["checkInOutpatient"]["id"] for a in answers if a.get("data")}
    codes = {e["extensions"]["code"] for a in answers for e in a.get("errors", [])}
    assert len(ids) == 1 and codes <= {"CONFLICT"}
    assert await OutpatientVisit.find({"appointment_id": appointment.id}).count() == 1
    stored = await Appointment.get(appointment.id)
    assert stored is not None and stored.status == AppointmentStatus.CHECKED_IN


async def test_racing_transitions_of_one_visit_let_exactly_one_win(gql: Any) -> None:
    """Two writers holding the same read of a visit (two desks, two processes): the
    compare-and-set on status and version lets one through; the other changes nothing."""
    _, ids = await _queue_of(gql, 1)
    seen = await OutpatientVisit.get(ObjectId(ids[0]))
    assert seen is not None
    results = await asyncio.gather(
        outpatient._move(seen, VisitStatus.LEFT, "left"),
        outpatient._move(seen, VisitStatus.CALLED, "called", sets={"called_to": "1"}),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, OutpatientVisit)]
    assert len(won) == 1
    assert [type(r) for r in results if not isinstance(r, OutpatientVisit)] == [Conflict]
    stored = await OutpatientVisit.get(seen.id)
    assert stored is not None and stored.status == won[0].status
    assert stored.version == seen.version + 1 and len(stored.history) == 2
