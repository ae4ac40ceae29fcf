"""GraphQL types for the medication administration record and a ward's consumption."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import medication as m
from models.base import utcnow
from schema.common import entity_id, ref_id
from schema.context import Info
from schema.drugs import Drug
from schema.orders import MedicationRoute
from services import medication as s

if TYPE_CHECKING:
    from schema.nursing import NursingTask
    from schema.orders import DoctorOrder
    from schema.patients import Patient

strawberry.enum(
    m.DoseStatus,
    description="scheduled until a nurse records it given (GIVING while the ward's stock is "
    "taken), held or refused; cancelled with its order's task. Overdue: scheduled past dueAt.",
)
DoseStatus = m.DoseStatus


@strawberry.type(description="Units one dose took from one batch of the ward's stock.")
class DoseLine:
    quantity: int
    batch_number: str
    expiry: date

    @strawberry.field
    @staticmethod
    def batch_id(root: strawberry.Parent[m.DoseLine]) -> strawberry.ID:
        return strawberry.ID(str(root.batch_id))


@strawberry.type(description="One scheduled dose of a medication order, and its record.")
class MedicationAdministration:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    drug_name: str = strawberry.field(description="As the order names it.")
    dose: float
    unit: str
    route: MedicationRoute
    units: int = strawberry.field(
        description="Units of issue one dose takes from the ward's stock (0: not in the master)."
    )
    due_at: datetime
    status: DoseStatus
    status_at: datetime
    recorded_by: str | None = strawberry.field(description="The recording account.")
    recorded_at: datetime | None
    given_at: datetime | None = strawberry.field(description="When the nurse gave it.")
    note: str | None
    reason: str | None = strawberry.field(description="Why held, refused or cancelled.")
    lines: list[DoseLine]
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Scheduled and past its due time, now.")
    @staticmethod
    def overdue(root: strawberry.Parent[m.MedicationAdministration]) -> bool:
        return root.status == m.DoseStatus.SCHEDULED and root.due_at < utcnow()

    @strawberry.field
    @staticmethod
    def order_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID:
        return strawberry.ID(str(root.order_id))

    @strawberry.field(description="The nursing task recorded with it.")
    @staticmethod
    def task_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID | None:
        return ref_id(root.task_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID:
        return strawberry.ID(str(root.admission_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def ordered_by_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID:
        return strawberry.ID(str(root.ordered_by_id))

    @strawberry.field(description="The master drug; null when the order names none uniquely.")
    @staticmethod
    def drug_id(root: strawberry.Parent[m.MedicationAdministration]) -> strawberry.ID | None:
        return ref_id(root.drug_id)

    @strawberry.field(description="The nurse who recorded it.")
    @staticmethod
    def recorded_by_id(
        root: strawberry.Parent[m.MedicationAdministration],
    ) -> strawberry.ID | None:
        return ref_id(root.recorded_by_id)

    @strawberry.field
    @staticmethod
    async def drug(root: strawberry.Parent[m.MedicationAdministration], info: Info) -> Drug | None:
        if root.drug_id is None:
            return None
        return await info.context.loaders.drug_by_id.load(root.drug_id)

    @strawberry.field
    @staticmethod
    async def order(
        root: strawberry.Parent[m.MedicationAdministration], info: Info
    ) -> Annotated[DoctorOrder, strawberry.lazy("schema.orders")] | None:
        return await info.context.loaders.doctor_order_by_id.load(root.order_id)

    @strawberry.field
    @staticmethod
    async def task(
        root: strawberry.Parent[m.MedicationAdministration], info: Info
    ) -> Annotated[NursingTask, strawberry.lazy("schema.nursing")] | None:
        if root.task_id is None:
            return None
        return await info.context.loaders.nursing_task_by_id.load(root.task_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.MedicationAdministration], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)


@strawberry.type(description="One drug on one ward over the period.")
class DrugConsumption:
    drug_name: str
    doses_given: int
    units_consumed: int = strawberry.field(description="Units of issue the given doses took.")
    stock_remaining: int = strawberry.field(
        description="Usable units (unexpired) the ward holds now."
    )

    @strawberry.field(description="Null for doses of an order naming no master drug.")
    @staticmethod
    def drug_id(root: strawberry.Parent[s.DrugConsumption]) -> strawberry.ID | None:
        return ref_id(root.drug_id)

    @strawberry.field
    @staticmethod
    async def drug(root: strawberry.Parent[s.DrugConsumption], info: Info) -> Drug | None:
        if root.drug_id is None:
            return None
        return await info.context.loaders.drug_by_id.load(root.drug_id)


@strawberry.type(description="What a ward's doses took from its stock, per drug, in a period.")
class WardMedicationConsumption:
    drugs: list[DrugConsumption]

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[s.WardConsumption]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field(name="from", description="Inclusive.")
    @staticmethod
    def since(root: strawberry.Parent[s.WardConsumption]) -> datetime:
        return root.since

    @strawberry.field(name="to", description="Exclusive.")
    @staticmethod
    def until(root: strawberry.Parent[s.WardConsumption]) -> datetime:
        return root.until


@strawberry.input
class MedicationAdministrationFilter:
    admission_id: strawberry.ID | None = None
    ward_id: strawberry.ID | None = None
    patient_id: strawberry.ID | None = None
    order_id: strawberry.ID | None = None
    status: list[DoseStatus] | None = None
    due_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    due_to: datetime | None = strawberry.field(default=None, description="Exclusive.")
