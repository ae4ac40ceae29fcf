"""Sealed array elements (a bill's charges, a claim's lines): sealed on every way an element is
written, bound to the element's id, opened when the document is built; a path into an
element's sealed field is refused rather than stored in clear."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

import db
from crypto.fields import Unreadable, is_sealed, open_document
from models.billing import BILLING_SEALED, BillingAccount
from models.scheduling import Appointment
from services import billing
from tests import factories


def _charge(description: str, amount: int = 1000) -> dict[str, Any]:
    return {"description": description, "amount": amount, "source": "manual", "currency": "EUR"}


async def test_charges_are_sealed_when_pushed_and_open_in_the_model(database: Any) -> None:
    account = await factories.billing_account()
    assert account.id is not None
    await billing.add_charge(account.id, _charge("Antiretroviral therapy, one month"))
    await billing.add_charge(account.id, _charge("Methadone, 10 days", 2000))
    raw = await db.collection(BillingAccount).find_one({"_id": account.id})
    assert raw is not None and len(raw["charges"]) == 2
    assert all(is_sealed(c["description"]) for c in raw["charges"])
    assert "Methadone" not in repr(raw) and raw["total_charged"] == 3000
    read = await BillingAccount.get(account.id)
    assert read is not None
    assert [c.description for c in read.charges] == [
        "Antiretroviral therapy, one month",
        "Methadone, 10 days",
    ]


async def test_an_element_ciphertext_moved_to_another_element_does_not_open(database: Any) -> None:
    account = await factories.billing_account()
    assert account.id is not None
    await billing.add_charge(account.id, _charge("First"))
    await billing.add_charge(account.id, _charge("Second"))
    raw = await db.collection(BillingAccount).find_one({"_id": account.id})
    assert raw is not None
    first, second = raw["charges"]
    swapped = {**raw, "charges": [{**first, "description": second["description"]}, second]}
    with pytest.raises(Unreadable):
        open_document(BILLING_SEALED, swapped)


async def test_whole_array_and_positional_element_writes_are_sealed_paths_refused(
    database: Any,
) -> None:
    account = await factories.billing_account()
    assert account.id is not None
    await billing.add_charge(account.id, _charge("Kept"))
    coll = db.collection(BillingAccount)
    raw = await coll.find_one({"_id": account.id})
    assert raw is not None
    charge = raw["charges"][0]
    replaced = {**open_document(BILLING_SEALED, raw)["charges"][0], "description": "Replaced"}
    await coll.update_one(
        {"_id": account.id, "charges.id": charge["id"]}, {"$set": {"charges.$": replaced}}
    )
    after = await coll.find_one({"_id": account.id})
    assert after is not None and is_sealed(after["charges"][0]["description"])
    assert open_document(BILLING_SEALED, after)["charges"][0]["description"] == "Replaced"
    with pytest.raises(ValueError, match="sealed"):
        await coll.update_one(
            {"_id": account.id, "charges.id": charge["id"]},
            {"$set": {"charges.$.description": "in clear"}},
        )
    with pytest.raises(ValueError, match="needs its 'id'"):
        await coll.update_one(
            {"_id": account.id}, {"$push": {"charges": {"description": "no id", "amount": 1}}}
        )
    unchanged = await coll.find_one({"_id": account.id})
    assert unchanged is not None and len(unchanged["charges"]) == 1


async def test_a_description_that_looks_like_a_ciphertext_is_sealed_too(database: Any) -> None:
    account = await factories.billing_account()
    assert account.id is not None
    forged = "enc1:" + "A" * 40  # typed by a client: not this element's ciphertext
    await billing.add_charge(account.id, _charge(forged))
    read = await BillingAccount.get(account.id)
    assert read is not None and read.charges[0].description == forged


async def test_new_records_take_text_that_looks_like_a_ciphertext_as_typed(
    gql: Any, database: Any
) -> None:
    """Input has no stored id yet: nothing in it is opened, so ``enc1:...`` is just text."""
    patient = await factories.patient()
    doctor = await factories.doctor()
    start = "2031-03-03T09:00:00Z"
    booked = await gql.data(
        """mutation($input: ScheduleAppointmentInput!) {
          scheduleAppointment(input: $input) { id reason } }""",
        input={
            "patientId": str(patient.id),
            "doctorId": str(doctor.id),
            "startAt": start,
            "endAt": "2031-03-03T09:30:00Z",
            "reason": "enc1:x:y",
        },
    )
    assert booked["scheduleAppointment"]["reason"] == "enc1:x:y"
    raw = await db.collection(Appointment).find_one(
        {"_id": ObjectId(booked["scheduleAppointment"]["id"])}
    )
    assert raw is not None and raw["reason"] != "enc1:x:y" and is_sealed(raw["reason"])
