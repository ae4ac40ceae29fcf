"""De-identifiable aggregates of inpatient care, theatres and the emergency department.

The same rules as ``services.analytics``: grouping happens in MongoDB (one aggregation pipeline
per report, plus a read of the wards or theatres the groups are named after), patient ids never
leave the pipeline (distinct patients are counted by grouping twice), small groups are withheld
for analysts before the answer is cached, and every answer goes through the result cache under
the viewer's disclosure scope.

Decisions a reader of the numbers needs:

- **Bed occupancy** counts each bed stay of an admission (``Admission.stays``) in the ward it
  was in, so a transfer splits the stay at the transfer's instant; a stay still open counts up
  to the moment the report is computed (a cached answer is as old as ``computedAt`` says).
  Available bed-hours are the ward's ``capacity`` (the beds it is staffed for) times the hours
  of the bucket inside ``[from, to)``: beds physically present but unstaffed are not available,
  and the bed count is already on the bed board. Capacity is today's: wards keep no history of
  it. The average daily census is the mean number of occupied beds over those hours (occupied
  bed-days / days), not a midnight head count.
- **Length of stay** is admission to discharge, for admissions discharged in ``[from, to)``,
  grouped by the department and ward of discharge (the admission's current ones).
- **Theatre utilisation** counts the non-cancelled bookings starting in ``[from, to)`` against
  the theatre's session time: ``SESSION_START``-``SESSION_END`` on weekdays of the facility's
  time zone. Cases out of session count too, so utilisation can exceed 1. Turnover is the gap
  from one case's out-of-theatre to the next case's in-theatre in the same theatre on the same
  local day; a late start is an in-theatre more than ``LATE_START_GRACE`` after the booked start.
- **Emergency times** count visits arriving in ``[from, to)`` per ED department and current
  (latest) triage level; time to triage runs to the first triage, time to disposition to the
  disposition. The left-without-being-seen rate is over all arrivals.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from models.admissions import Admission, AdmissionStatus
from models.base import utcnow
from models.emergency import DispositionKind, EmergencyVisit
from models.theatre import OperatingTheatre, SurgeryBooking, SurgeryStatus
from models.wards import Ward
from services.analytics import (
    QUANTILES,
    AnalyticsFilter,
    Histogram,
    Report,
    Stage,
    aggregate,
    binned_minutes,
    bucket_of,
    count_if,
    durations,
    histograms,
    id_text,
    patient_totals,
    quantile,
    ratio,
    report,
    time_buckets,
    total_facet,
    utc,
    with_patients,
)
from services.buckets import Bucket, Interval, buckets
from services.deidentify import Disclosure, Row, count_suppressed, suppress, withhold

MS_PER_HOUR = 3_600_000
MINUTES_PER_DAY = 1440
SESSION_START = time(8)
SESSION_END = time(18)
"""A theatre's session on weekdays, facility time: what its available minutes are."""
LATE_START_GRACE = timedelta(minutes=5)
"""A case is a late start when it enters the theatre more than this after its booked start."""
SURGICAL_RECORDS = "surgical_records"


def _hours(ms: float) -> float:
    return round(ms / MS_PER_HOUR, 2)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# -- bed occupancy ---------------------------------------------------------------------------

OCCUPANCY_MEASURES = ("occupied_bed_hours", "occupancy", "average_daily_census")


def _stay_overlaps(spans: list[Bucket], now: datetime, filt: AnalyticsFilter) -> list[Stage]:
    """Per unwound stay: ``_parts``, its milliseconds in each bucket (inside ``[from, to)``),
    only the buckets it touches. An open stay runs to ``now`` (or its admission's discharge,
    should a closed admission hold an open stay)."""
    ends = {"$ifNull": ["$stays.to_at", {"$ifNull": ["$discharged_at", now]}]}
    since = {"$max": ["$stays.from_at", filt.start]}
    until = {"$min": [ends, filt.end]}
    bounds = [{"start": b.start, "end": b.end} for b in spans]
    part = {
        "start": "$$bucket.start",
        "ms": {
            "$subtract": [
                {"$min": ["$_until", "$$bucket.end"]},
                {"$max": ["$_since", "$$bucket.start"]},
            ]
        },
    }
    parts = {"$map": {"input": {"$literal": bounds}, "as": "bucket", "in": part}}
    return [
        {
            "$project": {
                "patient_id": 1,
                "ward_id": "$stays.ward_id",
                "_since": since,
                "_until": until,
            }
        },
        {
            "$project": {
                "patient_id": 1,
                "ward_id": 1,
                "_parts": {
                    "$filter": {"input": parts, "as": "part", "cond": {"$gt": ["$$part.ms", 0]}}
                },
            }
        },
    ]


