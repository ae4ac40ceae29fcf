"""Dispensing: FEFO, expired stock, partial dispenses, compensation, recovery, the two-person
rule for controlled drugs, returns, write-offs, the prescription's statuses and its charge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models.base import utcnow
from models.billing import BillingAccount, ChargeSource
from models.clinical import Prescription, PrescriptionStatus
from models.drugs import ControlledSchedule
from models.notifications import NotificationKind
from models.pharmacy import (
    Dispense,
    DispenseStatus,
    MovementKind,
    StockBatch,
    StockMovement,
    WriteOffReason,
)
from services import pharmacy
from tests import factories
from tests.pharmacy import world as w


@pytest.fixture
def ph(app: Any, client_as: Any) -> Any:
    return client_as(**w.PHARMACIST)


@pytest.fixture
def ph2(app: Any, client_as: Any) -> Any:
    return client_as(**w.PHARMACIST2)


async def test_first_expiry_first_out_across_batches(ph: Any) -> None:
    d = await w.drug()
    late = await w.batch(d, "LATE", 10, expires_in=200)
    soon = await w.batch(d, "SOON", 3, expires_in=20)
    mid = await w.batch(d, "MID", 4, expires_in=60)
    rx = await w.prescription(d)
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=9))["dispensePrescription"]
    assert done["status"] == "COMPLETED" and done["quantity"] == 9 and done["outstanding"] == 0
    assert [(ln["batchNumber"], ln["quantity"]) for ln in done["lines"]] == [
        ("SOON", 3), ("MID", 4), ("LATE", 2),
    ]  # fmt: skip
    assert await w.quantities(soon, mid, late) == [0, 0, 8]
    await w.ledger_agrees(soon, mid, late)
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.DISPENSED


async def test_expired_batches_are_never_dispensed(ph: Any) -> None:
    d = await w.drug()
    expired = await w.batch(d, "OLD", 50, expires_in=-3)
    today = await w.batch(d, "TODAY", 50, expires_in=0)  # expires today: expired already
    good = await w.batch(d, "GOOD", 2, expires_in=30)
    rx = await w.prescription(d)
    error = await ph.error(w.DISPENSE, id=str(rx.id), quantity=5)
    assert w.code(error) == "CONFLICT"
    assert error["extensions"]["reason"] == "INSUFFICIENT_STOCK"
    assert error["extensions"]["available"] == 2
    assert await w.quantities(expired, today, good) == [50, 50, 2]  # nothing changed
    assert await Dispense.find({}).count() == 0
    level = (await ph.data(w.LEVEL, drugId=str(d.id)))["stockLevel"]
    soonest = str(w.today() + timedelta(days=30))
    assert level == [{"location": "PHARMACY", "quantity": 2, "expiredQuantity": 100,
                      "batches": 1, "earliestExpiry": soonest}]  # fmt: skip


async def test_partial_dispense_then_the_rest(ph: Any) -> None:
    d = await w.drug()
    first = await w.batch(d, "P1", 3, expires_in=30)
    rx = await w.prescription(d)
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=8, partial=True))[
        "dispensePrescription"
    ]
    assert (done["status"], done["quantity"], done["outstanding"]) == ("COMPLETED", 3, 5)
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.PRESCRIBED  # owed: 5
    second = await w.batch(d, "P2", 10, expires_in=60)
    rest = (await ph.data(w.DISPENSE, id=str(rx.id)))["dispensePrescription"]  # the outstanding
    assert (rest["requested"], rest["quantity"], rest["outstanding"]) == (5, 5, 0)
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.DISPENSED
    assert await w.quantities(first, second) == [0, 5]
    await w.ledger_agrees(first, second)


async def test_default_quantity_from_the_prescription(ph: Any) -> None:
    d = await w.drug()
    await w.batch(d, "Q1", 100, expires_in=30)
    rx = await w.prescription(d, frequency="every 8 hours", duration_days=7)
    done = (await ph.data(w.DISPENSE, id=str(rx.id)))["dispensePrescription"]
    assert done["quantity"] == 21
    unclear = await w.prescription(d, frequency="as needed")
    error = await ph.error(w.DISPENSE, id=str(unclear.id))
    assert w.code(error) == "BAD_USER_INPUT" and "quantity" in error["extensions"]["fields"]


async def test_free_text_prescription_maps_to_the_master_by_generic_name(ph: Any) -> None:
    d = await w.drug("Paracetamol", strength={"value": 1, "unit": "g"}, atc_code="N02BE01")
    small = await w.drug("Paracetamol", strength={"value": 250, "unit": "mg"}, atc_code="N02BE01")
    await w.batch(d, "PA1", 10)
    await w.batch(small, "PA2", 10)
    rx = await factories.prescription(drug="paracetamol", dose="1 g")  # no drugId
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=2))["dispensePrescription"]
    assert done["lines"][0]["batchNumber"] == "PA1"
    unknown = await factories.prescription(drug="Unobtainium", dose="5 mg")
    error = await ph.error(w.DISPENSE, id=str(unknown.id), quantity=1)
    assert w.code(error) == "BAD_USER_INPUT"


async def test_a_failure_on_the_second_batch_compensates_the_first(
    ph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 2, expires_in=10)
    b = await w.batch(d, "B", 5, expires_in=20)
    rx = await w.prescription(d)
    real = pharmacy._apply
    calls = 0

    async def broken(batch_id: Any, pending: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return await real(batch_id, pending)

    monkeypatch.setattr(pharmacy, "_apply", broken)
    error = await ph.error(w.DISPENSE, id=str(rx.id), quantity=4)
    assert w.code(error) == "INTERNAL"
    assert await w.quantities(a, b) == [2, 5]
    await w.ledger_agrees(a, b)
    failed = await Dispense.find_one({"prescription_id": rx.id})
    assert failed is not None and failed.status == DispenseStatus.FAILED
    kinds = sorted(m.kind for m in await StockMovement.find({"batch_id": a.id}).to_list())
    assert kinds == [MovementKind.COMPENSATION, MovementKind.DISPENSE, MovementKind.RECEIVE]
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.PRESCRIBED
    monkeypatch.setattr(pharmacy, "_apply", real)  # the prescription is free to try again
    again = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=4))["dispensePrescription"]
    assert again["status"] == "COMPLETED"


async def test_losing_the_second_batch_to_a_race_refuses_and_compensates(
    ph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 2, expires_in=10)
    b = await w.batch(d, "B", 2, expires_in=20)
    rx = await w.prescription(d)
    real = pharmacy._apply
    raced = False

    async def rival(batch_id: Any, pending: Any) -> Any:
        nonlocal raced
        if batch_id == b.id and not raced:  # someone writes off B just before our decrement
            raced = True
            await pharmacy.write_off(b.id, 2, WriteOffReason.DAMAGED, None, "rival")
        return await real(batch_id, pending)

    monkeypatch.setattr(pharmacy, "_apply", rival)
    error = await ph.error(w.DISPENSE, id=str(rx.id), quantity=4)
    assert error["extensions"]["reason"] == "INSUFFICIENT_STOCK"
    assert await w.quantities(a, b) == [2, 0]
    await w.ledger_agrees(a, b)


async def test_a_crash_mid_dispense_is_recovered(ph: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after the first batch's decrement: nothing in it runs again, so the
    pending dispense and its decrement stay as they were until ``recover``."""
    d = await w.drug()
    a = await w.batch(d, "A", 2, expires_in=10)
    b = await w.batch(d, "B", 5, expires_in=20)
    rx = await w.prescription(d)
    real = pharmacy._apply
    calls = 0

    class Crash(BaseException):
        pass

    async def dies(batch_id: Any, pending: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Crash
        return await real(batch_id, pending)

    async def no_cleanup(*_: Any) -> None:  # a dead process compensates nothing
        return None

    monkeypatch.setattr(pharmacy, "_apply", dies)
    monkeypatch.setattr(pharmacy, "_fail", no_cleanup)
    with pytest.raises(Crash):
        await pharmacy.dispense(w.oid(rx.id), quantity=4, allow_partial=False, by="test:crashing")
    monkeypatch.setattr(pharmacy, "_apply", real)
    pending = await Dispense.find_one({"prescription_id": rx.id})
    assert pending is not None and pending.status == DispenseStatus.PENDING
    assert [ln.batch_id for ln in pending.lines] == [a.id, b.id]  # written before any decrement
    assert await w.quantities(a, b) == [0, 5]
    # Within the grace period nothing is undone: it may still be running somewhere.
    assert (await pharmacy.recover()).failed == 0
    error = await ph.error(w.DISPENSE, id=str(rx.id), quantity=1)  # the prescription is held
    assert w.code(error) == "CONFLICT"
    later = utcnow() + pharmacy.GRACE + timedelta(seconds=1)
    done = await pharmacy.recover(now=later)
    assert done.failed == 1
    assert await w.quantities(a, b) == [2, 5]
    await w.ledger_agrees(a, b)
    recovered = await Dispense.get(pending.id)
    assert recovered is not None and recovered.status == DispenseStatus.FAILED
    assert (await pharmacy.recover(now=later)).failed == 0  # once
    assert await w.quantities(a, b) == [2, 5]


async def test_a_crash_between_decrement_and_ledger_is_finished_by_recover(
    ph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 5)
    rx = await w.prescription(d)

    class Crash(BaseException):
        pass

    async def dies(*_: Any, **__: Any) -> None:
        raise Crash

    async def no_cleanup(*_: Any) -> None:
        return None

    monkeypatch.setattr(pharmacy, "_ledger", dies)
    monkeypatch.setattr(pharmacy, "_fail", no_cleanup)
    with pytest.raises(Crash):
        await pharmacy.dispense(w.oid(rx.id), quantity=3, allow_partial=False, by="test:crashing")
    monkeypatch.undo()
    assert await w.quantities(a) == [2]
    assert await pharmacy.ledger_sum(w.oid(a.id)) == 5  # the decrement's row is missing
    await pharmacy.recover(now=utcnow() + pharmacy.GRACE + timedelta(seconds=1))
    await w.ledger_agrees(a)
    assert await w.quantities(a) == [5]


async def test_controlled_drugs_need_a_second_pharmacist(ph: Any, ph2: Any) -> None:
    d = await w.drug("Morphine", schedule=ControlledSchedule.II, atc_code="N02AA01", price=300)
    a = await w.batch(d, "M1", 10)
    rx = await w.prescription(d)
    held = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=4))["dispensePrescription"]
    assert held["status"] == "AWAITING_CONFIRMATION" and held["controlled"]
    assert await w.quantities(a) == [6]  # held
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.PRESCRIBED
    assert await BillingAccount.find_one({"patient_id": rx.patient_id}) is None  # not charged
    same = await ph.error(w.CONFIRM, id=held["id"])
    assert w.code(same) == "FORBIDDEN" and same["extensions"]["reason"] == "SAME_PERSON"
    done = (await ph2.data(w.CONFIRM, id=held["id"]))["confirmDispense"]
    assert done["status"] == "COMPLETED" and done["confirmedBy"] == w.PHARMACIST2["sub"]
    again = await ph2.error(w.CONFIRM, id=held["id"])
    assert w.code(again) == "CONFLICT"
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.DISPENSED
    account = await BillingAccount.find_one({"patient_id": rx.patient_id})
    assert account is not None
    assert [(c.source, c.amount) for c in account.charges] == [(ChargeSource.DISPENSE, 1200)]
    await w.ledger_agrees(a)
    # Every step is in the audit trail: who dispensed, who was refused, who confirmed.
    from models.audit import AuditAction, AuditEvent, AuditOutcome

    events = await AuditEvent.find({"entity": "Dispense"}).to_list()
    steps = {(e.actor_subject, e.action, e.outcome) for e in events if e.action != AuditAction.READ}
    assert steps == {
        (w.PHARMACIST["sub"], AuditAction.CREATE, AuditOutcome.ALLOWED),
        (w.PHARMACIST["sub"], AuditAction.UPDATE, AuditOutcome.DENIED),
        (w.PHARMACIST2["sub"], AuditAction.UPDATE, AuditOutcome.ALLOWED),
    }


