"""Nurses of the patient's ward read orders and record tasks; others see nothing clinical."""

from __future__ import annotations

from typing import Any

from tests.graphql.helpers import code
from tests.orders.helpers import (
    CREATE_ORDER,
    HOLD,
    ORDERS,
    OVERDUE,
    READ_ORDER,
    TASKS,
    Callers,
    medication,
    once_now,
    ward,
)


async def test_the_ward_nurse_reads_orders_but_does_not_order(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    order_id = (await c.doctor.data(CREATE_ORDER, input=medication(w)))["createDoctorOrder"]["id"]
    seen = (await c.nurse.data(READ_ORDER, id=order_id))["doctorOrder"]
    assert seen["medication"]["drug"] == "Amoxicillin" and seen["tasks"]["nodes"]
    assert seen["admission"]["id"] == str(w.admission.id)
    assert code(await c.nurse.error(CREATE_ORDER, input=medication(w))) == "FORBIDDEN"
    assert code(await c.nurse.error(HOLD, id=order_id)) == "FORBIDDEN"
    mine = (await c.patient.data(READ_ORDER, id=order_id))["doctorOrder"]
    assert mine["id"] == order_id


async def test_a_nurse_of_another_ward_is_refused(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    order_id = (await c.doctor.data(CREATE_ORDER, input=once_now(w)))["createDoctorOrder"]["id"]
    assert code(await c.other_nurse.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
    listed = await c.other_nurse.data(ORDERS, admissionId=str(w.admission.id))
    assert listed["doctorOrders"]["nodes"] == []
    tasks = await c.other_nurse.data(TASKS, filter={"wardId": str(w.ward.id)})
    assert tasks["nursingTasks"]["nodes"] == []
    assert (await c.other_nurse.data(OVERDUE, wardId=str(w.ward.id)))["overdueNursingTasks"] == []
    assert (await c.nurse.data(OVERDUE, wardId=str(w.ward.id)))["overdueNursingTasks"]


async def test_doctors_without_care_and_billing_and_analysts_see_nothing(
    client_as: Any,
) -> None:
    w = await ward()
    c = Callers(client_as, w)
    order_id = (await c.doctor.data(CREATE_ORDER, input=once_now(w)))["createDoctorOrder"]["id"]
    from tests import factories

    stranger = await factories.doctor(w.department)
    outsider = client_as(roles=["doctor"], sid=str(stranger.id), did=str(w.department.id))
    assert code(await outsider.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
    assert code(await outsider.error(CREATE_ORDER, input=once_now(w))) == "FORBIDDEN"
    for caller in (c.billing, c.analyst):
        assert code(await caller.error(READ_ORDER, id=order_id)) == "FORBIDDEN"
        assert code(await caller.error(ORDERS)) == "FORBIDDEN"
        assert code(await caller.error(TASKS)) == "FORBIDDEN"
        assert code(await caller.error(OVERDUE, wardId=str(w.ward.id))) == "FORBIDDEN"