async def bed_occupancy(
    filt: AnalyticsFilter,
    interval: Interval,
    disclosure: Disclosure,
    zone: ZoneInfo,
    max_buckets: int,
) -> Report:
    """Per ward and local day, ISO week or month: occupied bed-hours of the admissions' bed
    stays clipped to the bucket and to ``[from, to)``, against capacity x hours."""
    spans = time_buckets(filt, interval, zone, max_buckets)  # refused before any cache lookup

    async def compute() -> Report:
        now = utcnow()
        stay: dict[str, Any] = {
            "stays.from_at": {"$lt": filt.end},
            "$or": [{"stays.to_at": None}, {"stays.to_at": {"$gt": filt.start}}],
        }
        if filt.department_id is not None:
            stay["stays.department_id"] = filt.department_id
        rows = await aggregate(
            Admission,
            [
                # Admissions overlapping the range (the index on admitted_at), then their stays.
                {
                    "$match": {
                        "admitted_at": {"$lt": filt.end},
                        "$or": [{"discharged_at": None}, {"discharged_at": {"$gt": filt.start}}],
                    }
                },
                {"$project": {"patient_id": 1, "stays": 1, "discharged_at": 1}},
                {"$unwind": "$stays"},
                {"$match": stay},
                *_stay_overlaps(spans, now, filt),
                {"$unwind": "$_parts"},
                *with_patients(
                    {"ward": "$ward_id", "start": "$_parts.start"},
                    {"ms": {"$sum": "$_parts.ms"}},
                ),
            ],
        )
        found = {(r["_id"]["ward"], utc(r["_id"]["start"])): r for r in rows}
        wards = await _wards(filt, {ward for ward, _ in found})
        groups: list[Row] = []
        suppressed = 0
        for ward in wards:
            cells = []
            for b in spans:
                span_ms = (min(b.end, filt.end) - max(b.start, filt.start)).total_seconds() * 1000
                hit = found.get((ward["_id"], b.start), {})
                occupied = float(hit.get("ms", 0))
                capacity = int(ward.get("capacity") or 0)
                cells.append(
                    {
                        "start": b.start.isoformat(),
                        "end": b.end.isoformat(),
                        "label": b.label,
                        "available_bed_hours": _hours(capacity * span_ms),
                        "occupied_bed_hours": _hours(occupied),
                        "occupancy": _rounded(ratio(occupied, capacity * span_ms), 4),
                        "average_daily_census": _rounded(ratio(occupied, span_ms), 2),
                        "patients": int(hit.get("patients", 0)),
                    }
                )
            shown = suppress(cells, OCCUPANCY_MEASURES, disclosure)
            suppressed += count_suppressed(shown)
            groups.append(
                {
                    "ward_id": str(ward["_id"]),
                    "ward_code": ward.get("code", ""),
                    "ward_name": ward.get("name", ""),
                    "department_id": id_text(ward.get("department_id")),
                    "capacity": int(ward.get("capacity") or 0),
                    "buckets": shown,
                }
            )
        return {"groups": groups, **disclosure.header(suppressed)}

    return await report(
        "bedOccupancy",
        filt,
        disclosure,
        ("admissions", "wards"),
        compute,
        interval=interval.value,
        zone=zone.key,
    )


async def _wards(filt: AnalyticsFilter, seen: Iterable[Any]) -> list[dict[str, Any]]:
    """The wards a report lists: the active ones in the filter's department, and every ward
    named by the data (inactive since, or moved), by code."""
    scope: dict[str, Any] = {"active": True}
    if filt.department_id is not None:
        scope["department_id"] = filt.department_id
    rows = await aggregate(
        Ward,
        [
            {"$match": {"$or": [scope, {"_id": {"$in": list(seen)}}]}},
            {"$project": {"code": 1, "name": 1, "department_id": 1, "capacity": 1}},
        ],
    )
    return sorted(rows, key=lambda w: (w.get("code", ""), str(w["_id"])))


