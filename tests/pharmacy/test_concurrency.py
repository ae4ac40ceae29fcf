"""The worst interleaving, forced in one process: every dispenser reads the candidate batches
before any of them decrements, so all plan the same units; the conditional decrements decide."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.pharmacy import Dispense, DispenseStatus
from services import pharmacy
from tests.pharmacy import world as w

REQUESTS = 30


async def test_every_dispenser_holding_the_same_stale_read(
    app: Any, client_as: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await w.drug()
    a = await w.batch(d, "A", 4, expires_in=10)
    b = await w.batch(d, "B", 6, expires_in=20)
    prescriptions = [await w.prescription(d) for _ in range(REQUESTS)]
    real = pharmacy._candidates
    waiting = 0
    everyone_read = asyncio.Event()

    async def stale(drug_id: Any, now: Any) -> Any:
        """The first read of each dispenser waits until all have read: all see A=4, B=6."""
        nonlocal waiting
        found = await real(drug_id, now)
        if not everyone_read.is_set():
            waiting += 1
            if waiting == REQUESTS:
                everyone_read.set()
            await asyncio.wait_for(everyone_read.wait(), 10)
        return found

    monkeypatch.setattr(pharmacy, "_candidates", stale)
    ph, ph2 = client_as(**w.PHARMACIST), client_as(**w.PHARMACIST2)
    answers = await asyncio.gather(
        *(
            # Odd ones ask for two, partial allowed; even ones for one: no refusal leaves a unit.
            (ph if i % 2 else ph2)(
                w.DISPENSE, id=str(rx.id), quantity=1 + i % 2, partial=bool(i % 2)
            )
            for i, rx in enumerate(prescriptions)
        )
    )
    won = [x["data"]["dispensePrescription"] for x in answers if not x.get("errors")]
    lost = [x["errors"] for x in answers if x.get("errors")]
    for errors in lost:
        assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in errors] == [
            ("CONFLICT", "INSUFFICIENT_STOCK")
        ]
    assert sum(x["quantity"] for x in won) == 10  # exactly the stock
    assert won and lost
    assert await w.quantities(a, b) == [0, 0]
    await w.ledger_agrees(a, b)
    completed = await Dispense.find({"status": DispenseStatus.COMPLETED}).count()
    assert completed == len(won)
