"""The demo's orders and nursing care for its current admissions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from demo.clock import ANCHOR
from demo.orders import seed_orders
from models.admissions import Admission, AdmissionSource
from models.nursing import NursingCarePlan, NursingTask, TaskStatus
from models.orders import DoctorOrder
from models.wards import Bed, Ward
from tests import factories


async def test_each_active_admission_gets_orders_a_plan_and_tasks(database: Any) -> None:
    dept = await factories.department()
    ward = await Ward(name="Ward 1", code="WD1", department_id=dept.id, capacity=2).insert()
    nurse = await factories.nurse(dept, ward_id=ward.id)
    doctor = await factories.doctor(dept)
    patient = await factories.patient()
    bed = await Bed(ward_id=ward.id, department_id=dept.id, label="B1").insert()
    await Admission(
        patient_id=patient.id,
        source=AdmissionSource.ELECTIVE,
        attending_doctor_id=doctor.id,
        department_id=dept.id,
        ward_id=ward.id,
        bed_id=bed.id,
        admitted_at=ANCHOR - timedelta(days=2),
        reason="Pneumonia",
    ).insert()
    assert await seed_orders() == 1
    assert await DoctorOrder.count() == 3 and await NursingCarePlan.count() == 1
    tasks = await NursingTask.find_all().to_list()
    # 48 hours: every 6 h (8), every 4 h (12), the plan every 2 h (24); the diet is as needed.
    assert len(tasks) == 44
    done = [t for t in tasks if t.status == TaskStatus.DONE]
    assert done and all(t.done_by_id == nurse.id and t.done_at for t in done)
    late = [t for t in tasks if t.status == TaskStatus.DUE and t.due_at < ANCHOR]
    assert late  # the ward's overdue list is not empty
