"""De-identifiable aggregates of the pharmacy and the revenue cycle.

The same rules as ``services.analytics``: grouping happens in MongoDB, patient ids never leave
the pipeline (distinct patients by grouping twice, ``with_patients``/``with_total``), small
groups are withheld for analysts before the answer is cached, and every answer goes through the
result cache under the viewer's disclosure scope. mongomock sums no array built in the same
``$project`` (``$sum`` of a ``$map`` is 0 there), so arrays are built in one stage and summed
in the next.

Decisions a reader of the numbers needs:

- **Dispensing volume** counts dispenses that happened (completed, partly or wholly returned;
  not pending, unconfirmed, failed or lapsed) whose ``at`` is in ``[from, to)``, per drug, the
  prescriber's department (their current one, as the dispense charge is booked) and bucket.
  ``units`` are the units taken from stock, ``returnedUnits`` those that came back since;
  ``value`` is price x units as charged (returns do not refund the charge).
- **Pharmacy stock** is the batches' current quantity x unit cost, per drug and location (the
  pharmacy store or a ward); ``asOf`` is the day expiry is judged from (a batch is expired from
  its expiry day on, as dispensing judges it), not a replay of past quantities. Stock names no
  patient: nothing is suppressed.
- **Claims by payer** counts claims first submitted in ``[from, to)`` (a resubmission keeps the
  claim where its first submission put it), per payer, currency and current status. Approved is
  the insurer's share of adjudicated claims; the denial rate is denied / adjudicated (claims with
  an outcome now); days to adjudication run from the first submission to the latest decision,
  days to payment to the first insurer payment.
- **Days in accounts receivable** divide what is owed now (the insurer's due, and the patient's
  due when positive: a credit is no receivable) by the average daily charges of ``[from, to)``.
  The insurer's due is split per payer from the claims (it reconciles with the accounts'), the
  rest is self-pay; each segment's days are its outstanding over the same daily charges, so the
  segments add up to the total. Aging applies each account's payments and write-offs to its
  oldest charges first (first in, first out) and ages what is left of each charge from its
  creation to ``computedAt``. Payments are not tied to departments, so no department filter.

Small cells of a partition (the payer and self-pay rows; the aging buckets) add up to a total
that can be read elsewhere, so when exactly one of them is withheld the smallest other one is
withheld with it (secondary suppression), and totals are taken over the visible cells only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cache import results
from errors import BadUserInput
from models.base import utcnow
from models.billing import BillingAccount
from models.drugs import Drug
from models.insurance import Claim, ClaimOutcome, ClaimStatus, Payer
from models.pharmacy import DISPENSED, Dispense, StockBatch
from models.wards import Ward
from services.analytics import (
    AnalyticsFilter,
    Report,
    Stage,
    aggregate,
    bucket_of,
    count_if,
    id_text,
    patient_totals,
    ratio,
    report,
    time_buckets,
    utc,
    with_patients,
    with_total,
)
from services.buckets import Interval
from services.deidentify import Disclosure, Row, count_suppressed, suppress, withhold
from services.pharmacy import day_start

MS_PER_DAY = 86_400_000
MAX_EXPIRING_DAYS = 3650
AGING = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, "90+"))
"""Aging buckets: whole days since the charge (0-30 is up to 31 days old, exclusive)."""


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _no_department(filt: AnalyticsFilter, what: str) -> None:
    if filt.department_id is not None:
        reason = f"{what} belong to accounts and payers, not departments"
        raise BadUserInput(f"filter.departmentId: {reason}", {"filter.departmentId": reason})


def _protect(rows: list[Row], measures: Iterable[str], disclosure: Disclosure) -> list[Row]:
    """``suppress``, then secondary suppression: a lone withheld cell of a partition takes the
    smallest visible non-empty cell with it, so no total minus the rest gives it away."""
    names = tuple(measures)
    shown = suppress(rows, names, disclosure)
    hidden = [row for row in shown if row["suppressed"]]
    if len(hidden) == 1:
        others = [
            (row["patients"], i)
            for i, row in enumerate(shown)
            if not row["suppressed"] and row["patients"]
        ]
        if others:
            _, index = min(others)
            shown[index] = withhold(shown[index], names)
    return shown


# -- dispensing volume -----------------------------------------------------------------------

DISPENSE_MEASURES = ("dispenses", "units", "returned_units", "value")


def _dispense_cell(hit: Row) -> Row:
    return {
        "dispenses": int(hit.get("dispenses", 0)),
        "units": int(hit.get("units", 0)),
        "returned_units": int(hit.get("returned_units", 0)),
        "value": int(hit.get("value", 0)),
    }


async def dispensing_volume(
    filt: AnalyticsFilter,
    interval: Interval,
    disclosure: Disclosure,
    zone: ZoneInfo,
    max_buckets: int,
) -> Report:
    """Per drug, prescriber's department and currency: dispenses, units, returned units, value
    and distinct patients per local day, ISO week or month, and over the visible buckets."""
    spans = time_buckets(filt, interval, zone, max_buckets)  # refused before any cache lookup

    async def compute() -> Report:
        pipeline: list[Stage] = [
            {"$match": {"status": {"$in": [s.value for s in DISPENSED]}, "at": filt.window()}},
            {
                "$lookup": {
                    "from": "doctors",
                    "localField": "prescriber_id",
                    "foreignField": "_id",
                    "as": "_doctor",
                }
            },
            {
                "$project": {
                    "patient_id": 1,
                    "drug_id": 1,
                    "currency": 1,
                    "quantity": 1,
                    "_department": {
                        "$ifNull": [{"$arrayElemAt": ["$_doctor.department_id", 0]}, None]
                    },
                    "_returned": {"$ifNull": ["$lines.returned", []]},
                    "_value": {"$multiply": ["$unit_price", "$quantity"]},
                    "_start": bucket_of("$at", [b.start for b in spans]),
                }
            },
        ]
        if filt.department_id is not None:
            pipeline.append({"$match": {"_department": filt.department_id}})
        key = {
            "drug": "$drug_id",
            "department": "$_department",
            "currency": "$currency",
            "start": "$_start",
        }
        measures: dict[str, Stage] = {
            "dispenses": {"$sum": 1},
            "units": {"$sum": "$quantity"},
            "returned_units": {"$sum": "$_returned_sum"},
            "value": {"$sum": "$_value"},
        }
        total = {
            "drug": "$_id.key.drug",
            "department": "$_id.key.department",
            "currency": "$_id.key.currency",
        }
        pipeline += [
            {"$addFields": {"_returned_sum": {"$sum": "$_returned"}}},
            *with_total(key, measures, total, disclosure.minimum),
        ]
        (out,) = await aggregate(Dispense, pipeline)
        totals = patient_totals(
            {
                **t,
                "total": (t["total"]["drug"], t["total"].get("department"), t["total"]["currency"]),
            }
            for t in out["totals"]
        )
        cells: dict[tuple[Any, Any, str], dict[datetime, Row]] = {}
        for r in out["groups"]:
            k = r["_id"]
            cells.setdefault((k["drug"], k.get("department"), k["currency"]), {})[
                utc(k["start"])
            ] = r
        drugs = await _drugs({drug for drug, _, _ in cells})
        groups: list[Row] = []
        suppressed = 0
        for (drug_id, dept, currency), found in cells.items():
            bucket_rows = []
            for b in spans:
                hit = found.get(b.start, {})
                bucket_rows.append(
                    {
                        "start": b.start.isoformat(),
                        "end": b.end.isoformat(),
                        "label": b.label,
                        **_dispense_cell(hit),
                        "patients": int(hit.get("patients", 0)),
                    }
                )
            shown = suppress(bucket_rows, DISPENSE_MEASURES, disclosure)
            suppressed += count_suppressed(shown)
            visible = [c for c in shown if not c["suppressed"]]
            row: Row = {
                **{m: sum(c[m] for c in visible) for m in DISPENSE_MEASURES},
                "patients": totals.get((drug_id, dept, currency), 0),
            }
            # Empty buckets stay visible: a group whose every bucket with patients is withheld
            # is withheld too (a total of nothing would misread as "no dispensing").
            if disclosure.hides(row["patients"]) or not any(c["patients"] for c in visible):
                row = withhold(row, DISPENSE_MEASURES)
                suppressed += 1
            else:
                row["suppressed"] = False
            drug = drugs.get(drug_id, {})
            groups.append(
                {
                    "drug_id": str(drug_id),
                    "drug_name": drug.get("name", ""),
                    "atc_code": drug.get("atc_code", ""),
                    "department_id": id_text(dept),
                    "currency": currency,
                    **row,
                    "buckets": shown,
                }
            )
        groups.sort(key=lambda g: (g["drug_name"], g["drug_id"], g["department_id"] or ""))
        return {"groups": groups, **disclosure.header(suppressed)}

    return await report(
        "dispensingVolume",
        filt,
        disclosure,
        ("dispenses", "doctors", "drugs"),
        compute,
        interval=interval.value,
        zone=zone.key,
    )


async def _drugs(ids: Iterable[Any]) -> dict[Any, Row]:
    rows = await aggregate(
        Drug,
        [
            {"$match": {"_id": {"$in": list(ids)}}},
            {"$project": {"generic_name": 1, "strength": 1, "form": 1, "atc_code": 1}},
        ],
    )
    out: dict[Any, Row] = {}
    for d in rows:
        strength = d.get("strength") or {}
        number = f"{strength.get('value', ''):g}" if "value" in strength else ""
        unit = strength.get("unit", "")
        dose = f"{number}{unit}" if unit == "%" else f"{number} {unit}".strip()
        name = " ".join(
            part for part in (d.get("generic_name", ""), d.get("form", ""), dose) if part
        )
        out[d["_id"]] = {"name": name, "atc_code": d.get("atc_code", "")}
    return out


# -- pharmacy stock --------------------------------------------------------------------------

STOCK_MEASURES = (
    "batches",
    "units",
    "value",
    "expiring_units",
    "expiring_value",
    "expired_units",
    "expired_value",
)


async def _cached(
    name: str,
    params: dict[str, Any],
    disclosure: Disclosure,
    inputs: tuple[str, ...],
    compute: Callable[[], Awaitable[Report]],
) -> Report:
    """``analytics.report`` for reports without a date-range filter."""

    async def run() -> Report:
        return {**await compute(), "computed_at": utcnow().isoformat()}

    value, hit = await results.remember(
        operation=f"analytics.{name}",
        params=params,
        scope=disclosure.scope,
        inputs=inputs,
        compute=run,
    )
    return {**value, "cached": hit}


def stock_day(as_of: datetime | None, within_days: int) -> tuple[datetime, datetime]:
    """The day expiry is judged from (UTC midnight, naive as expiries are stored) and the end
    of the expiring window; ``BAD_USER_INPUT`` for a window out of range or a day at the
    calendar's ends."""
    if not 1 <= within_days <= MAX_EXPIRING_DAYS:
        reason = f"not in 1..{MAX_EXPIRING_DAYS}"
        raise BadUserInput(f"expiringWithinDays: {reason}", {"expiringWithinDays": reason})
    moment = utcnow() if as_of is None else as_of
    if moment.tzinfo is None:
        raise BadUserInput("asOf: needs a time zone offset", {"asOf": "needs a time zone offset"})
    try:
        today = day_start(moment).replace(tzinfo=UTC)
        return today, today + timedelta(days=within_days)
    except (OverflowError, ValueError):
        reason = "too close to the calendar's ends"
        raise BadUserInput(f"asOf: {reason}", {"asOf": reason}) from None


