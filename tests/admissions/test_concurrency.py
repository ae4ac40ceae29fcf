"""The invariants under the worst interleavings, in one process: every bed write and the
admission insert give the event loop away around them, and the early "already admitted" check
is switched off, so only the conditional bed claim and the unique index stand in the way."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from models.admissions import Admission, AdmissionStatus
from models.wards import Bed, BedStatus
from services import admissions
from tests.admissions.helpers import ADMIT, TRANSFER, admit_input, inpatient
from tests.graphql.helpers import code


@pytest.fixture
def interleaved(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(15)
    real_cas, real_insert = admissions.bed_cas, Admission.insert

    async def pause() -> None:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)

    async def cas(*args: Any, **kwargs: Any) -> Any:
        await pause()
        done = await real_cas(*args, **kwargs)
        await pause()
        return done

    async def insert(self: Admission, *args: Any, **kwargs: Any) -> Any:
        await pause()
        done = await real_insert(self, *args, **kwargs)
        await pause()
        return done

    async def no_early_check(patient_id: Any) -> None:
        await pause()

    monkeypatch.setattr(admissions, "bed_cas", cas)
    monkeypatch.setattr(Admission, "insert", insert)
    monkeypatch.setattr(admissions, "_refuse_if_admitted", no_early_check)


async def _invariants() -> None:
    active = await Admission.find({"status": AdmissionStatus.ACTIVE.value}).to_list()
    per_patient = Counter(a.patient_id for a in active)
    assert all(n == 1 for n in per_patient.values())
    per_bed = Counter(a.bed_id for a in active)
    assert all(n == 1 for n in per_bed.values())
    for a in active:
        bed = await Bed.get(a.bed_id)
        assert bed is not None and bed.status == BedStatus.OCCUPIED
        assert bed.admission_id == a.id and bed.patient_id == a.patient_id and not bed.pending
    held = await Bed.find({"status": BedStatus.OCCUPIED.value}).to_list()
    assert {b.id for b in held} == {a.bed_id for a in active}  # nothing claimed and left


async def test_many_patients_race_for_few_beds(gql: Any, interleaved: None) -> None:
    f = await inpatient(patients=40, bed_count=4)
    answers = await asyncio.gather(
        *(gql(ADMIT, input=admit_input(f, p, f.beds[i % 4])) for i, p in enumerate(f.patients))
    )
    won = [a for a in answers if "errors" not in a]
    assert len(won) == 4
    assert {code(a["errors"][0]) for a in answers if "errors" in a} == {"CONFLICT"}
    await _invariants()


async def test_one_patient_races_into_two_beds(gql: Any, interleaved: None) -> None:
    f = await inpatient(patients=1, bed_count=4)
    patient = f.patients[0]
    for _ in range(5):
        answers = await asyncio.gather(
            *(gql(ADMIT, input=admit_input(f, patient, bed)) for bed in f.beds)
        )
        won = [a for a in answers if "errors" not in a]
        assert len(won) == 1
        assert {code(a["errors"][0]) for a in answers if "errors" in a} == {"CONFLICT"}
        await _invariants()
        admission = await Admission.find_one({"open_patient_id": patient.id})
        assert admission is not None
        await admissions.discharge(
            admission.id,  # type: ignore[arg-type]
            {"summary": "Home"},
            "home",
            f.doctor.id,  # type: ignore[arg-type]
        )
        for bed in f.beds:  # clean for the next round
            await Bed.find_one({"_id": bed.id}).update({"$set": {"status": "available"}})


async def test_transfers_race_into_one_bed(gql: Any, interleaved: None) -> None:
    f = await inpatient(patients=12, bed_count=12)
    target = await Bed(ward_id=f.ward.id, department_id=f.department.id, label="T").insert()
    made = [
        (await gql.data(ADMIT, input=admit_input(f, p, f.beds[i])))["admitPatient"]
        for i, p in enumerate(f.patients)
    ]
    answers = await asyncio.gather(*(gql(TRANSFER, id=m["id"], bedId=str(target.id)) for m in made))
    won = [a for a in answers if "errors" not in a]
    assert len(won) == 1 and won[0]["data"]["transferPatient"]["bedId"] == str(target.id)
    assert {code(a["errors"][0]) for a in answers if "errors" in a} == {"CONFLICT"}
    await _invariants()
    cleaning = await Bed.find({"status": BedStatus.CLEANING.value}).count()
    assert cleaning == 1  # only the winner's old bed


async def test_two_transfers_of_one_admission(gql: Any, interleaved: None) -> None:
    """Two moves of the same patient at once: one wins, the other's claim is released."""
    f = await inpatient(patients=1, bed_count=3)
    made = await gql.data(ADMIT, input=admit_input(f, f.patients[0], f.beds[0]))
    admission = made["admitPatient"]["id"]
    answers = await asyncio.gather(
        gql(TRANSFER, id=admission, bedId=str(f.beds[1].id), v=0),
        gql(TRANSFER, id=admission, bedId=str(f.beds[2].id), v=0),
    )
    assert sorted("errors" in a for a in answers) == [False, True]
    await _invariants()
    stored = await Bed.find({"_id": {"$in": [b.id for b in f.beds]}}).to_list()
    statuses = sorted(b.status.value for b in stored)
    assert statuses == ["available", "cleaning", "occupied"]


async def test_a_claim_left_by_a_crash_is_recovered(gql: Any) -> None:
    from datetime import timedelta

    from bson import ObjectId

    from models.base import utcnow

    f = await inpatient(patients=1, bed_count=1)
    bed = f.beds[0]
    ghost = ObjectId()  # an admission that was never inserted
    fresh = {"status": "occupied", "admission_id": ghost, "pending": True}
    await Bed.find_one({"_id": bed.id}).update({"$set": {**fresh, "claimed_at": utcnow()}})
    refused = await gql.error(ADMIT, input=admit_input(f, f.patients[0], bed))
    assert code(refused) == "CONFLICT"  # in flight, maybe: never robbed
    old = utcnow() - admissions.STALE_AFTER - timedelta(seconds=1)
    await Bed.find_one({"_id": bed.id}).update({"$set": {"claimed_at": old}})
    made = await gql.data(ADMIT, input=admit_input(f, f.patients[0], bed))
    assert made["admitPatient"]["bedId"] == str(bed.id)
    await _invariants()