# -- length of stay --------------------------------------------------------------------------

LOS_MEASURES = ("admissions", "mean_days", "median_days", "p90_days")


def _days(minutes: float | None) -> float | None:
    return None if minutes is None else round(minutes / MINUTES_PER_DAY, 2)


def _stay_row(bins: list[tuple[float, int]], admissions: int, ms: float, patients: int) -> Row:
    return {
        "admissions": admissions,
        "mean_days": round(ms / admissions / (MINUTES_PER_DAY * 60_000), 2) if admissions else None,
        "median_days": _days(quantile(bins, 0.5)),
        "p90_days": _days(quantile(bins, 0.9)),
        "patients": patients,
    }


async def length_of_stay(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Days from admission to discharge of admissions discharged in ``[from, to)``, per
    department of discharge and, within it, per ward of discharge.

    A department's figures are taken over its visible wards only (bins, counts and sums merged
    in Python, distinct patients from the pipeline's ``totals``), so a withheld ward can never
    be derived by subtraction."""

    async def compute() -> Report:
        match: dict[str, Any] = {
            "status": AdmissionStatus.DISCHARGED.value,
            "discharged_at": filt.window(),
        }
        if filt.department_id is not None:
            match = {"department_id": filt.department_id, **match}
        key = {"department": "$department_id", "ward": "$ward_id"}
        (out,) = await aggregate(
            Admission,
            [
                {"$match": match},
                {
                    "$project": {
                        "patient_id": 1,
                        "department_id": 1,
                        "ward_id": 1,
                        "_ms": {"$subtract": ["$discharged_at", "$admitted_at"]},
                    }
                },
                {"$match": {"_ms": {"$gte": 0}}},
                {
                    "$group": {
                        "_id": {"key": key, "patient": "$patient_id", "m": binned_minutes("$_ms")},
                        "n": {"$sum": 1},
                        "ms": {"$sum": "$_ms"},
                    }
                },
                # One row per (ward, patient): that patient's bins and their part of the sums.
                {
                    "$group": {
                        "_id": {"key": "$_id.key", "patient": "$_id.patient"},
                        "bins": {"$push": {"m": "$_id.m", "n": "$n"}},
                        "admissions": {"$sum": "$n"},
                        "ms": {"$sum": "$ms"},
                    }
                },
                *total_facet(
                    {"admissions": {"$sum": 1}, "ms": {"$sum": 1}},
                    "$_id.key.department",
                    disclosure.minimum,
                    more={
                        "bins": [
                            {"$unwind": "$bins"},
                            {
                                "$group": {
                                    "_id": {"key": "$_id.key", "m": "$bins.m"},
                                    "n": {"$sum": "$bins.n"},
                                }
                            },
                        ]
                    },
                ),
            ],
        ) or [{"groups": [], "bins": [], "totals": []}]
        bins: dict[tuple[Any, Any], list[tuple[float, int]]] = {}
        for row in out["bins"]:
            k = (row["_id"]["key"]["department"], row["_id"]["key"]["ward"])
            bins.setdefault(k, []).append((float(row["_id"]["m"]), int(row["n"])))
        for values in bins.values():
            values.sort()
        totals = patient_totals(out["totals"])
        wards = {w["_id"]: w for w in await _wards_named({r["_id"]["ward"] for r in out["groups"]})}
        per_department: dict[Any, list[tuple[Row, list[tuple[float, int]], float]]] = {}
        for r in out["groups"]:
            dept, ward = r["_id"]["department"], r["_id"]["ward"]
            ward_bins = bins.get((dept, ward), [])
            label = wards.get(ward, {})
            row = {
                "ward_id": str(ward),
                "ward_code": label.get("code", ""),
                "ward_name": label.get("name", ""),
                **_stay_row(ward_bins, int(r["admissions"]), float(r["ms"]), int(r["patients"])),
            }
            per_department.setdefault(dept, []).append((row, ward_bins, float(r["ms"])))
        groups: list[Row] = []
        suppressed = 0
        for dept in sorted(per_department, key=str):
            entries = sorted(
                per_department[dept], key=lambda e: (e[0]["ward_code"], e[0]["ward_id"])
            )
            shown = suppress((e[0] for e in entries), LOS_MEASURES, disclosure)
            suppressed += count_suppressed(shown)
            visible = [e for e, s in zip(entries, shown, strict=True) if not s["suppressed"]]
            merged = sorted(b for _, ward_bins, _ in visible for b in ward_bins)
            group: Row = {
                "department_id": id_text(dept),
                **_stay_row(
                    merged,
                    sum(e[0]["admissions"] for e in visible),
                    sum(e[2] for e in visible),
                    totals.get(dept, 0),
                ),
                "wards": shown,
            }
            if disclosure.hides(group["patients"]) or not visible:
                group = withhold(group, LOS_MEASURES)
                suppressed += 1
            else:
                group["suppressed"] = False
            groups.append(group)
        return {"groups": groups, **disclosure.header(suppressed)}

    return await report("lengthOfStay", filt, disclosure, ("admissions", "wards"), compute)


async def _wards_named(ids: Iterable[Any]) -> list[dict[str, Any]]:
    return await aggregate(
        Ward, [{"$match": {"_id": {"$in": list(ids)}}}, {"$project": {"code": 1, "name": 1}}]
    )


# -- theatre utilisation ---------------------------------------------------------------------

THEATRE_MEASURES = (
    "cases",
    "booked_minutes",
    "actual_minutes",
    "booked_utilisation",
    "actual_utilisation",
    "late_starts",
    "turnovers",
    "median_turnover_minutes",
    "p90_turnover_minutes",
)


def session_minutes(filt: AnalyticsFilter, zone: ZoneInfo) -> int:
    """Minutes of ``[from, to)`` inside the weekday sessions of the facility's time zone."""
    total = timedelta()
    day: date = filt.start.astimezone(zone).date()
    last: date = filt.end.astimezone(zone).date()
    while day <= last:
        if day.weekday() < 5:
            opens = datetime.combine(day, SESSION_START, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, SESSION_END, tzinfo=zone).astimezone(UTC)
            since, until = max(opens, filt.start), min(closes, filt.end)
            if until > since:
                total += until - since
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


def _turnovers(days: Iterable[list[Row | None]]) -> list[float]:
    """Minutes from each case's out-of-theatre to the next case's in-theatre, per day's list of
    timed cases (``{in, out}``); overlapping records (bad clocks) give no turnover."""
    gaps: list[float] = []
    for cases in days:
        timed = sorted((utc(c["in"]), utc(c["out"])) for c in cases if c)
        for (_, left), (entered, _) in pairwise(timed):
            if entered >= left:
                gaps.append((entered - left).total_seconds() / 60)
    return gaps


async def theatre_utilisation(
    filt: AnalyticsFilter, disclosure: Disclosure, zone: ZoneInfo
) -> Report:
    """Per theatre: the non-cancelled bookings starting in ``[from, to)``, their booked and
    actual (in to out of theatre) minutes against the session minutes of the range, late
    starts, and turnover times between cases of the same local day."""

    async def compute() -> Report:
        scope: dict[str, Any] = {}
        if filt.department_id is not None:
            scope["department_id"] = filt.department_id
        theatres = await aggregate(
            OperatingTheatre,
            [
                {"$match": scope},
                {"$project": {"code": 1, "name": 1, "department_id": 1, "active": 1}},
            ],
        )
        match: dict[str, Any] = {
            "start_at": filt.window(),
            "status": {"$ne": SurgeryStatus.CANCELLED.value},
        }
        if filt.department_id is not None:
            match = {"theatre_id": {"$in": [t["_id"] for t in theatres]}, **match}
        days = [b.start for b in buckets(filt.start, filt.end, Interval.DAY, zone)]
        entered = {"$ifNull": ["$_record.in_theatre_at", None]}
        left = {"$ifNull": ["$_record.out_of_theatre_at", None]}
        both = {"$and": [{"$ne": [entered, None]}, {"$ne": [left, None]}]}
        grace = int(LATE_START_GRACE.total_seconds() * 1000)
        (out,) = await aggregate(
            SurgeryBooking,
            [
                {"$match": match},
                {
                    "$lookup": {
                        "from": SURGICAL_RECORDS,
                        "localField": "_id",
                        "foreignField": "booking_id",
                        "as": "_record",
                    }
                },
                {"$unwind": {"path": "$_record", "preserveNullAndEmptyArrays": True}},
                {
                    "$project": {
                        "theatre_id": 1,
                        "patient_id": 1,
                        "_booked": {"$subtract": ["$end_at", "$start_at"]},
                        "_actual": {"$cond": [both, {"$subtract": [left, entered]}, 0]},
                        "_timed": {"$cond": [both, {"in": entered, "out": left}, None]},
                        "_started": {"$cond": [{"$ne": [entered, None]}, 1, 0]},
                        "_late": {
                            "$cond": [{"$gt": [{"$subtract": [entered, "$start_at"]}, grace]}, 1, 0]
                        },
                        "_day": bucket_of("$start_at", days),
                    }
                },
                {
                    "$facet": {
                        "days": [
                            {
                                "$group": {
                                    "_id": {"theatre": "$theatre_id", "day": "$_day"},
                                    "cases": {"$sum": 1},
                                    "booked_ms": {"$sum": "$_booked"},
                                    "actual_ms": {"$sum": "$_actual"},
                                    "started": {"$sum": "$_started"},
                                    "late_starts": {"$sum": "$_late"},
                                    "timed": {"$push": "$_timed"},
                                }
                            }
                        ],
                        "patients": with_patients("$theatre_id", {}),
                    }
                },
            ],
        )
        patients = {r["_id"]: int(r["patients"]) for r in out["patients"]}
        per_theatre: dict[Any, list[Row]] = {}
        for row in out["days"]:
            per_theatre.setdefault(row["_id"]["theatre"], []).append(row)
        known = {t["_id"]: t for t in theatres}
        missing = [tid for tid in per_theatre if tid not in known]
        if missing:  # theatres moved to another department since, or gone
            for t in await aggregate(
                OperatingTheatre,
                [
                    {"$match": {"_id": {"$in": missing}}},
                    {"$project": {"code": 1, "name": 1, "department_id": 1, "active": 1}},
                ],
            ):
                known[t["_id"]] = t
        available = session_minutes(filt, zone)
        rows: list[Row] = []
        for tid, theatre in known.items():
            day_rows = per_theatre.get(tid, [])
            if not day_rows and not theatre.get("active", True):
                continue
            booked = sum(int(d["booked_ms"]) for d in day_rows) // 60_000
            actual = sum(int(d["actual_ms"]) for d in day_rows) // 60_000
            gaps = sorted(_turnovers(d["timed"] for d in day_rows))
            gap_bins = [(round(g, 2), 1) for g in gaps]
            rows.append(
                {
                    "theatre_id": str(tid),
                    "theatre_code": theatre.get("code", ""),
                    "theatre_name": theatre.get("name", ""),
                    "department_id": id_text(theatre.get("department_id")),
                    "available_minutes": available,
                    "cases": sum(int(d["cases"]) for d in day_rows),
                    "booked_minutes": booked,
                    "actual_minutes": actual,
                    "booked_utilisation": _rounded(ratio(booked, available), 4),
                    "actual_utilisation": _rounded(ratio(actual, available), 4),
                    "started": sum(int(d["started"]) for d in day_rows),
                    "late_starts": sum(int(d["late_starts"]) for d in day_rows),
                    "turnovers": len(gaps),
                    "median_turnover_minutes": quantile(gap_bins, 0.5),
                    "p90_turnover_minutes": quantile(gap_bins, 0.9),
                    "patients": patients.get(tid, 0),
                }
            )
        rows.sort(key=lambda r: (r["theatre_code"], r["theatre_id"]))
        groups = suppress(rows, (*THEATRE_MEASURES, "started"), disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report(
        "theatreUtilisation",
        filt,
        disclosure,
        ("surgery_bookings", SURGICAL_RECORDS, "operating_theatres"),
        compute,
        zone=zone.key,
    )


# -- emergency department times ---------------------------------------------------------------

_KINDS = {
    "discharged": DispositionKind.DISCHARGED.value,
    "admitted": DispositionKind.ADMITTED.value,
    "transferred": DispositionKind.TRANSFERRED.value,
    "left_without_being_seen": DispositionKind.LEFT_WITHOUT_BEING_SEEN.value,
}
EMERGENCY_MEASURES = (
    "visits",
    "triaged",
    "median_minutes_to_triage",
    "p90_minutes_to_triage",
    "disposed",
    "median_minutes_to_disposition",
    "p90_minutes_to_disposition",
    *_KINDS,
    "left_without_being_seen_rate",
)

_FIRST_TRIAGED = {
    # Re-triage keeps the earlier triages, oldest first: time to triage runs to the first.
    "$ifNull": [
        {
            "$let": {
                "vars": {"first": {"$arrayElemAt": [{"$ifNull": ["$triage_history", []]}, 0]}},
                "in": "$$first.triaged_at",
            }
        },
        "$triage.triaged_at",
    ]
}


def _pair(key: Row) -> tuple[Any, Any]:
    """A (department, level) group key as a tuple: grouped keys come back as documents."""
    return key.get("department"), key.get("level")


def _hashable(rows: Iterable[Row]) -> Iterable[Row]:
    """``durations`` rows keyed by ``_pair``, as ``histograms`` takes them."""
    for row in rows:
        yield {**row, "_id": {**row["_id"], "key": _pair(row["_id"]["key"])}}


def _quantiles(group: Histogram | None, suffix: str) -> Row:
    bins = [] if group is None else group.bins
    return {f"{name.removesuffix('_minutes')}_{suffix}": quantile(bins, p) for name, p in QUANTILES}


async def emergency_times(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per ED department and current triage level (null: never triaged), for visits arriving
    in ``[from, to)``: minutes from arrival to the first triage and to the disposition (median,
    90th percentile, count), the dispositions by kind, and left without being seen / visits."""

    async def compute() -> Report:
        head = {} if filt.department_id is None else {"department_id": filt.department_id}
        key = {"department": "$department_id", "level": "$_level"}
        (out,) = await aggregate(
            EmergencyVisit,
            [
                {"$match": {**head, "arrived_at": filt.window()}},
                {
                    "$project": {
                        "patient_id": 1,
                        "department_id": 1,
                        "_level": {"$ifNull": ["$triage.level", None]},
                        "_kind": {"$ifNull": ["$disposition.kind", None]},
                        "_triage_ms": {"$subtract": [_FIRST_TRIAGED, "$arrived_at"]},
                        "_disposition_ms": {"$subtract": ["$disposition.at", "$arrived_at"]},
                    }
                },
                {
                    "$facet": {
                        "counts": with_patients(
                            key,
                            {
                                "visits": {"$sum": 1},
                                **{
                                    name: count_if({"$eq": ["$_kind", kind]})
                                    for name, kind in _KINDS.items()
                                },
                            },
                        ),
                        "triage": [
                            {"$addFields": {"_ms": "$_triage_ms"}},
                            *durations(key),
                        ],
                        "disposition": [
                            {"$addFields": {"_ms": "$_disposition_ms"}},
                            *durations(key),
                        ],
                    }
                },
            ],
        )
        triage = histograms(_hashable(out["triage"]))
        disposition = histograms(_hashable(out["disposition"]))
        rows: list[Row] = []
        for r in out["counts"]:
            k = _pair(r["_id"])
            dept, level = k
            visits = int(r["visits"])
            lwbs = int(r["left_without_being_seen"])
            triaged, disposed = triage.get(k), disposition.get(k)
            rows.append(
                {
                    "department_id": id_text(dept),
                    "triage_level": None if level is None else int(level),
                    "visits": visits,
                    "triaged": 0 if triaged is None else triaged.count,
                    **_quantiles(triaged, "minutes_to_triage"),
                    "disposed": 0 if disposed is None else disposed.count,
                    **_quantiles(disposed, "minutes_to_disposition"),
                    **{name: int(r[name]) for name in _KINDS},
                    "left_without_being_seen_rate": _rounded(ratio(lwbs, visits), 4),
                    "patients": int(r["patients"]),
                }
            )
        rows.sort(
            key=lambda r: (
                r["department_id"] or "",
                r["triage_level"] is None,
                r["triage_level"] or 0,
            )
        )
        groups = suppress(rows, EMERGENCY_MEASURES, disclosure)
        return {"groups": groups, **disclosure.header(count_suppressed(groups))}

    return await report("emergencyTimes", filt, disclosure, ("emergency_visits",), compute)
