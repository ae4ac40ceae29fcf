"""Recording vital signs, validating them against physiologic ranges, and reading trends."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

import db
from errors import BadUserInput, Conflict
from models.base import utcnow
from models.outpatient import OutpatientVisit, VisitStatus
from models.patients import Patient
from models.vitals import (
    MEASUREMENTS,
    VitalMeasurement,
    VitalSigns,
    VitalSignsPoint,
    VitalSignsStatus,
)
from services import admissions, common
from services.changes import changed
from services.pagination import Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, camel, instant

BY_TIME: Sort = (("recorded_at", 1), ("_id", 1))
CLOCK_SKEW = timedelta(minutes=1)
"""How far ahead of the server's clock a recording time may be (devices' clocks drift)."""
_ENTERED = [m for m, spec in MEASUREMENTS.items() if not spec.computed]


def _format(value: float) -> str:
    return f"{value:g}"


def check_measurements(data: Mapping[str, Any], problems: Problems) -> None:
    """Every given measurement within its range (all problems at once, units named), at least
    one given, and the pressures the right way round."""
    given = [m for m in _ENTERED if data.get(m.value) is not None]
    problems.require(bool(given), "input", "give at least one measurement")
    for m in given:
        spec, value, field = MEASUREMENTS[m], data[m.value], camel(m.value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.require(False, field, "must be a number")
            continue
        if not math.isfinite(value):
            problems.require(False, field, "must be a finite number")
            continue
        if spec.whole and value != int(value):
            problems.require(False, field, f"must be a whole number of {spec.unit}")
            continue
        problems.require(
            spec.low <= value <= spec.high,
            field,
            f"{_format(value)} {spec.unit} is outside {_format(spec.low)}-"
            f"{_format(spec.high)} {spec.unit}",
        )
    systolic, diastolic = data.get("systolic"), data.get("diastolic")
    if (
        systolic is not None
        and diastolic is not None
        and "systolic" not in problems
        and "diastolic" not in problems
    ):
        problems.require(diastolic < systolic, "diastolic", "must be below the systolic pressure")


def bmi(height_cm: float | None, weight_kg: float | None) -> float | None:
    """Body mass index in kg/m2, to one decimal, from the same set's height and weight."""
    if height_cm is None or weight_kg is None:
        return None
    metres = height_cm / 100
    return round(weight_kg / (metres * metres), 1)


async def check_encounter(data: Mapping[str, Any], problems: Problems) -> None:
    """Exactly one of visit or admission; a visit must exist, be the patient's, and have
    happened; an admission must exist and be the patient's (signs may be charted after
    discharge)."""
    visit_id, admission_id = data.get("visit_id"), data.get("admission_id")
    if not problems.require(
        (visit_id is None) != (admission_id is None),
        "visitId",
        "link it to exactly one visit or admission",
    ):
        return
    if visit_id is None:
        await admissions.check_admission(
            problems, admission_id, data.get("patient_id"), active=False
        )
        return
    visit = await OutpatientVisit.get(visit_id)
    if not problems.require(visit is not None, "visitId", "no such outpatient visit"):
        return
    assert visit is not None
    problems.require(
        visit.patient_id == data.get("patient_id"), "visitId", "is another patient's visit"
    )
    problems.require(
        visit.status != VisitStatus.NO_SHOW, "visitId", "the patient did not come to this visit"
    )


def check_not_future(value: Any, field: str, problems: Problems) -> datetime | None:
    if not isinstance(value, datetime):
        problems.require(False, field, "required")
        return None
    try:
        at = instant(value, field)
    except BadUserInput as problem:
        problems.add(problem)
        return None
    problems.require(at <= utcnow() + CLOCK_SKEW, field, "must not be in the future")
    return at


async def record_vital_signs(data: Mapping[str, Any]) -> VitalSigns:
    """Validate everything first (one error listing every bad field), then insert once."""
    problems = Problems()
    check_measurements(data, problems)
    check_not_future(data.get("recorded_at"), "recordedAt", problems)
    await problems.check(
        common.ensure_exists(Patient, data.get("patient_id"), "patientId", "patient")
    )
    await check_encounter(data, problems)
    computed = bmi(data.get("height"), data.get("weight"))
    if computed is not None and "height" not in problems and "weight" not in problems:
        spec = MEASUREMENTS[VitalMeasurement.BMI]
        reason = (
            f"with this height and weight the BMI would be {_format(computed)} {spec.unit}, "
            f"outside {_format(spec.low)}-{_format(spec.high)} {spec.unit}"
        )
        if not spec.low <= computed <= spec.high:
            problems.require(False, "height", reason)
            problems.require(False, "weight", reason)
    problems.raise_any()
    built = problems.build(VitalSigns, {**data, "bmi": computed})
    problems.raise_any()
    assert built is not None
    return await common.insert(built, "vital signs")


