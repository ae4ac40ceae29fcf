"""De-identifiable aggregates, each one MongoDB aggregation pipeline (two for equipment).

Grouping happens in the database: Python only shapes the grouped rows (ratios, suppression,
ordering), so an aggregate over a million appointments costs what one over ten does in round
trips. Patient counts are distinct ``patient_id``s per group, counted by grouping twice (per
group and patient, then per group) rather than by collecting each group's ids; the ids never
leave the pipeline, so neither the answer nor its cache entry holds any.

Every aggregate goes through the result cache (``cache.results``) under its operation name,
its filter, and the viewer's disclosure scope, so analysts and administrators never share an
answer; suppression is applied before caching.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from beanie import Document
from bson import ObjectId

import db
from cache import results
from crypto.fields import open_value
from errors import BadUserInput
from models.base import utcnow
from models.billing import BillingAccount
from models.clinical import TREATMENT_PLAN_SEALED, TreatmentPlan
from models.equipment import MedicalEquipment
from models.laboratory import LabOrder, LabOrderStatus
from models.outpatient import OutpatientVisit
from models.scheduling import Appointment, AppointmentStatus
from services.buckets import Bucket, Interval, buckets
from services.deidentify import Disclosure, Row, count_suppressed, suppress, withhold
from services.validation import instant, parse_id

Report = dict[str, Any]
Stage = dict[str, Any]

MAX_RANGE = timedelta(days=3 * 365 + 1)
"""The longest filter range: three years, one leap day included."""
MAX_TOP = 50
UNKNOWN_SPECIALTY = "unknown"
"""The specialty of plans whose doctor record is gone."""

_CANCELLED = AppointmentStatus.CANCELLED.value
_NO_SHOW = AppointmentStatus.NO_SHOW.value
_ATTENDED = (AppointmentStatus.COMPLETED.value, AppointmentStatus.CHECKED_IN.value)


# -- the filter ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyticsFilter:
    """``[start, end)`` in UTC, optionally one department."""

    start: datetime
    end: datetime
    department_id: ObjectId | None = None

    def params(self) -> dict[str, Any]:
        """The filter as JSON, for the result-cache key."""
        dept = None if self.department_id is None else str(self.department_id)
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "departmentId": dept}

    def window(self) -> dict[str, datetime]:
        return {"$gte": self.start, "$lt": self.end}

    def appointments(self, **more: Any) -> dict[str, Any]:
        """``$match`` for appointments starting in range: the index's own field order."""
        head = {} if self.department_id is None else {"department_id": self.department_id}
        return {**head, "start_at": self.window(), **more}

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def analytics_filter(
    start: datetime, end: datetime, department_id: str | None, field: str = "filter"
) -> AnalyticsFilter:
    """A checked filter, or ``BAD_USER_INPUT`` naming the offending ``filter.*`` path."""
    since, until = instant(start, f"{field}.from"), instant(end, f"{field}.to")
    if until <= since:
        raise BadUserInput(
            f"{field}.to: must be after {field}.from", {f"{field}.to": "not after from"}
        )
    if until - since > MAX_RANGE:
        raise BadUserInput(
            f"{field}: a range may span at most 3 years",
            {f"{field}.to": "more than 3 years after from"},
        )
    dept = None if department_id is None else parse_id(department_id, f"{field}.departmentId")
    return AnalyticsFilter(since, until, dept)


def check_top(top: int, field: str = "top") -> int:
    if not 1 <= top <= MAX_TOP:
        raise BadUserInput(
            f"{field}: must be between 1 and {MAX_TOP}", {field: f"not in 1..{MAX_TOP}"}
        )
    return top


# -- pipeline pieces -------------------------------------------------------------------------


def count_if(condition: Any) -> Stage:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def _status_is(status: str) -> Any:
    return {"$eq": ["$status", status]}


def _rollup(name: str, accumulator: Stage) -> Stage:
    """The accumulator that folds per-patient partials of measure ``name`` into its group's."""
    (op,) = accumulator
    if op not in ("$sum", "$min", "$max"):
        raise ValueError(f"measure {name}: {op} does not fold over per-patient partials")
    return {op: f"${name}"}


def _per_patient(key: Any, measures: Mapping[str, Stage]) -> Stage:
    """One row per (``key``, patient) with that patient's part of each measure."""
    return {"$group": {"_id": {"key": key, "patient": "$patient_id"}, **measures}}


