"""GraphQL types of the pharmacy and revenue-cycle aggregates (``services.revenue_analytics``):
views over the JSON reports, built by ``*_report`` as in ``schema.analytics``."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from bson import ObjectId

from schema.analytics import PATIENTS, SUPPRESSED, TOTALS, AnalyticsReport, DepartmentGroup, Row
from schema.analytics import _header as header
from schema.common import Long
from schema.context import Info

if TYPE_CHECKING:
    from schema.drugs import Drug
    from schema.insurance import Payer
    from schema.wards import Ward


async def _drug(info: Info, drug_id: str) -> Drug | None:
    drug: Drug | None = await info.context.loaders.drug_by_id.load(ObjectId(drug_id))
    return drug


# -- dispensingVolume ------------------------------------------------------------------------


@strawberry.type(description="One drug's dispenses in one local day, ISO week or month.")
class DispensingVolumeBucket:
    start: datetime = strawberry.field(description="Local start of the bucket, as an instant.")
    end: datetime = strawberry.field(description="Local end of the bucket (exclusive).")
    label: str = strawberry.field(description="'2026-03-01', '2026-W09' or '2026-03'.")
    dispenses: int | None = strawberry.field(
        description="Dispenses that happened (completed, partly or wholly returned) in the "
        "bucket and [from, to)."
    )
    units: int | None = strawberry.field(description="Units of issue taken from stock.")
    returned_units: int | None = strawberry.field(description="Of them, units returned since.")
    value: Long | None = strawberry.field(
        description="Price x units as charged, minor units (returns do not refund)."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="One drug prescribed from one department, in one currency.")
class DispensingVolumeGroup(DepartmentGroup):
    drug_id: strawberry.ID
    drug_name: str = strawberry.field(description="Generic name, form and strength.")
    atc_code: str
    department_id: strawberry.ID | None = strawberry.field(
        description="The prescriber's department (their current one), as the dispense charge "
        "is booked; null when the prescriber has none."
    )
    currency: str
    dispenses: int | None = strawberry.field(description="Over the visible buckets. " + TOTALS)
    units: int | None
    returned_units: int | None
    value: Long | None
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    buckets: list[DispensingVolumeBucket] = strawberry.field(
        description="Every bucket in order, empty ones with zeros."
    )

    @strawberry.field
    async def drug(self, info: Info) -> Annotated[Drug, strawberry.lazy("schema.drugs")] | None:
        return await _drug(info, self.drug_id)


@strawberry.type
class DispensingVolumeReport(AnalyticsReport):
    groups: list[DispensingVolumeGroup] = strawberry.field(
        description="Drugs with dispenses in range, by drug name then department id; "
        "`suppressedGroups` counts withheld buckets and groups."
    )


def dispensing_report(data: Row) -> DispensingVolumeReport:
    groups = [
        DispensingVolumeGroup(
            **{
                **g,
                "buckets": [
                    DispensingVolumeBucket(
                        **{
                            **c,
                            "start": datetime.fromisoformat(c["start"]),
                            "end": datetime.fromisoformat(c["end"]),
                        }
                    )
                    for c in g["buckets"]
                ],
            }
        )
        for g in data["groups"]
    ]
    return DispensingVolumeReport(groups=groups, **header(data))


# -- pharmacyStock ---------------------------------------------------------------------------

STOCK_VALUE = "quantity x unit cost, minor units."


@strawberry.type(description="One drug's stock at one location, in one currency.")
class PharmacyStockGroup:
    drug_id: strawberry.ID
    drug_name: str = strawberry.field(description="Generic name, form and strength.")
    atc_code: str
    location: str = strawberry.field(description="`pharmacy` (the store) or `ward`.")
    ward_id: strawberry.ID | None = strawberry.field(description="The ward of ward stock.")
    ward_code: str | None
    ward_name: str | None
    currency: str
    batches: int = strawberry.field(description="Batches holding stock.")
    units: int = strawberry.field(description="Units held, expired ones included.")
    value: Long = strawberry.field(description=STOCK_VALUE)
    expiring_units: int = strawberry.field(
        description="Units of batches not expired on `asOf` that expire within "
        "`expiringWithinDays` days of it."
    )
    expiring_value: Long
    expired_units: int = strawberry.field(
        description="Units of batches expired on `asOf` (their expiry day or later), not yet "
        "written off."
    )
    expired_value: Long
    earliest_usable_expiry: date | None = strawberry.field(
        description="The soonest expiry of the batches still usable on `asOf`."
    )

    @strawberry.field
    async def drug(self, info: Info) -> Annotated[Drug, strawberry.lazy("schema.drugs")] | None:
        return await _drug(info, self.drug_id)

    @strawberry.field
    async def ward(self, info: Info) -> Annotated[Ward, strawberry.lazy("schema.wards")] | None:
        if self.ward_id is None:
            return None
        ward: Ward | None = await info.context.loaders.ward_by_id.load(ObjectId(self.ward_id))
        return ward


@strawberry.type(description="All stock in one currency.")
class PharmacyStockCurrencyGroup:
    currency: str
    batches: int
    units: int
    value: Long = strawberry.field(description=STOCK_VALUE)
    expiring_units: int
    expiring_value: Long
    expired_units: int
    expired_value: Long


@strawberry.type
class PharmacyStockReport(AnalyticsReport):
    as_of: date = strawberry.field(description="The day expiry is judged from (UTC).")
    expiring_within_days: int
    groups: list[PharmacyStockGroup] = strawberry.field(
        description="Every drug and location holding stock, by drug name, location, ward code. "
        "Stock names no patient: nothing is suppressed."
    )
    totals: list[PharmacyStockCurrencyGroup] = strawberry.field(description="By currency.")


def stock_report(data: Row) -> PharmacyStockReport:
    groups = [
        PharmacyStockGroup(
            **{
                **g,
                "earliest_usable_expiry": None
                if g["earliest_usable_expiry"] is None
                else date.fromisoformat(g["earliest_usable_expiry"]),
            }
        )
        for g in data["groups"]
    ]
    return PharmacyStockReport(
        as_of=date.fromisoformat(data["as_of"]),
        expiring_within_days=data["expiring_within_days"],
        groups=groups,
        totals=[PharmacyStockCurrencyGroup(**t) for t in data["totals"]],
        **header(data),
    )


# -- claimsByPayer ---------------------------------------------------------------------------

DENIAL_RATE = "denied / adjudicated; null when none is adjudicated."
TO_ADJUDICATION = "Mean days from the first submission to the latest decision."
TO_PAYMENT = "Mean days from the first submission to the first insurer payment."


@strawberry.type(description="One payer's claims that are in one status now.")
class ClaimStatusGroup:
    status: str = strawberry.field(description="The claims' current status.")
    claims: int | None
    billed: Long | None = strawberry.field(description="Sum of the claimed charges.")
    approved: Long | None = strawberry.field(
        description="The insurer's share of the adjudicated claims."
    )
    paid: Long | None = strawberry.field(description="What the insurer paid on them.")
    adjudicated: int | None = strawberry.field(description="Claims with an outcome.")
    denied: int | None
    denial_rate: float | None = strawberry.field(description=DENIAL_RATE)
    average_days_to_adjudication: float | None = strawberry.field(description=TO_ADJUDICATION)
    average_days_to_payment: float | None = strawberry.field(description=TO_PAYMENT)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="One payer's claims first submitted in the range, one currency.")
class ClaimsByPayerGroup:
    payer_id: strawberry.ID
    payer_code: str
    payer_name: str
    currency: str
    claims: int | None = strawberry.field(description="Over the visible statuses. " + TOTALS)
    billed: Long | None
    approved: Long | None
    paid: Long | None
    adjudicated: int | None
    denied: int | None
    denial_rate: float | None = strawberry.field(description=DENIAL_RATE)
    average_days_to_adjudication: float | None = strawberry.field(description=TO_ADJUDICATION)
    average_days_to_payment: float | None = strawberry.field(description=TO_PAYMENT)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    statuses: list[ClaimStatusGroup] = strawberry.field(description="In the claim cycle's order.")

    @strawberry.field
    async def payer(
        self, info: Info
    ) -> Annotated[Payer, strawberry.lazy("schema.insurance")] | None:
        payer: Payer | None = await info.context.loaders.payer_by_id.load(ObjectId(self.payer_id))
        return payer


@strawberry.type
class ClaimsByPayerReport(AnalyticsReport):
    groups: list[ClaimsByPayerGroup] = strawberry.field(
        description="By payer code, then currency; `suppressedGroups` counts withheld statuses "
        "and payers."
    )


def claims_report(data: Row) -> ClaimsByPayerReport:
    groups = [
        ClaimsByPayerGroup(**{**g, "statuses": [ClaimStatusGroup(**s) for s in g["statuses"]]})
        for g in data["groups"]
    ]
    return ClaimsByPayerReport(groups=groups, **header(data))


# -- daysInAccountsReceivable ----------------------------------------------------------------

SEGMENT_DAYS = "outstanding / averageDailyCharges: the segments' days add up to the total."


@strawberry.type(description="What one payer, or the patients themselves, owe now.")
class ReceivablesSegmentGroup:
    payer_id: strawberry.ID | None = strawberry.field(description="Null for self-pay.")
    payer_code: str | None
    payer_name: str | None
    self_pay: bool = strawberry.field(
        description="The patients' own due (charges less payments, write-offs and what "
        "insurers owe), where positive."
    )
    outstanding: Long | None = strawberry.field(
        description="Minor units; a payer's is what its open claims approve (or, before a "
        "decision, cover) less what it paid."
    )
    days: float | None = strawberry.field(description=SEGMENT_DAYS)
    patients: int | None = strawberry.field(
        description=PATIENTS + " A lone withheld segment takes the smallest other one with it."
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="Receivables by days since their charge.")
class ReceivablesAgingGroup:
    bucket: str = strawberry.field(description="'0-30', '31-60', '61-90' or '90+' days.")
    from_days: int
    to_days: int | None = strawberry.field(description="Inclusive; null for the last bucket.")
    outstanding: Long | None = strawberry.field(
        description="What is left of the charges of that age once each account's payments and "
        "write-offs are applied to its oldest charges first."
    )
    patients: int | None = strawberry.field(
        description=PATIENTS + " A lone withheld bucket takes the smallest other one with it."
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="Accounts receivable in one currency.")
class ReceivablesGroup:
    currency: str
    charged: Long | None = strawberry.field(description="Charges created in [from, to).")
    average_daily_charges: float | None = strawberry.field(
        description="charged / days of [from, to)."
    )
    outstanding: Long | None = strawberry.field(
        description="Owed now: the visible segments' sum. " + TOTALS
    )
    insurer_outstanding: Long | None = strawberry.field(
        description="Of it, what the payers owe (visible segments)."
    )
    days: float | None = strawberry.field(
        description="Days in accounts receivable: outstanding / averageDailyCharges; null "
        "without charges in range."
    )
    patients: int | None = strawberry.field(description="Accounts owing something. " + PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    segments: list[ReceivablesSegmentGroup] = strawberry.field(
        description="Each payer by code, then self-pay."
    )
    aging: list[ReceivablesAgingGroup] = strawberry.field(description="Youngest first.")


@strawberry.type
class DaysInAccountsReceivableReport(AnalyticsReport):
    as_of: datetime = strawberry.field(
        description="When the balances were read and charges aged (as `computedAt`)."
    )
    range_days: float = strawberry.field(description="Days of [from, to).")
    groups: list[ReceivablesGroup] = strawberry.field(description="By currency.")


def receivables_report(data: Row) -> DaysInAccountsReceivableReport:
    groups = [
        ReceivablesGroup(
            **{
                **g,
                "segments": [ReceivablesSegmentGroup(**s) for s in g["segments"]],
                "aging": [ReceivablesAgingGroup(**a) for a in g["aging"]],
            }
        )
        for g in data["groups"]
    ]
    return DaysInAccountsReceivableReport(
        as_of=datetime.fromisoformat(data["as_of"]),
        range_days=data["range_days"],
        groups=groups,
        **header(data),
    )