async def get_vital_signs(id: ObjectId) -> VitalSigns:
    return await common.get_or_404(VitalSigns, id, "VitalSigns")


def _window(query: Query, since: datetime | None, until: datetime | None) -> Query:
    if since is not None or until is not None:
        span: dict[str, datetime] = {}
        if since is not None:
            span["$gte"] = instant(since, "from")
        if until is not None:
            span["$lte"] = instant(until, "to")
        if since is not None and until is not None and span["$gte"] > span["$lte"]:
            raise BadUserInput("to: must not be before from", {"to": "must not be before from"})
        query["recorded_at"] = span
    return query


@dataclass(frozen=True)
class VitalSignsFilter:
    patient_id: ObjectId | None = None
    visit_id: ObjectId | None = None
    admission_id: ObjectId | None = None
    recorded_by_id: ObjectId | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_entered_in_error: bool = False


async def list_vital_signs(
    where: VitalSignsFilter, args: PageArgs, scope: Query | None = None
) -> Page[VitalSigns]:
    query: Query = {
        k: v
        for k, v in {
            "patient_id": where.patient_id,
            "visit_id": where.visit_id,
            "admission_id": where.admission_id,
            "recorded_by_id": where.recorded_by_id,
        }.items()
        if v is not None
    }
    if not where.include_entered_in_error:
        query["status"] = VitalSignsStatus.FINAL.value
    return await paginate(
        VitalSigns, both(_window(query, where.since, where.until), scope), BY_TIME, args
    )


async def series(
    patient_id: ObjectId,
    measurement: VitalMeasurement,
    since: datetime | None,
    until: datetime | None,
    args: PageArgs,
    scope: Query | None = None,
) -> tuple[Page[VitalSigns], list[VitalSignsPoint]]:
    """A patient's trend of one measurement, oldest first: the sets that have it (errors left
    out), one page at a time, and their points."""
    query: Query = {
        "patient_id": patient_id,
        "status": VitalSignsStatus.FINAL.value,
        measurement.value: {"$ne": None},
    }
    page = await paginate(VitalSigns, both(_window(query, since, until), scope), BY_TIME, args)
    unit = MEASUREMENTS[measurement].unit
    points = [
        VitalSignsPoint(
            id=doc.id,
            patient_id=doc.patient_id,
            recorded_by_id=doc.recorded_by_id,
            recorded_at=doc.recorded_at,
            measurement=measurement,
            value=float(getattr(doc, measurement.value)),
            unit=unit,
        )
        for doc in page.items
        if doc.id is not None
    ]
    return page, points


async def mark_entered_in_error(id: ObjectId, reason: str) -> VitalSigns:
    """Take a wrong set out of the trend, keeping it (and why) for the record."""
    vitals = await get_vital_signs(id)
    if vitals.status != VitalSignsStatus.FINAL:
        raise BadUserInput(
            "These vital signs are already marked entered in error",
            {"id": "already entered in error"},
        )
    problems = Problems()
    candidate = problems.build(
        VitalSigns,
        {
            **vitals.model_dump(),
            "status": VitalSignsStatus.ENTERED_IN_ERROR,
            "error_reason": reason,
            "updated_at": utcnow(),
        },
    )
    problems.raise_any()
    assert candidate is not None
    result = await db.collection(VitalSigns).update_one(
        {"_id": id, "status": VitalSignsStatus.FINAL.value},
        {
            "$set": {
                "status": VitalSignsStatus.ENTERED_IN_ERROR.value,
                "error_reason": candidate.error_reason,
                "updated_at": candidate.updated_at,
            }
        },
    )
    if result.matched_count == 0:
        raise Conflict("The vital signs changed meanwhile; read them again")
    await changed(candidate, "entered_in_error")
    return candidate