def _per_key(measures: Mapping[str, Stage]) -> Stage:
    """Rows of ``_per_patient`` folded per key: each row is one distinct patient."""
    folded = {name: _rollup(name, acc) for name, acc in measures.items()}
    return {"$group": {"_id": "$_id.key", **folded, "patients": {"$sum": 1}}}


def with_patients(key: Any, measures: Mapping[str, Stage]) -> list[Stage]:
    """Group by ``key`` with ``measures`` and ``patients``, the distinct ``patient_id``s.

    Two groupings rather than a set of ids per group: a group's memory stays constant however
    many patients it holds (no id array growing to the document limit), and mongomock, whose
    ``$addToSet`` scans the set for every row and whose ``$unwind`` copies the whole array
    per element, stays O(n log n)."""
    return [_per_patient(key, measures), _per_key(measures)]


def with_total(key: Any, measures: Mapping[str, Stage], total: Any, minimum: int) -> list[Stage]:
    """One document: ``groups`` (as ``with_patients``) and ``totals``, the rows to add up
    (``patient_totals``) for the distinct patients per ``total`` (an expression over
    ``_id.key``) of the groups with at least ``minimum`` patients: totals never count a
    withheld group's patients, and a patient seen in several groups counts once."""
    return [_per_patient(key, measures), *total_facet(measures, total, minimum)]


def total_facet(
    measures: Mapping[str, Stage],
    total: Any,
    minimum: int,
    more: Mapping[str, list[Stage]] | None = None,
) -> list[Stage]:
    """``with_total`` after its first stage, over rows ``{_id: {key, patient}, **measures}``
    (one per group and patient, however they were made); ``more`` adds branches to the facet
    (over the same rows), passed through as they come out.

    Whether a patient counts depends on the sizes of all their groups, known only once every
    group is counted, so the ``signatures`` branch reduces patients to the list of groups each
    appears in (per ``total``; short), counted per distinct list: one row per combination of
    groups patients actually have (at most one per patient), however many rows were grouped.
    ``$push`` order is unspecified on a server, so one set may show up as several lists: that
    costs rows, never correctness. The last stage keeps the lists holding a visible group and
    drops the lists themselves, so no patient's groups leave the pipeline."""
    shown = {  # the keys of the visible groups
        "$map": {
            "input": {
                "$filter": {
                    "input": "$groups",
                    "as": "group",
                    "cond": {"$gte": ["$$group.patients", minimum]},
                }
            },
            "as": "group",
            "in": "$$group._id",
        }
    }
    seen_in_shown = {
        "$filter": {
            "input": "$$signature._id.keys",
            "as": "key",
            "cond": {"$in": ["$$key", "$$shown"]},
        }
    }
    counted = {
        "$filter": {
            "input": "$signatures",
            "as": "signature",
            "cond": {"$gt": [{"$size": seen_in_shown}, 0]},
        }
    }
    extra = dict(more or {})
    return [
        {
            "$facet": {
                **extra,
                "groups": [_per_key(measures)],
                "signatures": [
                    {
                        "$group": {
                            "_id": {"total": total, "patient": "$_id.patient"},
                            "keys": {"$push": "$_id.key"},
                        }
                    },
                    {
                        "$group": {
                            "_id": {"total": "$_id.total", "keys": "$keys"},
                            "patients": {"$sum": 1},
                        }
                    },
                ],
            }
        },
        {
            "$project": {
                **{name: 1 for name in extra},
                "groups": 1,
                "totals": {
                    "$let": {
                        "vars": {"shown": shown},
                        "in": {
                            "$map": {
                                "input": counted,
                                "as": "signature",
                                "in": {
                                    "total": "$$signature._id.total",
                                    "patients": "$$signature.patients",
                                },
                            }
                        },
                    }
                },
            }
        },
    ]


def patient_totals(rows: Iterable[Row]) -> dict[Any, int]:
    """The ``totals`` rows of ``with_total`` added up per total key."""
    out: dict[Any, int] = {}
    for row in rows:
        out[row["total"]] = out.get(row["total"], 0) + row["patients"]
    return out


