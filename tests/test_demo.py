"""The demo facility: deterministic, internally consistent, and never double-booked."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from bson import ObjectId

import db
import demo.seed
from crypto.fields import SEALED, open_document
from demo import ANCHOR, SEEDED_MODELS, drop_seeded_collections, ids, is_empty, seed_demo
from demo.clock import WINDOW_END, WINDOW_START
from demo.facility import build_facility
from models import (
    Appointment,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Nurse,
    Patient,
    Prescription,
    Treatment,
    TreatmentPlan,
)
from models.billing import ChargeSource
from models.clinical import PRESCRIPTION_TRANSITIONS, PrescriptionStatus, TreatmentPlanStatus
from models.equipment import EQUIPMENT_TRANSITIONS
from models.patients import fold, sealed_words
from models.scheduling import AppointmentStatus
from tests.conftest import TEST_MONGODB_URL

PATIENTS = 20

Raw = dict[str, Any]


UPSERTED = frozenset({"outpatient_queue_numbers", "imaging_accession_counters"})
"""Numbering counters the seeds raise with upserts on their unique key (a counter may exist
already for a day the app ran on): MongoDB assigns their ``_id``, so they compare by content."""


async def snapshot(database: Any) -> dict[str, list[Raw]]:
    """Every stored document of every demo collection, as MongoDB holds it."""
    result = {}
    for model in SEEDED_MODELS:
        name = model.get_settings().name
        assert name is not None
        result[name] = await database[name].find({}).sort("_id", 1).to_list(None)
        sealing = SEALED.get(model)
        if sealing is not None:  # ciphertexts and keyed hashes differ per database (data key)
            hashed = {*sealing.derived, "search_tokens"}
            result[name] = [
                {k: v for k, v in open_document(sealing, row).items() if k not in hashed}
                for row in result[name]
            ]
        if name in UPSERTED:
            rows = [{k: v for k, v in row.items() if k != "_id"} for row in result[name]]
            result[name] = sorted(rows, key=lambda row: sorted(map(str, row.items())))
    return result


@pytest.fixture
async def seeded(database: Any) -> Any:
    await seed_demo(PATIENTS)
    return database


def booked(appointments: Iterable[Appointment]) -> list[Appointment]:
    return [a for a in appointments if a.status != AppointmentStatus.CANCELLED]


def assert_no_overlap(appointments: list[Appointment], key: str) -> None:
    by_owner: dict[ObjectId, list[Appointment]] = defaultdict(list)
    for appointment in booked(appointments):
        owner = getattr(appointment, key)
        if owner is not None:
            by_owner[owner].append(appointment)
    for owner, own in by_owner.items():
        own.sort(key=lambda a: a.start_at)
        for before, after in pairwise(own):
            assert after.start_at >= before.end_at, f"{key} {owner} double-booked"


async def test_every_seed_writes_the_same_documents_whatever_the_batch_size(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await snapshot(seeded)
    monkeypatch.setattr(demo.seed, "BATCH_SIZE", 7)
    client = db.create_client(TEST_MONGODB_URL)
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    try:
        other = await db.init_database(client, name)
        await seed_demo(PATIENTS)
        second = await snapshot(other)
    finally:
        if TEST_MONGODB_URL:
            await client.drop_database(name)
        db.close_client(client)
    assert {k: len(v) for k, v in first.items()} == {k: len(v) for k, v in second.items()}
    assert first == second


async def test_summary_counts_what_was_written(database: Any) -> None:
    summary = await seed_demo(PATIENTS)
    assert summary.patients == PATIENTS == summary.billing_accounts
    assert summary.departments == 7
    assert summary.appointments >= 2 * PATIENTS
    stored = await snapshot(database)
    assert summary.total == sum(len(docs) for docs in stored.values())
    assert summary.as_dict()["appointments"] == len(stored["appointments"])


async def test_seed_respects_the_patient_count(database: Any) -> None:
    await seed_demo(3)
    assert await Patient.count() == 3
    assert await BillingAccount.count() == 3
    assert await Patient.get(ids.patient_id(3)) is not None
    assert await Patient.get(ids.patient_id(4)) is None


async def test_id_helpers_name_existing_records(seeded: Any) -> None:
    zoe = await Patient.get(ids.patient_id(1))
    assert zoe is not None
    assert (zoe.first_name, zoe.last_name) == ("Zoë", "Lefèvre")
    assert sealed_words(["zoe"])[0] in zoe.search_tokens and "zoe" not in zoe.search_tokens
    codes = []
    for n in range(1, 7):
        department = await Department.get(ids.department_id(n))
        assert department is not None
        codes.append(department.code)
    assert codes == ["CARD", "ER", "RAD", "PED", "ORTH", "GEN"]
    cardiology = await Department.get(ids.department_id(1))
    head = await Doctor.get(ids.doctor_id(1))
    assert cardiology is not None and head is not None
    assert cardiology.head_doctor_id == head.id and head.department_id == cardiology.id
    assert await Nurse.get(ids.nurse_id(1)) is not None
    assert await MedicalEquipment.get(ids.equipment_id(1)) is not None
    assert await Appointment.get(ids.appointment_id(1)) is not None
    assert await TreatmentPlan.get(ids.treatment_plan_id(1)) is not None
    assert await Treatment.get(ids.treatment_id(1)) is not None
    assert await Prescription.get(ids.prescription_id(1)) is not None
    account = await BillingAccount.get(ids.billing_account_id(5))
    assert account is not None and account.patient_id == ids.patient_id(5)


def test_ids_encode_kind_and_number() -> None:
    id = ids.patient_id(42)
    assert str(id).startswith("6955b900")  # 2026-01-01T00:00Z
    assert ids.parse_id(id) == (ids.Kind.PATIENT, 42)
    assert ids.parse_id(ObjectId()) is None
    assert ids.doctor_id(1) != ids.patient_id(1)
    with pytest.raises(ValueError):
        ids.patient_id(0)


async def test_larger_seeds_add_staff_after_the_base_facility(database: Any) -> None:
    # Beanie documents can only be built once their collection is bound, hence ``database``.
    small, large = build_facility(20), build_facility(100_000)
    small_doctors = [d for u in small.units for d in u.doctors]
    large_doctors = {d.id: d for u in large.units for d in u.doctors}
    assert len(large_doctors) > 5 * len(small_doctors)
    for doctor in small_doctors:
        assert large_doctors[doctor.id] == doctor


async def test_appointments_belong_to_their_doctors_department(seeded: Any) -> None:
    doctors = {d.id: d for d in await Doctor.find_all().to_list()}
    equipment = {e.id: e for e in await MedicalEquipment.find_all().to_list()}
    for appointment in await Appointment.find_all().to_list():
        assert appointment.department_id == doctors[appointment.doctor_id].department_id
        if appointment.equipment_id is not None:
            assert equipment[appointment.equipment_id].department_id == appointment.department_id


async def test_nobody_and_nothing_is_double_booked(seeded: Any) -> None:
    appointments = await Appointment.find_all().to_list()
    assert any(a.equipment_id for a in booked(appointments))
    for key in ("doctor_id", "patient_id", "equipment_id"):
        assert_no_overlap(appointments, key)


async def test_appointment_times_and_statuses_fit_the_anchor(seeded: Any) -> None:
    appointments = await Appointment.find_all().to_list()
    past = {AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED}
    future = {AppointmentStatus.SCHEDULED, AppointmentStatus.CANCELLED}
    for a in appointments:
        assert WINDOW_START <= a.start_at < a.end_at <= WINDOW_END
        assert a.start_at.minute in (0, 30) and 8 <= a.start_at.hour < 17
        assert a.end_at - a.start_at in (timedelta(minutes=30), timedelta(hours=1))
        assert a.status in (past if a.start_at < ANCHOR else future)
        assert (a.cancellation is not None) == (a.status == AppointmentStatus.CANCELLED)
        assert a.created_at <= ANCHOR and a.created_at <= a.updated_at
        for change in a.reschedule_history:
            assert a.created_at <= change.at <= min(change.previous_start_at, a.start_at)
    assert {a.status for a in appointments} == past | future
    assert any(a.reschedule_history for a in appointments)


async def test_billing_totals_match_charges_and_payments(seeded: Any) -> None:
    treatments = {t.id: t for t in await Treatment.find_all().to_list()}
    appointments = {a.id: a for a in await Appointment.find_all().to_list()}
    equipment = {e.id: e for e in await MedicalEquipment.find_all().to_list()}
    departments = {d.id for d in await Department.find_all().to_list()}
    sources = set()
    for account in await BillingAccount.find_all().to_list():
        assert account.total_charged == sum(c.amount for c in account.charges)
        assert account.total_paid == sum(p.amount for p in account.payments)
        assert 0 <= account.total_paid <= account.total_charged
        for charge in account.charges:
            sources.add(charge.source)
            assert charge.department_id in departments
            if charge.source == ChargeSource.TREATMENT:
                assert treatments[charge.source_id].patient_id == account.patient_id
            elif charge.source == ChargeSource.APPOINTMENT:
                assert appointments[charge.source_id].patient_id == account.patient_id
            elif charge.source == ChargeSource.EQUIPMENT_USE:
                # Billed per use, to the device's department, as the billing service requires.
                use = appointments.get(charge.source_id) or treatments[charge.source_id]
                assert use.patient_id == account.patient_id and use.equipment_id is not None
                assert charge.department_id == equipment[use.equipment_id].department_id
        keys = [(c.source, c.source_id) for c in account.charges if c.source_id is not None]
        assert len(keys) == len(set(keys))  # each source billed once
    assert sources >= set(ChargeSource) - {ChargeSource.MANUAL}


async def test_clinical_records_follow_their_rules(seeded: Any) -> None:
    plans = {p.id: p for p in await TreatmentPlan.find_all().to_list()}
    for treatment in await Treatment.find_all().to_list():
        plan = plans[treatment.plan_id]
        assert plan.status != TreatmentPlanStatus.DRAFT
        assert treatment.patient_id == plan.patient_id
        assert treatment.performed_at <= ANCHOR
    for prescription in await Prescription.find_all().to_list():
        history = [PrescriptionStatus(c.status) for c in prescription.status_history]
        assert history[0] == PrescriptionStatus.PRESCRIBED
        assert history[-1] == prescription.status
        for before, after in pairwise(history):
            assert after in PRESCRIPTION_TRANSITIONS[before]
    for device in await MedicalEquipment.find_all().to_list():
        changes = device.status_history
        assert changes[0].from_status is None and changes[-1].to_status == device.status
        for change in changes[1:]:
            assert change.from_status is not None
            assert change.to_status in EQUIPMENT_TRANSITIONS[change.from_status]


async def test_patients_are_valid_and_searchable(seeded: Any) -> None:
    patients = await Patient.find_all().to_list()
    national_ids = [p.national_id for p in patients if p.national_id]
    assert len(national_ids) == len(set(national_ids))
    for patient in patients:
        assert sealed_words([fold(patient.first_name)[:1]])[0] in patient.search_tokens
    assert any(p.allergies for p in patients)
    assert any(p.medical_history for p in patients)
    assert any(p.emergency_contact for p in patients)
    found = await Patient.find({"search_tokens": {"$all": sealed_words(["zoe", "lef"])}}).to_list()
    assert ids.patient_id(1) in {p.id for p in found}


async def test_is_empty_and_drop(database: Any) -> None:
    assert await is_empty()
    await seed_demo(2)
    assert not await is_empty()
    await drop_seeded_collections()
    assert await is_empty()


async def test_every_collection_the_seed_writes_is_dropped_and_checked(database: Any) -> None:
    """``SEEDED_MODELS`` names every collection the demo writes (the clinical modules' too), so
    ``is_empty`` sees them and ``drop_seeded_collections`` leaves none; only the sign-ins,
    which a reseed keeps, are not among them."""
    await seed_demo(PATIENTS)
    seeded = {model.get_settings().name for model in SEEDED_MODELS}
    written = {
        name
        for name in await database.list_collection_names()
        if await database[name].find_one({}) is not None
    }
    # data_keys: written when the database is opened (crypto.keyring), never dropped by a reseed
    assert written - seeded == {"accounts", "service_clients", "data_keys"}
    for collection in ("outpatient_visits", "lab_orders", "imaging_reports", "clinical_notes"):
        assert collection in written, collection  # the module seeds ran
    await drop_seeded_collections()
    left = {
        name
        for name in await database.list_collection_names()
        if await database[name].find_one({}) is not None
    }
    assert left == {"accounts", "service_clients", "data_keys"}
    assert await is_empty()


async def test_progress_bar_goes_to_stderr(
    database: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_demo(2, progress=True)
    captured = capsys.readouterr()
    assert "Seeding demo" in captured.err and captured.out == ""


async def test_negative_patient_count_is_refused(database: Any) -> None:
    with pytest.raises(ValueError):
        await seed_demo(-1)
