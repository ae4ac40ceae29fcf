"""Issue 5 (1-2): weekly templates in the facility zone, exceptions, and free slots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from models import Doctor, MedicalEquipment, Reservation
from models.equipment import EquipmentStatus
from models.scheduling import AppointmentStatus, ReservedResource
from tests import factories
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code

YEAR = 2031

SET_HOURS = """
mutation($doctorId: ID!, $days: [DayHoursInput!]!) {
  setWorkingHours(doctorId: $doctorId, days: $days) {
    doctorId days { weekday ranges { start end } }
  }
}"""
ADD_EXCEPTION = """
mutation($input: CalendarExceptionInput!) {
  addCalendarException(input: $input) { id doctorId firstDay lastDay start end reason }
}"""
REMOVE_EXCEPTION = "mutation($id: ID!) { removeCalendarException(id: $id) { id } }"
CREATE_TYPE = """
mutation($input: AppointmentTypeInput!) {
  createAppointmentType(input: $input) { id code durationMinutes equipmentType }
}"""
SCHEDULE_MAINTENANCE = """
mutation($input: MaintenanceWindowInput!) {
  scheduleMaintenance(input: $input) { id equipmentId startAt endAt }
}"""
AVAILABILITY = """
query($doctorId: ID!, $from: DateTime!, $to: DateTime!, $type: ID!) {
  availability(doctorId: $doctorId, from: $from, to: $to, appointmentType: $type) {
    startAt endAt equipmentId
  }
}"""

WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def set_hours(
    gql: GraphQLClient, doctor: Doctor, start: str = "09:00", end: str = "12:00"
) -> None:
    days = [{"weekday": d, "ranges": [{"start": start, "end": end}]} for d in WEEKDAYS]
    await gql.data(SET_HOURS, doctorId=str(doctor.id), days=days)


async def new_type(gql: GraphQLClient, minutes: int = 30, equipment: str | None = None) -> str:
    code_ = f"T{factories.n()}"
    data = await gql.data(
        CREATE_TYPE,
        input={
            "code": code_,
            "name": "Visit",
            "durationMinutes": minutes,
            "equipmentType": equipment,
        },
    )
    return str(data["createAppointmentType"]["id"])


async def slots(
    gql: GraphQLClient, doctor: Doctor, start: datetime, end: datetime, kind: str
) -> list[dict[str, Any]]:
    data = await gql.data(
        AVAILABILITY, doctorId=str(doctor.id), **{"from": iso(start), "to": iso(end)}, type=kind
    )
    result: list[dict[str, Any]] = data["availability"]
    return result


def by_day(found: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = {}
    for slot in found:
        out.setdefault(parse(slot["startAt"]).date(), []).append(slot)
    return out


@pytest.fixture
async def doctor(app: Any) -> Doctor:
    return await factories.doctor()


# -- DST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("month", "before_utc", "after_utc"), [(3, 8, 7), (10, 7, 8)])
async def test_local_hours_follow_daylight_saving(
    gql: GraphQLClient, doctor: Doctor, month: int, before_utc: int, after_utc: int
) -> None:
    """09:00-12:00 Europe/Berlin: 08:00Z in winter (CET), 07:00Z in summer (CEST)."""
    await set_hours(gql, doctor)
    kind = await new_type(gql, 30)
    sunday = last_sunday(YEAR, month)
    friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)

    fri = await slots(gql, doctor, at(friday, 0), at(friday, 23), kind)
    assert fri[0] == {
        "startAt": iso(at(friday, before_utc)),
        "endAt": iso(at(friday, before_utc, 30)),
        "equipmentId": None,
    }
    assert fri[-1]["endAt"] == iso(at(friday, before_utc + 3))
    assert len(fri) == 31  # 09:00, 09:05, ... 11:30

    mon = await slots(gql, doctor, at(monday, 0), at(monday, 23), kind)
    assert mon[0]["startAt"] == iso(at(monday, after_utc))
    assert mon[-1]["endAt"] == iso(at(monday, after_utc + 3))

    # One window across the change: Thursday to Tuesday.
    week = by_day(
        await slots(
            gql, doctor, at(friday - timedelta(days=1), 0), at(monday + timedelta(days=2), 0), kind
        )
    )
    assert sorted(week) == [friday - timedelta(days=1), friday, monday, monday + timedelta(days=1)]
    for day, found in week.items():
        hour = before_utc if day < sunday else after_utc
        assert found[0]["startAt"] == iso(at(day, hour)), day
        assert len(found) == 31


async def test_slots_step_on_the_grid_and_fit_the_duration(
    gql: GraphQLClient, doctor: Doctor
) -> None:
    await set_hours(gql, doctor, "09:00", "10:00")
    kind = await new_type(gql, 45)
    monday = date(YEAR, 1, 6)
    found = await slots(gql, doctor, at(monday, 0), at(monday, 23), kind)
    starts = [parse(s["startAt"]) for s in found]
    assert starts[0] == at(monday, 8) and starts[-1] == at(monday, 8, 15)
    assert all(b - a == timedelta(minutes=5) for a, b in pairwise(starts))
    assert all(parse(s["endAt"]) - parse(s["startAt"]) == timedelta(minutes=45) for s in found)
    # Clipped to the window asked for.
    inside = await slots(gql, doctor, at(monday, 8, 2), at(monday, 9), kind)
    assert [s["startAt"] for s in inside] == [
        iso(at(monday, 8, 5)),
        iso(at(monday, 8, 10)),
        iso(at(monday, 8, 15)),
    ]


async def test_no_template_no_slots_and_past_is_never_offered(
    gql: GraphQLClient, doctor: Doctor
) -> None:
    kind = await new_type(gql)
    monday = date(YEAR, 1, 6)
    assert await slots(gql, doctor, at(monday, 0), at(monday, 23), kind) == []
    await set_hours(gql, doctor)
    past = date(2020, 1, 6)
    assert await slots(gql, doctor, at(past, 0), at(past, 23), kind) == []


# -- exceptions --------------------------------------------------------------------------------


async def test_leave_removes_the_doctors_days(gql: GraphQLClient, doctor: Doctor) -> None:
    await set_hours(gql, doctor)
    kind = await new_type(gql)
    monday = date(YEAR, 1, 6)
    added = await gql.data(
        ADD_EXCEPTION,
        input={
            "doctorId": str(doctor.id),
            "firstDay": str(monday),
            "lastDay": str(monday + timedelta(days=1)),
            "reason": "Leave",
        },
    )
    week = by_day(await slots(gql, doctor, at(monday, 0), at(monday + timedelta(days=5), 0), kind))
    assert sorted(week) == [monday + timedelta(days=i) for i in (2, 3, 4)]

    await gql.data(REMOVE_EXCEPTION, id=added["addCalendarException"]["id"])
    week = by_day(await slots(gql, doctor, at(monday, 0), at(monday + timedelta(days=5), 0), kind))
    assert len(week) == 5


async def test_partial_leave_removes_part_of_each_day(gql: GraphQLClient, doctor: Doctor) -> None:
    await set_hours(gql, doctor)
    kind = await new_type(gql)
    monday = date(YEAR, 1, 6)
    await gql.data(
        ADD_EXCEPTION,
        input={
            "doctorId": str(doctor.id),
            "firstDay": str(monday),
            "lastDay": str(monday),
            "start": "10:00",
            "end": "12:00",
            "reason": "Training",
        },
    )
    found = await slots(gql, doctor, at(monday, 0), at(monday, 23), kind)
    assert found[0]["startAt"] == iso(at(monday, 8))
    assert found[-1]["endAt"] == iso(at(monday, 9))  # 10:00 Berlin


async def test_facility_holiday_removes_the_day_for_everyone(
    gql: GraphQLClient, doctor: Doctor
) -> None:
    other = await factories.doctor()
    await set_hours(gql, doctor)
    await set_hours(gql, other)
    kind = await new_type(gql)
    monday = date(YEAR, 1, 6)
    added = await gql.data(
        ADD_EXCEPTION, input={"firstDay": str(monday), "lastDay": str(monday), "reason": "Holiday"}
    )
    assert added["addCalendarException"]["doctorId"] is None
    for who in (doctor, other):
        week = by_day(await slots(gql, who, at(monday, 0), at(monday + timedelta(days=2), 0), kind))
        assert sorted(week) == [monday + timedelta(days=1)]
    listed = await gql.data(
        'query($d: ID) { calendarExceptions(from: "2031-01-01", to: "2031-01-31", '
        "doctorId: $d) { reason } }",
        d=str(doctor.id),
    )
    assert listed["calendarExceptions"] == [{"reason": "Holiday"}]


# -- bookings ----------------------------------------------------------------------------------


async def test_active_appointments_remove_their_slots(gql: GraphQLClient, doctor: Doctor) -> None:
    await set_hours(gql, doctor)
    kind = await new_type(gql, 30)
    monday = date(YEAR, 1, 6)
    await factories.appointment(doc=doctor, start=at(monday, 9), end_at=at(monday, 9, 30))
    await factories.appointment(
        doc=doctor, start=at(monday, 10), end_at=at(monday, 11), status=AppointmentStatus.CANCELLED
    )
    starts = [
        parse(s["startAt"]) for s in await slots(gql, doctor, at(monday, 0), at(monday, 23), kind)
    ]
    assert at(monday, 8, 30) in starts and at(monday, 9, 30) in starts
    assert not any(at(monday, 8, 35) <= s < at(monday, 9, 30) for s in starts)
    assert at(monday, 10) in starts  # the cancelled one frees its time


# -- equipment ---------------------------------------------------------------------------------


async def test_equipment_types_need_a_free_device(gql: GraphQLClient, doctor: Doctor) -> None:
    await set_hours(gql, doctor, "09:00", "10:00")
    kind = await new_type(gql, 30, "ECG monitor")
    monday = date(YEAR, 1, 6)
    window = (at(monday, 0), at(monday, 23))
    assert await slots(gql, doctor, *window, kind) == []  # no device at all

    elsewhere = await factories.equipment()  # another department: not usable
    device = await factories.equipment(await _department(doctor))
    found = await slots(gql, doctor, *window, kind)
    assert {s["equipmentId"] for s in found} == {str(device.id)}
    assert len(found) == 7
    assert str(elsewhere.id) not in {s["equipmentId"] for s in found}

    # Booked (by another doctor) 08:00Z-08:30Z: only slots from 08:30Z remain.
    await factories.appointment(device=device, start=at(monday, 8), end_at=at(monday, 8, 30))
    found = await slots(gql, doctor, *window, kind)
    assert [s["startAt"] for s in found] == [iso(at(monday, 8, 30))]

    # A reservation in flight (no appointment yet) holds its slot too.
    await Reservation(
        resource=ReservedResource.EQUIPMENT,
        resource_id=device.id,
        slot=at(monday, 8, 55),
        appointment_id=device.id,
    ).insert()
    assert await slots(gql, doctor, *window, kind) == []

    # A second device of the type in the department makes the time bookable again.
    second = await factories.equipment(await _department(doctor))
    found = await slots(gql, doctor, *window, kind)
    assert len(found) == 7
    assert found[0]["equipmentId"] == str(second.id)

    # ... unless it is in maintenance then,
    await gql.data(
        SCHEDULE_MAINTENANCE,
        input={
            "equipmentId": str(second.id),
            "startAt": iso(at(monday, 8)),
            "endAt": iso(at(monday, 8, 20)),
        },
    )
    found = await slots(gql, doctor, *window, kind)
    assert [s["startAt"] for s in found] == [
        iso(at(monday, 8, 20)),
        iso(at(monday, 8, 25)),
        iso(at(monday, 8, 30)),
    ]
    assert {s["equipmentId"] for s in found} == {str(second.id)}

    # ... or out of service.
    await MedicalEquipment.get_motor_collection().update_one(
        {"_id": second.id}, {"$set": {"status": EquipmentStatus.OUT_OF_SERVICE.value}}
    )
    found = await slots(gql, doctor, *window, kind)
    assert found == []  # the first device is still booked and reserved


async def _department(doctor: Doctor) -> Any:
    from models import Department

    return await Department.get(doctor.department_id)


# -- input -------------------------------------------------------------------------------------


async def test_windows_are_capped_and_checked(gql: GraphQLClient, doctor: Doctor) -> None:
    await set_hours(gql, doctor)
    kind = await new_type(gql)
    start = at(date(YEAR, 1, 1), 0)
    variables = {"doctorId": str(doctor.id), "type": kind}
    ok = await gql(
        AVAILABILITY, **variables, **{"from": iso(start), "to": iso(start + timedelta(days=31))}
    )
    assert "errors" not in ok
    error = await gql.error(
        AVAILABILITY,
        **variables,
        **{"from": iso(start), "to": iso(start + timedelta(days=31, minutes=5))},
    )
    assert code(error) == "BAD_USER_INPUT" and "to" in error["extensions"]["fields"]
    error = await gql.error(AVAILABILITY, **variables, **{"from": iso(start), "to": iso(start)})
    assert code(error) == "BAD_USER_INPUT"
    error = await gql.error(
        AVAILABILITY,
        **{**variables, "type": str(doctor.id)},
        **{"from": iso(start), "to": iso(start + timedelta(days=1))},
    )
    assert code(error) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "ranges",
    [
        [{"start": "09:03", "end": "12:00"}],
        [{"start": "12:00", "end": "09:00"}],
        [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}],
        [{"start": "9am", "end": "12:00"}],
        [{"start": "09:00", "end": "24:05"}],
    ],
)
async def test_bad_templates_are_refused(
    gql: GraphQLClient, doctor: Doctor, ranges: list[dict[str, str]]
) -> None:
    error = await gql.error(
        SET_HOURS, doctorId=str(doctor.id), days=[{"weekday": "MONDAY", "ranges": ranges}]
    )
    assert code(error) == "BAD_USER_INPUT"


async def test_types_must_be_on_the_grid(gql: GraphQLClient) -> None:
    error = await gql.error(CREATE_TYPE, input={"code": "ODD", "name": "Odd", "durationMinutes": 7})
    assert code(error) == "BAD_USER_INPUT"


# -- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "service", "billing", "compliance"])
async def test_only_schedulers_and_patients_see_availability(
    gql: GraphQLClient, client_as: Any, doctor: Doctor, role: str
) -> None:
    await set_hours(gql, doctor)
    kind = await new_type(gql)
    monday = date(YEAR, 1, 6)
    variables = {
        "doctorId": str(doctor.id),
        "from": iso(at(monday, 0)),
        "to": iso(at(monday, 23)),
        "type": kind,
    }
    error = await client_as(roles=[role]).error(AVAILABILITY, **variables)
    assert code(error) == "FORBIDDEN"
    patient = await factories.patient()
    for caller in (
        client_as(roles=["patient"], pid=str(patient.id)),
        client_as(roles=["admin_staff"]),
    ):
        assert len((await caller.data(AVAILABILITY, **variables))["availability"]) == 31


async def test_doctors_edit_only_their_own_calendar(
    gql: GraphQLClient, client_as: Any, doctor: Doctor
) -> None:
    other = await factories.doctor()
    me = client_as(roles=["doctor"], sid=str(doctor.id), did=str(doctor.department_id))
    days = [{"weekday": "MONDAY", "ranges": [{"start": "08:00", "end": "16:00"}]}]
    mine = await me.data(SET_HOURS, doctorId=str(doctor.id), days=days)
    assert mine["setWorkingHours"]["days"] == [
        {"weekday": "MONDAY", "ranges": [{"start": "08:00", "end": "16:00"}]}
    ]
    assert code(await me.error(SET_HOURS, doctorId=str(other.id), days=days)) == "FORBIDDEN"
    leave = {"firstDay": "2031-02-03", "lastDay": "2031-02-07", "reason": "Leave"}
    assert (await me.data(ADD_EXCEPTION, input={**leave, "doctorId": str(doctor.id)}))[
        "addCalendarException"
    ]
    assert (
        code(await me.error(ADD_EXCEPTION, input={**leave, "doctorId": str(other.id)}))
        == "FORBIDDEN"
    )
    assert code(await me.error(ADD_EXCEPTION, input=leave)) == "FORBIDDEN"  # holidays: admin
    assert (
        code(await me.error(CREATE_TYPE, input={"code": "X1", "name": "X", "durationMinutes": 10}))
        == "FORBIDDEN"
    )


async def test_front_desk_reads_calendars_but_does_not_edit(
    client_as: Any, gql: GraphQLClient, doctor: Doctor
) -> None:
    await set_hours(gql, doctor)
    desk = client_as(roles=["admin_staff"])
    read = await desk.data(
        "query($d: ID!) { workingHours(doctorId: $d) { days { weekday } } }", d=str(doctor.id)
    )
    assert len(read["workingHours"]["days"]) == 5
    days = [{"weekday": "MONDAY", "ranges": []}]
    assert code(await desk.error(SET_HOURS, doctorId=str(doctor.id), days=days)) == "FORBIDDEN"
    error = await client_as(roles=["patient"]).error(
        "query($d: ID!) { workingHours(doctorId: $d) { id } }", d=str(doctor.id)
    )
    assert code(error) == "FORBIDDEN"
