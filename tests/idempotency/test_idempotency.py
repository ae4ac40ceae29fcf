"""Retried mutations with an idempotencyKey take effect once and get the same answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from errors import Conflict
from models import Appointment, BillingAccount, Reservation
from models.base import utcnow
from models.idempotency import IdempotencyKey
from services import billing, idempotency, scheduling
from tests import factories
from tests.conftest import EVERY_STAFF_ROLE, TEST_CLINICIAN, TEST_DEPARTMENT
from tests.graphql.helpers import code
from tests.scheduling.helpers import START, assert_reservations_match_appointments, booking

ACCOUNT = """id balance { amount currency } charges { id description amount { amount } }
  payments { id amount { amount } method } updatedAt"""
CHARGE = f"""mutation($accountId: ID!, $input: AddChargeInput!, $key: String) {{
  addCharge(accountId: $accountId, input: $input, idempotencyKey: $key) {{ {ACCOUNT} }} }}"""
PAY = f"""mutation($accountId: ID!, $input: RecordPaymentInput!, $key: String) {{
  recordPayment(accountId: $accountId, input: $input, idempotencyKey: $key) {{ {ACCOUNT} }} }}"""
OPEN = f"""mutation($input: OpenBillingAccountInput!, $key: String) {{
  openBillingAccount(input: $input, idempotencyKey: $key) {{ {ACCOUNT} }} }}"""
SCHEDULE = """mutation($input: ScheduleAppointmentInput!, $key: String) {
  scheduleAppointment(input: $input, idempotencyKey: $key) { id startAt endAt status } }"""
CANCEL = """mutation($id: ID!, $key: String) {
  cancelAppointment(id: $id, idempotencyKey: $key) { id status } }"""


def manual(amount: int, description: str = "Private room") -> dict[str, Any]:
    return {
        "description": description,
        "amount": {"amount": amount, "currency": "EUR"},
        "source": "MANUAL",
    }


def payment(amount: int) -> dict[str, Any]:
    return {"amount": {"amount": amount, "currency": "EUR"}, "method": "CARD"}


def slowed(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Make a service call take a while, so concurrent retries find the key in progress."""
    original: Callable[..., Awaitable[Any]] = getattr(module, name)

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await original(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)


async def charged_account(gql: Any, amount: int = 0) -> BillingAccount:
    account = await factories.billing_account()
    if amount:
        await gql.data(CHARGE, accountId=str(account.id), input=manual(amount))
    return account


async def test_concurrent_charge_retries_charge_once(gql: Any, monkeypatch: Any) -> None:
    account = await charged_account(gql)
    slowed(monkeypatch, billing, "add_charge")
    answers = await asyncio.gather(
        *(gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="k-1")
          for _ in range(20))
    )  # fmt: skip
    assert all(answer == answers[0] for answer in answers)
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.charges) == 1
    assert answers[0]["addCharge"]["charges"][0]["id"] == str(stored.charges[0].id)
    assert answers[0]["addCharge"]["balance"]["amount"] == 1200
    # A later retry, once done, gets the same answer too.
    later = await gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="k-1")
    assert later == answers[0]


async def test_concurrent_payment_retries_pay_once(gql: Any, monkeypatch: Any) -> None:
    account = await charged_account(gql, 5000)
    slowed(monkeypatch, billing, "record_payment")
    answers = await asyncio.gather(
        *(gql.data(PAY, accountId=str(account.id), input=payment(1500), key="pay-1")
          for _ in range(20))
    )  # fmt: skip
    assert all(answer == answers[0] for answer in answers)
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.payments) == 1
    assert answers[0]["recordPayment"]["balance"]["amount"] == 3500


async def test_concurrent_booking_retries_book_once(gql: Any, monkeypatch: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    slowed(monkeypatch, scheduling, "schedule_appointment")
    payload = booking(patient, doctor, START)
    answers = await asyncio.gather(
        *(gql.data(SCHEDULE, input=payload, key="book-1") for _ in range(20))
    )
    assert all(answer == answers[0] for answer in answers)
    active = await assert_reservations_match_appointments()
    assert [str(a.id) for a in active] == [answers[0]["scheduleAppointment"]["id"]]
    assert await Appointment.count() == 1
    assert await Reservation.count() == 2 * 6  # doctor and patient, 30 minutes of 5-minute slots


async def test_same_key_other_payload_is_a_conflict(gql: Any) -> None:
    account = await charged_account(gql)
    first = await gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="k")
    error = await gql.error(CHARGE, accountId=str(account.id), input=manual(1300), key="k")
    assert code(error) == "CONFLICT" and "different arguments" in error["message"]
    # Another mutation with the same key is refused as well.
    error = await gql.error(PAY, accountId=str(account.id), input=payment(100), key="k")
    assert code(error) == "CONFLICT" and "addCharge" in error["message"]
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.charges) == 1 and stored.payments == []
    again = await gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="k")
    assert again == first