async def test_an_unconfirmed_hold_lapses_and_gives_the_stock_back(ph: Any, ph2: Any) -> None:
    d = await w.drug("Lorazepam", schedule=ControlledSchedule.IV, atc_code="N05BA06")
    a = await w.batch(d, "L1", 5)
    rx = await w.prescription(d)
    held = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=5))["dispensePrescription"]
    assert await w.quantities(a) == [0]
    later = utcnow() + pharmacy.HOLD + timedelta(seconds=1)
    assert (await pharmacy.recover(now=later)).expired == 1
    assert await w.quantities(a) == [5]
    await w.ledger_agrees(a)
    error = await ph2.error(w.CONFIRM, id=held["id"])
    assert w.code(error) == "CONFLICT"
    lapsed = await Dispense.get(held["id"])
    assert lapsed is not None and lapsed.status == DispenseStatus.EXPIRED


async def test_returns_go_back_into_their_batches(ph: Any) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 2, expires_in=10)
    b = await w.batch(d, "B", 5, expires_in=20)
    rx = await w.prescription(d)
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=5))["dispensePrescription"]
    back = (await ph.data(w.RETURN, id=done["id"], quantity=4, reason="dose changed"))[
        "returnStock"
    ]
    assert back["status"] == "PARTIALLY_RETURNED"
    assert [r["applied"] for r in back["returns"]] == [True, True]
    assert await w.quantities(a, b) == [1, 5]  # the later-expiring batch first: 3 to B, 1 to A
    too_many = await ph.error(w.RETURN, id=done["id"], quantity=2, reason="again")
    assert w.code(too_many) == "BAD_USER_INPUT"
    rest = (await ph.data(w.RETURN, id=done["id"], quantity=1, reason="unused"))["returnStock"]
    assert rest["status"] == "RETURNED"
    assert await w.quantities(a, b) == [2, 5]
    await w.ledger_agrees(a, b)


