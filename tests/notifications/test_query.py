"""``notifications``: each recipient sees their own messages, newest first, and nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.notifications import NotificationKind
from services import notifications
from tests import factories
from tests.notifications.helpers import FakeClock

QUERY = """query($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    nodes { id kind recipientKind recipientId appointmentId prescriptionId status subject }
    pageInfo { hasNextPage endCursor } } }"""


async def test_each_caller_sees_only_their_own(client_as: Any) -> None:
    mine, theirs = await factories.patient(), await factories.patient()
    doctor, colleague = await factories.doctor(), await factories.doctor()
    clock = FakeClock(datetime(2031, 1, 1, tzinfo=UTC))
    first = await factories.appointment(pat=mine, doc=doctor)
    second = await factories.appointment(pat=mine, doc=doctor)
    other = await factories.appointment(pat=theirs, doc=doctor)
    for appointment in (first, other, second):
        clock.advance(timedelta(minutes=1))
        await notifications.notify_appointment(
            appointment, NotificationKind.APPOINTMENT_BOOKED, clock=clock
        )
    rx = await factories.prescription(pat=mine, doc=doctor)
    await notifications.notify_picked_up(rx, clock=clock)
    await notifications.notify_picked_up(await factories.prescription(doc=colleague), clock=clock)

    patient = client_as(roles=["patient"], pid=str(mine.id))
    page = (await patient.data(QUERY, first=1))["notifications"]
    assert [n["appointmentId"] for n in page["nodes"]] == [str(second.id)]  # newest first
    assert page["pageInfo"]["hasNextPage"]
    rest = (await patient.data(QUERY, after=page["pageInfo"]["endCursor"]))["notifications"]
    assert [n["appointmentId"] for n in rest["nodes"]] == [str(first.id)]
    assert {n["recipientId"] for n in page["nodes"] + rest["nodes"]} == {str(mine.id)}

    prescriber = client_as(roles=["doctor"], sid=str(doctor.id), did=str(doctor.department_id))
    nodes = (await prescriber.data(QUERY))["notifications"]["nodes"]
    assert [(n["kind"], n["recipientKind"], n["prescriptionId"]) for n in nodes] == [
        ("PRESCRIPTION_PICKED_UP", "DOCTOR", str(rx.id))
    ]

    stranger = client_as(roles=["patient"], pid=str((await factories.patient()).id))
    assert (await stranger.data(QUERY))["notifications"]["nodes"] == []


async def test_roles_that_receive_nothing_are_refused(client_as: Any) -> None:
    nurse = client_as(roles=["nurse"], sid=str((await factories.nurse()).id))
    error = await nurse.error(QUERY)
    assert error["extensions"]["code"] == "FORBIDDEN"