def bucket_of(field: str, starts: list[datetime]) -> Any:
    """The greatest of the ascending ``starts`` at or before ``field``, by bisection: what
    ``$bucket`` keys on, as an expression a compound group key can hold (O(log n) per row)."""
    if len(starts) == 1:
        return starts[0]
    middle = len(starts) // 2
    return {
        "$cond": [
            {"$lt": [field, starts[middle]]},
            bucket_of(field, starts[:middle]),
            bucket_of(field, starts[middle:]),
        ]
    }


async def aggregate(model: type[Document], pipeline: list[Stage]) -> list[dict[str, Any]]:
    # Large groupings may spill to disk on servers before 6.0 (where it became the default).
    cursor = db.collection(model).aggregate(pipeline, allowDiskUse=True)
    rows: list[dict[str, Any]] = await cursor.to_list(None)
    return rows


def id_text(value: Any) -> str | None:
    return None if value is None else str(value)


def ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _total(
    groups: list[Row], patients: int, measures: Iterable[str], disclosure: Disclosure
) -> Row:
    """A total over the visible ``groups``: sums of ``measures`` and the given ``patients``.

    Withheld itself when it is small, or when groups exist but every one was withheld (a total
    of nothing would misread as "no activity")."""
    names = tuple(measures)
    visible = [g for g in groups if not g["suppressed"]]
    row: Row = {name: sum(g[name] for g in visible) for name in names}
    row["patients"] = patients
    if disclosure.hides(patients) or (groups and not visible):
        return withhold(row, names)
    return {**row, "suppressed": False}


async def report(
    name: str,
    filt: AnalyticsFilter,
    disclosure: Disclosure,
    inputs: tuple[str, ...],
    compute: Callable[[], Awaitable[Report]],
    **args: Any,
) -> Report:
    """``compute`` through the result cache; adds ``computed_at`` and ``cached``."""

    async def run() -> Report:
        body = await compute()
        return {**body, "computed_at": utcnow().isoformat()}

    value, hit = await results.remember(
        operation=f"analytics.{name}",
        params={**filt.params(), **args},
        scope=disclosure.scope,
        inputs=inputs,
        compute=run,
    )
    return {**value, "cached": hit}


# -- the aggregates --------------------------------------------------------------------------

DOCTOR_MEASURES = ("appointments", "completed", "cancelled", "no_shows")


