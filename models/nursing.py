"""Nursing care of an admission: care plans, and the tasks nurses do and record.

A task falls due once, from a doctor order or a care-plan intervention (``source_id``: the
order's id, or the intervention's). Tasks are generated ahead over a rolling horizon
(``services.nursing``); the unique index on ``(source_id, due_at)`` makes generation
idempotent, whoever runs it and however often. A task is ``due`` until a nurse records it
``done`` (with the instant it was done) or ``skipped`` (with a reason), or the service
``cancelled`` it (its order held, completed or cancelled, the patient discharged); each step is
a compare-and-set on status and version, so of two nurses recording one task, one wins.
Overdue is not a status: a task is overdue while it is ``due`` and its due time has passed.

Who reads what: the care team (nurses of the patient's ward, doctors treating the patient, the
nurse who did a task), admin, and the patient their own. Billing and analysts: nothing. Nurses
with the care relation record tasks and write care plans; doctors with it write care plans.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import A, Action, C, R, S, declare, grant, group, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow
from models.orders import Schedule

ClinicalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
]


class CarePlanStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Intervention(BaseModel):
    """One thing the plan asks nurses to do, and how often (its own id names its tasks)."""

    id: Ref
    description: ShortText
    schedule: Schedule


class NursingCarePlan(Entity):
    admission_id: Ref
    patient_id: Ref
    ward_id: Ref
    department_id: Ref
    created_by_id: Ref
    problem: ClinicalText
    goal: ClinicalText
    interventions: list[Intervention] = Field(min_length=1, max_length=20)
    status: CarePlanStatus = CarePlanStatus.ACTIVE
    status_at: UtcDatetime = Field(default_factory=utcnow)
    tasks_from: UtcDatetime = Field(default_factory=utcnow)
    tasks_until: UtcDatetime | None = None
    version: int = 0

    class Settings:
        name = "nursing_care_plans"
        indexes = [
            pymongo.IndexModel([("admission_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("tasks_until", 1)]),
        ]


# The nursing problem, goal and interventions are clinical text: encrypted at rest.
NURSING_CARE_PLAN_SEALED = sealed(
    NursingCarePlan, "nursing_care_plans", ("problem", "goal", "interventions"), {}
)


class TaskSource(StrEnum):
    ORDER = "order"
    CARE_PLAN = "care_plan"


class TaskStatus(StrEnum):
    DUE = "due"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class NursingTask(Entity):
    admission_id: Ref
    patient_id: Ref
    ward_id: Ref
    department_id: Ref
    source: TaskSource
    source_id: Ref = Field(description="The order, or the care-plan intervention.")
    order_id: Ref | None = None
    care_plan_id: Ref | None = None
    description: ShortText
    due_at: UtcDatetime
    status: TaskStatus = TaskStatus.DUE
    status_at: UtcDatetime = Field(default_factory=utcnow)
    done_by_id: Ref | None = None
    done_at: UtcDatetime | None = None
    recorded_by: str | None = Field(default=None, max_length=255, description="Token subject.")
    note: ClinicalText | None = None
    reason: ShortText | None = Field(default=None, description="Why skipped or cancelled.")
    version: int = 0

    class Settings:
        name = "nursing_tasks"
        indexes = [
            pymongo.IndexModel(
                [("source_id", 1), ("due_at", 1)], unique=True, name="one_task_per_source_due"
            ),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("admission_id", 1), ("status", 1), ("due_at", 1)]),
            pymongo.IndexModel([("patient_id", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("status", 1), ("due_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("due_at", 1), ("_id", 1)]),
            # The tasks of one doctor's order or care plan (their loaders).
            pymongo.IndexModel([("order_id", 1)]),
            pymongo.IndexModel([("care_plan_id", 1)]),
        ]


# Encrypted at rest: the note is clinical text, the description copies the order's (sealed) words.
NURSING_TASK_SEALED = sealed(NursingTask, "nursing_tasks", ("description", "note"), {})


# -- the policy --------------------------------------------------------------------------------

_CARE_TEAM = {R.DOCTOR: grant(C), R.NURSE: grant(C), R.ADMIN: grant(A), R.PATIENT: grant(S)}
_RECORDERS = {R.NURSE: grant(C), R.ADMIN: grant(A)}
_PLANNERS = {R.NURSE: grant(C), R.DOCTOR: grant(C), R.ADMIN: grant(A)}
_STAMPS = ("id", "createdAt", "updatedAt")

NURSING_CARE_PLAN = declare(
    "NursingCarePlan",
    NursingCarePlan,
    row(
        Class.CLINICAL,
        (
            *_STAMPS,
            "problem",
            "goal",
            "interventions",
            "status",
            "statusAt",
            "version",
            "admissionId",
            "admission",
            "wardId",
            "departmentId",
            "createdById",
            "tasks",
        ),
        _CARE_TEAM,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _CARE_TEAM),
    actions={Action.CREATE: _PLANNERS},
    patient="patient_id",
    clinicians=("created_by_id",),
    department="department_id",
    refs=("patient_id", "admission_id", "ward_id", "department_id"),
    cached=True,
)

NURSING_TASK = declare(
    "NursingTask",
    NursingTask,
    row(
        Class.CLINICAL,
        (
            *_STAMPS,
            "source",
            "sourceId",
            "orderId",
            "order",
            "carePlanId",
            "carePlan",
            "description",
            "dueAt",
            "overdue",
            "status",
            "statusAt",
            "doneById",
            "doneBy",
            "doneAt",
            "note",
            "reason",
            "version",
            "admissionId",
            "wardId",
            "departmentId",
        ),
        _CARE_TEAM,
    ),
    group("patient", Class.IDENTITY, ("patient", "patientId"), _CARE_TEAM),
    actions={Action.COMPLETE: _RECORDERS, "skip": _RECORDERS},
    patient="patient_id",
    clinicians=("done_by_id",),
    department="department_id",
    refs=("patient_id", "admission_id", "ward_id", "department_id", "order_id", "care_plan_id"),
    cached=True,
    order=(("due_at", 1), ("_id", 1)),
)
