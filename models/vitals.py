"""Vital signs: one set of measurements per recording, each in an explicit UCUM unit.

A set belongs to a patient and to the outpatient visit or inpatient admission it was taken in;
whoever recorded it is the caller (a clinician). Sets are never edited: a wrong one is marked
entered in error (it leaves the trend) and a new one recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pymongo
from beanie import PydanticObjectId
from pydantic import Field

from auth.policy import CLINICAL_ROW, C, D, R, S, declare, grant, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime
from models.clinical import PerformerRole


class VitalMeasurement(StrEnum):
    """One kind of measurement of a set; the value is the stored field's name."""

    TEMPERATURE = "temperature"
    PULSE = "pulse"
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    RESPIRATORY_RATE = "respiratory_rate"
    SPO2 = "spo2"
    HEIGHT = "height"
    WEIGHT = "weight"
    BMI = "bmi"
    PAIN_SCORE = "pain_score"


@dataclass(frozen=True)
class MeasurementSpec:
    """A measurement's UCUM unit and the physiologic range SHMS accepts (inclusive)."""

    unit: str
    low: float
    high: float
    label: str
    whole: bool = False
    computed: bool = False


MEASUREMENTS: dict[VitalMeasurement, MeasurementSpec] = {
    VitalMeasurement.TEMPERATURE: MeasurementSpec("Cel", 25, 45, "body temperature"),
    VitalMeasurement.PULSE: MeasurementSpec("/min", 20, 250, "pulse rate", whole=True),
    VitalMeasurement.SYSTOLIC: MeasurementSpec(
        "mm[Hg]", 50, 300, "systolic blood pressure", whole=True
    ),
    VitalMeasurement.DIASTOLIC: MeasurementSpec(
        "mm[Hg]", 20, 200, "diastolic blood pressure", whole=True
    ),
    VitalMeasurement.RESPIRATORY_RATE: MeasurementSpec(
        "/min", 4, 80, "respiratory rate", whole=True
    ),
    VitalMeasurement.SPO2: MeasurementSpec("%", 50, 100, "oxygen saturation (SpO2)"),
    VitalMeasurement.HEIGHT: MeasurementSpec("cm", 20, 250, "body height"),
    VitalMeasurement.WEIGHT: MeasurementSpec("kg", 0.3, 400, "body weight"),
    VitalMeasurement.BMI: MeasurementSpec(
        "kg/m2", 5, 150, "body mass index (computed from height and weight)", computed=True
    ),
    VitalMeasurement.PAIN_SCORE: MeasurementSpec(
        "{score}", 0, 10, "pain score, 0 (none) to 10 (worst)", whole=True
    ),
}
"""The one table of units and ranges: validation, the schema's descriptions and the series
all read it."""


class VitalSignsStatus(StrEnum):
    FINAL = "final"
    ENTERED_IN_ERROR = "entered_in_error"


def _measured(m: VitalMeasurement) -> Any:
    """A measurement field: optional, within its range (the service checks first, with the
    unit in every message; this keeps a stored set valid whatever wrote it)."""
    spec = MEASUREMENTS[m]
    return Field(default=None, ge=spec.low, le=spec.high, description=f"{spec.label}, {spec.unit}")


class VitalSigns(Entity):
    patient_id: Ref
    visit_id: Ref | None = Field(default=None, description="The outpatient visit it was taken in.")
    admission_id: Ref | None = Field(default=None, description="The admission it was taken in.")
    recorded_by_id: Ref = Field(description="The clinician who recorded it (the caller).")
    recorded_by_role: PerformerRole
    recorded_at: UtcDatetime
    temperature: float | None = _measured(VitalMeasurement.TEMPERATURE)
    pulse: int | None = _measured(VitalMeasurement.PULSE)
    systolic: int | None = _measured(VitalMeasurement.SYSTOLIC)
    diastolic: int | None = _measured(VitalMeasurement.DIASTOLIC)
    respiratory_rate: int | None = _measured(VitalMeasurement.RESPIRATORY_RATE)
    spo2: float | None = _measured(VitalMeasurement.SPO2)
    height: float | None = _measured(VitalMeasurement.HEIGHT)
    weight: float | None = _measured(VitalMeasurement.WEIGHT)
    bmi: float | None = _measured(VitalMeasurement.BMI)
    pain_score: int | None = _measured(VitalMeasurement.PAIN_SCORE)
    comment: ShortText | None = None
    status: VitalSignsStatus = VitalSignsStatus.FINAL
    error_reason: ShortText | None = None

    class Settings:
        name = "vital_signs"
        indexes = [
            # A patient's sets and series, in time order (the series filters status residually).
            pymongo.IndexModel([("patient_id", 1), ("recorded_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("visit_id", 1), ("recorded_at", 1), ("_id", 1)], sparse=True),
            pymongo.IndexModel([("admission_id", 1), ("recorded_at", 1), ("_id", 1)], sparse=True),
            pymongo.IndexModel([("recorded_by_id", 1), ("recorded_at", 1), ("_id", 1)]),
            pymongo.IndexModel([("recorded_at", 1), ("_id", 1)]),
        ]


# The comment and why a set was entered in error are clinical free text: encrypted at rest (the
# measurements stay clear for trends).
VITAL_SIGNS_SEALED = sealed(VitalSigns, "vital_signs", ("comment", "error_reason"), {})


@dataclass(frozen=True)
class VitalSignsPoint:
    """One measurement of one set, as a trend shows it (computed, never stored)."""

    id: PydanticObjectId
    patient_id: PydanticObjectId
    recorded_by_id: PydanticObjectId
    recorded_at: datetime
    measurement: VitalMeasurement
    value: float
    unit: str


_FIELDS = (
    "id",
    "recordedAt",
    "recordedByRole",
    "temperature",
    "pulse",
    "systolic",
    "diastolic",
    "respiratoryRate",
    "spo2",
    "height",
    "weight",
    "bmi",
    "painScore",
    "comment",
    "status",
    "errorReason",
    "createdAt",
    "updatedAt",
    "patientId",
    "visitId",
    "admissionId",
    "recordedById",
    "patient",
    "visit",
    "recordedBy",
)

# Health data for the patient's care team and the patient alone: billing and analysts never.
# Whoever took the readings records them in their own name; only they may mark them in error.
VITAL_SIGNS = declare(
    "VitalSigns",
    VitalSigns,
    row(Class.CLINICAL, _FIELDS, CLINICAL_ROW),
    actions={
        "record": {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
        "markEnteredInError": {R.DOCTOR: grant(S), R.NURSE: grant(S)},
    },
    creates=frozenset({"record"}),
    patient="patient_id",
    clinicians=("recorded_by_id",),
    own=(("recorded_by_id", "staff_id"),),
    refs=("patient_id", "visit_id", "admission_id", "recorded_by_id"),
    cached=True,
    order=(("recorded_at", 1), ("_id", 1)),
)

VITAL_SIGNS_POINT = declare(
    "VitalSignsPoint",
    VitalSignsPoint,
    row(
        Class.CLINICAL,
        ("vitalSignsId", "measurement", "value", "unit", "recordedAt", "recordedById"),
        CLINICAL_ROW,
    ),
    patient="patient_id",
    clinicians=("recorded_by_id",),
    inputs=("vital_signs",),
)
