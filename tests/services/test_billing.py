from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId

from errors import BadUserInput, Conflict, NotFound
from models.billing import BillingAccount, ChargeSource, PaymentMethod
from models.scheduling import Appointment
from services import billing, equipment
from services.pagination import PageArgs
from tests.services import factories as make

pytestmark = pytest.mark.usefixtures("database")

INSURANCE = {"provider": "Acme Health", "policy_number": "POL-123"}


async def account(currency: str = "EUR", **kwargs: Any) -> BillingAccount:
    patient = await make.patient()
    return await billing.open_billing_account(make.id_of(patient), currency, **kwargs)


def manual(amount: int = 5000, **overrides: Any) -> dict[str, Any]:
    data = {"description": "Room", "amount": amount, "currency": "EUR", "source": "manual"}
    return {**data, **overrides}


def cash(amount: int, **overrides: Any) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR", "method": PaymentMethod.CASH, **overrides}


async def charged(amount: int = 10_000) -> BillingAccount:
    opened = await account()
    return await billing.add_charge(make.id_of(opened), manual(amount))


# Accounts


async def test_open_billing_account() -> None:
    patient = await make.patient()

    opened = await billing.open_billing_account(make.id_of(patient), "USD", INSURANCE)

    stored = await make.stored(BillingAccount, opened.id)
    assert stored is not None
    assert stored["patient_id"] == patient.id
    assert stored["currency"] == "USD"
    assert stored["insurance"]["policy_number"] == "POL-123"
    assert (stored["total_charged"], stored["total_paid"], opened.balance) == (0, 0, 0)


async def test_a_patient_has_one_account() -> None:
    first = await account()

    with pytest.raises(Conflict) as info:
        await billing.open_billing_account(first.patient_id, "EUR")

    assert "already has an account" in info.value.message
    assert [a["_id"] for a in await make.all_stored(BillingAccount)] == [first.id]


async def test_open_billing_account_rejections_write_nothing() -> None:
    patient = make.id_of(await make.patient())

    with pytest.raises(BadUserInput) as unknown:
        await billing.open_billing_account(ObjectId(), "EUR")
    with pytest.raises(BadUserInput) as currency:
        await billing.open_billing_account(patient, "euro")
    with pytest.raises(BadUserInput) as insurance:
        await billing.open_billing_account(patient, "EUR", {"provider": "Acme"})

    assert unknown.value.fields == {"patientId": "no such patient"}
    assert set(currency.value.fields) == {"currency"}
    assert set(insurance.value.fields) == {"insurance.policyNumber"}
    assert await make.all_stored(BillingAccount) == []


async def test_get_billing_account() -> None:
    opened = await account()

    assert (await billing.get_billing_account(make.id_of(opened))).patient_id == opened.patient_id
    with pytest.raises(NotFound):
        await billing.get_billing_account(ObjectId())


async def test_get_account_for_patient() -> None:
    opened = await account()
    without = await make.patient()

    found = await billing.get_account_for_patient(opened.patient_id)

    assert found is not None and found.id == opened.id
    assert await billing.get_account_for_patient(make.id_of(without)) is None
    with pytest.raises(NotFound):
        await billing.get_account_for_patient(ObjectId())


async def test_list_billing_accounts() -> None:
    a, b = await account(), await account()

    everyone = await billing.list_billing_accounts(None, PageArgs(10))
    one = await billing.list_billing_accounts(b.patient_id, PageArgs(10))

    assert [x.id for x in everyone.items] == [a.id, b.id]
    assert [x.id for x in one.items] == [b.id]
    assert await one.count() == 1


async def test_update_insurance_sets_and_removes_it() -> None:
    opened = await account()
    id = make.id_of(opened)

    insured = await billing.update_insurance(id, INSURANCE)
    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert insured.insurance is not None and insured.insurance.provider == "Acme Health"
    assert stored["insurance"]["provider"] == "Acme Health"

    removed = await billing.update_insurance(id, None)
    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert removed.insurance is None
    assert stored.get("insurance") is None


