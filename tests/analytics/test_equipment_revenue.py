"""equipmentUtilisation and revenue: minutes booked per device department; charges per month."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from models.billing import BillingAccount, Charge, ChargeSource
from models.equipment import EquipmentStatus
from models.scheduling import AppointmentStatus as S
from services.analytics import round_half_up
from tests import factories as f
from tests.analytics.conftest import at, by

EQUIPMENT = """query($f: AnalyticsFilter!) { analytics { equipmentUtilisation(filter: $f) {
  suppressedGroups
  groups { departmentId department { name } devices bookedMinutes availableMinutes utilisation
           patients suppressed }
} } }"""
REVENUE = """query($f: AnalyticsFilter!) { analytics { revenue(filter: $f) {
  suppressedGroups
  groups { departmentId month currency charged outstanding patients suppressed }
} } }"""
DAY = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z"}  # 1440 minutes


async def devices() -> dict[str, Any]:
    """A: e1, e2; B: e3; C: e4 (out of service, never booked)."""
    a, b, c = await f.department(), await f.department(), await f.department()
    e1, e2 = await f.equipment(a), await f.equipment(a)
    e3 = await f.equipment(b)
    await f.equipment(c, status=EquipmentStatus.OUT_OF_SERVICE)
    doc = await f.doctor()
    p = [await f.patient() for _ in range(5)]
    t = at("2026-03-02T08:00:00Z")
    # e1: five 30-minute visits (p0..p4) -> 150 minutes.
    for i, patient in enumerate(p):
        status = S.COMPLETED if i % 2 else S.SCHEDULED
        await f.appointment(patient, doc, e1, start=t + timedelta(hours=i), status=status)
    # e2: one 60-minute visit of p0 -> 60; a cancelled and a no-show one are not use, and one
    # starting at `to` is outside the range.
    await f.appointment(p[0], doc, e2, start=t, end_at=t + timedelta(minutes=60))
    await f.appointment(p[1], doc, e2, start=t + timedelta(hours=2), status=S.CANCELLED)
    await f.appointment(p[2], doc, e2, start=t + timedelta(hours=3), status=S.NO_SHOW)
    await f.appointment(p[3], doc, e2, start=at("2026-03-03T00:00:00Z"))
    # e3: two patients, 30 minutes each -> 60.
    for i in range(2):
        await f.appointment(p[i], doc, e3, start=t + timedelta(hours=i))
    # Visits with no device do not count anywhere.
    await f.appointment(p[4], doc, start=t + timedelta(hours=9))
    return {"a": a, "b": b, "c": c}


async def test_equipment_utilisation_for_admin(admin: Any) -> None:
    w = await devices()
    report = (await admin.data(EQUIPMENT, f=DAY))["analytics"]["equipmentUtilisation"]
    groups = by(report["groups"], "departmentId")
    assert set(groups) == {str(w[k].id) for k in "abc"}
    alpha = groups[str(w["a"].id)]
    # A: 150 + 60 = 210 booked of 2 devices x 1440 = 2880 minutes; patients p0..p4.
    assert (alpha["devices"], alpha["bookedMinutes"], alpha["availableMinutes"]) == (2, 210, 2880)
    assert alpha["utilisation"] == pytest.approx(210 / 2880)
    assert alpha["patients"] == 5
    beta = groups[str(w["b"].id)]
    assert (beta["bookedMinutes"], beta["availableMinutes"], beta["patients"]) == (60, 1440, 2)
    assert beta["utilisation"] == pytest.approx(60 / 1440)
    # C holds a device with no bookings: listed with zeros.
    gamma = groups[str(w["c"].id)]
    assert [gamma[k] for k in ("devices", "bookedMinutes", "utilisation", "patients")] == [
        1,
        0,
        0.0,
        0,
    ]
    only_a = {**DAY, "departmentId": str(w["a"].id)}
    report = (await admin.data(EQUIPMENT, f=only_a))["analytics"]["equipmentUtilisation"]
    assert [(g["departmentId"], g["bookedMinutes"]) for g in report["groups"]] == [
        (str(w["a"].id), 210)
    ]


async def test_equipment_utilisation_for_analyst(analyst: Any) -> None:
    w = await devices()
    report = (await analyst.data(EQUIPMENT, f=DAY))["analytics"]["equipmentUtilisation"]
    groups = by(report["groups"], "departmentId")
    assert report["suppressedGroups"] == 1  # B: 2 patients
    beta = groups[str(w["b"].id)]
    assert (beta["bookedMinutes"], beta["utilisation"], beta["patients"]) == (None, None, None)
    assert (beta["devices"], beta["availableMinutes"]) == (1, 1440)  # not patient data
    assert groups[str(w["a"].id)]["bookedMinutes"] == 210
    gamma = groups[str(w["c"].id)]  # nobody booked: nothing to protect
    assert (gamma["suppressed"], gamma["patients"], gamma["bookedMinutes"]) == (False, 0, 0)


async def account(currency: str, paid: int, *charges: tuple[int, Any, datetime]) -> None:
    """A billing account of a new patient with ``charges`` (amount, department, created)."""
    items = [
        Charge(
            description="Visit",
            amount=amount,
            source=ChargeSource.MANUAL,
            department_id=None if dept is None else dept.id,
            created_at=created,
        )
        for amount, dept, created in charges
    ]
    total = sum(c.amount for c in items)
    pat = await f.patient()
    await BillingAccount(
        patient_id=pat.id, currency=currency, charges=items, total_charged=total, total_paid=paid
    ).insert()


# Local months of Europe/Berlin: March is [28 Feb 23:00Z, 31 Mar 22:00Z).
SPRING = {"from": "2026-02-28T23:00:00Z", "to": "2026-04-30T22:00:00Z"}


async def charges() -> dict[str, Any]:
    a, b = await f.department(), await f.department()
    march, april = at("2026-03-10T10:00:00Z"), at("2026-03-31T22:30:00Z")  # 00:30 CEST, 1 April
    # a1: 1000 (March, A) + 3000 (April, A); 4000 charged, 1000 paid -> 3000 unpaid, spread
    # 1000/4000 -> 750 (March) and 3000/4000 -> 2250 (April).
    await account("EUR", 1000, (1000, a, march), (3000, a, april))
    await account("EUR", 1000, (1000, a, march))  # a2: paid in full -> 0 outstanding
    await account("EUR", 1500, (1000, a, march))  # a3: in credit -> 0, not negative
    # a4: 1000 (March, A) + 500 in January (outside); 1500 unpaid -> 1000 on the March charge.
    await account("EUR", 0, (1000, a, march), (500, a, at("2026-01-10T10:00:00Z")))
    # a5: 1 (March, A) + 1 (March, no department); 2 charged, 1 paid -> 0.5 on each.
    await account("EUR", 1, (1, a, march), (1, None, march))
    # b1 (USD, B): 2000 in March + 1000 at `to` (local 1 May, outside); 3000 charged, 500 paid
    # -> 2500 unpaid; the March charge's part: 2000 * 2500 / 3000 = 1666.67 -> 1667.
    await account("USD", 500, (2000, b, march), (1000, b, at("2026-04-30T22:00:00Z")))
    return {"a": a, "b": b}


async def test_revenue_for_admin(admin: Any) -> None:
    w = await charges()
    report = (await admin.data(REVENUE, f=SPRING))["analytics"]["revenue"]
    rows = {(g["month"], g["departmentId"], g["currency"]): g for g in report["groups"]}
    a, b = str(w["a"].id), str(w["b"].id)
    assert list(rows) == sorted(rows, key=lambda k: (k[0], k[1] or "", k[2]))
    assert set(rows) == {
        ("2026-03", None, "EUR"),
        ("2026-03", a, "EUR"),
        ("2026-03", b, "USD"),
        ("2026-04", a, "EUR"),
    }
    march_a = rows[("2026-03", a, "EUR")]
    # Charged 1000 x 4 + 1; outstanding 750 + 0 + 0 + 1000 + 0.5 = 1750.5 -> 1751 (half up).
    assert (march_a["charged"], march_a["outstanding"], march_a["patients"]) == (4001, 1751, 5)
    assert [rows[("2026-03", None, "EUR")][k] for k in ("charged", "outstanding")] == [1, 1]
    assert [rows[("2026-03", b, "USD")][k] for k in ("charged", "outstanding")] == [2000, 1667]
    april_a = rows[("2026-04", a, "EUR")]
    assert (april_a["charged"], april_a["outstanding"], april_a["patients"]) == (3000, 2250, 1)
    only_a = {**SPRING, "departmentId": a}
    report = (await admin.data(REVENUE, f=only_a))["analytics"]["revenue"]
    assert [(g["month"], g["charged"]) for g in report["groups"]] == [
        ("2026-03", 4001),
        ("2026-04", 3000),
    ]


async def test_revenue_for_analyst(analyst: Any) -> None:
    w = await charges()
    report = (await analyst.data(REVENUE, f=SPRING))["analytics"]["revenue"]
    assert report["suppressedGroups"] == 3  # every group but March/A has one patient
    visible = [g for g in report["groups"] if not g["suppressed"]]
    assert [(g["departmentId"], g["charged"], g["outstanding"]) for g in visible] == [
        (str(w["a"].id), 4001, 1751)
    ]
    hidden = [g for g in report["groups"] if g["suppressed"]]
    assert all(g["charged"] is None and g["outstanding"] is None for g in hidden)
    assert {g["month"] for g in hidden} == {"2026-03", "2026-04"}  # keys stay


def test_round_half_up() -> None:
    assert [round_half_up(x) for x in (0.5, 1.5, 2.5, 1750.4999, 0.49)] == [1, 2, 3, 1750, 0]
    assert 0.7 - 0.2 < 0.5 and round_half_up(0.7 - 0.2) == 1  # float noise under a true half