async def test_write_offs_never_take_more_than_there_is(ph: Any) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 5)
    old = await w.batch(d, "OLD", 3, expires_in=-1)
    error = await ph.error(w.WRITE_OFF, id=str(a.id), reason="DAMAGED", quantity=6)
    assert w.code(error) == "CONFLICT" and error["extensions"]["reason"] == "INSUFFICIENT_STOCK"
    not_expired = await ph.error(w.WRITE_OFF, id=str(a.id), reason="EXPIRED")
    assert w.code(not_expired) == "BAD_USER_INPUT"
    done = await ph.data(w.WRITE_OFF, id=str(a.id), reason="DAMAGED", quantity=2, note="dropped")
    assert done["writeOffStock"]["quantity"] == 3
    gone = await ph.data(w.WRITE_OFF, id=str(old.id), reason="EXPIRED")
    assert gone["writeOffStock"]["quantity"] == 0
    rows = await StockMovement.find({"kind": "write_off"}).to_list()
    assert sorted((r.delta, r.reason) for r in rows) == [(-3, "expired"), (-2, "damaged: dropped")]
    await w.ledger_agrees(a)


async def test_receiving_tops_up_the_same_batch_and_refuses_expired_stock(ph: Any) -> None:
    d = await w.drug()
    batch = {"drugId": str(d.id), "batchNumber": "R1", "quantity": 5, "unitCost": 12,
             "expiry": str(w.today() + timedelta(days=100))}  # fmt: skip
    first = (await ph.data(w.RECEIVE, input=batch))["receiveStock"]
    second = (await ph.data(w.RECEIVE, input={**batch, "quantity": 3}))["receiveStock"]
    assert first["id"] == second["id"] and second["quantity"] == 8
    other = await ph.error(w.RECEIVE, input={**batch, "expiry": str(w.today())})
    assert w.code(other) == "BAD_USER_INPUT"
    replayed = await ph.data(w.RECEIVE, input={**batch, "quantity": 1}, key="delivery-7")
    again = await ph.data(w.RECEIVE, input={**batch, "quantity": 1}, key="delivery-7")
    assert replayed == again
    stored = await StockBatch.get(first["id"])
    assert stored is not None and stored.quantity == 9
    await w.ledger_agrees(stored)


