"""The right of access: a patient downloads everything held about them, an admin on their
behalf with a reason; JSON derived from the declared domain, or a validated FHIR bundle."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from models.audit import AuditEvent
from tests.conftest import token_for
from tests.fhir.helpers import NAME, record

EXPORT = "/patients/{}/export"


def _get(http: Any, app: Any, patient_id: Any, query: str = "", **claims: Any) -> Any:
    headers = {"authorization": f"Bearer {token_for(app, **claims)}"}
    return http.get(EXPORT.format(patient_id) + query, headers=headers)


async def test_the_patient_gets_every_collection_and_who_saw_their_data(
    app: Any, http: Any
) -> None:
    r = await record()
    # An admin downloads it first, for a reason: a recipient the export must name.
    seen = await _get(
        http, app, r.patient.id, "?format=fhir&reason=asked", roles=["admin"], sub="seen-by"
    )
    assert seen.status_code == 200, seen.text
    response = await _get(http, app, r.patient.id, roles=["patient"], pid=str(r.patient.id))
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment")
    body = response.json()
    assert body["patient"]["last_name"] == NAME[1]
    assert {"Appointment", "OutpatientVisit", "VitalSigns", "LabOrder", "LabResult"} <= set(
        body["records"]
    )
    assert "seen-by" in {r["subject"] for r in body["recipients"]}
    assert body["auditEvents"] and body["erasure"] is None
    events = await AuditEvent.find(
        {"patient_ids": r.patient.id, "operation": "patientDataExport:json"}
    ).to_list()
    assert {"Patient", "LabResult"} <= {e.entity for e in events}


async def test_fhir_format_is_a_valid_r4_bundle(app: Any, http: Any) -> None:
    r = await record()
    response = await _get(
        http, app, r.patient.id, "?format=fhir", roles=["patient"], pid=str(r.patient.id)
    )
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Observation", "DiagnosticReport"} <= kinds


async def test_nobody_else_and_an_admin_only_with_a_reason(app: Any, http: Any) -> None:
    r = await record()
    other = await _get(http, app, r.patient.id, roles=["patient"], pid=str(r.doctor.id))
    assert other.status_code == 403
    doctor = await _get(http, app, r.patient.id, roles=["doctor"], sid=str(r.doctor.id))
    assert doctor.status_code == 403
    bare = await _get(http, app, r.patient.id, roles=["admin"])
    assert bare.status_code == 400 and bare.json()["error"]["fields"] == {
        "reason": "is required on a patient's behalf"
    }
    reason = f"?reason=Letter from {NAME[0]} {NAME[1]}"
    done = await _get(http, app, r.patient.id, reason, roles=["admin"])
    assert done.status_code == 200
    events = await AuditEvent.find({"patient_ids": r.patient.id}).to_list()
    noted = [e.operation for e in events if e.operation and "on behalf" in e.operation]
    assert noted and all(NAME[1] not in n and "[erased]" in n for n in noted)