async def pharmacy_stock(
    as_of: datetime | None, within_days: int, disclosure: Disclosure
) -> Report:
    """Per drug, location (and ward) and currency: batches holding stock, units and value
    (quantity x unit cost), and of them the units and value expiring within ``within_days``
    days of ``as_of``'s day and already expired; totals per currency."""
    today, horizon = stock_day(as_of, within_days)

    async def compute() -> Report:
        expired = {"$lte": ["$expiry", today]}
        expiring = {"$and": [{"$gt": ["$expiry", today]}, {"$lte": ["$expiry", horizon]}]}
        value = {"$multiply": ["$quantity", "$unit_cost"]}
        rows = await aggregate(
            StockBatch,
            [
                {"$match": {"quantity": {"$gt": 0}}},
                {
                    "$project": {
                        "drug_id": 1,
                        "location": 1,
                        "ward_id": {"$ifNull": ["$ward_id", None]},
                        "currency": 1,
                        "quantity": 1,
                        "_value": value,
                        "_expired": {"$cond": [expired, 1, 0]},
                        "_expiring": {"$cond": [expiring, 1, 0]},
                        "_usable_expiry": {"$cond": [expired, None, "$expiry"]},
                    }
                },
                {
                    "$group": {
                        "_id": {
                            "drug": "$drug_id",
                            "location": "$location",
                            "ward": "$ward_id",
                            "currency": "$currency",
                        },
                        "batches": {"$sum": 1},
                        "units": {"$sum": "$quantity"},
                        "value": {"$sum": "$_value"},
                        "expiring_units": {"$sum": {"$multiply": ["$quantity", "$_expiring"]}},
                        "expiring_value": {"$sum": {"$multiply": ["$_value", "$_expiring"]}},
                        "expired_units": {"$sum": {"$multiply": ["$quantity", "$_expired"]}},
                        "expired_value": {"$sum": {"$multiply": ["$_value", "$_expired"]}},
                        "earliest_expiry": {"$min": "$_usable_expiry"},
                    }
                },
            ],
        )
        drugs = await _drugs({r["_id"]["drug"] for r in rows})
        wards = {
            w["_id"]: w
            for w in await aggregate(
                Ward,
                [
                    {
                        "$match": {
                            "_id": {
                                "$in": [r["_id"].get("ward") for r in rows if r["_id"].get("ward")]
                            }
                        }
                    },
                    {"$project": {"code": 1, "name": 1}},
                ],
            )
        }
        groups: list[Row] = []
        totals: dict[str, Row] = {}
        for r in rows:
            k = r["_id"]
            ward = wards.get(k.get("ward"), {})
            drug = drugs.get(k["drug"], {})
            earliest = r.get("earliest_expiry")
            row: Row = {
                "drug_id": str(k["drug"]),
                "drug_name": drug.get("name", ""),
                "atc_code": drug.get("atc_code", ""),
                "location": k["location"],
                "ward_id": id_text(k.get("ward")),
                "ward_code": ward.get("code"),
                "ward_name": ward.get("name"),
                "currency": k["currency"],
                **{m: int(r[m]) for m in STOCK_MEASURES},
                "earliest_usable_expiry": None if earliest is None else earliest.date().isoformat(),
            }
            groups.append(row)
            total = totals.setdefault(
                k["currency"], {"currency": k["currency"], **{m: 0 for m in STOCK_MEASURES}}
            )
            for m in STOCK_MEASURES:
                total[m] += row[m]
        groups.sort(
            key=lambda g: (g["drug_name"], g["drug_id"], g["location"], g["ward_code"] or "")
        )
        return {
            "as_of": today.date().isoformat(),
            "expiring_within_days": within_days,
            "groups": groups,
            "totals": [totals[c] for c in sorted(totals)],
            **disclosure.header(0),
        }

    params = {"asOf": today.date().isoformat(), "expiringWithinDays": within_days}
    return await _cached(
        "pharmacyStock", params, disclosure, ("stock_batches", "drugs", "wards"), compute
    )


