"""appointmentsPerDoctor: counts per doctor, edges of the range, department filter, suppression."""

from __future__ import annotations

from typing import Any

from models.scheduling import AppointmentStatus as S
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by

QUERY = """query($f: AnalyticsFilter!) { analytics { appointmentsPerDoctor(filter: $f) {
  deidentified suppressionThreshold suppressedGroups cached
  groups {
    doctorId doctor { lastName } appointments completed cancelled noShows patients suppressed
  }
} } }"""


async def facility() -> dict[str, Any]:
    """d1 (dept A): 5 patients; d2 (dept A): 4 patients; d3 (dept B): 1 patient."""
    a, b = await f.department(), await f.department()
    d1, d2, d3 = await f.doctor(a, last_name="One"), await f.doctor(a), await f.doctor(b)
    p = [await f.patient() for _ in range(5)]
    q = [await f.patient() for _ in range(4)]
    # d1: p0 completed at `from` exactly (counts), p1 completed, p2 cancelled, p3 no-show,
    # p4 scheduled, p0 again scheduled -> appointments (non-cancelled) 5, completed 2,
    # cancelled 1, noShows 1, patients 5 (p0..p4; the cancelled one's patient counts too).
    await f.appointment(p[0], d1, start=at("2026-03-01T00:00:00Z"), status=S.COMPLETED)
    await f.appointment(p[1], d1, start=at("2026-03-05T09:00:00Z"), status=S.COMPLETED)
    await f.appointment(p[2], d1, start=at("2026-03-06T09:00:00Z"), status=S.CANCELLED)
    await f.appointment(p[3], d1, start=at("2026-03-07T09:00:00Z"), status=S.NO_SHOW)
    await f.appointment(p[4], d1, start=at("2026-03-08T09:00:00Z"))
    await f.appointment(p[0], d1, start=at("2026-03-31T23:55:00Z"))
    # Outside [from, to): one minute before `from`, and exactly at `to`.
    await f.appointment(p[1], d1, start=at("2026-02-28T23:59:00Z"))
    await f.appointment(p[1], d1, start=at("2026-04-01T00:00:00Z"))
    # d2: four patients, one scheduled appointment each -> 4 appointments, 4 patients.
    for i, patient in enumerate(q):
        await f.appointment(patient, d2, start=at(f"2026-03-1{i}T10:00:00Z"))
    # d3: one completed appointment with p0 -> 1 appointment, 1 patient.
    await f.appointment(p[0], d3, start=at("2026-03-20T10:00:00Z"), status=S.COMPLETED)
    return {"a": a, "b": b, "d1": d1, "d2": d2, "d3": d3}


async def test_admin_gets_every_doctor_sorted_by_appointments(admin: Any) -> None:
    w = await facility()
    report = (await admin.data(QUERY, f=MARCH))["analytics"]["appointmentsPerDoctor"]
    assert report["deidentified"] is False and report["suppressionThreshold"] is None
    assert report["suppressedGroups"] == 0
    ids = [g["doctorId"] for g in report["groups"]]
    assert ids == [str(w["d1"].id), str(w["d2"].id), str(w["d3"].id)]  # 5 > 4 > 1
    one, two, three = report["groups"]
    assert one == {
        "doctorId": str(w["d1"].id),
        "doctor": {"lastName": "One"},
        "appointments": 5,
        "completed": 2,
        "cancelled": 1,
        "noShows": 1,
        "patients": 5,
        "suppressed": False,
    }
    assert (two["appointments"], two["patients"], two["completed"]) == (4, 4, 0)
    assert (three["appointments"], three["completed"], three["patients"]) == (1, 1, 1)


async def test_department_filter_keeps_its_doctors(admin: Any) -> None:
    w = await facility()
    only_b = {**MARCH, "departmentId": str(w["b"].id)}
    report = (await admin.data(QUERY, f=only_b))["analytics"]["appointmentsPerDoctor"]
    assert [(g["doctorId"], g["appointments"]) for g in report["groups"]] == [(str(w["d3"].id), 1)]
    only_a = {**MARCH, "departmentId": str(w["a"].id)}
    report = (await admin.data(QUERY, f=only_a))["analytics"]["appointmentsPerDoctor"]
    assert [g["appointments"] for g in report["groups"]] == [5, 4]


async def test_analyst_sees_groups_of_five_and_keys_of_smaller_ones(analyst: Any) -> None:
    w = await facility()
    report = (await analyst.data(QUERY, f=MARCH))["analytics"]["appointmentsPerDoctor"]
    assert report["deidentified"] is True and report["suppressionThreshold"] == 5
    assert report["suppressedGroups"] == 2  # d2 (4 patients) and d3 (1)
    groups = by(report["groups"], "doctorId")
    assert groups[str(w["d1"].id)]["appointments"] == 5  # exactly 5 patients: shown
    assert groups[str(w["d1"].id)]["patients"] == 5
    for small in ("d2", "d3"):
        g = groups[str(w[small].id)]
        assert g["suppressed"] is True and g["doctor"] is not None  # the key stays
        assert [
            g[k] for k in ("appointments", "completed", "cancelled", "noShows", "patients")
        ] == [None] * 5
    # Withheld groups come last, by doctor id: their position says nothing about their size.
    assert report["groups"][0]["doctorId"] == str(w["d1"].id)
    tail = [g["doctorId"] for g in report["groups"][1:]]
    assert tail == sorted(tail)
