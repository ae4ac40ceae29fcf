"""Writes over HTTP queue exactly one confirmation each, through the bus hook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId

from events.types import DomainEvent
from models import Appointment, Notification
from models.notifications import NotificationKind, NotificationStatus, RecipientKind
from services import notifications
from tests import factories
from tests.scheduling.helpers import CANCEL, RESCHEDULE, START, book, iso


async def _of(kind: NotificationKind) -> list[Notification]:
    return await Notification.find({"kind": kind.value}).to_list()


async def test_booking_rescheduling_and_cancelling_confirm_once_each(gql: Any) -> None:
    patient = await factories.patient()
    doctor = await factories.doctor()
    appointment_id = await book(gql, patient, doctor, START)

    booked = await _of(NotificationKind.APPOINTMENT_BOOKED)
    assert len(booked) == 1
    message = booked[0]
    assert message.recipient.kind == RecipientKind.PATIENT
    assert message.recipient.id == patient.id
    assert message.appointment_id == ObjectId(appointment_id)
    assert message.status == NotificationStatus.PENDING
    assert "Check-up" not in message.body  # the reason for the visit stays out of messages

    # A retried hook (the same event again) is ignored: the key is already queued.
    event = DomainEvent("appointments", appointment_id, "created")
    await notifications.on_event(event)
    assert len(await _of(NotificationKind.APPOINTMENT_BOOKED)) == 1

    for hours in (1, 2):
        moved = START + timedelta(hours=hours)
        await gql.data(
            RESCHEDULE,
            id=appointment_id,
            input={"startAt": iso(moved), "endAt": iso(moved + timedelta(minutes=30))},
        )
    await notifications.on_event(DomainEvent("appointments", appointment_id, "rescheduled"))
    rescheduled = await _of(NotificationKind.APPOINTMENT_RESCHEDULED)
    assert len(rescheduled) == 2  # one per reschedule, the retry ignored
    assert len({n.key for n in rescheduled}) == 2

    await gql.data(CANCEL, id=appointment_id)
    await notifications.on_event(DomainEvent("appointments", appointment_id, "cancelled"))
    assert len(await _of(NotificationKind.APPOINTMENT_CANCELLED)) == 1
    assert await Notification.count() == 4


async def test_concurrent_enqueues_of_one_key_queue_one_row(gql: Any) -> None:
    import asyncio

    appointment = await factories.appointment()
    results = await asyncio.gather(
        *(
            notifications.notify_appointment(appointment, NotificationKind.APPOINTMENT_BOOKED)
            for _ in range(5)
        )
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await Notification.count() == 1


UPDATE_STATUS = """mutation($id: ID!, $status: PrescriptionStatus!) {
  updatePrescriptionStatus(id: $id, status: $status) { status } }"""


async def test_picking_up_a_prescription_notifies_the_prescriber(gql: Any) -> None:
    prescriber = await factories.doctor()
    prescription = await factories.prescription(doc=prescriber)
    await gql.data(UPDATE_STATUS, id=str(prescription.id), status="DISPENSED")
    assert await Notification.count() == 0  # only the pick-up is announced

    await gql.data(UPDATE_STATUS, id=str(prescription.id), status="PICKED_UP")
    await notifications.on_event(
        DomainEvent("prescriptions", str(prescription.id), "status_changed")
    )
    [message] = await Notification.find_all().to_list()
    assert message.kind == NotificationKind.PRESCRIPTION_PICKED_UP
    assert message.recipient.kind == RecipientKind.DOCTOR
    assert message.recipient.id == prescriber.id
    assert message.prescription_id == prescription.id
    assert prescription.drug not in message.body


async def test_other_appointment_changes_queue_nothing(gql: Any) -> None:
    appointment = await factories.appointment()
    await notifications.on_event(DomainEvent("appointments", str(appointment.id), "updated"))
    await notifications.on_event(DomainEvent("patients", str(appointment.patient_id), "created"))
    assert await Notification.count() == 0
    assert await Appointment.get(appointment.id) is not None
