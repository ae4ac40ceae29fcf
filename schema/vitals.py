"""GraphQL types and inputs for vital signs and their trends; units are UCUM codes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import vitals as m
from models.vitals import MEASUREMENTS, VitalMeasurement
from schema.clinical import PerformerRole
from schema.common import entity_id, ref_id
from schema.context import Info

if TYPE_CHECKING:
    from schema.outpatient import OutpatientVisit
    from schema.patients import Patient
    from schema.staff import StaffMember


def _unit(measurement: VitalMeasurement) -> str:
    spec = MEASUREMENTS[measurement]
    return f"{spec.label.capitalize()}, in {spec.unit} (UCUM), {spec.low:g}-{spec.high:g}."


strawberry.enum(
    m.VitalMeasurement,
    description="One measurement of a vital-signs set; its UCUM unit is fixed: "
    + "; ".join(f"{k.name} {v.unit}" for k, v in MEASUREMENTS.items())
    + ".",
)
strawberry.enum(m.VitalSignsStatus)
VitalSignsStatus = m.VitalSignsStatus


@strawberry.type(description="A measured value with its unit as a UCUM code.")
class Quantity:
    value: float
    unit: str = strawberry.field(description="UCUM code, e.g. Cel, /min, mm[Hg], %, cm, kg.")


def _quantity(root: m.VitalSigns, measurement: VitalMeasurement) -> Quantity | None:
    value = getattr(root, measurement.value)
    if value is None:
        return None
    return Quantity(value=float(value), unit=MEASUREMENTS[measurement].unit)


def _measured(measurement: VitalMeasurement) -> Quantity | None:
    def resolve(root: strawberry.Parent[m.VitalSigns]) -> Quantity | None:
        return _quantity(root, measurement)

    return strawberry.field(resolver=resolve, description=_unit(measurement))


async def staff_member(info: Info, id: object, role: PerformerRole) -> object | None:
    """A doctor or nurse by id, through the loader of their kind."""
    loaders = info.context.loaders
    if role == PerformerRole.DOCTOR:
        return await loaders.doctor_by_id.load(id)
    return await loaders.nurse_by_id.load(id)


@strawberry.type(description="One set of vital signs, recorded at one time by one clinician.")
class VitalSigns:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    recorded_at: datetime
    recorded_by_role: PerformerRole
    temperature: Quantity | None = _measured(VitalMeasurement.TEMPERATURE)
    pulse: Quantity | None = _measured(VitalMeasurement.PULSE)
    systolic: Quantity | None = _measured(VitalMeasurement.SYSTOLIC)
    diastolic: Quantity | None = _measured(VitalMeasurement.DIASTOLIC)
    respiratory_rate: Quantity | None = _measured(VitalMeasurement.RESPIRATORY_RATE)
    spo2: Quantity | None = _measured(VitalMeasurement.SPO2)
    height: Quantity | None = _measured(VitalMeasurement.HEIGHT)
    weight: Quantity | None = _measured(VitalMeasurement.WEIGHT)
    bmi: Quantity | None = _measured(VitalMeasurement.BMI)
    pain_score: Quantity | None = _measured(VitalMeasurement.PAIN_SCORE)
    comment: str | None
    status: VitalSignsStatus
    error_reason: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.VitalSigns]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))

    @strawberry.field
    @staticmethod
    def visit_id(root: strawberry.Parent[m.VitalSigns]) -> strawberry.ID | None:
        return ref_id(root.visit_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.VitalSigns]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field
    @staticmethod
    def recorded_by_id(root: strawberry.Parent[m.VitalSigns]) -> strawberry.ID:
        return strawberry.ID(str(root.recorded_by_id))

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.VitalSigns], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The outpatient visit the set was taken in.")
    @staticmethod
    async def visit(
        root: strawberry.Parent[m.VitalSigns], info: Info
    ) -> Annotated[OutpatientVisit, strawberry.lazy("schema.outpatient")] | None:
        if root.visit_id is None:
            return None
        return await info.context.loaders.outpatient_visit_by_id.load(root.visit_id)

    @strawberry.field(description="The doctor or nurse who recorded the set.")
    @staticmethod
    async def recorded_by(
        root: strawberry.Parent[m.VitalSigns], info: Info
    ) -> Annotated[StaffMember, strawberry.lazy("schema.staff")] | None:
        return await staff_member(info, root.recorded_by_id, root.recorded_by_role)  # type: ignore[return-value]


@strawberry.type(description="One value of a patient's trend of one measurement.")
class VitalSignsPoint:
    measurement: m.VitalMeasurement
    value: float
    unit: str = strawberry.field(description="UCUM code.")
    recorded_at: datetime

    @strawberry.field(description="The set the value belongs to.")
    @staticmethod
    def vital_signs_id(root: strawberry.Parent[m.VitalSignsPoint]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    @strawberry.field
    @staticmethod
    def recorded_by_id(root: strawberry.Parent[m.VitalSignsPoint]) -> strawberry.ID:
        return strawberry.ID(str(root.recorded_by_id))


@strawberry.input(
    description="One set of readings: give at least one measurement, each in its UCUM unit "
    "and range; the BMI is computed from height and weight. Link it to exactly one visit or "
    "admission. Recorded in the caller's name."
)
class RecordVitalSignsInput:
    patient_id: strawberry.ID
    visit_id: strawberry.ID | None = None
    admission_id: strawberry.ID | None = None
    recorded_at: datetime = strawberry.field(description="When measured; not in the future.")
    temperature: float | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.TEMPERATURE)
    )
    pulse: int | None = strawberry.field(default=None, description=_unit(VitalMeasurement.PULSE))
    systolic: int | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.SYSTOLIC)
    )
    diastolic: int | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.DIASTOLIC)
    )
    respiratory_rate: int | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.RESPIRATORY_RATE)
    )
    spo2: float | None = strawberry.field(default=None, description=_unit(VitalMeasurement.SPO2))
    height: float | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.HEIGHT)
    )
    weight: float | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.WEIGHT)
    )
    pain_score: int | None = strawberry.field(
        default=None, description=_unit(VitalMeasurement.PAIN_SCORE)
    )
    comment: str | None = None