async def test_dispensing_is_idempotent_per_key(ph: Any) -> None:
    d = await w.drug(price=25)
    a = await w.batch(d, "A", 10)
    rx = await w.prescription(d)
    first = await ph.data(w.DISPENSE, id=str(rx.id), quantity=2, key="rx-1")
    again = await ph.data(w.DISPENSE, id=str(rx.id), quantity=2, key="rx-1")
    assert first == again
    assert await w.quantities(a) == [8]
    assert await Dispense.find({}).count() == 1
    other = await ph.error(w.DISPENSE, id=str(rx.id), quantity=3, key="rx-1")
    assert w.code(other) == "CONFLICT"
    account = await BillingAccount.find_one({"patient_id": rx.patient_id})
    assert account is not None and account.total_charged == 50  # charged once


async def test_pick_up_moves_the_prescription_and_notifies_the_prescriber(ph: Any) -> None:
    from models.notifications import Notification

    d = await w.drug()
    await w.batch(d, "A", 10)
    rx = await w.prescription(d)
    partial = await w.prescription(d)
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=2))["dispensePrescription"]
    picked = (await ph.data(w.PICK_UP, id=done["id"]))["recordPickUp"]
    assert picked["pickedUpAt"]
    stored = await Prescription.get(rx.id)
    assert stored is not None and stored.status == PrescriptionStatus.PICKED_UP
    messages = await Notification.find({"kind": NotificationKind.PRESCRIPTION_PICKED_UP}).to_list()
    assert [m.recipient.id for m in messages] == [rx.prescriber_id]
    twice = await ph.error(w.PICK_UP, id=done["id"])
    assert w.code(twice) == "BAD_USER_INPUT"
    await w.batch(d, "B", 0 + 1, expires_in=5)
    owed = (await ph.data(w.DISPENSE, id=str(partial.id), quantity=50, partial=True))[
        "dispensePrescription"
    ]
    assert owed["outstanding"] > 0
    error = await ph.error(w.PICK_UP, id=owed["id"])  # not all of it is dispensed yet
    assert w.code(error) == "BAD_USER_INPUT"


async def test_drug_search_by_generic_or_brand_prefix(ph: Any) -> None:
    await w.drug("Amoxicillin", brand_names=["Amoxil", "Trimox"])
    await w.drug("Atorvastatin", brand_names=["Lipitor"], atc_code="C10AA05")
    query = "query($s: String) { drugs(search: $s) { nodes { genericName } } }"

    def names(data: dict[str, Any]) -> list[str]:
        return [n["genericName"] for n in data["drugs"]["nodes"]]

    assert names(await ph.data(query, s="amox")) == ["Amoxicillin"]
    assert names(await ph.data(query, s="TRIM")) == ["Amoxicillin"]
    assert names(await ph.data(query, s="lip")) == ["Atorvastatin"]
    assert names(await ph.data(query, s="a")) == ["Amoxicillin", "Atorvastatin"]
    assert names(await ph.data(query, s="zzz")) == []
