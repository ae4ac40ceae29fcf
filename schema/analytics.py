"""GraphQL types of the aggregates: views over the JSON reports ``services.analytics`` returns.

Reports are plain JSON (they live in the result cache), so each type is built from a row by
``*_report`` below rather than resolved by attribute from a document.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from bson import ObjectId

from schema.common import Long
from schema.context import Info
from services.buckets import Interval

if TYPE_CHECKING:
    from schema.departments import Department
    from schema.staff import Doctor

strawberry.enum(Interval, name="TimeInterval", description="Calendar unit of a time series.")
TimeInterval = Interval

Row = dict[str, Any]

PATIENTS = (
    "Distinct patients in the group; null when the group is suppressed. Analysts see no group "
    "with fewer patients than the suppression threshold (zero is shown: nobody to protect)."
)
SUPPRESSED = "True when the group was withheld: its key stays, every measure is null."
TOTALS = (
    "When de-identified, computed over the visible groups only, so a suppressed group can "
    "never be derived by subtraction; suppressed itself when small, or when every group is."
)


@strawberry.input(
    description="What an aggregate counts: records in [from, to) — at most 3 years — "
    "optionally of one department."
)
class AnalyticsFilter:
    since: datetime = strawberry.field(
        name="from", description="Inclusive start: an instant with a time zone offset."
    )
    to: datetime = strawberry.field(description="Exclusive end; after `from`.")
    department_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only this department: the appointment's, the plan doctor's, the "
        "device's, the charge's, the lab order's ordering doctor's, the outpatient visit's "
        "clinic, the ward's (bed stays; discharging ward for length of stay), the theatre's "
        "or the emergency department.",
    )


@strawberry.interface(description="What every aggregate report says about how it was made.")
class AnalyticsReport:
    deidentified: bool = strawberry.field(
        description="True when small groups were suppressed (analysts); false for full answers."
    )
    suppression_threshold: int | None = strawberry.field(
        description="Fewest distinct patients a visible group has; null when not de-identified."
    )
    suppressed_groups: int = strawberry.field(description="How many groups were withheld.")
    cached: bool = strawberry.field(description="Served from the result cache.")
    computed_at: datetime = strawberry.field(
        description="When the numbers were computed (earlier than now when cached)."
    )


def _header(data: Row) -> Row:
    return {
        "deidentified": data["deidentified"],
        "suppression_threshold": data["suppression_threshold"],
        "suppressed_groups": data["suppressed_groups"],
        "cached": data["cached"],
        "computed_at": datetime.fromisoformat(data["computed_at"]),
    }


@strawberry.type
class DepartmentGroup:
    """A group keyed by department: each subclass redeclares ``department_id`` with its own
    description (and nullability); the department itself resolves the same way for all."""

    department_id: strawberry.ID | None

    @strawberry.field
    async def department(
        self, info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        if self.department_id is None:
            return None
        return await info.context.loaders.department_by_id.load(ObjectId(self.department_id))


# -- appointmentsPerDoctor -------------------------------------------------------------------


@strawberry.type(description="One doctor's appointments starting in the range.")
class AppointmentsPerDoctorGroup:
    doctor_id: strawberry.ID
    appointments: int | None = strawberry.field(description="Non-cancelled appointments.")
    completed: int | None
    cancelled: int | None
    no_shows: int | None
    patients: int | None = strawberry.field(
        description=PATIENTS + " Counts patients of appointments of any status."
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)

    @strawberry.field
    async def doctor(self, info: Info) -> Annotated[Doctor, strawberry.lazy("schema.staff")] | None:
        return await info.context.loaders.doctor_by_id.load(ObjectId(self.doctor_id))


@strawberry.type
class AppointmentsPerDoctorReport(AnalyticsReport):
    groups: list[AppointmentsPerDoctorGroup] = strawberry.field(
        description="By appointments desc, then doctor id; suppressed groups last, by doctor id."
    )


def per_doctor_report(data: Row) -> AppointmentsPerDoctorReport:
    groups = [AppointmentsPerDoctorGroup(**g) for g in data["groups"]]
    return AppointmentsPerDoctorReport(groups=groups, **_header(data))


# -- appointmentsOverTime --------------------------------------------------------------------


@strawberry.type(description="One local day, ISO week (from Monday) or month.")
class AppointmentsOverTimeGroup:
    start: datetime = strawberry.field(description="Local start of the bucket, as an instant.")
    end: datetime = strawberry.field(description="Local end of the bucket (exclusive).")
    label: str = strawberry.field(description="'2026-03-01', '2026-W09' or '2026-03'.")
    appointments: int | None = strawberry.field(
        description="Non-cancelled appointments of the bucket starting in [from, to)."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class AppointmentsOverTimeReport(AnalyticsReport):
    groups: list[AppointmentsOverTimeGroup] = strawberry.field(
        description="Every bucket in order, empty ones with zeros."
    )


def over_time_report(data: Row) -> AppointmentsOverTimeReport:
    groups = [
        AppointmentsOverTimeGroup(
            **{
                **g,
                "start": datetime.fromisoformat(g["start"]),
                "end": datetime.fromisoformat(g["end"]),
            }
        )
        for g in data["groups"]
    ]
    return AppointmentsOverTimeReport(groups=groups, **_header(data))


# -- conditionsBySpecialty -------------------------------------------------------------------


@strawberry.type(description="One condition: an ICD-10 code, or a description when uncoded.")
class ConditionCount:
    code: str | None = strawberry.field(description="ICD-10 code; null for uncoded plans.")
    description: str = strawberry.field(
        description="The plans' diagnosis description (uncoded plans are grouped by it, "
        "case-insensitively)."
    )
    plans: int | None
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="One specialty of the plans' attending doctors.")
class ConditionsBySpecialtyGroup:
    specialty: str
    conditions: list[ConditionCount] = strawberry.field(
        description="The top conditions by patients desc, then code and description; "
        "suppressed ones last."
    )
    patients: int | None = strawberry.field(
        description="Distinct patients of the specialty's plans. " + TOTALS
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class ConditionsBySpecialtyReport(AnalyticsReport):
    groups: list[ConditionsBySpecialtyGroup] = strawberry.field(
        description="By specialty; `suppressedGroups` counts the condition rows withheld."
    )


def conditions_report(data: Row) -> ConditionsBySpecialtyReport:
    groups = [
        ConditionsBySpecialtyGroup(
            **{**g, "conditions": [ConditionCount(**c) for c in g["conditions"]]}
        )
        for g in data["groups"]
    ]
    return ConditionsBySpecialtyReport(groups=groups, **_header(data))


# -- appointmentsPerPatient ------------------------------------------------------------------


@strawberry.type(description="Appointments per patient of one department, or overall.")
class AppointmentsPerPatientGroup(DepartmentGroup):
    department_id: strawberry.ID | None = strawberry.field(description="Null for `overall`.")
    appointments: int | None = strawberry.field(description="Non-cancelled appointments.")
    patients: int | None = strawberry.field(description=PATIENTS)
    average: float | None = strawberry.field(
        description="appointments / patients; null when there are no patients."
    )
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class AppointmentsPerPatientReport(AnalyticsReport):
    overall: AppointmentsPerPatientGroup = strawberry.field(
        description="All departments. " + TOTALS
    )
    groups: list[AppointmentsPerPatientGroup] = strawberry.field(description="By department id.")


def per_patient_report(data: Row) -> AppointmentsPerPatientReport:
    return AppointmentsPerPatientReport(
        overall=AppointmentsPerPatientGroup(**data["overall"]),
        groups=[AppointmentsPerPatientGroup(**g) for g in data["groups"]],
        **_header(data),
    )


# -- noShowRate ------------------------------------------------------------------------------


@strawberry.type(description="No-shows against attended visits of one department, or overall.")
class NoShowRateGroup(DepartmentGroup):
    department_id: strawberry.ID | None = strawberry.field(description="Null for `overall`.")
    no_shows: int | None
    attended: int | None = strawberry.field(description="Completed or checked-in appointments.")
    rate: float | None = strawberry.field(
        description="noShows / (noShows + attended); null when both are 0."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class NoShowRateReport(AnalyticsReport):
    overall: NoShowRateGroup = strawberry.field(description="All departments. " + TOTALS)
    groups: list[NoShowRateGroup] = strawberry.field(description="By department id.")


def no_show_report(data: Row) -> NoShowRateReport:
    return NoShowRateReport(
        overall=NoShowRateGroup(**data["overall"]),
        groups=[NoShowRateGroup(**g) for g in data["groups"]],
        **_header(data),
    )


# -- equipmentUtilisation --------------------------------------------------------------------


@strawberry.type(description="Bookings of the devices of one department.")
class EquipmentUtilisationGroup(DepartmentGroup):
    department_id: strawberry.ID
    devices: int = strawberry.field(description="Devices now allocated to the department.")
    available_minutes: Long = strawberry.field(description="devices x minutes of [from, to).")
    booked_minutes: Long | None = strawberry.field(
        description="Length of the non-cancelled, non-no-show appointments on these devices "
        "starting in [from, to)."
    )
    utilisation: float | None = strawberry.field(
        description="bookedMinutes / availableMinutes; null when nothing is available."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class EquipmentUtilisationReport(AnalyticsReport):
    groups: list[EquipmentUtilisationGroup] = strawberry.field(
        description="Every department holding devices, by department id."
    )


def equipment_report(data: Row) -> EquipmentUtilisationReport:
    groups = [EquipmentUtilisationGroup(**g) for g in data["groups"]]
    return EquipmentUtilisationReport(groups=groups, **_header(data))


# -- revenue ---------------------------------------------------------------------------------


@strawberry.type(description="Charges of one department, local month and currency.")
class RevenueGroup(DepartmentGroup):
    department_id: strawberry.ID | None = strawberry.field(
        description="The charge's department; null for charges of none."
    )
    month: str = strawberry.field(description="Month of the facility's time zone: '2026-03'.")
    currency: str
    charged: Long | None = strawberry.field(
        description="Sum of the charges created in the month (minor units)."
    )
    outstanding: Long | None = strawberry.field(
        description="The unpaid part of those charges: payments are not tied to charges, so "
        "each account's unpaid balance (charged - paid, at least 0) is spread over its charges "
        "in proportion to their amounts; rounded half up."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class RevenueReport(AnalyticsReport):
    groups: list[RevenueGroup] = strawberry.field(
        description="By month, then department id, then currency."
    )


def revenue_report(data: Row) -> RevenueReport:
    return RevenueReport(groups=[RevenueGroup(**g) for g in data["groups"]], **_header(data))


# -- labTurnaround and outpatientWaitingTime -------------------------------------------------

MEDIAN = (
    "Median minutes; the mean of the middle two for an even count. Durations are binned to the "
    "whole minute below 1000 minutes, to three significant figures above."
)
P90 = (
    "90th percentile in minutes, interpolated linearly between the closest ranks (numpy's "
    "default, Excel's PERCENTILE.INC)."
)


@strawberry.type(description="One catalogue test: from the order to its first verification.")
class LabTurnaroundGroup:
    test_id: strawberry.ID = strawberry.field(description="The catalogue test (`LabTest` id).")
    code: str = strawberry.field(description="The test's code.")
    name: str = strawberry.field(description="The test's name as ordered.")
    tests: int | None = strawberry.field(
        description="Verified tests of this kind on orders placed in [from, to)."
    )
    median_minutes: float | None = strawberry.field(description=MEDIAN)
    p90_minutes: float | None = strawberry.field(description=P90)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class LabTurnaroundReport(AnalyticsReport):
    groups: list[LabTurnaroundGroup] = strawberry.field(
        description="By test code; only tests with a verified order in the range."
    )


def turnaround_report(data: Row) -> LabTurnaroundReport:
    groups = [LabTurnaroundGroup(**g) for g in data["groups"]]
    return LabTurnaroundReport(groups=groups, **_header(data))


@strawberry.type(description="How long the patients of one clinic waited to be seen.")
class OutpatientWaitingTimeGroup(DepartmentGroup):
    department_id: strawberry.ID = strawberry.field(
        description="The clinic: the visit's department."
    )
    visits: int | None = strawberry.field(
        description="Visits checked in in [from, to) that have been seen."
    )
    median_minutes: float | None = strawberry.field(description=MEDIAN)
    p90_minutes: float | None = strawberry.field(description=P90)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class OutpatientWaitingTimeReport(AnalyticsReport):
    groups: list[OutpatientWaitingTimeGroup] = strawberry.field(
        description="By department id; only clinics with a visit seen."
    )


def waiting_report(data: Row) -> OutpatientWaitingTimeReport:
    groups = [OutpatientWaitingTimeGroup(**g) for g in data["groups"]]
    return OutpatientWaitingTimeReport(groups=groups, **_header(data))


# -- bedOccupancy ----------------------------------------------------------------------------


@strawberry.type(description="One ward's beds over one local day, ISO week or month.")
class BedOccupancyBucket:
    start: datetime = strawberry.field(description="Local start of the bucket, as an instant.")
    end: datetime = strawberry.field(description="Local end of the bucket (exclusive).")
    label: str = strawberry.field(description="'2026-03-01', '2026-W09' or '2026-03'.")
    available_bed_hours: float = strawberry.field(
        description="The ward's capacity (staffed beds, today's) x hours of the bucket inside "
        "[from, to)."
    )
    occupied_bed_hours: float | None = strawberry.field(
        description="Hours of the admissions' bed stays in this ward inside the bucket and "
        "[from, to): a transfer splits a stay between wards; an open stay runs to `computedAt`."
    )
    occupancy: float | None = strawberry.field(
        description="occupiedBedHours / availableBedHours; null when the ward has no capacity."
    )
    average_daily_census: float | None = strawberry.field(
        description="Mean occupied beds over the bucket's hours in range (occupied bed-days / "
        "days)."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="One ward: its occupancy per bucket.")
class BedOccupancyGroup(DepartmentGroup):
    ward_id: strawberry.ID
    ward_code: str
    ward_name: str
    department_id: strawberry.ID | None = strawberry.field(description="The ward's department.")
    capacity: int = strawberry.field(description="Beds the ward is staffed for (today).")
    buckets: list[BedOccupancyBucket] = strawberry.field(
        description="Every bucket in order, empty ones with zeros."
    )


@strawberry.type
class BedOccupancyReport(AnalyticsReport):
    groups: list[BedOccupancyGroup] = strawberry.field(
        description="Active wards (of the department filter) and any ward with stays in "
        "range, by ward code; `suppressedGroups` counts withheld buckets."
    )


def _bucket(cell: Row) -> BedOccupancyBucket:
    return BedOccupancyBucket(
        **{
            **cell,
            "start": datetime.fromisoformat(cell["start"]),
            "end": datetime.fromisoformat(cell["end"]),
        }
    )


def bed_occupancy_report(data: Row) -> BedOccupancyReport:
    groups = [
        BedOccupancyGroup(**{**g, "buckets": [_bucket(c) for c in g["buckets"]]})
        for g in data["groups"]
    ]
    return BedOccupancyReport(groups=groups, **_header(data))


# -- lengthOfStay ----------------------------------------------------------------------------

MEDIAN_DAYS = (
    "Median days; the mean of the middle two for an even count. Durations are binned as in "
    "the minute reports (to 10 minutes below a week, 100 minutes below ten weeks)."
)
P90_DAYS = "90th percentile in days, interpolated linearly between the closest ranks."


@strawberry.type(description="Admissions discharged from one ward in the range.")
class LengthOfStayWard:
    ward_id: strawberry.ID
    ward_code: str
    ward_name: str
    admissions: int | None = strawberry.field(description="Admissions discharged in range.")
    mean_days: float | None = strawberry.field(description="Mean days, admission to discharge.")
    median_days: float | None = strawberry.field(description=MEDIAN_DAYS)
    p90_days: float | None = strawberry.field(description=P90_DAYS)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type(description="Admissions discharged from one department in the range.")
class LengthOfStayGroup(DepartmentGroup):
    department_id: strawberry.ID | None = strawberry.field(
        description="The department of discharge (the admission's last ward's)."
    )
    admissions: int | None = strawberry.field(
        description="Admissions discharged in range from its visible wards. " + TOTALS
    )
    mean_days: float | None = strawberry.field(description="Mean days, admission to discharge.")
    median_days: float | None = strawberry.field(description=MEDIAN_DAYS)
    p90_days: float | None = strawberry.field(description=P90_DAYS)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    wards: list[LengthOfStayWard] = strawberry.field(description="By ward code.")


@strawberry.type
class LengthOfStayReport(AnalyticsReport):
    groups: list[LengthOfStayGroup] = strawberry.field(
        description="By department id; `suppressedGroups` counts withheld wards and departments."
    )


def length_of_stay_report(data: Row) -> LengthOfStayReport:
    groups = [
        LengthOfStayGroup(**{**g, "wards": [LengthOfStayWard(**w) for w in g["wards"]]})
        for g in data["groups"]
    ]
    return LengthOfStayReport(groups=groups, **_header(data))


# -- theatreUtilisation ----------------------------------------------------------------------


@strawberry.type(description="One operating theatre's cases booked to start in the range.")
class TheatreUtilisationGroup(DepartmentGroup):
    theatre_id: strawberry.ID
    theatre_code: str
    theatre_name: str
    department_id: strawberry.ID | None = strawberry.field(description="The theatre's department.")
    available_minutes: Long = strawberry.field(
        description="Session minutes of [from, to): 08:00-18:00 on weekdays, facility time."
    )
    cases: int | None = strawberry.field(description="Non-cancelled bookings starting in range.")
    booked_minutes: Long | None = strawberry.field(
        description="Their booked length (end - start; cleaning time not included)."
    )
    actual_minutes: Long | None = strawberry.field(
        description="In theatre to out of theatre, of the cases with both times recorded."
    )
    booked_utilisation: float | None = strawberry.field(
        description="bookedMinutes / availableMinutes; out-of-session cases count, so it may "
        "exceed 1."
    )
    actual_utilisation: float | None = strawberry.field(
        description="actualMinutes / availableMinutes."
    )
    started: int | None = strawberry.field(description="Cases with an in-theatre time.")
    late_starts: int | None = strawberry.field(
        description="Cases in theatre more than 5 minutes after their booked start."
    )
    turnovers: int | None = strawberry.field(
        description="Gaps between consecutive cases of the same local day."
    )
    median_turnover_minutes: float | None = strawberry.field(
        description="Median minutes from one case out of theatre to the next one in."
    )
    p90_turnover_minutes: float | None = strawberry.field(description=P90)
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class TheatreUtilisationReport(AnalyticsReport):
    groups: list[TheatreUtilisationGroup] = strawberry.field(
        description="Theatres of the department filter (inactive ones only with cases), by "
        "theatre code."
    )


def theatre_report(data: Row) -> TheatreUtilisationReport:
    groups = [TheatreUtilisationGroup(**g) for g in data["groups"]]
    return TheatreUtilisationReport(groups=groups, **_header(data))


# -- emergencyTimes --------------------------------------------------------------------------


@strawberry.type(description="Arrivals at one emergency department with one triage level.")
class EmergencyTimesGroup(DepartmentGroup):
    department_id: strawberry.ID = strawberry.field(description="The emergency department.")
    triage_level: int | None = strawberry.field(
        description="The current (latest) ESI level, 1-5; null for visits never triaged."
    )
    visits: int | None = strawberry.field(description="Visits arriving in [from, to).")
    triaged: int | None
    median_minutes_to_triage: float | None = strawberry.field(
        description="Arrival to the first triage. " + MEDIAN
    )
    p90_minutes_to_triage: float | None = strawberry.field(description=P90)
    disposed: int | None
    median_minutes_to_disposition: float | None = strawberry.field(
        description="Arrival to the disposition. " + MEDIAN
    )
    p90_minutes_to_disposition: float | None = strawberry.field(description=P90)
    discharged: int | None
    admitted: int | None
    transferred: int | None
    left_without_being_seen: int | None
    left_without_being_seen_rate: float | None = strawberry.field(
        description="leftWithoutBeingSeen / visits."
    )
    patients: int | None = strawberry.field(description=PATIENTS)
    suppressed: bool = strawberry.field(description=SUPPRESSED)


@strawberry.type
class EmergencyTimesReport(AnalyticsReport):
    groups: list[EmergencyTimesGroup] = strawberry.field(
        description="By department id, then triage level (never triaged last)."
    )


def emergency_report(data: Row) -> EmergencyTimesReport:
    groups = [EmergencyTimesGroup(**g) for g in data["groups"]]
    return EmergencyTimesReport(groups=groups, **_header(data))
