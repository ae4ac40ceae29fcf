"""Care relationships: which doctors and departments treat a patient.

Access control reads them from the patient document itself, so checking a row costs no query
and a clinician's patient list is one indexed filter. They are derived data: recorded after the
appointment or plan that creates them is stored; if that second write fails the clinician simply
does not see the patient yet (the failure is closed, not open) and booking again records it.
"""

from __future__ import annotations

from bson import ObjectId
from pymongo import ReturnDocument

from models.patients import Patient
from services.changes import changed


async def record(patient_id: ObjectId, doctor_id: ObjectId, department_id: ObjectId) -> None:
    raw = await Patient.get_motor_collection().find_one_and_update(
        {"_id": patient_id},
        {"$addToSet": {"care_team": doctor_id, "care_departments": department_id}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is not None:  # cached copies must learn the new relationship too
        await changed(Patient.model_validate(raw), "care_changed")