async def test_update_insurance_rejections_change_nothing() -> None:
    opened = await account(insurance=INSURANCE)
    before = await make.stored(BillingAccount, opened.id)

    with pytest.raises(BadUserInput) as info:
        await billing.update_insurance(make.id_of(opened), {**INSURANCE, "policy_number": ""})
    with pytest.raises(NotFound):
        await billing.update_insurance(ObjectId(), INSURANCE)

    assert set(info.value.fields) == {"insurance.policyNumber"}
    assert await make.stored(BillingAccount, opened.id) == before


# Charges


async def test_add_manual_charge() -> None:
    dept = make.id_of(await make.department())
    opened = await account()

    updated = await billing.add_charge(make.id_of(opened), manual(4200, department_id=dept))

    stored = await make.stored(BillingAccount, opened.id)
    assert stored is not None
    assert stored["total_charged"] == updated.total_charged == 4200
    assert updated.balance == 4200
    [charge] = stored["charges"]
    assert (charge["amount"], charge["source"], charge["department_id"]) == (4200, "manual", dept)
    assert charge.get("source_id") is None
    assert updated.charges[0].id == charge["id"]


async def test_add_charge_rejections_change_nothing() -> None:
    opened = await charged(1000)
    id = make.id_of(opened)
    before = await make.stored(BillingAccount, id)
    cases: list[tuple[dict[str, Any], str]] = [
        (manual(currency="USD"), "currency"),
        ({k: v for k, v in manual().items() if k != "currency"}, "currency"),
        (manual(amount=0), "amount"),
        (manual(amount=-5), "amount"),
        (manual(amount=2**63), "amount"),
        (manual(source="gift"), "source"),
        (manual(source_id=ObjectId()), "sourceId"),
        (manual(department_id=ObjectId()), "departmentId"),
        (manual(created_at="2020-01-01T00:00:00Z"), "createdAt"),
        (manual(source="equipment_use"), "sourceId"),
        (manual(source="treatment", source_id=ObjectId()), "sourceId"),
        (manual(source="equipment_use", source_id=ObjectId()), "sourceId"),
    ]

    for data, field in cases:
        with pytest.raises(BadUserInput) as info:
            await billing.add_charge(id, data)
        assert field in info.value.fields, (data, info.value.fields)
    with pytest.raises(NotFound):
        await billing.add_charge(ObjectId(), manual())

    assert await make.stored(BillingAccount, id) == before


async def test_treatment_charge_is_booked_to_the_treating_doctors_department() -> None:
    cardiology = make.id_of(await make.department())
    doctor = await make.doctor(cardiology)
    opened = await account()
    treatment = await make.treatment(opened.patient_id, doctor)
    data = manual(9900, source=ChargeSource.TREATMENT, source_id=treatment.id)

    updated = await billing.add_charge(make.id_of(opened), data)

    stored = await make.stored(BillingAccount, opened.id)
    assert stored is not None
    [charge] = stored["charges"]
    assert (charge["source"], charge["source_id"]) == ("treatment", treatment.id)
    assert charge["department_id"] == cardiology
    assert stored["total_charged"] == updated.total_charged == 9900


async def test_treatment_charge_rejections_change_nothing() -> None:
    cardiology = make.id_of(await make.department())
    doctor = await make.doctor(cardiology)
    opened = await account()
    someone_else = make.id_of(await make.patient())
    theirs = await make.treatment(someone_else, doctor)
    ours = await make.treatment(opened.patient_id, doctor)
    id = make.id_of(opened)
    before = await make.stored(BillingAccount, id)

    with pytest.raises(BadUserInput) as other_patient:
        await billing.add_charge(id, manual(source="treatment", source_id=theirs.id))
    with pytest.raises(BadUserInput) as wrong_department:
        await billing.add_charge(
            id,
            manual(
                source="treatment",
                source_id=ours.id,
                department_id=make.id_of(await make.department()),
            ),
        )

    assert other_patient.value.fields == {"sourceId": "is a treatment of another patient"}
    assert "departmentId" in wrong_department.value.fields
    assert await make.stored(BillingAccount, id) == before
    # Naming the derived department explicitly is fine.
    await billing.add_charge(
        id, manual(source="treatment", source_id=ours.id, department_id=cardiology)
    )


