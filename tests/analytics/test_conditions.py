"""conditionsBySpecialty: plan dates and their fallback, coded and uncoded conditions, top."""

from __future__ import annotations

from typing import Any

from models.clinical import Diagnosis
from tests import factories as f
from tests.analytics.conftest import MARCH, at, by
from tests.graphql.helpers import code

QUERY = """query($f: AnalyticsFilter!, $top: Int!) { analytics {
  conditionsBySpecialty(filter: $f, top: $top) {
    suppressedGroups
    groups {
      specialty patients suppressed
      conditions { code description plans patients suppressed }
    }
  }
} }"""
IN_MARCH = at("2026-03-10T10:00:00Z")


def dx(code: str | None, description: str) -> Diagnosis:
    return Diagnosis(code=code, description=description)


async def facility() -> dict[str, Any]:
    a, b = await f.department(), await f.department()
    cardio = await f.doctor(a, specialty="Cardiology")
    neuro = await f.doctor(b, specialty="Neurology")
    p = [await f.patient() for _ in range(8)]
    hypertension = dx("I10", "Essential hypertension")
    # Cardiology, I10: p0..p4, p0 twice -> 6 plans, 5 patients. p3's plan has no start date
    # but was created in March (counts); p4's starts in March though created in January.
    for patient in p[:3]:
        await f.treatment_plan(patient, cardio, diagnosis=hypertension, start_date=IN_MARCH)
    await f.treatment_plan(p[0], cardio, diagnosis=hypertension, start_date=IN_MARCH)
    await f.treatment_plan(p[3], cardio, diagnosis=hypertension, created_at=IN_MARCH)
    jan = at("2026-01-05T10:00:00Z")
    await f.treatment_plan(
        p[4], cardio, diagnosis=hypertension, start_date=IN_MARCH, created_at=jan
    )
    # Cardiology, uncoded chest pain in two spellings -> one condition: 2 plans, 2 patients.
    await f.treatment_plan(p[5], cardio, diagnosis=dx(None, "Chest pain"), start_date=IN_MARCH)
    await f.treatment_plan(p[6], cardio, diagnosis=dx(None, "chest PAIN"), start_date=IN_MARCH)
    # Cardiology, E11: p7 -> 1 plan, 1 patient.
    await f.treatment_plan(p[7], cardio, diagnosis=dx("E11", "Diabetes"), start_date=IN_MARCH)
    # Not counted: started in February (created in March), and created in April with no start.
    await f.treatment_plan(p[7], cardio, start_date=at("2026-02-27T10:00:00Z"), created_at=IN_MARCH)
    await f.treatment_plan(p[7], cardio, created_at=at("2026-04-01T00:00:00Z"))
    # Neurology (department B), G43: p0, p1, p2 -> 3 plans, 3 patients.
    for patient in p[:3]:
        await f.treatment_plan(patient, neuro, diagnosis=dx("G43", "Migraine"), start_date=IN_MARCH)
    return {"a": a, "b": b}


async def test_admin_gets_the_top_conditions_of_each_specialty(admin: Any) -> None:
    await facility()
    report = (await admin.data(QUERY, f=MARCH, top=2))["analytics"]["conditionsBySpecialty"]
    assert report["suppressedGroups"] == 0
    assert [g["specialty"] for g in report["groups"]] == ["Cardiology", "Neurology"]
    cardio, neuro = report["groups"]
    # Cardiology patients: p0..p4 (I10) + p5, p6 (chest pain) + p7 (E11) = 8; E11 is third.
    assert (cardio["patients"], cardio["suppressed"]) == (8, False)
    assert cardio["conditions"] == [
        {
            "code": "I10",
            "description": "Essential hypertension",
            "plans": 6,
            "patients": 5,
            "suppressed": False,
        },
        {
            "code": None,
            "description": "Chest pain",  # the smallest spelling of the group
            "plans": 2,
            "patients": 2,
            "suppressed": False,
        },
    ]
    assert neuro["patients"] == 3
    assert [(c["code"], c["plans"]) for c in neuro["conditions"]] == [("G43", 3)]


async def test_department_filter_is_the_doctors(admin: Any) -> None:
    w = await facility()
    filt = {**MARCH, "departmentId": str(w["b"].id)}
    report = (await admin.data(QUERY, f=filt, top=5))["analytics"]["conditionsBySpecialty"]
    assert [(g["specialty"], g["patients"]) for g in report["groups"]] == [("Neurology", 3)]


async def test_analyst_conditions_under_five_patients_are_withheld(analyst: Any) -> None:
    await facility()
    report = (await analyst.data(QUERY, f=MARCH, top=5))["analytics"]["conditionsBySpecialty"]
    # Withheld rows: chest pain (2), E11 (1), G43 (3) -> 3.
    assert report["suppressedGroups"] == 3
    groups = by(report["groups"], "specialty")
    cardio = groups["Cardiology"]
    # The total counts visible rows only: the 5 patients of I10, not 8 (8 - 5 would reveal
    # the withheld rows' patients).
    assert (cardio["patients"], cardio["suppressed"]) == (5, False)
    shown = [(c["code"], c["description"], c["patients"], c["plans"]) for c in cardio["conditions"]]
    assert shown == [
        ("I10", "Essential hypertension", 5, 6),
        ("E11", "Diabetes", None, None),  # withheld rows: by code, uncoded last
        (None, "Chest pain", None, None),
    ]
    # Every Neurology row is withheld, so is its total.
    neuro = groups["Neurology"]
    assert (neuro["patients"], neuro["suppressed"]) == (None, True)
    assert [c["suppressed"] for c in neuro["conditions"]] == [True]


async def test_top_must_be_1_to_50(admin: Any) -> None:
    for top in (0, 51):
        error = await admin.error(QUERY, f=MARCH, top=top)
        assert code(error) == "BAD_USER_INPUT" and "top" in error["extensions"]["fields"], error
