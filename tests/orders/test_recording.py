"""Nurses record tasks with the time they did them; one recording per task wins."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from models.base import utcnow
from tests import factories
from tests.graphql.helpers import code
from tests.orders.helpers import (
    CREATE_ORDER,
    DONE,
    SKIP,
    Callers,
    iso,
    once_now,
    ward,
)


async def _task(c: Callers, order: dict[str, Any]) -> str:
    made = (await c.doctor.data(CREATE_ORDER, input=order))["createDoctorOrder"]
    return str(made["tasks"]["nodes"][0]["id"])


async def test_a_nurse_records_a_task_at_a_valid_time(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    task = await _task(c, once_now(w))
    future = iso(utcnow() + timedelta(minutes=30))
    error = await c.nurse.error(DONE, id=task, doneAt=future)
    assert code(error) == "BAD_USER_INPUT" and "doneAt" in error["extensions"]["fields"]
    before = iso(w.admission.admitted_at - timedelta(minutes=1))
    error = await c.nurse.error(DONE, id=task, doneAt=before)
    assert code(error) == "BAD_USER_INPUT" and "doneAt" in error["extensions"]["fields"]
    at = utcnow() - timedelta(minutes=2)
    done = await c.nurse.data(DONE, id=task, doneAt=iso(at), note="SpO2 96% on air")
    task_now = done["completeNursingTask"]
    assert task_now["status"] == "DONE" and task_now["doneById"] == str(w.nurse.id)
    assert datetime.fromisoformat(task_now["doneAt"]) == at
    assert code(await c.nurse.error(DONE, id=task)) == "CONFLICT"  # recorded already
    assert code(await c.nurse.error(SKIP, id=task, reason="Away")) == "CONFLICT"


async def test_skipping_needs_a_reason(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    task = await _task(c, once_now(w))
    assert code(await c.nurse.error(SKIP, id=task, reason="  ")) == "BAD_USER_INPUT"
    skipped = (await c.nurse.data(SKIP, id=task, reason="Patient in radiology"))["skipNursingTask"]
    assert skipped["status"] == "SKIPPED" and skipped["reason"] == "Patient in radiology"


async def test_who_records(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    task = await _task(c, once_now(w))
    assert code(await c.doctor.error(DONE, id=task)) == "FORBIDDEN"
    assert code(await c.other_nurse.error(DONE, id=task)) == "FORBIDDEN"
    assert code(await c.billing.error(DONE, id=task)) == "FORBIDDEN"
    assert code(await c.admin.error(DONE, id=task)) == "BAD_USER_INPUT"  # name the nurse
    named = """mutation($id: ID!, $nurse: ID) {
      completeNursingTask(id: $id, doneById: $nurse) { status doneById } }"""
    own = await c.nurse.error(named, id=task, nurse=str(w.other_nurse.id))
    assert code(own) == "FORBIDDEN"  # nurses record in their own name
    done = (await c.admin.data(named, id=task, nurse=str(w.nurse.id)))["completeNursingTask"]
    assert done == {"status": "DONE", "doneById": str(w.nurse.id)}


async def test_two_nurses_completing_one_task_one_wins(client_as: Any) -> None:
    w = await ward()
    c = Callers(client_as, w)
    colleague = await factories.nurse(w.department, ward_id=w.ward.id)
    second = client_as(roles=["nurse"], sid=str(colleague.id), did=str(w.department.id))
    for _ in range(3):
        task = await _task(c, once_now(w))
        bodies = await asyncio.gather(c.nurse(DONE, id=task), second(DONE, id=task))
        wins = [b for b in bodies if "errors" not in b]
        losses = [b["errors"][0]["extensions"]["code"] for b in bodies if "errors" in b]
        assert len(wins) == 1 and losses == ["CONFLICT"], bodies
