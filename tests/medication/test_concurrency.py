"""Two nurses giving one dose at once: one gives it, the other is told, the stock falls once;
doses racing for too little stock never take it below zero."""

from __future__ import annotations

import asyncio
from typing import Any

from models.medication import MedicationAdministration
from tests import factories
from tests.medication.helpers import GIVE, round_, ward_batch
from tests.pharmacy import world


async def test_two_nurses_giving_one_dose_one_wins_and_stock_falls_once(client_as: Any) -> None:
    r = await round_(client_as)
    stock = await ward_batch(r.w, r.drug, "B1", 20)
    colleague = await factories.nurse(r.w.department, ward_id=r.w.ward.id)
    second = client_as(roles=["nurse"], sid=str(colleague.id), did=str(r.w.department.id))
    for n, dose in enumerate(r.doses, start=1):
        bodies = await asyncio.gather(r.c.nurse(GIVE, id=dose["id"]), second(GIVE, id=dose["id"]))
        wins = [b for b in bodies if "errors" not in b]
        lost = [b for b in bodies if "errors" in b]
        assert len(wins) == 1 and len(lost) == 1, bodies
        assert lost[0]["errors"][0]["extensions"]["code"] == "CONFLICT"
        assert await world.quantities(stock) == [20 - 2 * n]
    await world.ledger_agrees(stock)


async def test_doses_racing_for_too_little_stock_never_take_it_below_zero(
    client_as: Any,
) -> None:
    r = await round_(client_as)
    a = await ward_batch(r.w, r.drug, "A", 2, expires_in=20)
    b = await ward_batch(r.w, r.drug, "B", 3, expires_in=40)
    more = [await round_on(r, client_as) for _ in range(3)]
    doses = [d["id"] for d in r.doses] + [d for ids in more for d in ids]
    bodies = await asyncio.gather(*(r.c.nurse(GIVE, id=d) for d in doses))
    wins = [x for x in bodies if "errors" not in x]
    for x in bodies:
        if "errors" in x:
            assert x["errors"][0]["extensions"]["reason"] == "NO_WARD_STOCK", x
    assert len(wins) == 2  # 5 units, 2 a dose
    assert sorted(await world.quantities(a, b)) == [0, 1]
    await world.ledger_agrees(a, b)
    given = await MedicationAdministration.find({"status": "given"}).count()
    scheduled = await MedicationAdministration.find(
        {"_id": {"$in": [x for x in (await _ids(doses))]}, "status": "scheduled"}
    ).count()
    assert given == 2 and scheduled == len(doses) - 2


async def round_on(r: Any, client_as: Any) -> list[str]:
    """Another amoxicillin order for the same patient: three more doses."""
    from tests.orders.helpers import CREATE_ORDER, medication

    made = await r.c.doctor.data(CREATE_ORDER, input=medication(r.w))
    order_id = made["createDoctorOrder"]["id"]
    from tests.medication.helpers import doses_of

    return [d["id"] for d in await doses_of(r.c, order_id)]


async def _ids(ids: list[str]) -> list[Any]:
    from bson import ObjectId

    return [ObjectId(i) for i in ids]
