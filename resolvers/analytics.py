"""``analytics``: the aggregates namespace, for administrators (full) and analysts (suppressed).

How much a caller sees is the policy table's answer for ``Analytics`` rows: ``full`` for
admin, ``masked`` for analysts, which here means small-cell suppression; no grant is
``FORBIDDEN``. Every aggregate read is audited, cached answers included; no patient is named.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from auth.policy import ROW, Access
from auth.policy import EntityKind as K
from errors import Forbidden
from models.audit import AuditAction
from schema.analytics import (
    AnalyticsFilter,
    AppointmentsOverTimeReport,
    AppointmentsPerDoctorReport,
    AppointmentsPerPatientReport,
    BedOccupancyReport,
    ConditionsBySpecialtyReport,
    EmergencyTimesReport,
    EquipmentUtilisationReport,
    LabTurnaroundReport,
    LengthOfStayReport,
    NoShowRateReport,
    OutpatientWaitingTimeReport,
    RevenueReport,
    TheatreUtilisationReport,
    TimeInterval,
    bed_occupancy_report,
    conditions_report,
    emergency_report,
    equipment_report,
    length_of_stay_report,
    no_show_report,
    over_time_report,
    per_doctor_report,
    per_patient_report,
    revenue_report,
    theatre_report,
    turnaround_report,
    waiting_report,
)
from schema.context import Info
from schema.revenue_analytics import (
    ClaimsByPayerReport,
    DaysInAccountsReceivableReport,
    DispensingVolumeReport,
    PharmacyStockReport,
    claims_report,
    dispensing_report,
    receivables_report,
    stock_report,
)
from services import analytics, inpatient_analytics, revenue_analytics
from services.deidentify import Disclosure

FILTER = "Appointments count when their `startAt` is in [from, to)."


async def _disclosure(info: Info) -> Disclosure:
    access = info.context.access
    granted = await access.field_access(K.ANALYTICS, ROW, None)
    if granted == Access.NONE:
        access.audit.denied(K.ANALYTICS, None, None, AuditAction.READ, "no role grants it")
        raise Forbidden("Only administrators and analysts may read aggregates")
    if granted == Access.FULL:
        return Disclosure.full()
    return Disclosure(info.context.settings.shms_suppression_threshold)


def _filter(value: AnalyticsFilter) -> analytics.AnalyticsFilter:
    dept = None if value.department_id is None else str(value.department_id)
    return analytics.analytics_filter(value.since, value.to, dept)


def _read(info: Info, aggregate: str) -> None:
    """One audit record per aggregate read (merged per request by the trail), no patient ids."""
    info.context.audit.read(K.ANALYTICS, None, None, [aggregate])


@strawberry.type(
    description="De-identifiable aggregates. Administrators get complete answers; analysts "
    "get groups of fewer distinct patients than the suppression threshold withheld."
)
class Analytics:
    disclosure: strawberry.Private[Disclosure]

    @strawberry.field(
        description="Per doctor: non-cancelled (`appointments`), completed, cancelled and "
        "no-show appointments. " + FILTER
    )
    async def appointments_per_doctor(
        self, info: Info, filter: AnalyticsFilter
    ) -> AppointmentsPerDoctorReport:
        data = await analytics.appointments_per_doctor(_filter(filter), self.disclosure)
        _read(info, "appointmentsPerDoctor")
        return per_doctor_report(data)

    @strawberry.field(
        description="Non-cancelled appointments per day, week (from Monday) or month of the "
        "facility's time zone. The first bucket starts at the local start of the unit holding "
        "`from`, the last ends at or after `to`; only appointments in [from, to) count. More "
        "than SHMS_ANALYTICS_MAX_BUCKETS buckets is BAD_USER_INPUT."
    )
    async def appointments_over_time(
        self, info: Info, filter: AnalyticsFilter, interval: TimeInterval
    ) -> AppointmentsOverTimeReport:
        settings = info.context.settings
        data = await analytics.appointments_over_time(
            _filter(filter),
            interval,
            self.disclosure,
            settings.facility_timezone,
            settings.shms_analytics_max_buckets,
        )
        _read(info, "appointmentsOverTime")
        return over_time_report(data)

    @strawberry.field(
        description="Treatment plans starting in [from, to) (by `startDate`, else when "
        "created), per specialty of their doctor: the `top` (1-50) conditions by distinct "
        "patients. A condition is the ICD-10 code, else the description (case-insensitive)."
    )
    async def conditions_by_specialty(
        self, info: Info, filter: AnalyticsFilter, top: int = 5
    ) -> ConditionsBySpecialtyReport:
        filt, count = _filter(filter), analytics.check_top(top)
        data = await analytics.conditions_by_specialty(filt, count, self.disclosure)
        _read(info, "conditionsBySpecialty")
        return conditions_report(data)

    @strawberry.field(
        description="Non-cancelled appointments per distinct patient, per department and "
        "overall. " + FILTER
    )
    async def appointments_per_patient(
        self, info: Info, filter: AnalyticsFilter
    ) -> AppointmentsPerPatientReport:
        data = await analytics.appointments_per_patient(_filter(filter), self.disclosure)
        _read(info, "appointmentsPerPatient")
        return per_patient_report(data)

    @strawberry.field(
        description="No-shows / (no-shows + completed or checked-in), per department and "
        "overall; scheduled and cancelled appointments are left out. " + FILTER
    )
    async def no_show_rate(self, info: Info, filter: AnalyticsFilter) -> NoShowRateReport:
        data = await analytics.no_show_rate(_filter(filter), self.disclosure)
        _read(info, "noShowRate")
        return no_show_report(data)

    @strawberry.field(
        description="Per department of the devices (their current one): minutes booked by "
        "non-cancelled, non-no-show appointments starting in [from, to) against devices x "
        "minutes of the range."
    )
    async def equipment_utilisation(
        self, info: Info, filter: AnalyticsFilter
    ) -> EquipmentUtilisationReport:
        data = await analytics.equipment_utilisation(_filter(filter), self.disclosure)
        _read(info, "equipmentUtilisation")
        return equipment_report(data)

    @strawberry.field(
        description="Charges created in [from, to) per charge department, month of the "
        "facility's time zone and currency, with their unpaid part."
    )
    async def revenue(self, info: Info, filter: AnalyticsFilter) -> RevenueReport:
        settings = info.context.settings
        data = await analytics.revenue(_filter(filter), self.disclosure, settings.facility_timezone)
        _read(info, "revenue")
        return revenue_report(data)

    @strawberry.field(
        description="Per catalogue test: minutes from the order to its first verification "
        "(median, 90th percentile, count), for verified orders placed in [from, to). A "
        "department is the ordering doctor's."
    )
    async def lab_turnaround(self, info: Info, filter: AnalyticsFilter) -> LabTurnaroundReport:
        data = await analytics.lab_turnaround(_filter(filter), self.disclosure)
        _read(info, "labTurnaround")
        return turnaround_report(data)

    @strawberry.field(
        description="Per clinic: minutes from check-in to being seen (the consultation's "
        "start; median, 90th percentile, count), for visits checked in in [from, to) and "
        "seen. Visits that ended unseen are not counted."
    )
    async def outpatient_waiting_time(
        self, info: Info, filter: AnalyticsFilter
    ) -> OutpatientWaitingTimeReport:
        data = await analytics.outpatient_waiting_time(_filter(filter), self.disclosure)
        _read(info, "outpatientWaitingTime")
        return waiting_report(data)

    @strawberry.field(
        description="Per ward and day, week (from Monday) or month of the facility's time "
        "zone: occupied bed-hours of the admissions' bed stays (a stay counts in the ward it "
        "was in, so transfers split it) clipped to the bucket and to [from, to), against "
        "capacity x hours, and the average daily census. Buckets as in appointmentsOverTime."
    )
    async def bed_occupancy(
        self, info: Info, filter: AnalyticsFilter, interval: TimeInterval
    ) -> BedOccupancyReport:
        settings = info.context.settings
        data = await inpatient_analytics.bed_occupancy(
            _filter(filter),
            interval,
            self.disclosure,
            settings.facility_timezone,
            settings.shms_analytics_max_buckets,
        )
        _read(info, "bedOccupancy")
        return bed_occupancy_report(data)

    @strawberry.field(
        description="Days from admission to discharge (mean, median, 90th percentile, count) "
        "of admissions discharged in [from, to), per department and ward of discharge."
    )
    async def length_of_stay(self, info: Info, filter: AnalyticsFilter) -> LengthOfStayReport:
        data = await inpatient_analytics.length_of_stay(_filter(filter), self.disclosure)
        _read(info, "lengthOfStay")
        return length_of_stay_report(data)

    @strawberry.field(
        description="Per operating theatre: booked and actual (in to out of theatre) minutes "
        "of the non-cancelled cases booked to start in [from, to) against the session minutes "
        "(08:00-18:00 on weekdays, facility time), cases, late starts and turnover times."
    )
    async def theatre_utilisation(
        self, info: Info, filter: AnalyticsFilter
    ) -> TheatreUtilisationReport:
        zone = info.context.settings.facility_timezone
        data = await inpatient_analytics.theatre_utilisation(_filter(filter), self.disclosure, zone)
        _read(info, "theatreUtilisation")
        return theatre_report(data)

    @strawberry.field(
        description="Per emergency department and current triage level, for visits arriving "
        "in [from, to): minutes to the first triage and to the disposition (median, 90th "
        "percentile, count), dispositions by kind and the left-without-being-seen rate."
    )
    async def emergency_times(self, info: Info, filter: AnalyticsFilter) -> EmergencyTimesReport:
        data = await inpatient_analytics.emergency_times(_filter(filter), self.disclosure)
        _read(info, "emergencyTimes")
        return emergency_report(data)

    @strawberry.field(
        description="Per drug and prescriber's department (as the dispense charge is booked), "
        "per day, week (from Monday) or month of the facility's time zone: dispenses that "
        "happened in [from, to), units, returned units, value and distinct patients. Buckets "
        "as in appointmentsOverTime."
    )
    async def dispensing_volume(
        self, info: Info, filter: AnalyticsFilter, interval: TimeInterval
    ) -> DispensingVolumeReport:
        settings = info.context.settings
        data = await revenue_analytics.dispensing_volume(
            _filter(filter),
            interval,
            self.disclosure,
            settings.facility_timezone,
            settings.shms_analytics_max_buckets,
        )
        _read(info, "dispensingVolume")
        return dispensing_report(data)

    @strawberry.field(
        description="Current pharmacy and ward stock per drug and location: value (quantity x "
        "unit cost), and the units and value expiring within `expiringWithinDays` (1-3650) "
        "days of `asOf`'s day (default today, UTC) or already expired."
    )
    async def pharmacy_stock(
        self, info: Info, as_of: datetime | None = None, expiring_within_days: int = 90
    ) -> PharmacyStockReport:
        data = await revenue_analytics.pharmacy_stock(as_of, expiring_within_days, self.disclosure)
        _read(info, "pharmacyStock")
        return stock_report(data)

    @strawberry.field(
        description="Per payer and current status, for claims first submitted in [from, to): "
        "claims, billed, approved and paid amounts, the denial rate (denied / adjudicated) and "
        "mean days from submission to adjudication and to payment. No department filter."
    )
    async def claims_by_payer(self, info: Info, filter: AnalyticsFilter) -> ClaimsByPayerReport:
        data = await revenue_analytics.claims_by_payer(_filter(filter), self.disclosure)
        _read(info, "claimsByPayer")
        return claims_report(data)

    @strawberry.field(
        description="Days in accounts receivable: what is owed now over the average daily "
        "charges of [from, to), overall, per payer and self-pay, with the receivables aged "
        "0-30, 31-60, 61-90 and over 90 days since their charge. No department filter."
    )
    async def days_in_accounts_receivable(
        self, info: Info, filter: AnalyticsFilter
    ) -> DaysInAccountsReceivableReport:
        data = await revenue_analytics.days_in_receivables(_filter(filter), self.disclosure)
        _read(info, "daysInAccountsReceivable")
        return receivables_report(data)


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="Aggregates: administrators and analysts only (analysts de-identified)."
    )
    async def analytics(self, info: Info) -> Analytics:
        return Analytics(disclosure=await _disclosure(info))
