"""Bad orders change nothing; each kind takes its own details; lab and imaging orders follow."""

from __future__ import annotations

from typing import Any

from models.admissions import AdmissionStatus
from models.nursing import NursingTask
from models.orders import DoctorOrder
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.orders.helpers import CREATE_ORDER, Callers, medication, once_now, ward


async def test_bad_orders_change_nothing(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    before = await snapshot(DoctorOrder, NursingTask)
    base = medication(w)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "kind": "DIET"}, "medication"),  # a diet order with medication details
        ({**base, "kind": "DIET", "medication": None}, "instruction"),
        ({**base, "medication": None}, "medication"),
        ({**base, "schedule": {"pattern": "EVERY_HOURS"}}, "schedule.everyHours"),
        ({**base, "schedule": {"pattern": "ONCE", "everyHours": 4}}, "schedule.everyHours"),
        ({**base, "schedule": {"pattern": "TIMES_OF_DAY"}}, "schedule.timesOfDay"),
        ({**base, "kind": "LABORATORY", "medication": None,
          "laboratory": {"testCodes": ["NOPE"]}}, "laboratory.testCodes.0"),
    ]  # fmt: skip
    for given, field in cases:
        error = await c.doctor.error(CREATE_ORDER, input=given)
        assert code(error) == "BAD_USER_INPUT", (given, error)
        assert field in error["extensions"]["fields"], (given, error)
    assert await snapshot(DoctorOrder, NursingTask) == before


async def test_a_discharged_admission_takes_no_orders(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    w.admission.status = AdmissionStatus.DISCHARGED
    await w.admission.save()
    error = await c.doctor.error(CREATE_ORDER, input=once_now(w))
    assert code(error) == "BAD_USER_INPUT" and "admissionId" in error["extensions"]["fields"]


async def test_admins_order_for_a_named_doctor_and_doctors_only_for_themselves(
    client_as: Any,
) -> None:
    w = await ward()
    c = Callers(client_as, w)
    other = await factories.doctor(w.department)
    named = {**once_now(w), "orderedById": str(other.id)}
    assert code(await c.doctor.error(CREATE_ORDER, input=named)) == "FORBIDDEN"
    made = (await c.admin.data(CREATE_ORDER, input=named))["createDoctorOrder"]
    assert made["orderedById"] == str(other.id)
    assert code(await c.admin.error(CREATE_ORDER, input=once_now(w))) == "BAD_USER_INPUT"
