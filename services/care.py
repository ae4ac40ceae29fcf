"""Care relationships: which doctors and departments treat a patient.

Access control reads them from the patient document itself, so checking a row costs no query
and a clinician's patient list is one indexed filter. They are derived data: recorded after the
appointment or plan that creates them is stored; if that second write fails the clinician simply
does not see the patient yet (the failure is closed, not open) and booking again records it.
"""

from __future__ import annotations

from bson import ObjectId

from models.patients import Patient


async def record(patient_id: ObjectId, doctor_id: ObjectId, department_id: ObjectId) -> None:
    await Patient.get_motor_collection().update_one(
        {"_id": patient_id},
        {"$addToSet": {"care_team": doctor_id, "care_departments": department_id}},
    )
