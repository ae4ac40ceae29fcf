"""The inpatient aggregates over GraphQL: who may read them, that no patient id comes out, the
filter's limits (calendar ends included), the result cache and its invalidation by writes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from graphql import parse

from api.schema import schema
from models.emergency import DispositionKind as Kind
from models.wards import Ward
from schema.saved_documents import inputs_of
from services.changes import changed
from tests import factories as f
from tests.analytics.conftest import MARCH, at
from tests.analytics.inpatient import admission, ed_visit, surgery, theatre, ward
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

BUCKET = """start end label availableBedHours occupiedBedHours occupancy averageDailyCensus
  patients suppressed"""
REPORTS = {
    "bedOccupancy": f"""bedOccupancy(filter: $f, interval: DAY) {{ deidentified suppressedGroups
      cached groups {{ wardId wardCode wardName departmentId department {{ name }} capacity
      buckets {{ {BUCKET} }} }} }}""",
    "lengthOfStay": """lengthOfStay(filter: $f) { deidentified suppressedGroups cached
      groups { departmentId admissions meanDays medianDays p90Days patients suppressed
      wards { wardId wardCode admissions meanDays medianDays p90Days patients suppressed } } }""",
    "theatreUtilisation": """theatreUtilisation(filter: $f) { deidentified suppressedGroups
      cached groups { theatreId theatreCode departmentId availableMinutes cases bookedMinutes
      actualMinutes bookedUtilisation actualUtilisation started lateStarts turnovers
      medianTurnoverMinutes p90TurnoverMinutes patients suppressed } }""",
    "emergencyTimes": """emergencyTimes(filter: $f) { deidentified suppressedGroups cached
      groups { departmentId triageLevel visits triaged medianMinutesToTriage
      p90MinutesToTriage disposed medianMinutesToDisposition p90MinutesToDisposition
      discharged admitted transferred leftWithoutBeingSeen leftWithoutBeingSeenRate patients
      suppressed } }""",
}
ALL = "query($f: AnalyticsFilter!) { analytics { " + " ".join(REPORTS.values()) + " } }"


def query(name: str) -> str:
    return "query($f: AnalyticsFilter!) { analytics { " + REPORTS[name] + " } }"


async def hospital() -> list[str]:
    """Six patients with a stay, a surgery and an ED visit each in March; their ids."""
    dept = await f.department()
    beds, room = await ward(dept, 6), await theatre(dept)
    people = [await f.patient() for _ in range(6)]
    for i, who in enumerate(people):
        start = at("2026-03-02T08:00:00Z") + timedelta(days=i)
        await admission(who, [(beds, start, start + timedelta(days=2))])
        await surgery(room, who, start + timedelta(hours=2), 60, start + timedelta(hours=2),
                      start + timedelta(hours=3))  # fmt: skip
        await ed_visit(dept, who, start - timedelta(hours=3), 5, 2, 120, Kind.ADMITTED)
    return [str(p.id) for p in people]


@pytest.mark.parametrize("roles", [["doctor"], ["nurse"], ["admin_staff"], ["patient"]])
@pytest.mark.parametrize("name", list(REPORTS))
async def test_clinicians_and_others_are_refused(
    client_as: Any, roles: list[str], name: str
) -> None:
    error = await client_as(roles=roles).error(query(name), f=MARCH)
    assert code(error) == "FORBIDDEN", error
    assert error["path"] == ["analytics"]


async def test_no_patient_id_leaves_the_reports(
    analyst: GraphQLClient, admin: GraphQLClient
) -> None:
    ids = await hospital()
    for client in (analyst, admin):
        data = (await client.data(ALL, f=MARCH))["analytics"]
        for name in REPORTS:
            report = data[name]
            assert report["groups"], name
            assert report["deidentified"] is (client is analyst)
        text = json.dumps(data)
        assert not any(pid in text for pid in ids)
    # The analyst's answers are not the admin's: six patients are shown to both here.
    figures = (await analyst.data(query("emergencyTimes"), f=MARCH))["analytics"]
    (group,) = figures["emergencyTimes"]["groups"]
    assert (group["visits"], group["patients"], group["suppressed"]) == (6, 6, False)
    assert group["medianMinutesToTriage"] == 5.0 and group["admitted"] == 6
    stay = (await analyst.data(query("lengthOfStay"), f=MARCH))["analytics"]["lengthOfStay"]
    assert [(g["admissions"], g["medianDays"]) for g in stay["groups"]] == [(6, 2.0)]


EDGES = [
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:00:00Z",
    "0001-01-01T00:00:00Z",
]


@pytest.mark.parametrize("name", list(REPORTS))
@pytest.mark.parametrize("edge", EDGES)
async def test_calendar_ends_are_bad_user_input(admin: GraphQLClient, name: str, edge: str) -> None:
    near = "9999-06-01T00:00:00Z" if edge.startswith("9999") else "0001-06-01T00:00:00Z"
    window = {"from": edge, "to": near} if edge.startswith("0001") else {"from": near, "to": edge}
    error = await admin.error(query(name), f=window)
    assert code(error) == "BAD_USER_INPUT", error
    assert "filter." in error["message"]


@pytest.mark.parametrize("name", list(REPORTS))
@pytest.mark.parametrize(
    ("filt", "field"),
    [
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "filter.to"),
        ({"from": "2023-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "filter.to"),
        ({**MARCH, "departmentId": "nope"}, "filter.departmentId"),
        ({"from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00Z"}, "filter.from"),
    ],
)
async def test_bad_filters_are_bad_user_input(
    analyst: GraphQLClient, name: str, filt: dict[str, Any], field: str
) -> None:
    error = await analyst.error(query(name), f=filt)
    assert code(error) == "BAD_USER_INPUT", error
    assert field in error["extensions"]["fields"], error


async def test_three_years_of_days_is_too_many_buckets(admin: GraphQLClient) -> None:
    filt = {"from": "2023-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    error = await admin.error(query("bedOccupancy"), f=filt)
    assert code(error) == "BAD_USER_INPUT" and "filter" in error["extensions"]["fields"]
    # The other three take the longest range.
    for name in ("lengthOfStay", "theatreUtilisation", "emergencyTimes"):
        assert (await admin.data(query(name), f=filt))["analytics"][name]["groups"] == []


async def test_a_write_refreshes_the_cached_occupancy(admin: GraphQLClient) -> None:
    dept = await f.department()
    beds = await ward(dept, 2)
    await admission(await f.patient(), [(beds, at("2026-03-02T00:00:00Z"), None)])
    first = (await admin.data(query("bedOccupancy"), f=MARCH))["analytics"]["bedOccupancy"]
    second = (await admin.data(query("bedOccupancy"), f=MARCH))["analytics"]["bedOccupancy"]
    assert (first["cached"], second["cached"]) == (False, True)
    late = await admission(await f.patient(), [(beds, at("2026-03-31T00:00:00Z"), None)])
    await changed(late, "admitted")  # as every service write ends
    third = (await admin.data(query("bedOccupancy"), f=MARCH))["analytics"]["bedOccupancy"]
    assert third["cached"] is False
    (group,) = third["groups"]
    # Berlin days (UTC+2 from 29 Mar): 31 Mar is 30 Mar 22:00Z-31 Mar 22:00Z, 24 h of the first
    # patient and 22 h of the second; 1 Apr holds the range's last 2 hours of both.
    hours = {b["label"]: b["occupiedBedHours"] for b in group["buckets"]}
    assert (hours["2026-03-31"], hours["2026-04-01"]) == (46.0, 4.0)
    renamed = await Ward.get(ObjectId(group["wardId"]))
    assert renamed is not None
    renamed.name = "Renamed"
    await renamed.save()
    await changed(renamed, "updated")
    fourth = (await admin.data(query("bedOccupancy"), f=MARCH))["analytics"]["bedOccupancy"]
    assert fourth["cached"] is False and fourth["groups"][0]["wardName"] == "Renamed"


@pytest.mark.parametrize(
    ("name", "reads"),
    [
        ("bedOccupancy", {"admissions", "wards"}),
        ("lengthOfStay", {"admissions", "wards"}),
        ("theatreUtilisation", {"surgery_bookings", "surgical_records", "operating_theatres"}),
        ("emergencyTimes", {"emergency_visits"}),
    ],
)
def test_saved_queries_of_a_report_are_dropped_by_writes_to_what_it_reads(
    name: str, reads: set[str]
) -> None:
    """A saved query's cached answer depends on the collections ``inputs_of`` names: each
    report's own, even when only its top-level groups are selected."""
    shallow = f"query($f: AnalyticsFilter!) {{ analytics {{ {name}(filter: $f"
    shallow += ", interval: DAY" if name == "bedOccupancy" else ""
    shallow += ") { cached groups { suppressed } } } }"
    assert reads <= inputs_of(schema, parse(shallow))
