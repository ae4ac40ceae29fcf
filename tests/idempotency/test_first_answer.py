"""A retry answered from an idempotency key gets the first answer, not today's state.

Over HTTP, as a client retrying after a timeout would: the key stores the document the first
call returned, retries are answered from it (re-checked and audited as replays), and keys are
per caller.
"""

from __future__ import annotations

from typing import Any

from crypto.fields import is_sealed
from models import Appointment, AuditEvent, BillingAccount
from models.idempotency import IdempotencyKey
from tests import factories
from tests.conftest import EVERY_STAFF_ROLE, TEST_CLINICIAN, TEST_CLINICIAN_SUBJECT, TEST_DEPARTMENT
from tests.graphql.helpers import code
from tests.idempotency.test_idempotency import CANCEL, CHARGE, PAY, SCHEDULE, manual, payment
from tests.scheduling.helpers import START, booking

REPLAY = "idempotent replay of"


async def owing(gql: Any, amount: int) -> BillingAccount:
    """An account with ``amount`` charged through the API."""
    account = await factories.billing_account()
    await gql.data(CHARGE, accountId=str(account.id), input=manual(amount))
    return account


def other_staff(client_as: Any) -> Any:
    return client_as(
        sub="test:other-staff",
        roles=EVERY_STAFF_ROLE,
        sid=str(TEST_CLINICIAN),
        did=str(TEST_DEPARTMENT),
    )


async def test_a_retried_payment_shows_the_balance_it_left(gql: Any) -> None:
    account = await owing(gql, 5000)
    first = await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-1")
    assert first["recordPayment"]["balance"]["amount"] == 3500
    await gql.data(PAY, accountId=str(account.id), input=payment(1000), key="pay-2")
    retried = await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-1")
    assert retried == first  # balance 3500 and one payment, as first answered
    stored = await BillingAccount.get(account.id)
    assert stored is not None and stored.balance == 2500 and len(stored.payments) == 2
    # Other arguments under the same key are still refused, and write nothing.
    error = await gql.error(PAY, accountId=str(account.id), input=payment(100), key="pay-1")
    assert code(error) == "CONFLICT"
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.payments) == 2


async def test_a_retried_booking_after_a_cancel_is_scheduled_as_first_answered(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    payload = booking(patient, doctor, START)
    first = await gql.data(SCHEDULE, input=payload, key="book-1")
    assert first["scheduleAppointment"]["status"] == "SCHEDULED"
    id = first["scheduleAppointment"]["id"]
    await gql.data(CANCEL, id=id)
    retried = await gql.data(SCHEDULE, input=payload, key="book-1")
    assert retried == first
    assert await Appointment.count() == 1  # nothing was booked again
    stored = await Appointment.get(id)
    assert stored is not None and stored.status == "cancelled"


async def test_a_retried_cancel_answers_as_first_cancelled(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    booked = await gql.data(SCHEDULE, input=booking(patient, doctor, START))
    id = booked["scheduleAppointment"]["id"]
    first = await gql.data(CANCEL, id=id, key="cancel-1")
    assert first == {"cancelAppointment": {"id": id, "status": "CANCELLED"}}
    assert await gql.data(CANCEL, id=id, key="cancel-1") == first


async def test_keys_are_per_caller(gql: Any, client_as: Any) -> None:
    other = other_staff(client_as)
    account = await owing(gql, 5000)
    mine = await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="shared")
    theirs = await other.data(PAY, accountId=str(account.id), input=payment(1500), key="shared")
    # The same key from another caller is its own request: a second payment, its own answer.
    assert mine["recordPayment"]["balance"]["amount"] == 3500
    assert theirs["recordPayment"]["balance"]["amount"] == 2000
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.payments) == 2
    # Each caller's retry gets its own first answer.
    again = await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="shared")
    assert again == mine
    assert await other.data(PAY, accountId=str(account.id), input=payment(1500), key="shared") == (
        theirs
    )
    assert await IdempotencyKey.count() == 2


async def test_a_replay_is_audited_with_the_entity_and_patient(gql: Any) -> None:
    account = await owing(gql, 5000)
    for _ in range(2):
        await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-a")
    events = await AuditEvent.find(
        {"entity": "BillingAccount", "entity_id": account.id, "fields": "payments"}
    ).to_list()
    first, replay = sorted(events, key=lambda e: (e.at, e.id))
    assert first.reason is not None and REPLAY not in first.reason
    # The caller opened this patient by break-the-glass (tests/factories.py): the reason keeps
    # both the replay note and the grant's reason.
    assert replay.reason is not None and replay.reason.startswith(f"{REPLAY} pay-a")
    assert "domain tests act as" in replay.reason and replay.break_glass
    assert (replay.entity_id, replay.patient_id) == (account.id, account.patient_id)
    assert replay.actor_subject == TEST_CLINICIAN_SUBJECT and replay.action == first.action
    assert replay.operation == first.operation == "recordPayment"


async def test_a_booking_replay_is_audited_with_the_entity_and_patient(gql: Any) -> None:
    patient = await factories.patient(clinician_access=False)
    payload = booking(patient, await factories.doctor(), START)
    first = await gql.data(SCHEDULE, input=payload, key="book-a")
    again = await gql.data(SCHEDULE, input=payload, key="book-a")
    assert again == first
    id = first["scheduleAppointment"]["id"]
    events = await AuditEvent.find({"entity": "Appointment", "action": "create"}).to_list()
    events.sort(key=lambda e: (e.at, e.id))
    assert [(str(e.entity_id), e.patient_id) for e in events] == [(id, patient.id)] * 2
    assert events[0].reason is None
    assert events[1].reason == f"{REPLAY} book-a: the first answer again, nothing written"
    assert not events[1].break_glass


async def test_a_retry_needs_the_right_still(gql: Any, client_as: Any) -> None:
    account = await owing(gql, 5000)
    await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-r")
    demoted = client_as(
        sub=TEST_CLINICIAN_SUBJECT,
        roles=["doctor"],
        sid=str(TEST_CLINICIAN),
        did=str(TEST_DEPARTMENT),
    )
    error = await demoted.error(PAY, accountId=str(account.id), input=payment(1500), key="pay-r")
    assert code(error) == "FORBIDDEN"


async def test_an_answer_that_cannot_be_shown_is_a_conflict(gql: Any) -> None:
    account = await owing(gql, 5000)
    await gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-x")
    # A row whose snapshot is missing (written before snapshots) or no longer parses.
    keys = IdempotencyKey.get_motor_collection()
    row = await keys.find_one({"key": "pay-x"})
    assert row is not None and is_sealed(row["result_json"])  # the first answer, sealed
    for broken in ({"result_json": None}, {"result_json": "{}"}):
        await keys.update_one({"_id": row["_id"]}, {"$set": broken})
        error = await gql.error(PAY, accountId=str(account.id), input=payment(1500), key="pay-x")
        assert code(error) == "CONFLICT" and "can no longer be shown" in error["message"]
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.payments) == 1