# -- claims by payer -------------------------------------------------------------------------

CLAIM_MEASURES = (
    "claims",
    "billed",
    "approved",
    "paid",
    "adjudicated",
    "denied",
    "denial_rate",
    "average_days_to_adjudication",
    "average_days_to_payment",
)
_SUMS = ("claims", "billed", "approved", "paid", "adjudicated", "denied")


def _first_at(status: ClaimStatus) -> Any:
    """When the claim's history first reached ``status`` (null when it never did)."""
    return {
        "$let": {
            "vars": {
                "first": {
                    "$arrayElemAt": [
                        {
                            "$filter": {
                                "input": {"$ifNull": ["$history", []]},
                                "as": "step",
                                "cond": {"$eq": ["$$step.status", status.value]},
                            }
                        },
                        0,
                    ]
                }
            },
            "in": "$$first.at",
        }
    }


def _claim_figures(r: Row) -> Row:
    adjudicated = int(r["adjudicated"])
    return {
        **{m: int(r[m]) for m in _SUMS},
        "denial_rate": _rounded(ratio(int(r["denied"]), adjudicated), 4),
        "average_days_to_adjudication": _rounded(ratio(r["adj_ms"], r["adj_n"] * MS_PER_DAY), 2),
        "average_days_to_payment": _rounded(ratio(r["pay_ms"], r["pay_n"] * MS_PER_DAY), 2),
    }


