"""appointmentsPerPatient and noShowRate: per department and overall, suppression of totals."""

from __future__ import annotations

from typing import Any

import pytest

from models.scheduling import AppointmentStatus as S
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by

PER_PATIENT = """query($f: AnalyticsFilter!) { analytics { appointmentsPerPatient(filter: $f) {
  suppressedGroups
  overall { departmentId department { name } appointments patients average suppressed }
  groups { departmentId department { name } appointments patients average suppressed }
} } }"""
NO_SHOWS = """query($f: AnalyticsFilter!) { analytics { noShowRate(filter: $f) {
  suppressedGroups
  overall { departmentId noShows attended rate patients suppressed }
  groups { departmentId department { name } noShows attended rate patients suppressed }
} } }"""


async def visits() -> dict[str, Any]:
    """Dept A: p0..p4, 7 appointments (p0 three times) + 1 cancelled; dept B: q0, q1, q2 and
    p0, one appointment each."""
    a = await f.department(name="Alpha")
    b = await f.department(name="Beta")
    da, db_ = await f.doctor(a), await f.doctor(b)
    p = [await f.patient() for _ in range(5)]
    q = [await f.patient() for _ in range(3)]
    day = iter(range(1, 29))
    for patient in [p[0], p[0], p[0], *p[1:]]:
        await f.appointment(patient, da, start=at(f"2026-03-{next(day):02d}T09:00:00Z"))
    await f.appointment(p[1], da, start=at("2026-03-29T09:00:00Z"), status=S.CANCELLED)
    await f.appointment(p[2], da, start=at("2026-04-01T00:00:00Z"))  # at `to`: not counted
    for patient in [*q, p[0]]:
        await f.appointment(patient, db_, start=at(f"2026-03-{next(day):02d}T09:00:00Z"))
    return {"a": a, "b": b}


async def test_appointments_per_patient_for_admin(admin: Any) -> None:
    w = await visits()
    report = (await admin.data(PER_PATIENT, f=MARCH))["analytics"]["appointmentsPerPatient"]
    groups = by(report["groups"], "departmentId")
    alpha, beta = groups[str(w["a"].id)], groups[str(w["b"].id)]
    # A: 7 / 5 = 1.4. B: 4 / 4 = 1.0.
    assert (alpha["appointments"], alpha["patients"], alpha["average"]) == (7, 5, 1.4)
    assert alpha["department"] == {"name": "Alpha"}
    assert (beta["appointments"], beta["patients"], beta["average"]) == (4, 4, 1.0)
    # Overall: 11 appointments of 8 distinct patients (p0 was seen in both): 11 / 8.
    overall = report["overall"]
    assert overall == {
        "departmentId": None,
        "department": None,
        "appointments": 11,
        "patients": 8,
        "average": 1.375,
        "suppressed": False,
    }
    only_b = {**MARCH, "departmentId": str(w["b"].id)}
    report = (await admin.data(PER_PATIENT, f=only_b))["analytics"]["appointmentsPerPatient"]
    assert [g["departmentId"] for g in report["groups"]] == [str(w["b"].id)]
    assert (report["overall"]["appointments"], report["overall"]["patients"]) == (4, 4)


async def test_appointments_per_patient_for_analyst_totals_visible_groups(analyst: Any) -> None:
    w = await visits()
    report = (await analyst.data(PER_PATIENT, f=MARCH))["analytics"]["appointmentsPerPatient"]
    assert report["suppressedGroups"] == 1
    groups = by(report["groups"], "departmentId")
    assert groups[str(w["a"].id)]["appointments"] == 7
    beta = groups[str(w["b"].id)]
    assert (beta["suppressed"], beta["appointments"], beta["patients"], beta["average"]) == (
        True,
        None,
        None,
        None,
    )
    # Overall = A alone (7 / 5), not 11 / 8: else 11 - 7 would reveal B's appointments.
    overall = report["overall"]
    assert (overall["appointments"], overall["patients"], overall["average"]) == (7, 5, 1.4)


async def no_shows() -> dict[str, Any]:
    """Dept A: p0, p1 no-show; p2, p4, p0 completed; p3 checked in; p1 scheduled and p2
    cancelled (left out). Dept B: r0 no-show; r1 scheduled (left out)."""
    a, b = await f.department(), await f.department()
    da, db_ = await f.doctor(a), await f.doctor(b)
    p = [await f.patient() for _ in range(5)]
    r = [await f.patient() for _ in range(2)]
    when = at("2026-03-10T09:00:00Z")
    for patient, status in [
        (p[0], S.NO_SHOW),
        (p[1], S.NO_SHOW),
        (p[2], S.COMPLETED),
        (p[3], S.CHECKED_IN),
        (p[4], S.COMPLETED),
        (p[0], S.COMPLETED),
        (p[1], S.SCHEDULED),
        (p[2], S.CANCELLED),
    ]:
        await f.appointment(patient, da, start=when, status=status)
    await f.appointment(r[0], db_, start=when, status=S.NO_SHOW)
    await f.appointment(r[1], db_, start=when, status=S.SCHEDULED)
    await f.appointment(r[1], db_, start=at("2026-04-01T00:00:00Z"), status=S.NO_SHOW)  # at `to`
    return {"a": a, "b": b}


async def test_no_show_rate_for_admin(admin: Any) -> None:
    w = await no_shows()
    report = (await admin.data(NO_SHOWS, f=MARCH))["analytics"]["noShowRate"]
    groups = by(report["groups"], "departmentId")
    alpha, beta = groups[str(w["a"].id)], groups[str(w["b"].id)]
    # A: 2 no-shows, 4 attended (3 completed + 1 checked in) -> 2 / 6; patients p0..p4.
    assert (alpha["noShows"], alpha["attended"], alpha["patients"]) == (2, 4, 5)
    assert alpha["rate"] == pytest.approx(2 / 6)
    # B: 1 no-show, nothing attended -> 1 / 1; r1 only had a scheduled visit.
    assert (beta["noShows"], beta["attended"], beta["rate"], beta["patients"]) == (1, 0, 1.0, 1)
    overall = report["overall"]
    # 3 no-shows, 4 attended -> 3 / 7; 6 patients.
    assert (overall["noShows"], overall["attended"], overall["patients"]) == (3, 4, 6)
    assert overall["rate"] == pytest.approx(3 / 7)


async def test_no_show_rate_for_analyst(analyst: Any) -> None:
    w = await no_shows()
    report = (await analyst.data(NO_SHOWS, f=MARCH))["analytics"]["noShowRate"]
    assert report["suppressedGroups"] == 1
    beta = by(report["groups"], "departmentId")[str(w["b"].id)]
    assert [beta[k] for k in ("noShows", "attended", "rate", "patients", "suppressed")] == [
        None,
        None,
        None,
        None,
        True,
    ]
    overall = report["overall"]  # A alone: 2 / 6
    assert (overall["noShows"], overall["attended"], overall["patients"]) == (2, 4, 5)
    # With only department B asked for, every group is withheld: so is the total.
    only_b = {**MARCH, "departmentId": str(w["b"].id)}
    report = (await analyst.data(NO_SHOWS, f=only_b))["analytics"]["noShowRate"]
    assert report["overall"]["suppressed"] is True and report["overall"]["noShows"] is None
