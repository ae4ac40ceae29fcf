"""The demo's wards tell a consistent story: every active admission lies in the bed that names
it, discharged ones carry a verifiable signed note, nurses know their wards."""

from __future__ import annotations

from typing import Any

import db
from demo import seed_demo
from models.admissions import Admission, AdmissionSource, AdmissionStatus
from models.staff import Nurse
from models.wards import Bed, BedStatus
from services import admissions


async def test_demo_admissions_are_consistent(database: Any) -> None:
    summary = await seed_demo(patients=60)
    assert summary.wards > 0 and summary.beds >= 6 * summary.wards and summary.admissions > 0
    active = await Admission.find({"status": AdmissionStatus.ACTIVE.value}).to_list()
    gone = await Admission.find({"status": AdmissionStatus.DISCHARGED.value}).to_list()
    assert active and gone
    assert {a.source for a in active} >= {AdmissionSource.OUTPATIENT, AdmissionSource.ELECTIVE}
    for a in active:
        bed = await Bed.get(a.bed_id)
        assert bed is not None and bed.status == BedStatus.OCCUPIED and bed.admission_id == a.id
    occupied = await Bed.find({"status": BedStatus.OCCUPIED.value}).count()
    assert occupied == len(active)
    assert all(admissions.verify(a) for a in gone)
    assert any(len(a.stays) == 2 for a in gone)  # a transfer in the history
    raw = await db.collection(Admission).find({"status": "discharged"}).to_list(None)
    assert not any("open_patient_id" in r for r in raw)  # the unique index skips them
    for status in (BedStatus.CLEANING, BedStatus.BLOCKED):
        assert await Bed.find({"status": status.value}).count() > 0
    assert await Nurse.find({"ward_id": {"$ne": None}}).count() > 0
