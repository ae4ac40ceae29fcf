"""Doses come from medication orders with their tasks, and follow the order's hold and stop."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from models.base import utcnow
from models.nursing import NursingTask
from models.orders import DoctorOrder
from services import nursing
from tests.graphql.helpers import code
from tests.medication.helpers import DOSES, GIVE, doses_of, round_, stored
from tests.orders.helpers import CANCEL_ORDER, DONE, HOLD, RESUME, SKIP, TASKS


async def test_an_order_schedules_one_dose_per_task(client_as: Any) -> None:
    r = await round_(client_as)
    tasks = await r.c.nurse.data(TASKS, filter={"admissionId": str(r.w.admission.id)})
    by_due = {t["dueAt"]: t["id"] for t in tasks["nursingTasks"]["nodes"]}
    assert len(r.doses) == 3  # every 8 hours over the 24-hour horizon
    for dose in r.doses:
        assert dose["status"] == "SCHEDULED" and dose["taskId"] == by_due[dose["dueAt"]]
        assert dose["drugId"] == str(r.drug.id) and dose["units"] == 2  # 500 mg of 250 mg caps
        assert (dose["drugName"], dose["dose"], dose["unit"]) == ("Amoxicillin", 500, "mg")
        assert dose["wardId"] == str(r.w.ward.id)
    # Generating again (the horizon job, twice at one instant) adds one dose per new task only.
    order = await DoctorOrder.get(ObjectId(r.order_id))
    assert order is not None
    now = utcnow()
    for _ in range(2):
        await nursing.generate_for_order(order.model_copy(update={"tasks_until": None}), now)
    tasks_now = await NursingTask.find({"source_id": order.id}).count()
    assert tasks_now >= 3 and len(await doses_of(r.c, r.order_id)) == tasks_now


async def test_holding_the_order_cancels_its_doses_and_resuming_brings_them_back(
    client_as: Any,
) -> None:
    r = await round_(client_as)
    await r.c.doctor.data(HOLD, id=r.order_id, reason="Awaiting renal function")
    held = await doses_of(r.c, r.order_id)
    ahead = [d for d in held if d["id"] != r.doses[0]["id"]]
    assert {d["status"] for d in ahead} == {"CANCELLED"}
    assert code(await r.c.nurse.error(GIVE, id=ahead[0]["id"])) == "CONFLICT"
    await r.c.doctor.data(RESUME, id=r.order_id)
    resumed = {d["id"]: d["status"] for d in await doses_of(r.c, r.order_id)}
    assert all(resumed[d["id"]] == "SCHEDULED" for d in ahead)
    await r.c.doctor.data(CANCEL_ORDER, id=r.order_id, reason="Switched to IV")
    assert {d["status"] for d in await doses_of(r.c, r.order_id)} == {"CANCELLED"}


async def test_an_order_naming_no_master_drug_is_charted_without_stock(client_as: Any) -> None:
    r = await round_(
        client_as,
        medication={"drug": "Unlisted tincture", "dose": 5, "unit": "ml", "route": "ORAL"},
    )
    dose = r.doses[0]
    assert dose["drugId"] is None and dose["units"] == 0
    given = (await r.c.nurse.data(GIVE, id=dose["id"]))["giveMedication"]
    assert given["status"] == "GIVEN" and given["lines"] == []


async def test_a_medication_task_is_recorded_through_its_dose(client_as: Any) -> None:
    r = await round_(client_as)
    task = r.doses[0]["taskId"]
    for op, args in ((DONE, {}), (SKIP, {"reason": "Asleep"})):
        error = await r.c.nurse.error(op, id=task, **args)
        assert code(error) == "CONFLICT" and error["extensions"]["reason"] == "RECORD_ON_MAR"
    assert (await stored(r.doses[0]["id"])).status == "scheduled"
    found = await r.c.nurse.data(DOSES, filter={"status": ["SCHEDULED"], "orderId": r.order_id})
    assert len(found["medicationAdministrations"]["nodes"]) == 3
