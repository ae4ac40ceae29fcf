"""Demo doctor orders and nursing care for the demo's current admissions.

Runs after the admissions demo and reads its active admissions from the database. Each gets,
from its attending doctor: paracetamol 1 g oral every 6 hours, observations (blood pressure,
pulse, SpO2, temperature) every 4 hours, and a light diet (as needed: no tasks); and a falls
care plan (hourly rounding every 2 hours) from a nurse of its ward. Tasks exist from the later
of the admission and a day before the demo's "now" to a day after it; those due more than two
hours before "now" were done by the ward's nurse ten minutes after their due time, the others
are still due (the latest ones overdue, for the ward's live list). Ids derive from the
admission and times from the demo clock: every seed writes the same documents.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from demo.clock import ANCHOR
from models.admissions import Admission, AdmissionStatus
from models.nursing import (
    CarePlanStatus,
    Intervention,
    NursingCarePlan,
    NursingTask,
    TaskSource,
    TaskStatus,
)
from models.orders import (
    DoctorOrder,
    MedicationDetails,
    MedicationRoute,
    OrderKind,
    OrderStatus,
    OrderStatusChange,
    Schedule,
    SchedulePattern,
)
from models.staff import Nurse
from services.nursing import due_times, order_description

HORIZON = timedelta(hours=24)
DONE_BEFORE = timedelta(hours=2)


def _id(*parts: object) -> PydanticObjectId:
    key = ":".join(str(p) for p in parts).encode()
    return PydanticObjectId(hashlib.blake2b(key, digest_size=12).digest())


def _orders(admission: Admission, start: datetime) -> list[DoctorOrder]:
    common: dict[str, Any] = {
        "admission_id": admission.id,
        "patient_id": admission.patient_id,
        "ward_id": admission.ward_id,
        "department_id": admission.department_id,
        "ordered_by_id": admission.attending_doctor_id,
        "status": OrderStatus.ACTIVE,
        "status_at": start,
        "history": [OrderStatusChange(status=OrderStatus.ACTIVE, at=start)],
        "tasks_from": start,
        "tasks_until": ANCHOR + HORIZON,
        "created_at": start,
        "updated_at": start,
    }
    every = {"pattern": SchedulePattern.EVERY_HOURS, "start_at": start}
    return [
        DoctorOrder(
            id=_id(admission.id, "paracetamol"),
            kind=OrderKind.MEDICATION,
            medication=MedicationDetails(
                drug="Paracetamol", dose=1, unit="g", route=MedicationRoute.ORAL, frequency="q6h"
            ),
            schedule=Schedule(**every, every_hours=6),
            **common,
        ),
        DoctorOrder(
            id=_id(admission.id, "observations"),
            kind=OrderKind.NURSING,
            instruction="Observations: blood pressure, pulse, SpO2, temperature",
            schedule=Schedule(**every, every_hours=4),
            **common,
        ),
        DoctorOrder(
            id=_id(admission.id, "diet"),
            kind=OrderKind.DIET,
            instruction="Light diet, encourage oral fluids",
            schedule=Schedule(pattern=SchedulePattern.PRN, start_at=start),
            **common,
        ),
    ]


def _plan(admission: Admission, start: datetime, nurse: Nurse | None) -> NursingCarePlan:
    return NursingCarePlan(
        id=_id(admission.id, "falls-plan"),
        admission_id=admission.id,
        patient_id=admission.patient_id,
        ward_id=admission.ward_id,
        department_id=admission.department_id,
        created_by_id=nurse.id if nurse is not None else admission.attending_doctor_id,
        problem="Risk of falls: new to the ward, unsteady on standing",
        goal="No falls during the stay",
        interventions=[
            Intervention(
                id=_id(admission.id, "rounding"),
                description="Hourly rounding: call bell in reach, bed low, footwear on",
                schedule=Schedule(
                    pattern=SchedulePattern.EVERY_HOURS, start_at=start, every_hours=2
                ),
            )
        ],
        status=CarePlanStatus.ACTIVE,
        status_at=start,
        tasks_from=start,
        tasks_until=ANCHOR + HORIZON,
        created_at=start,
        updated_at=start,
    )


def _task(
    source: DoctorOrder | NursingCarePlan,
    source_id: PydanticObjectId,
    description: str,
    due: datetime,
    nurse: Nurse | None,
) -> NursingTask:
    done = nurse is not None and due < ANCHOR - DONE_BEFORE
    at = due + timedelta(minutes=10)
    return NursingTask(
        id=_id(source_id, due.isoformat()),
        admission_id=source.admission_id,
        patient_id=source.patient_id,
        ward_id=source.ward_id,
        department_id=source.department_id,
        source=TaskSource.ORDER if isinstance(source, DoctorOrder) else TaskSource.CARE_PLAN,
        source_id=source_id,
        order_id=source.id if isinstance(source, DoctorOrder) else None,
        care_plan_id=source.id if isinstance(source, NursingCarePlan) else None,
        description=description,
        due_at=due,
        status=TaskStatus.DONE if done else TaskStatus.DUE,
        status_at=at if done else due,
        done_by_id=nurse.id if done and nurse is not None else None,
        done_at=at if done else None,
        version=1 if done else 0,
        created_at=due - HORIZON if due - HORIZON > source.created_at else source.created_at,
        updated_at=at if done else due,
    )


async def seed_orders() -> int:
    """Orders, a care plan and their tasks for every active demo admission; how many admissions
    got them."""
    admissions = await Admission.find({"status": AdmissionStatus.ACTIVE.value}).to_list()
    orders: list[DoctorOrder] = []
    plans: list[NursingCarePlan] = []
    tasks: list[NursingTask] = []
    for admission in sorted(admissions, key=lambda a: str(a.id)):
        nurse = await Nurse.find_one({"ward_id": admission.ward_id}, sort=[("_id", 1)])
        if nurse is None:
            nurse = await Nurse.find_one(
                {"department_id": admission.department_id}, sort=[("_id", 1)]
            )
        start = max(admission.admitted_at, ANCHOR - HORIZON)
        mine = _orders(admission, start)
        plan = _plan(admission, start, nurse)
        orders += mine
        plans.append(plan)
        for order in mine:
            assert order.id is not None
            for due in due_times(order.schedule, start, ANCHOR + HORIZON, start):
                tasks.append(_task(order, order.id, order_description(order), due, nurse))
        for intervention in plan.interventions:
            for due in due_times(intervention.schedule, start, ANCHOR + HORIZON, start):
                tasks.append(_task(plan, intervention.id, intervention.description, due, nurse))
    for model, documents in (
        (DoctorOrder, orders),
        (NursingCarePlan, plans),
        (NursingTask, tasks),
    ):
        if documents:
            await model.insert_many(documents)
    return len(admissions)