async def booked_device(
    patient_id: ObjectId, department: ObjectId | None = None
) -> tuple[ObjectId, Appointment]:
    """A device in ``department`` and an appointment of ``patient_id`` that booked it."""
    where = department or make.id_of(await make.department())
    device = make.id_of(await make.device(where))
    doctor = await make.doctor(make.id_of(await make.department()))
    return device, await make.appointment(patient_id, doctor, device)


def equipment_use(appointment: Appointment, amount: int = 2500, **overrides: Any) -> dict[str, Any]:
    return manual(amount, source="equipment_use", source_id=appointment.id, **overrides)


async def test_equipment_use_charge_is_booked_to_the_equipment_department() -> None:
    icu = make.id_of(await make.department())
    opened = await account()
    # The doctor works elsewhere: the charge follows the device, not the booking department.
    _, visit = await booked_device(opened.patient_id, icu)
    assert visit.department_id != icu

    updated = await billing.add_charge(make.id_of(opened), equipment_use(visit))

    stored = await make.stored(BillingAccount, opened.id)
    assert stored is not None
    [charge] = stored["charges"]
    assert (charge["source"], charge["source_id"], charge["department_id"]) == (
        "equipment_use",
        visit.id,
        icu,
    )
    assert stored["total_charged"] == updated.total_charged == 2500
    assert updated.charges[0].department_id == icu


async def test_equipment_use_charge_follows_the_device_after_a_move() -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    opened = await account()
    device, visit = await booked_device(opened.patient_id, icu)
    await equipment.allocate_equipment(device, ward)

    updated = await billing.add_charge(make.id_of(opened), equipment_use(visit))

    assert updated.charges[0].department_id == ward


async def test_equipment_use_charge_rejections_change_nothing() -> None:
    opened = await account()
    id = make.id_of(opened)
    someone_else = make.id_of(await make.patient())
    device, ours = await booked_device(opened.patient_id)
    _, theirs = await booked_device(someone_else)
    doctor = await make.doctor(make.id_of(await make.department()))
    no_device = await make.appointment(opened.patient_id, doctor)
    before = await make.stored(BillingAccount, id)
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        (
            manual(source="equipment_use", source_id=ObjectId()),
            {"sourceId": "no such appointment or treatment"},
        ),
        # The device's own id is not an appointment.
        (
            manual(source="equipment_use", source_id=device),
            {"sourceId": "no such appointment or treatment"},
        ),
        (equipment_use(theirs), {"sourceId": "is an appointment of another patient"}),
        (equipment_use(no_device), {"sourceId": "used no equipment"}),
    ]

    for data, fields in cases:
        with pytest.raises(BadUserInput) as info:
            await billing.add_charge(id, data)
        assert info.value.fields == fields, data
    with pytest.raises(BadUserInput) as wrong_department:
        await billing.add_charge(
            id, equipment_use(ours, department_id=make.id_of(await make.department()))
        )

    assert "departmentId" in wrong_department.value.fields
    assert await make.stored(BillingAccount, id) == before


async def test_a_source_is_charged_once_per_account() -> None:
    opened = await account()
    other = await account()
    id = make.id_of(opened)
    _, visit = await booked_device(opened.patient_id)
    data = equipment_use(visit)
    await billing.add_charge(id, data)
    before = await make.stored(BillingAccount, id)

    with pytest.raises(Conflict) as info:
        await billing.add_charge(id, data)

    assert info.value.extensions["fields"] == ["sourceId"]
    assert await make.stored(BillingAccount, id) == before
    # Manual charges have no source, so the same one can be booked twice.
    await billing.add_charge(id, manual())
    await billing.add_charge(id, manual())
    # The appointment is another patient's, so another account cannot be charged for it.
    with pytest.raises(BadUserInput):
        await billing.add_charge(make.id_of(other), data)


