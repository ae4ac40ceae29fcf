"""The demo's doses agree with its orders' tasks and its ward stock with the ledger."""

from __future__ import annotations

from typing import Any

from demo import seed_demo
from models.medication import DoseStatus, MedicationAdministration
from models.nursing import NursingTask, TaskStatus
from models.pharmacy import StockBatch, StockLocation
from services import pharmacy

MATCH = {
    DoseStatus.GIVEN: TaskStatus.DONE,
    DoseStatus.HELD: TaskStatus.SKIPPED,
    DoseStatus.REFUSED: TaskStatus.SKIPPED,
    DoseStatus.SCHEDULED: TaskStatus.DUE,
    DoseStatus.CANCELLED: TaskStatus.CANCELLED,
}


async def test_demo_doses_follow_their_tasks_and_stock_agrees(database: Any) -> None:
    await seed_demo(60)
    doses = await MedicationAdministration.find_all().to_list()
    assert doses
    statuses = {d.status for d in doses}
    assert {DoseStatus.GIVEN, DoseStatus.HELD, DoseStatus.REFUSED, DoseStatus.SCHEDULED} <= statuses
    for dose in doses:
        task = await NursingTask.get(dose.task_id)
        assert task is not None and task.due_at == dose.due_at
        assert MATCH[dose.status] == task.status
        if dose.status == DoseStatus.GIVEN:
            assert dose.drug_id is not None and dose.given_at == task.done_at
            assert sum(x.quantity for x in dose.lines) == dose.units == 1
            (line,) = dose.lines
            batch = await StockBatch.get(line.batch_id)
            assert batch is not None and batch.ward_id == dose.ward_id
    wards = await StockBatch.find({"location": StockLocation.WARD.value}).to_list()
    assert wards
    for batch in await StockBatch.find_all().to_list():
        assert batch.quantity >= 0
        assert await pharmacy.ledger_sum(batch.id) == batch.quantity  # type: ignore[arg-type]
