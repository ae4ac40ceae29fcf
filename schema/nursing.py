"""GraphQL types and inputs for nursing care plans, nursing tasks and the ward's live list."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import nursing as m
from models.base import utcnow
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Context, Info
from schema.orders import Schedule, ScheduleInput

if TYPE_CHECKING:
    from schema.admissions import Admission
    from schema.orders import DoctorOrder
    from schema.patients import Patient
    from schema.staff import Nurse

strawberry.enum(m.CarePlanStatus)
CarePlanStatus = m.CarePlanStatus
strawberry.enum(m.TaskSource)
TaskSource = m.TaskSource
strawberry.enum(
    m.TaskStatus,
    description="due until recorded done or skipped by a nurse, or cancelled with its source "
    "(order held, completed or cancelled; patient discharged). Overdue: due and past dueAt.",
)
TaskStatus = m.TaskStatus


@strawberry.type
class Intervention:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    description: str
    schedule: Schedule


@strawberry.type(description="A nursing problem of an admission, its goal and interventions.")
class NursingCarePlan:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    problem: str
    goal: str
    interventions: list[Intervention]
    status: CarePlanStatus
    status_at: datetime
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.NursingCarePlan]) -> strawberry.ID:
        return strawberry.ID(str(root.admission_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.NursingCarePlan]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.NursingCarePlan]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.NursingCarePlan]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field(description="The nurse or doctor who wrote it.")
    @staticmethod
    def created_by_id(root: strawberry.Parent[m.NursingCarePlan]) -> strawberry.ID:
        return strawberry.ID(str(root.created_by_id))

    @strawberry.field
    @staticmethod
    async def admission(
        root: strawberry.Parent[m.NursingCarePlan], info: Info
    ) -> Annotated[Admission, strawberry.lazy("schema.admissions")] | None:
        return await info.context.loaders.admission_by_id.load(root.admission_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.NursingCarePlan], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The tasks generated from its interventions, by due time.")
    @staticmethod
    async def tasks(
        root: strawberry.Parent[m.NursingCarePlan],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[NursingTask]:
        key = (root.id, info.context.page(first, after), ())
        page = await info.context.loaders.nursing_tasks_by_care_plan.load(key)
        return connection(NursingTask, page)


@strawberry.type(description="One thing a nurse does at one due time, and its record.")
class NursingTask:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    source: TaskSource
    description: str
    due_at: datetime
    status: TaskStatus
    status_at: datetime
    done_at: datetime | None = strawberry.field(description="When the nurse did it.")
    note: str | None
    reason: str | None = strawberry.field(description="Why it was skipped or cancelled.")
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Due and past its due time, now.")
    @staticmethod
    def overdue(root: strawberry.Parent[m.NursingTask]) -> bool:
        return root.status == m.TaskStatus.DUE and root.due_at < utcnow()

    @strawberry.field(description="The order, or the care-plan intervention, it comes from.")
    @staticmethod
    def source_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID:
        return strawberry.ID(str(root.source_id))

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID | None:
        return ref_id(root.order_id)

    @strawberry.field
    @staticmethod
    def care_plan_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID | None:
        return ref_id(root.care_plan_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID:
        return strawberry.ID(str(root.admission_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field(description="The nurse who recorded it done or skipped.")
    @staticmethod
    def done_by_id(root: strawberry.Parent[m.NursingTask]) -> strawberry.ID | None:
        return ref_id(root.done_by_id)

    @strawberry.field
    @staticmethod
    async def done_by(
        root: strawberry.Parent[m.NursingTask], info: Info
    ) -> Annotated[Nurse, strawberry.lazy("schema.staff")] | None:
        if root.done_by_id is None:
            return None
        return await info.context.loaders.nurse_by_id.load(root.done_by_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.NursingTask], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field
    @staticmethod
    async def order(
        root: strawberry.Parent[m.NursingTask], info: Info
    ) -> Annotated[DoctorOrder, strawberry.lazy("schema.orders")] | None:
        if root.order_id is None:
            return None
        return await info.context.loaders.doctor_order_by_id.load(root.order_id)

    @strawberry.field
    @staticmethod
    async def care_plan(
        root: strawberry.Parent[m.NursingTask], info: Info
    ) -> NursingCarePlan | None:
        if root.care_plan_id is None:
            return None
        return await info.context.loaders.nursing_care_plan_by_id.load(root.care_plan_id)


@strawberry.type(
    description="The ward's overdue tasks now: sent when the subscription opens, after every "
    "change of a task of the ward, and when a due task of the ward becomes overdue."
)
class NursingTasksEvent:
    change: str = strawberry.field(
        description="`snapshot`, a task's change (`created`, `done`, `skipped`, `cancelled`, "
        "`reopened`, `moved`), or `overdue` (a due time passed)."
    )
    at: datetime
    task_id: strawberry.ID | None = strawberry.field(description="The task that changed.")
    task: NursingTask | None = strawberry.field(description="The task as it is now.")
    overdue: list[NursingTask] = strawberry.field(
        description="The ward's overdue tasks you may see, longest overdue first."
    )
    context: strawberry.Private[Context]


@strawberry.input
class NursingTaskFilter:
    ward_id: strawberry.ID | None = None
    admission_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    status: list[TaskStatus] | None = None
    due_before: datetime | None = strawberry.field(default=None, description="Exclusive.")
    overdue: bool | None = strawberry.field(
        default=None, description="true: due and past dueAt; false: all others."
    )


@strawberry.input
class InterventionInput:
    description: str
    schedule: ScheduleInput


@strawberry.input
class NursingCarePlanInput:
    admission_id: strawberry.ID
    problem: str
    goal: str
    interventions: list[InterventionInput]