async def test_another_caller_has_its_own_keys(gql: Any, client_as: Any) -> None:
    other = client_as(
        sub="test:other-staff",
        roles=EVERY_STAFF_ROLE,
        sid=str(TEST_CLINICIAN),
        did=str(TEST_DEPARTMENT),
    )
    account = await charged_account(gql)
    await gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="shared")
    await other.data(CHARGE, accountId=str(account.id), input=manual(1200), key="shared")
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.charges) == 2


async def test_an_expired_key_can_be_used_again(gql: Any) -> None:
    account = await charged_account(gql)
    await gql.data(CHARGE, accountId=str(account.id), input=manual(1200), key="old")
    row = await IdempotencyKey.find_one({"key": "old"})
    assert row is not None and row.status == "done"
    assert row.expires_at - row.claimed_at == timedelta(hours=24)
    past = utcnow() - timedelta(seconds=1)
    await IdempotencyKey.get_motor_collection().update_one(
        {"_id": row.id}, {"$set": {"expires_at": past}}
    )
    # Expired: even other arguments are accepted, and the mutation runs again.
    await gql.data(CHARGE, accountId=str(account.id), input=manual(900), key="old")
    stored = await BillingAccount.get(account.id)
    assert stored is not None and [c.amount for c in stored.charges] == [1200, 900]
    assert await IdempotencyKey.count() == 1


async def test_without_a_key_every_call_takes_effect(gql: Any) -> None:
    account = await charged_account(gql)
    for _ in range(2):
        await gql.data(CHARGE, accountId=str(account.id), input=manual(1200))
    stored = await BillingAccount.get(account.id)
    assert stored is not None and len(stored.charges) == 2
    assert await IdempotencyKey.count() == 0


async def test_a_refused_request_releases_the_key(gql: Any) -> None:
    account = await charged_account(gql, 1000)
    error = await gql.error(PAY, accountId=str(account.id), input=payment(5000), key="p")
    assert code(error) == "BAD_USER_INPUT"
    assert await IdempotencyKey.count() == 0
    data = await gql.data(PAY, accountId=str(account.id), input=payment(1000), key="p")
    assert data["recordPayment"]["balance"]["amount"] == 0


async def test_key_length_is_checked(gql: Any) -> None:
    account = await charged_account(gql)
    for key in ("", "x" * 101):
        error = await gql.error(CHARGE, accountId=str(account.id), input=manual(1), key=key)
        assert code(error) == "BAD_USER_INPUT" and "idempotencyKey" in error["message"]
    await gql.data(CHARGE, accountId=str(account.id), input=manual(1), key="x" * 100)


async def test_open_account_and_cancel_are_idempotent(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor()
    opened = [
        await gql.data(OPEN, input={"patientId": str(patient.id)}, key="open") for _ in range(2)
    ]
    assert opened[0] == opened[1]
    booked = await gql.data(SCHEDULE, input=booking(patient, doctor, START), key="b")
    id = booked["scheduleAppointment"]["id"]
    cancelled = [await gql.data(CANCEL, id=id, key="c") for _ in range(2)]
    assert cancelled[0] == cancelled[1] == {"cancelAppointment": {"id": id, "status": "CANCELLED"}}
    await assert_reservations_match_appointments()


async def test_an_unexpected_failure_holds_the_key(database: Any) -> None:
    account = await factories.billing_account()

    async def broken() -> BillingAccount:
        raise RuntimeError("connection reset")

    async def replay(first: BillingAccount, note: str) -> BillingAccount:
        return first

    async def run() -> BillingAccount:
        return account

    with pytest.raises(RuntimeError):
        await idempotency.idempotent(
            "s", "addCharge", "k", {"a": 1}, BillingAccount, broken, replay
        )
    with pytest.raises(Conflict, match="failed unexpectedly"):
        await idempotency.idempotent("s", "addCharge", "k", {"a": 1}, BillingAccount, run, replay)
    row = await IdempotencyKey.find_one({"key": "k"})
    assert row is not None and row.status == "failed"
    assert row.expires_at <= utcnow() + idempotency.FAILED_HOLD
    await IdempotencyKey.get_motor_collection().update_one(
        {"_id": row.id}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    assert (
        await idempotency.idempotent("s", "addCharge", "k", {"a": 1}, BillingAccount, run, replay)
        is account
    )


def test_payload_hash_is_canonical() -> None:
    from datetime import UTC, datetime, timezone

    from bson import ObjectId

    oid = ObjectId()
    utc = datetime(2031, 1, 1, 9, tzinfo=UTC)
    plus_two = datetime(2031, 1, 1, 11, tzinfo=timezone(timedelta(hours=2)))
    a = idempotency.payload_hash("op", "s", {"id": oid, "at": utc, "x": None})
    b = idempotency.payload_hash("op", "s", {"at": plus_two, "id": str(oid)})
    assert a == b
    assert a != idempotency.payload_hash("op", "t", {"id": oid, "at": utc})
    assert a != idempotency.payload_hash("other", "s", {"id": oid, "at": utc})