async def appointments_per_doctor(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per doctor: non-cancelled, completed, cancelled and no-show appointments, and patients
    (of any status). Visible groups by appointments desc then doctor id; withheld ones last, by
    doctor id, so their position tells nothing about their size."""

    async def compute() -> Report:
        rows = await aggregate(
            Appointment,
            [
                {"$match": filt.appointments()},
                *with_patients(
                    "$doctor_id",
                    {
                        "appointments": count_if({"$ne": ["$status", _CANCELLED]}),
                        "completed": count_if(_status_is(AppointmentStatus.COMPLETED.value)),
                        "cancelled": count_if(_status_is(_CANCELLED)),
                        "no_shows": count_if(_status_is(_NO_SHOW)),
                    },
                ),
            ],
        )
        groups = suppress(
            (
                {"doctor_id": str(r["_id"]), "patients": r["patients"]}
                | {m: r[m] for m in DOCTOR_MEASURES}
                for r in rows
            ),
            DOCTOR_MEASURES,
            disclosure,
        )
        groups.sort(key=lambda g: (g["suppressed"], -(g["appointments"] or 0), g["doctor_id"]))
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report("appointmentsPerDoctor", filt, disclosure, ("appointments",), compute)


def time_buckets(
    filt: AnalyticsFilter, interval: Interval, zone: ZoneInfo, limit: int
) -> list[Bucket]:
    """The buckets of ``appointments_over_time``; too many is ``BAD_USER_INPUT`` on ``filter``."""
    return buckets(filt.start, filt.end, interval, zone, limit=limit, field="filter")


async def appointments_over_time(
    filt: AnalyticsFilter,
    interval: Interval,
    disclosure: Disclosure,
    zone: ZoneInfo,
    max_buckets: int,
) -> Report:
    """Non-cancelled appointments starting in ``[from, to)`` per local day, ISO week or month;
    empty buckets are listed with zeros."""
    spans = time_buckets(filt, interval, zone, max_buckets)  # refused before any cache lookup

    async def compute() -> Report:
        rows = await aggregate(
            Appointment,
            [
                # Every match lies in a bucket: they cover [from, to) and the match is in it.
                {"$match": filt.appointments(status={"$ne": _CANCELLED})},
                *with_patients(
                    bucket_of("$start_at", [b.start for b in spans]),
                    {"appointments": {"$sum": 1}},
                ),
            ],
        )
        found = {utc(r["_id"]): r for r in rows}
        groups = suppress(
            (
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "label": b.label,
                    "appointments": found.get(b.start, {}).get("appointments", 0),
                    "patients": found.get(b.start, {}).get("patients", 0),
                }
                for b in spans
            ),
            ("appointments",),
            disclosure,
        )
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report(
        "appointmentsOverTime",
        filt,
        disclosure,
        ("appointments",),
        compute,
        interval=interval.value,
        zone=zone.key,
    )


CONDITION_MEASURES = ("plans",)


def _condition_rank(row: Row) -> tuple[Any, ...]:
    # Withheld rows rank after the visible ones by name alone: their order would leak sizes.
    code = row["code"]
    return (row["suppressed"], -(row["patients"] or 0), code is None, code or "", row["folded"])


TREATMENTS = TREATMENT_PLAN_SEALED.collection


async def _spellings(prefix: list[Stage], specialty: Any) -> dict[tuple[str, Any], tuple[Any, str]]:
    """(specialty, condition key) -> (code, smallest spelling of the description): one sealed
    diagnosis opened per distinct spelling (``description_key``), not one per plan."""
    group = {"specialty": specialty, "condition": "$diagnosis_key", "spelling": "$description_key"}
    pipeline = [
        *prefix,
        {"$group": {"_id": group, "plan": {"$first": "$_id"}, "sealed": {"$first": "$diagnosis"}}},
    ]
    found: dict[tuple[str, Any], tuple[Any, str]] = {}
    for row in await aggregate(TreatmentPlan, pipeline):
        diagnosis = open_value(TREATMENTS, "diagnosis", row["plan"], row["sealed"])
        key = (row["_id"]["specialty"], row["_id"].get("condition"))
        spelling = (diagnosis.get("code"), diagnosis["description"])
        if key not in found or spelling[1] < found[key][1]:
            found[key] = spelling
    return found


async def conditions_by_specialty(
    filt: AnalyticsFilter, top: int, disclosure: Disclosure
) -> Report:
    """The ``top`` conditions per specialty of the plans' doctors, by distinct patients."""

    async def compute() -> Report:
        pipeline: list[Stage] = [
            {"$addFields": {"_at": {"$ifNull": ["$start_date", "$created_at"]}}},
            {"$match": {"_at": filt.window()}},
            {
                "$lookup": {
                    "from": "doctors",
                    "localField": "doctor_id",
                    "foreignField": "_id",
                    "as": "_doctor",
                }
            },
            {"$unwind": {"path": "$_doctor", "preserveNullAndEmptyArrays": True}},
        ]
        if filt.department_id is not None:
            pipeline.append({"$match": {"_doctor.department_id": filt.department_id}})
        specialty_of = {"$ifNull": ["$_doctor.specialty", UNKNOWN_SPECIALTY]}
        # Diagnoses are encrypted at rest: plans group by ``diagnosis_key``, a keyed hash of the
        # code (uncoded: the case-folded description), and each group's spellings are opened
        # after grouping (``_spellings``).
        condition = {"specialty": specialty_of, "condition": "$diagnosis_key"}
        measures = {"plans": {"$sum": 1}}
        stages = with_total(condition, measures, "$_id.key.specialty", disclosure.minimum)
        out = (await aggregate(TreatmentPlan, pipeline + stages))[0]
        names = await _spellings(pipeline, specialty_of)
        totals = patient_totals(out["totals"])
        rows: dict[str, list[Row]] = {}
        for r in out["groups"]:
            key = r["_id"]
            code, description = names[(key["specialty"], key.get("condition"))]
            rows.setdefault(key["specialty"], []).append(
                {
                    "code": code,
                    "description": description,
                    "folded": description.lower(),
                    "plans": r["plans"],
                    "patients": r["patients"],
                }
            )
        groups: list[Row] = []
        suppressed = 0
        for specialty in sorted(rows):
            shown = sorted(
                suppress(rows[specialty], CONDITION_MEASURES, disclosure), key=_condition_rank
            )
            any_visible = any(not c["suppressed"] for c in shown)
            conditions = [{k: v for k, v in c.items() if k != "folded"} for c in shown[:top]]
            suppressed += count_suppressed(conditions)
            patients = totals.get(specialty, 0)
            group: Row = {"specialty": specialty, "conditions": conditions, "patients": patients}
            hidden = disclosure.hides(patients) or not any_visible
            groups.append(withhold(group, ()) if hidden else {**group, "suppressed": False})
        return {"groups": groups, **disclosure.header(suppressed)}

    return await report(
        "conditionsBySpecialty",
        filt,
        disclosure,
        ("treatment_plans", "doctors"),
        compute,
        top=top,
    )


async def _per_department(
    filt: AnalyticsFilter,
    disclosure: Disclosure,
    match: Mapping[str, Any],
    measures: Mapping[str, Any],
) -> tuple[list[Row], int]:
    """Appointments matching ``match`` grouped by department with ``measures``, and the
    distinct patients of the groups this viewer may see."""
    out = (
        await aggregate(
            Appointment,
            [
                {"$match": filt.appointments(**match)},
                *with_total("$department_id", measures, None, disclosure.minimum),
            ],
        )
    )[0]
    rows = [
        {"department_id": id_text(r["_id"]), "patients": r["patients"]}
        | {m: r[m] for m in measures}
        for r in out["groups"]
    ]
    rows.sort(key=lambda r: r["department_id"] or "")
    return rows, patient_totals(out["totals"]).get(None, 0)


async def appointments_per_patient(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Non-cancelled appointments per distinct patient, per department and overall."""

    async def compute() -> Report:
        rows, patients = await _per_department(
            filt, disclosure, {"status": {"$ne": _CANCELLED}}, {"appointments": {"$sum": 1}}
        )
        groups = suppress(
            ({**r, "average": ratio(r["appointments"], r["patients"])} for r in rows),
            ("appointments", "average"),
            disclosure,
        )
        overall = _total(groups, patients, ("appointments",), disclosure)
        overall = {
            **overall,
            "department_id": None,
            "average": ratio(overall["appointments"], overall["patients"]),
        }
        return {
            "groups": groups,
            "overall": overall,
            **disclosure.header(count_suppressed(groups)),
        }

    return await report("appointmentsPerPatient", filt, disclosure, ("appointments",), compute)


async def no_show_rate(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """No-shows / (no-shows + attended), per department and overall; attended = completed or
    checked in. Scheduled and cancelled appointments are not counted."""

    async def compute() -> Report:
        rows, patients = await _per_department(
            filt,
            disclosure,
            {"status": {"$in": [_NO_SHOW, *_ATTENDED]}},
            {
                "no_shows": count_if(_status_is(_NO_SHOW)),
                "attended": count_if({"$ne": ["$status", _NO_SHOW]}),
            },
        )

        def rate(row: Row) -> float | None:
            if row["no_shows"] is None:
                return None
            return ratio(row["no_shows"], row["no_shows"] + row["attended"])

        measures = ("no_shows", "attended")
        groups = suppress(rows, (*measures, "rate"), disclosure)
        groups = [{**g, "rate": rate(g)} for g in groups]
        overall = _total(groups, patients, measures, disclosure)
        overall = {**overall, "department_id": None, "rate": rate(overall)}
        return {
            "groups": groups,
            "overall": overall,
            **disclosure.header(count_suppressed(groups)),
        }

    return await report("noShowRate", filt, disclosure, ("appointments",), compute)


async def equipment_utilisation(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per department of the device (where it is now): devices, minutes booked on them by
    non-cancelled, non-no-show appointments starting in range, and booked / available."""

    async def compute() -> Report:
        where = {} if filt.department_id is None else {"department_id": filt.department_id}
        devices = await aggregate(
            MedicalEquipment,
            [{"$match": where}, {"$group": {"_id": "$department_id", "devices": {"$sum": 1}}}],
        )
        booking: list[Stage] = [
            {
                "$match": {
                    "start_at": filt.window(),
                    "equipment_id": {"$ne": None},
                    "status": {"$nin": [_CANCELLED, _NO_SHOW]},
                }
            },
            {
                "$lookup": {
                    "from": "equipment",
                    "localField": "equipment_id",
                    "foreignField": "_id",
                    "as": "_device",
                }
            },
            {"$unwind": "$_device"},
        ]
        if filt.department_id is not None:
            booking.append({"$match": {"_device.department_id": filt.department_id}})
        booking += with_patients(
            "$_device.department_id",
            {"booked_ms": {"$sum": {"$subtract": ["$end_at", "$start_at"]}}},
        )
        booked = {r["_id"]: r for r in await aggregate(Appointment, booking)}
        counts = {r["_id"]: r["devices"] for r in devices}
        rows = []
        for dept in sorted(set(counts) | set(booked), key=str):
            use = booked.get(dept, {})
            available = counts.get(dept, 0) * filt.minutes
            minutes = int(use.get("booked_ms", 0)) // 60_000
            rows.append(
                {
                    "department_id": str(dept),
                    "devices": counts.get(dept, 0),
                    "available_minutes": available,
                    "booked_minutes": minutes,
                    "utilisation": ratio(minutes, available),
                    "patients": use.get("patients", 0),
                }
            )
        groups = suppress(rows, ("booked_minutes", "utilisation"), disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report(
        "equipmentUtilisation", filt, disclosure, ("appointments", "equipment"), compute
    )


def _month_of(field: str, months: list[Bucket]) -> Any:
    """The local month label of the instant in ``field``, by comparisons with its boundaries."""
    branches = [{"case": {"$lt": [field, b.end]}, "then": b.label} for b in months[:-1]]
    if not branches:
        return months[-1].label
    return {"$switch": {"branches": branches, "default": months[-1].label}}


def round_half_up(value: float) -> int:
    # Shares are float quotients; a hair of tolerance keeps an exact .5 from rounding down.
    return math.floor(value + 0.5 + 1e-9)


async def revenue(filt: AnalyticsFilter, disclosure: Disclosure, zone: ZoneInfo) -> Report:
    """Charges created in range per (charge department, local month, account currency), and
    the unpaid part of them: each account's unpaid balance spread over its charges by amount."""
    months = buckets(filt.start, filt.end, Interval.MONTH, zone)

    async def compute() -> Report:
        charge: dict[str, Any] = {"created_at": filt.window()}
        if filt.department_id is not None:
            charge["department_id"] = filt.department_id
        amount, total = "$charges.amount", "$total_charged"
        rows = await aggregate(
            BillingAccount,
            [
                {"$match": {"charges": {"$elemMatch": charge}}},
                {"$addFields": {"_unpaid": {"$max": [{"$subtract": [total, "$total_paid"]}, 0]}}},
                {"$unwind": "$charges"},
                {"$match": {f"charges.{k}": v for k, v in charge.items()}},
                *with_patients(
                    {
                        "department_id": {"$ifNull": ["$charges.department_id", None]},
                        "month": _month_of("$charges.created_at", months),
                        "currency": "$currency",
                    },
                    {
                        "charged": {"$sum": amount},
                        "outstanding": {
                            "$sum": {
                                "$cond": [
                                    {"$gt": [total, 0]},
                                    {"$divide": [{"$multiply": [amount, "$_unpaid"]}, total]},
                                    0,
                                ]
                            }
                        },
                    },
                ),
            ],
        )
        shaped = [
            {
                "department_id": id_text(r["_id"].get("department_id")),
                "month": r["_id"]["month"],
                "currency": r["_id"]["currency"],
                "charged": r["charged"],
                "outstanding": round_half_up(r["outstanding"]),
                "patients": r["patients"],
            }
            for r in rows
        ]
        shaped.sort(key=lambda r: (r["month"], r["department_id"] or "", r["currency"]))
        groups = suppress(shaped, ("charged", "outstanding"), disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report("revenue", filt, disclosure, ("billing_accounts",), compute, zone=zone.key)


# -- durations: medians and 90th percentiles -------------------------------------------------

QUANTILES = (("median_minutes", 0.5), ("p90_minutes", 0.9))
EXACT_BELOW_MINUTES = 1000
"""Durations shorter than this are binned to the whole minute; longer ones to three
significant figures."""


def binned_minutes(ms: Any) -> Any:
    """The histogram bin of a duration of ``ms`` milliseconds, in minutes: whole minutes below
    1,000 (rounded half up), then three significant figures (steps of 10 minutes below 10,000,
    100 below 100,000, ...; 10^7 from 10^9 minutes). Some 1,000 + 900 per decade bins cover
    every duration a date can hold (under 7,000), so no group can outgrow a document."""

    def rounded(step: int) -> Any:
        whole = {"$floor": {"$add": [{"$divide": [ms, 60_000 * step]}, 0.5]}}
        return whole if step == 1 else {"$multiply": [whole, step]}

    digits = len(str(EXACT_BELOW_MINUTES)) - 1
    branches = [
        {"case": {"$lt": [ms, 10**k * 60_000]}, "then": rounded(10 ** (k - digits))}
        for k in range(digits, 10)
    ]
    return {"$switch": {"branches": branches, "default": rounded(10 ** (10 - digits))}}


def durations(key: Any, labels: Mapping[str, Any] | None = None) -> list[Stage]:
    """Rows ``{_id: {key, m}, n, patients, **labels}``: per ``key``, a histogram of the
    durations in ``_ms`` (milliseconds; negative ones, which only bad clocks make, are left out)
    in ``binned_minutes`` bins, ``n`` durations per bin, and ``patients`` adding up, over a
    key's bins, to its distinct ``patient_id``s.

    Why a histogram: neither ``$percentile``/``$median`` (MongoDB 7) nor ``$reduce``,
    ``$sortArray`` or ``$setWindowFields`` exist in mongomock, so the database cannot pick
    the quantiles itself on both stores. Pushing each group's sorted durations would work on
    both, but a group's array would grow with the data up to the 16 MB document limit (one
    common test over three years). Bins are bounded (``binned_minutes``) whatever the data,
    so every grouped document stays small; Python reads the quantiles off the sorted bins
    (``quantile``): work per bin, never per duration, and no duration leaves the service.

    Distinct patients come from the same pipeline (one snapshot, so a group's count and its
    patients agree): per (key, patient) the bins that patient has are collected (at most the
    bin count), and only the lowest of them counts the patient."""
    more = dict(labels or {})
    again = {name: {"$max": f"${name}"} for name in more}
    return [
        {"$match": {"_ms": {"$gte": 0}}},
        {
            "$group": {
                "_id": {"key": key, "patient": "$patient_id", "m": binned_minutes("$_ms")},
                "n": {"$sum": 1},
                **{name: {"$max": value} for name, value in more.items()},
            }
        },
        {
            "$group": {
                "_id": {"key": "$_id.key", "patient": "$_id.patient"},
                "low": {"$min": "$_id.m"},
                "bins": {"$push": {"m": "$_id.m", "n": "$n"}},
                **again,
            }
        },
        {"$unwind": "$bins"},
        {
            "$group": {
                "_id": {"key": "$_id.key", "m": "$bins.m"},
                "n": {"$sum": "$bins.n"},
                "patients": count_if({"$eq": ["$bins.m", "$low"]}),
                **again,
            }
        },
    ]


@dataclass
class Histogram:
    """One group's bins (minutes, durations) and distinct patients, with its labels."""

    bins: list[tuple[float, int]] = field(default_factory=list)
    patients: int = 0
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(n for _, n in self.bins)


def histograms(rows: Iterable[Row]) -> dict[Any, Histogram]:
    """``durations`` rows per key, bins in ascending order."""
    out: dict[Any, Histogram] = {}
    for row in rows:
        group = out.setdefault(row["_id"]["key"], Histogram())
        group.bins.append((float(row["_id"]["m"]), int(row["n"])))
        group.patients += int(row["patients"])
        for name, value in row.items():
            if name not in ("_id", "n", "patients") and value is not None:
                group.labels[name] = max(group.labels.get(name, value), value)
    for group in out.values():
        group.bins.sort()
    return out


def quantile(bins: list[tuple[float, int]], p: float) -> float | None:
    """The ``p`` quantile of the sorted histogram ``bins`` by linear interpolation between the
    closest ranks (numpy's default, Excel's PERCENTILE.INC, ``statistics.quantiles(method=
    "inclusive")``): with the n values sorted as x[0..n-1], h = (n - 1) p and the answer is
    x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]); so the median of an even count
    is the mean of the middle two. Rounded to 0.01 minute."""
    total = sum(n for _, n in bins)
    if total == 0:
        return None
    h = (total - 1) * p
    low = math.floor(h)
    frac = h - low

    def at(rank: int) -> float:
        seen = 0
        for value, n in bins:
            seen += n
            if rank < seen:
                return value
        return bins[-1][0]

    a = at(low)
    b = at(low + 1) if frac else a
    return round(a + frac * (b - a), 2)


def _duration_row(group: Histogram, count: str) -> Row:
    row: Row = {count: group.count, "patients": group.patients}
    for name, p in QUANTILES:
        row[name] = quantile(group.bins, p)
    return row


TURNAROUND_MEASURES = ("tests", *(name for name, _ in QUANTILES))
WAITING_MEASURES = ("visits", *(name for name, _ in QUANTILES))

_FIRST_VERIFIED = {
    # The first verification: a correction re-verifies later, but the result was out by then.
    # The status history is appended in time order; orders without one fall back on the field.
    "$ifNull": [
        {
            "$let": {
                "vars": {
                    "first": {
                        "$arrayElemAt": [
                            {
                                "$filter": {
                                    "input": {"$ifNull": ["$status_history", []]},
                                    "as": "step",
                                    "cond": {
                                        "$eq": ["$$step.status", LabOrderStatus.VERIFIED.value]
                                    },
                                }
                            },
                            0,
                        ]
                    }
                },
                "in": "$$first.at",
            }
        },
        "$verified_at",
    ]
}


async def lab_turnaround(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per catalogue test: minutes from the order to its first verification, for the tests of
    orders placed in ``[from, to)`` that have been verified (median, 90th percentile, count).
    A department is the ordering doctor's (their current one). Groups by test code."""

    async def compute() -> Report:
        pipeline: list[Stage] = [
            {"$match": {"ordered_at": filt.window(), "verified_at": {"$ne": None}}},
        ]
        if filt.department_id is not None:
            pipeline += [
                {
                    "$lookup": {
                        "from": "doctors",
                        "localField": "ordering_doctor_id",
                        "foreignField": "_id",
                        "as": "_doctor",
                    }
                },
                {"$match": {"_doctor.department_id": filt.department_id}},
            ]
        pipeline += [
            {
                "$project": {
                    "patient_id": 1,
                    "tests": {
                        "$map": {
                            "input": "$tests",
                            "as": "test",
                            "in": {
                                "test_id": "$$test.test_id",
                                "code": "$$test.code",
                                "name": "$$test.name",
                            },
                        }
                    },
                    "_ms": {"$subtract": [_FIRST_VERIFIED, "$ordered_at"]},
                }
            },
            {"$unwind": "$tests"},
            *durations("$tests.test_id", {"code": "$tests.code", "name": "$tests.name"}),
        ]
        found = histograms(await aggregate(LabOrder, pipeline))
        rows = [
            {
                "test_id": str(key),
                "code": group.labels.get("code", ""),
                "name": group.labels.get("name", ""),
                **_duration_row(group, "tests"),
            }
            for key, group in found.items()
        ]
        rows.sort(key=lambda r: (r["code"], r["test_id"]))  # names only: sizes stay unsaid
        groups = suppress(rows, TURNAROUND_MEASURES, disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report("labTurnaround", filt, disclosure, ("lab_orders", "doctors"), compute)


async def outpatient_waiting_time(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per clinic (the visit's department): minutes from check-in to being seen (the
    consultation's start) for visits checked in in ``[from, to)`` and seen (median, 90th
    percentile, count). Visits never seen (left, no-show, still waiting) are not counted."""

    async def compute() -> Report:
        head = {} if filt.department_id is None else {"department_id": filt.department_id}
        pipeline: list[Stage] = [
            {"$match": {**head, "checked_in_at": filt.window(), "seen_at": {"$ne": None}}},
            {
                "$project": {
                    "patient_id": 1,
                    "department_id": 1,
                    "_ms": {"$subtract": ["$seen_at", "$checked_in_at"]},
                }
            },
            *durations("$department_id"),
        ]
        found = histograms(await aggregate(OutpatientVisit, pipeline))
        rows = [
            {"department_id": id_text(key), **_duration_row(group, "visits")}
            for key, group in found.items()
        ]
        rows.sort(key=lambda r: r["department_id"] or "")
        groups = suppress(rows, WAITING_MEASURES, disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report("outpatientWaitingTime", filt, disclosure, ("outpatient_visits",), compute)
