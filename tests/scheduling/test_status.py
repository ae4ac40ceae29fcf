"""Visits over the API: check-in, completion and no-show, their rules and who may record them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from models import Appointment, Reservation
from models.scheduling import AppointmentStatus
from services import scheduling
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.scheduling.helpers import (
    CANCEL,
    START,
    assert_reservations_match_appointments,
    book,
    held,
)

CHECK_IN = """mutation($id: ID!) { checkInAppointment(id: $id) { id status } }"""
COMPLETE = """mutation($id: ID!, $notes: String) {
  completeAppointment(id: $id, notes: $notes) { id status notes } }"""
NO_SHOW = """mutation($id: ID!) { markNoShow(id: $id) { id status } }"""


async def _booked(gql: Any, start: Any = START) -> tuple[str, Any, Any]:
    patient, doctor = await factories.patient(), await factories.doctor()
    return await book(gql, patient, doctor, start), patient, doctor


def _after_start(monkeypatch: pytest.MonkeyPatch, minutes: int = 10) -> None:
    """The clock of the scheduling service, moved to just after START."""
    monkeypatch.setattr(scheduling, "utcnow", lambda: START + timedelta(minutes=minutes))


async def test_check_in_then_complete_frees_the_slot_for_a_new_booking(gql: Any) -> None:
    id, patient, doctor = await _booked(gql)
    checked = await gql.data(CHECK_IN, id=id)
    assert checked["checkInAppointment"] == {"id": id, "status": "CHECKED_IN"}
    assert await held(ObjectId(id)), "a checked-in appointment still holds its time"
    await assert_reservations_match_appointments()

    done = await gql.data(COMPLETE, id=id, notes="  BP 128/82, review in 3 months ")
    assert done["completeAppointment"] == {
        "id": id,
        "status": "COMPLETED",
        "notes": "BP 128/82, review in 3 months",
    }
    assert await held(ObjectId(id)) == set()
    await assert_reservations_match_appointments()
    # The same doctor and patient, the same time: free again.
    again = await book(gql, patient, doctor, START)
    assert again != id
    await assert_reservations_match_appointments()


async def test_completing_without_notes_keeps_the_existing_ones(gql: Any) -> None:
    id, _, _ = await _booked(gql)
    await Appointment.get_motor_collection().update_one(
        {"_id": ObjectId(id)}, {"$set": {"notes": "Fasting bloods"}}
    )
    await gql.data(CHECK_IN, id=id)
    done = await gql.data(COMPLETE, id=id)
    assert done["completeAppointment"]["notes"] == "Fasting bloods"


async def test_no_show_after_the_start_frees_the_slot(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    id, patient, doctor = await _booked(gql)
    _after_start(monkeypatch)
    missed = await gql.data(NO_SHOW, id=id)
    assert missed["markNoShow"] == {"id": id, "status": "NO_SHOW"}
    assert await held(ObjectId(id)) == set()
    await assert_reservations_match_appointments()
    monkeypatch.undo()
    assert await book(gql, patient, doctor, START) != id


async def test_no_show_before_the_start_is_refused_and_changes_nothing(gql: Any) -> None:
    id, _, _ = await _booked(gql)
    before = await snapshot(Appointment, Reservation)
    error = await gql.error(NO_SHOW, id=id)
    assert code(error) == "BAD_USER_INPUT"
    assert "not started" in error["message"]
    assert await snapshot(Appointment, Reservation) == before


@pytest.mark.parametrize(
    ("steps", "mutation", "variables", "current", "target"),
    [
        ((), COMPLETE, {}, "scheduled", "completed"),
        ((CHECK_IN,), CHECK_IN, {}, "checked_in", "checked_in"),
        ((CHECK_IN,), NO_SHOW, {}, "checked_in", "no_show"),
        ((CHECK_IN, COMPLETE), CHECK_IN, {}, "completed", "checked_in"),
        ((CHECK_IN, COMPLETE), COMPLETE, {"notes": "again"}, "completed", "completed"),
        ((CHECK_IN, COMPLETE), NO_SHOW, {}, "completed", "no_show"),
        ((CANCEL,), CHECK_IN, {}, "cancelled", "checked_in"),
        ((CANCEL,), COMPLETE, {}, "cancelled", "completed"),
        ((CANCEL,), NO_SHOW, {}, "cancelled", "no_show"),
    ],
)
async def test_illegal_transitions_name_both_states_and_change_nothing(
    gql: Any,
    monkeypatch: pytest.MonkeyPatch,
    steps: tuple[str, ...],
    mutation: str,
    variables: dict[str, Any],
    current: str,
    target: str,
) -> None:
    id, _, _ = await _booked(gql)
    for step in steps:
        await gql.data(step, id=id)
    _after_start(monkeypatch)  # so a no-show fails on the status, not on the clock
    before = await snapshot(Appointment, Reservation)
    error = await gql.error(mutation, id=id, **variables)
    assert code(error) == "BAD_USER_INPUT"
    assert f"from {current} to {target}" in error["message"]
    assert await snapshot(Appointment, Reservation) == before


async def test_no_show_after_completion_or_cancel_is_illegal_too(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    id, _, _ = await _booked(gql)
    _after_start(monkeypatch)
    await gql.data(NO_SHOW, id=id)
    for mutation in (CHECK_IN, COMPLETE, NO_SHOW, CANCEL):
        error = await gql.error(mutation, id=id)
        assert code(error) == "BAD_USER_INPUT"
        assert "no_show" in error["message"]


async def test_a_status_moved_meanwhile_is_a_conflict(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    id, _, _ = await _booked(gql)
    real = scheduling._compare_and_set

    async def raced(appointment: Appointment, *args: Any, **kwargs: Any) -> Appointment:
        # Another request checks the patient in between our read and our write.
        await Appointment.get_motor_collection().update_one(
            {"_id": appointment.id}, {"$set": {"status": AppointmentStatus.CHECKED_IN.value}}
        )
        return await real(appointment, *args, **kwargs)

    monkeypatch.setattr(scheduling, "_compare_and_set", raced)
    error = await gql.error(CHECK_IN, id=id)
    assert code(error) == "CONFLICT"
    assert await held(ObjectId(id)), "nothing was released"


async def test_notes_are_validated(gql: Any) -> None:
    id, _, _ = await _booked(gql)
    await gql.data(CHECK_IN, id=id)
    error = await gql.error(COMPLETE, id=id, notes="x" * 5001)
    assert code(error) == "BAD_USER_INPUT"
    assert "notes" in error["extensions"]["fields"]
    stored = await Appointment.get(ObjectId(id))
    assert stored is not None and stored.status == AppointmentStatus.CHECKED_IN


async def test_unknown_appointment_is_not_found(gql: Any) -> None:
    error = await gql.error(CHECK_IN, id=str(ObjectId()))
    assert code(error) == "NOT_FOUND"


# -- who may record a visit ---------------------------------------------------------------------


async def test_front_desk_checks_in_and_marks_no_shows_but_does_not_complete(
    gql: Any, client_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = client_as(roles=["admin_staff"])
    first, _, _ = await _booked(gql)
    assert (await desk.data(CHECK_IN, id=first))["checkInAppointment"]["status"] == "CHECKED_IN"
    before = await snapshot(Appointment, Reservation)
    assert code(await desk.error(COMPLETE, id=first)) == "FORBIDDEN"
    assert await snapshot(Appointment, Reservation) == before

    second, _, _ = await _booked(gql, START + timedelta(hours=2))
    monkeypatch.setattr(scheduling, "utcnow", lambda: START + timedelta(hours=3))
    assert (await desk.data(NO_SHOW, id=second))["markNoShow"]["status"] == "NO_SHOW"


async def test_the_appointments_doctor_completes_it_a_stranger_doctor_may_not(
    gql: Any, client_as: Any
) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    patient = await factories.patient(care_team=[doctor.id])
    id = await book(gql, patient, doctor, START)
    stranger = client_as(roles=["doctor"], sid=str(ObjectId()), did=str(dept.id))
    for mutation in (CHECK_IN, COMPLETE, NO_SHOW):
        assert code(await stranger.error(mutation, id=id)) == "FORBIDDEN"

    own = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    await own.data(CHECK_IN, id=id)
    done = await own.data(COMPLETE, id=id, notes="Seen")
    assert done["completeAppointment"]["status"] == "COMPLETED"


async def test_a_department_nurse_completes_a_visit(gql: Any, client_as: Any) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    id = await book(gql, await factories.patient(), doctor, START)
    await gql.data(CHECK_IN, id=id)
    other_ward = client_as(roles=["nurse"], sid=str(ObjectId()), did=str(ObjectId()))
    assert code(await other_ward.error(COMPLETE, id=id)) == "FORBIDDEN"
    nurse = client_as(roles=["nurse"], sid=str(ObjectId()), did=str(dept.id))
    assert (await nurse.data(COMPLETE, id=id))["completeAppointment"]["status"] == "COMPLETED"


@pytest.mark.parametrize("mutation", [CHECK_IN, COMPLETE, NO_SHOW])
@pytest.mark.parametrize("role", ["patient", "billing", "analyst", "service", "compliance"])
async def test_other_roles_may_not_record_visits(
    gql: Any, client_as: Any, mutation: str, role: str
) -> None:
    id, patient, _ = await _booked(gql)
    claims: dict[str, Any] = {"roles": [role]}
    if role == "patient":
        claims["pid"] = str(patient.id)  # even their own appointment
    before = await snapshot(Appointment, Reservation)
    error = await client_as(**claims).error(mutation, id=id)
    assert code(error) == "FORBIDDEN"
    assert await snapshot(Appointment, Reservation) == before
