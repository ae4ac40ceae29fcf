"""The bulk benchmark facility: exact counts, the same documents every time, valid references."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from beanie.odm.utils.dump import get_dict
from pymongo.errors import DuplicateKeyError

from demo import bulk
from demo.clock import ANCHOR
from models import (
    Appointment,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Patient,
    TreatmentPlan,
)
from models.scheduling import on_grid

APPOINTMENTS = 600


@pytest.fixture
async def seeded(database: Any) -> dict[str, int]:
    return await bulk.seed_bulk(APPOINTMENTS)


async def test_counts_match_what_is_stored(database: Any, seeded: dict[str, int]) -> None:
    for name, count in seeded.items():
        assert await database[name].count_documents({}) == count
    size = bulk.sizes(APPOINTMENTS)
    for name in ("departments", "doctors", "equipment", "patients", "treatment_plans"):
        assert seeded[name] == size[name], name
    assert seeded["appointments"] == APPOINTMENTS
    assert seeded["patients"] == APPOINTMENTS // 5
    visited = await database["appointments"].distinct("patient_id")
    assert seeded["billing_accounts"] == len(visited)
    assert "reservations" not in seeded
    assert await database["reservations"].count_documents({}) == 0


def test_the_default_size_is_the_benchmark_facility() -> None:
    size = bulk.sizes(100_000)
    assert (size["doctors"], size["equipment"], size["patients"]) == (40, 60, 20_000)
    assert size["treatment_plans"] == 10_000


def test_about_half_the_appointments_book_a_device() -> None:
    appointments = bulk.build(2000)["appointments"]
    with_device = sum(a["equipment_id"] is not None for a in appointments)
    assert 0.4 < with_device / len(appointments) < 0.6


def test_the_same_seed_builds_the_same_documents() -> None:
    assert bulk.build(300) == bulk.build(300)
    assert bulk.build(300, seed=8)["appointments"] != bulk.build(300)["appointments"]


async def test_every_document_is_what_beanie_would_write(seeded: dict[str, int]) -> None:
    # Raw dicts skip the models on the way in; prove they round-trip through them unchanged.
    documents = bulk.build(APPOINTMENTS)
    for model in bulk.SEEDED_MODELS:
        settings = model.get_settings()
        assert settings.name is not None
        for raw in documents[settings.name]:
            loaded = model.model_validate(raw)
            assert get_dict(loaded, to_db=True, keep_nulls=settings.keep_nulls) == raw
        stored = await model.find_all().to_list()  # and what the store holds parses back
        assert len(stored) == seeded[settings.name]


async def test_references_point_at_stored_documents(seeded: dict[str, int]) -> None:
    doctors = {d.id: d for d in await Doctor.find_all().to_list()}
    devices = {e.id: e for e in await MedicalEquipment.find_all().to_list()}
    departments = {d.id for d in await Department.find_all().to_list()}
    patients = {p.id: p for p in await Patient.find_all().to_list()}
    appointments = {a.id: a for a in await Appointment.find_all().to_list()}
    plans = await TreatmentPlan.find_all().to_list()
    visits: dict[Any, list[Appointment]] = defaultdict(list)
    for a in appointments.values():
        assert a.patient_id in patients
        assert a.department_id == doctors[a.doctor_id].department_id
        if a.equipment_id is not None:
            assert devices[a.equipment_id].department_id == a.department_id
        visits[a.patient_id].append(a)
    for patient in patients.values():  # care relations come only from that patient's facts
        mine = {a.doctor_id for a in visits[patient.id]} | {
            p.doctor_id for p in plans if p.patient_id == patient.id
        }
        assert {c.clinician_id for c in patient.care} <= mine
    for doctor in doctors.values():
        assert doctor.department_id in departments
    for plan in plans:
        assert plan.patient_id in patients
        assert plan.doctor_id in doctors
        assert plan.diagnosis.code is not None
        assert plan.start_date is not None
        assert datetime(2025, 1, 1, tzinfo=UTC) <= plan.start_date <= ANCHOR
    for account in await BillingAccount.find_all().to_list():
        assert visits[account.patient_id], "an account only for a patient with appointments"
        assert account.total_charged == sum(c.amount for c in account.charges)
        assert account.total_paid == sum(p.amount for p in account.payments)
        assert account.total_paid <= account.total_charged
        for charge in account.charges:
            assert charge.source_id is not None
            source = appointments[charge.source_id]
            assert source.patient_id == account.patient_id
            assert charge.department_id == source.department_id
            assert charge.created_at == source.end_at


async def test_appointments_span_two_years_on_the_grid_without_double_booking(
    seeded: dict[str, int],
) -> None:
    appointments = await Appointment.find_all().to_list()
    statuses = {a.status.value for a in appointments}
    assert statuses == {"completed", "no_show", "cancelled", "scheduled"}
    by_holder: dict[Any, list[Appointment]] = defaultdict(list)
    for a in appointments:
        assert datetime(2025, 1, 1, tzinfo=UTC) <= a.start_at < a.end_at
        assert a.end_at <= datetime(2027, 1, 1, tzinfo=UTC)
        assert on_grid(a.start_at) and on_grid(a.end_at)
        assert (a.status.value == "scheduled") == (a.start_at >= ANCHOR and not a.cancellation)
        if a.status.value != "cancelled":
            for holder in (a.doctor_id, a.patient_id, a.equipment_id):
                if holder is not None:
                    by_holder[holder].append(a)
    for held in by_holder.values():
        held.sort(key=lambda a: a.start_at)
        for before, after in pairwise(held):
            assert after.start_at >= before.end_at


async def test_unique_indexes_are_back_after_the_load(
    database: Any, seeded: dict[str, int]
) -> None:
    accounts = await database["billing_accounts"].index_information()
    assert any(
        spec.get("unique") and spec["key"] == [("patient_id", 1)] for spec in accounts.values()
    )
    patients = await database["patients"].index_information()
    national = [spec for spec in patients.values() if spec["key"] == [("national_id_index", 1)]]
    assert national and national[0].get("unique") and national[0].get("sparse")
    account = await database["billing_accounts"].find_one({})
    account.pop("_id")
    with pytest.raises(DuplicateKeyError):
        await database["billing_accounts"].insert_one(account)