async def test_two_appointments_with_the_same_device_are_both_charged() -> None:
    icu = make.id_of(await make.department())
    opened = await account()
    id = make.id_of(opened)
    device, first = await booked_device(opened.patient_id, icu)
    doctor = await make.doctor(make.id_of(await make.department()))
    second = await make.appointment(opened.patient_id, doctor, device)

    await billing.add_charge(id, equipment_use(first, 2500))
    updated = await billing.add_charge(id, equipment_use(second, 3000))

    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert [(c["source_id"], c["department_id"]) for c in stored["charges"]] == [
        (first.id, icu),
        (second.id, icu),
    ]
    assert stored["total_charged"] == updated.total_charged == 5500


async def test_concurrent_charges_for_one_source_apply_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = await account()
    id = make.id_of(opened)
    _, visit = await booked_device(opened.patient_id)
    data = equipment_use(visit)
    make.read_together(monkeypatch, billing, "get_billing_account")

    results = await asyncio.gather(
        billing.add_charge(id, data), billing.add_charge(id, data), return_exceptions=True
    )

    assert sum(isinstance(r, BillingAccount) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 1
    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert (len(stored["charges"]), stored["total_charged"]) == (1, 2500)


# Payments


async def test_record_payment() -> None:
    opened = await charged(10_000)
    id = make.id_of(opened)

    partly = await billing.record_payment(id, cash(4000, reference="Receipt 7"))
    fully = await billing.record_payment(
        id, {"amount": 6000, "currency": "EUR", "method": "insurance"}
    )

    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert partly.balance == 6000
    assert fully.balance == 0
    assert stored["total_paid"] == 10_000
    assert [(p["amount"], p["method"], p.get("reference")) for p in stored["payments"]] == [
        (4000, "cash", "Receipt 7"),
        (6000, "insurance", None),
    ]


async def test_record_payment_rejections_change_nothing() -> None:
    opened = await charged(10_000)
    id = make.id_of(opened)
    await billing.record_payment(id, cash(4000))
    before = await make.stored(BillingAccount, id)
    cases: list[tuple[dict[str, Any], str]] = [
        (cash(6001), "amount"),
        (cash(0), "amount"),
        (cash(2**63), "amount"),
        (cash(100, currency="USD"), "currency"),
        (cash(100, method="cheque"), "method"),
        (cash(100, reference=""), "reference"),
        (cash(100, received_at="2020-01-01T00:00:00Z"), "receivedAt"),
    ]

    for data, field in cases:
        with pytest.raises(BadUserInput) as info:
            await billing.record_payment(id, data)
        assert field in info.value.fields, (data, info.value.fields)
    with pytest.raises(NotFound):
        await billing.record_payment(ObjectId(), cash(1))

    assert await make.stored(BillingAccount, id) == before


async def test_concurrent_payments_cannot_overpay(monkeypatch: pytest.MonkeyPatch) -> None:
    id = make.id_of(await charged(10_000))
    make.read_together(monkeypatch, billing, "get_billing_account")

    results = await asyncio.gather(
        billing.record_payment(id, cash(6000)),
        billing.record_payment(id, cash(6000)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, BillingAccount) for r in results) == 1
    [refused] = [r for r in results if isinstance(r, BadUserInput)]
    assert refused.fields == {"amount": "exceeds the outstanding balance of 4000 (EUR)"}
    stored = await make.stored(BillingAccount, id)
    assert stored is not None
    assert (stored["total_paid"], len(stored["payments"])) == (6000, 1)