async def claims_by_payer(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per payer and currency, and within it per current status, the claims first submitted in
    ``[from, to)``: counts, billed, approved and paid amounts, the denial rate and the average
    days from submission to adjudication and to the first insurer payment."""
    _no_department(filt, "claims")

    async def compute() -> Report:
        adjudicated = {"$ne": [{"$ifNull": ["$outcome", None]}, None]}
        submitted = {"$ifNull": [_first_at(ClaimStatus.SUBMITTED), "$submitted_at"]}
        key = {"payer": "$payer_id", "currency": "$currency", "status": "$status"}
        measures: dict[str, Stage] = {
            "claims": {"$sum": 1},
            "billed": {"$sum": "$_billed"},
            "approved": {"$sum": "$_approved"},
            "paid": {"$sum": "$insurer_paid"},
            "adjudicated": {"$sum": "$_adjudicated"},
            "denied": count_if({"$eq": ["$outcome", ClaimOutcome.DENIED.value]}),
            "adj_ms": {"$sum": {"$ifNull": ["$_adj_ms", 0]}},
            "adj_n": count_if({"$ne": ["$_adj_ms", None]}),
            "pay_ms": {"$sum": {"$ifNull": ["$_pay_ms", 0]}},
            "pay_n": count_if({"$ne": ["$_pay_ms", None]}),
        }
        total = {"payer": "$_id.key.payer", "currency": "$_id.key.currency"}
        (out,) = await aggregate(
            Claim,
            [
                # The latest submission is never before the first: the index narrows the scan.
                {"$match": {"submitted_at": {"$gte": filt.start}}},
                {
                    "$project": {
                        "patient_id": 1,
                        "payer_id": 1,
                        "currency": 1,
                        "status": 1,
                        "outcome": {"$ifNull": ["$outcome", None]},
                        "insurer_paid": 1,
                        "adjudicated_at": {"$ifNull": ["$adjudicated_at", None]},
                        "_submitted": submitted,
                        "_paid_at": {"$ifNull": [_first_at(ClaimStatus.PAID), None]},
                        "_billed_lines": "$lines.billed",
                        "_share_lines": {
                            "$map": {
                                "input": "$lines",
                                "as": "line",
                                "in": {"$ifNull": ["$$line.approved", "$$line.covered"]},
                            }
                        },
                        "_adjudicated": {"$cond": [adjudicated, 1, 0]},
                    }
                },
                {"$match": {"_submitted": filt.window()}},
                {
                    "$project": {
                        "patient_id": 1,
                        "payer_id": 1,
                        "currency": 1,
                        "status": 1,
                        "outcome": 1,
                        "insurer_paid": 1,
                        "_adjudicated": 1,
                        "_billed": {"$sum": "$_billed_lines"},
                        "_approved": {
                            "$cond": [{"$eq": ["$_adjudicated", 1]}, {"$sum": "$_share_lines"}, 0]
                        },
                        "_adj_ms": {
                            "$cond": [
                                {"$ne": ["$adjudicated_at", None]},
                                {"$subtract": ["$adjudicated_at", "$_submitted"]},
                                None,
                            ]
                        },
                        "_pay_ms": {
                            "$cond": [
                                {"$ne": ["$_paid_at", None]},
                                {"$subtract": ["$_paid_at", "$_submitted"]},
                                None,
                            ]
                        },
                    }
                },
                *with_total(key, measures, total, disclosure.minimum),
            ],
        )
        totals = patient_totals(
            {**t, "total": (t["total"]["payer"], t["total"]["currency"])} for t in out["totals"]
        )
        per_payer: dict[tuple[Any, str], list[Row]] = {}
        for r in out["groups"]:
            k = r["_id"]
            per_payer.setdefault((k["payer"], k["currency"]), []).append(
                {
                    "status": k["status"],
                    **_claim_figures(r),
                    "adj_ms": r["adj_ms"],
                    "adj_n": r["adj_n"],
                    "pay_ms": r["pay_ms"],
                    "pay_n": r["pay_n"],
                    "patients": int(r["patients"]),
                }
            )
        payers = await _payers({payer for payer, _ in per_payer})
        order = [s.value for s in ClaimStatus]
        groups: list[Row] = []
        suppressed = 0
        for (payer_id, currency), statuses in per_payer.items():
            statuses.sort(key=lambda s: order.index(s["status"]) if s["status"] in order else 99)
            shown = suppress(
                statuses, (*CLAIM_MEASURES, "adj_ms", "adj_n", "pay_ms", "pay_n"), disclosure
            )
            suppressed += count_suppressed(shown)
            visible = [s for s in shown if not s["suppressed"]]
            sums = {
                m: sum(s[m] for s in visible)
                for m in (*_SUMS, "adj_ms", "adj_n", "pay_ms", "pay_n")
            }
            row: Row = {**_claim_figures(sums), "patients": totals.get((payer_id, currency), 0)}
            if disclosure.hides(row["patients"]) or not visible:
                row = withhold(row, CLAIM_MEASURES)
                suppressed += 1
            else:
                row["suppressed"] = False
            payer = payers.get(payer_id, {})
            groups.append(
                {
                    "payer_id": str(payer_id),
                    "payer_code": payer.get("code", ""),
                    "payer_name": payer.get("name", ""),
                    "currency": currency,
                    **row,
                    "statuses": [
                        {
                            k: v
                            for k, v in s.items()
                            if k not in ("adj_ms", "adj_n", "pay_ms", "pay_n")
                        }
                        for s in shown
                    ],
                }
            )
        groups.sort(key=lambda g: (g["payer_code"], g["payer_id"], g["currency"]))
        return {"groups": groups, **disclosure.header(suppressed)}

    return await report("claimsByPayer", filt, disclosure, ("claims", "payers"), compute)


async def _payers(ids: Iterable[Any]) -> dict[Any, Row]:
    rows = await aggregate(
        Payer, [{"$match": {"_id": {"$in": list(ids)}}}, {"$project": {"code": 1, "name": 1}}]
    )
    return {r["_id"]: r for r in rows}


# -- days in accounts receivable --------------------------------------------------------------

AR_MEASURES = ("outstanding", "days")


def _age_label(days: Any) -> Any:
    branches = [
        {"case": {"$lte": [days, high]}, "then": name}
        for _, high, name in AGING
        if high is not None
    ]
    return {"$switch": {"branches": branches, "default": AGING[-1][2]}}


async def days_in_receivables(filt: AnalyticsFilter, disclosure: Disclosure) -> Report:
    """Per currency: receivables now over the average daily charges of ``[from, to)``, overall,
    per payer (the insurers' due from their open claims) and self-pay (the patients' due), and
    the receivables aged by days since their charge (payments applied oldest charge first)."""
    _no_department(filt, "receivables")

    async def compute() -> Report:
        now = utcnow()
        range_days = (filt.end - filt.start).total_seconds() * 1000 / MS_PER_DAY
        patient_due = {
            "$subtract": [
                "$total_charged",
                {"$add": ["$total_paid", "$insurer_due", "$written_off"]},
            ]
        }
        (accounts,) = await aggregate(
            BillingAccount,
            [
                {
                    "$project": {
                        "patient_id": 1,
                        "currency": 1,
                        "charges": 1,
                        "total_charged": 1,
                        "_insurer": {"$ifNull": ["$insurer_due", 0]},
                        "_patient": {"$max": [patient_due, 0]},
                    }
                },
                {"$addFields": {"_outstanding": {"$add": ["$_insurer", "$_patient"]}}},
                {
                    "$facet": {
                        "charged": [
                            {"$unwind": "$charges"},
                            {"$match": {"charges.created_at": filt.window()}},
                            {
                                "$group": {
                                    "_id": "$currency",
                                    "charged": {"$sum": "$charges.amount"},
                                }
                            },
                        ],
                        "owed": [
                            {"$match": {"_outstanding": {"$gt": 0}}},
                            {
                                "$group": {
                                    "_id": "$currency",
                                    "accounts": {"$sum": 1},
                                    "outstanding": {"$sum": "$_outstanding"},
                                    "self_pay": {"$sum": "$_patient"},
                                    "self_pay_accounts": count_if({"$gt": ["$_patient", 0]}),
                                }
                            },
                        ],
                        "aging": _aging(now),
                    }
                },
            ],
        )
        payer_rows = await aggregate(
            Claim,
            [
                {
                    "$match": {
                        "status": {"$nin": [ClaimStatus.VOID.value, ClaimStatus.CLOSED.value]}
                    }
                },
                {
                    "$project": {
                        "patient_id": 1,
                        "payer_id": 1,
                        "currency": 1,
                        "insurer_paid": 1,
                        "_shares": {
                            "$map": {
                                "input": "$lines",
                                "as": "line",
                                "in": {"$ifNull": ["$$line.approved", "$$line.covered"]},
                            }
                        },
                    }
                },
                {
                    "$project": {
                        "patient_id": 1,
                        "payer_id": 1,
                        "currency": 1,
                        "_due": {"$subtract": [{"$sum": "$_shares"}, "$insurer_paid"]},
                    }
                },
                {"$match": {"_due": {"$gt": 0}}},
                *with_patients(
                    {"payer": "$payer_id", "currency": "$currency"},
                    {"outstanding": {"$sum": "$_due"}},
                ),
            ],
        )
        payers = await _payers({r["_id"]["payer"] for r in payer_rows})
        charged = {r["_id"]: int(r["charged"]) for r in accounts["charged"]}
        owed = {r["_id"]: r for r in accounts["owed"]}
        aged: dict[str, dict[str, Row]] = {}
        for r in accounts["aging"]:
            aged.setdefault(r["_id"]["currency"], {})[r["_id"]["age"]] = r
        by_payer: dict[str, list[Row]] = {}
        for r in payer_rows:
            by_payer.setdefault(r["_id"]["currency"], []).append(r)
        groups: list[Row] = []
        suppressed = 0
        for currency in sorted(set(charged) | set(owed)):
            daily = charged.get(currency, 0) / range_days

            def days(amount: float | None, per_day: float = daily) -> float | None:
                return _rounded(ratio(amount, per_day), 2)

            here = owed.get(currency, {})
            segments: list[Row] = []
            for r in by_payer.get(currency, []):
                payer = payers.get(r["_id"]["payer"], {})
                segments.append(
                    {
                        "payer_id": str(r["_id"]["payer"]),
                        "payer_code": payer.get("code", ""),
                        "payer_name": payer.get("name", ""),
                        "self_pay": False,
                        "outstanding": int(r["outstanding"]),
                        "days": days(int(r["outstanding"])),
                        "patients": int(r["patients"]),
                    }
                )
            segments.sort(key=lambda s: (s["payer_code"], s["payer_id"]))
            self_pay = int(here.get("self_pay", 0))
            segments.append(
                {
                    "payer_id": None,
                    "payer_code": None,
                    "payer_name": None,
                    "self_pay": True,
                    "outstanding": self_pay,
                    "days": days(self_pay),
                    "patients": int(here.get("self_pay_accounts", 0)),
                }
            )
            segments = _protect(segments, AR_MEASURES, disclosure)
            ages = aged.get(currency, {})
            aging = _protect(
                [
                    {
                        "bucket": name,
                        "from_days": low,
                        "to_days": high,
                        "outstanding": int(ages.get(name, {}).get("outstanding", 0)),
                        "patients": int(ages.get(name, {}).get("patients", 0)),
                    }
                    for low, high, name in AGING
                ],
                ("outstanding",),
                disclosure,
            )
            suppressed += count_suppressed(segments) + count_suppressed(aging)
            visible = [s for s in segments if not s["suppressed"]]
            outstanding = sum(s["outstanding"] for s in visible)
            overall: Row = {
                "currency": currency,
                "charged": charged.get(currency, 0),
                "average_daily_charges": round(daily, 2),
                "outstanding": outstanding,
                "insurer_outstanding": sum(s["outstanding"] for s in visible if not s["self_pay"]),
                "days": days(outstanding),
                "patients": int(here.get("accounts", 0)),
            }
            names = (
                "charged",
                "average_daily_charges",
                "outstanding",
                "insurer_outstanding",
                "days",
            )
            if disclosure.hides(overall["patients"]) or (overall["patients"] and not visible):
                overall = withhold(overall, names)
                suppressed += 1
            else:
                overall["suppressed"] = False
            groups.append({**overall, "segments": segments, "aging": aging})
        return {"as_of": now.isoformat(), "range_days": round(range_days, 4), "groups": groups,
                **disclosure.header(suppressed)}  # fmt: skip

    return await report(
        "daysInAccountsReceivable",
        filt,
        disclosure,
        ("billing_accounts", "claims", "payers"),
        compute,
    )


def _aging(now: datetime) -> list[Stage]:
    """Per charge of an account owing something, what is left of it once the account's credits
    (its charges less what it owes) are applied oldest charge first: the charge's share is
    ``clamp(charged up to and including it - credits, 0, amount)``; grouped per currency and
    age bucket with distinct patients. Ties of time order by charge id."""
    earlier = {
        "$or": [
            {"$lt": ["$$other.created_at", "$charges.created_at"]},
            {
                "$and": [
                    {"$eq": ["$$other.created_at", "$charges.created_at"]},
                    {"$lte": ["$$other.id", "$charges.id"]},
                ]
            },
        ]
    }
    return [
        {"$match": {"_outstanding": {"$gt": 0}}},
        {
            "$addFields": {
                "_all": "$charges",
                "_credits": {"$subtract": ["$total_charged", "$_outstanding"]},
            }
        },
        {"$unwind": "$charges"},
        {
            "$project": {
                "patient_id": 1,
                "currency": 1,
                "_credits": 1,
                "_amount": "$charges.amount",
                "_created": "$charges.created_at",
                "_upto": {
                    "$map": {
                        "input": {"$filter": {"input": "$_all", "as": "other", "cond": earlier}},
                        "as": "other",
                        "in": "$$other.amount",
                    }
                },
            }
        },
        {
            "$project": {
                "patient_id": 1,
                "currency": 1,
                "_left": {
                    "$min": [
                        "$_amount",
                        {"$max": [{"$subtract": [{"$sum": "$_upto"}, "$_credits"]}, 0]},
                    ]
                },
                "_age": {"$floor": {"$divide": [{"$subtract": [now, "$_created"]}, MS_PER_DAY]}},
            }
        },
        {"$match": {"_left": {"$gt": 0}}},
        *with_patients(
            {"currency": "$currency", "age": _age_label("$_age")},
            {"outstanding": {"$sum": "$_left"}},
        ),
    ]
