"""Encryption at rest of the reasons, notes and purposes staff type about a patient: break-the-glass
reasons, consent notes, a share's purpose and its emergency and revocation reasons, why vital
signs were entered in error, why a lab order was cancelled or a sample rejected, an imaging
order's body part and cancellation reason, why a doctor order was held or cancelled. Each is
ciphertext in MongoDB (and in the Redis document cache where the collection is cached) while
GraphQL, the access checks and the audit trail see the clear text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import json_util

import db
from auth.roles import Role
from crypto.fields import is_sealed
from models.accounts import ServiceClient
from models.audit import AuditEvent
from models.base import utcnow
from models.consent import Consent
from models.grants import AccessGrant
from models.laboratory import LabOrder, LabSample
from models.orders import DoctorOrder
from models.radiology import ImagingOrder
from models.sharing import RecordShare
from models.vitals import VitalSigns
from tests import factories
from tests.conftest import token_for
from tests.encryption.helpers import assert_absent, raw_doc, redis_text
from tests.fhir.helpers import EVERYTHING, record
from tests.laboratory.world import COLLECT, REJECT, world
from tests.laboratory.world import CREATE as CREATE_LAB_ORDER
from tests.orders import helpers as wards
from tests.radiology import helpers as rad
from tests.vitals.helpers import HOUR_AGO, clinic

BREAK_GLASS = """mutation($p: ID!, $reason: String!) {
  breakTheGlass(patientId: $p, reason: $reason) { patientId reason } }"""
EMERGENCY_ACCESS = "{ viewer { emergencyAccess { patientId reason } } }"
CHART = "query($id: ID!) { patient(id: $id) { id allergies { substance } } }"


async def test_a_break_the_glass_reason_is_sealed_and_still_flags_the_reads(
    client_as: Any,
) -> None:
    patient = await factories.patient(clinician_access=False)
    stranger = await factories.doctor()
    doctor = client_as(roles=["doctor"], sid=str(stranger.id), did=str(stranger.department_id))
    reason = "Collapsed in the car park, no relative reachable"
    opened = await doctor.data(BREAK_GLASS, p=str(patient.id), reason=reason)
    assert opened["breakTheGlass"]["reason"] == reason

    (raw,) = await db.collection(AccessGrant).find({"patient_id": patient.id}).to_list(None)
    assert is_sealed(raw["reason"]) and reason not in json_util.dumps(raw)
    shown = (await doctor.data(EMERGENCY_ACCESS))["viewer"]["emergencyAccess"]
    assert shown == [{"patientId": str(patient.id), "reason": reason}]
    # A later request loads the grant through the model: its reads are flagged with the words.
    assert (await doctor.data(CHART, id=str(patient.id)))["patient"]["id"] == str(patient.id)
    flagged = await AuditEvent.find(
        {"entity": "Patient", "break_glass": True, "action": "read", "patient_id": patient.id}
    ).to_list()
    assert flagged and {e.reason for e in flagged} == {reason}


CONSENT = """mutation($input: RecordConsentInput!) { recordConsent(input: $input) { id note } }"""
CONSENTS = "query($p: ID!) { consents(patientId: $p) { id note } }"
SHARE = """mutation($input: ShareRecordInput!) { shareRecord(input: $input) {
  id basis purpose emergencyReason } }"""
REVOKE = """mutation($id: ID!, $reason: String) {
  revokeRecordShare(id: $id, reason: $reason) { status revokeReason } }"""
SHARES = """query($p: ID!) { recordShares(patientId: $p) {
  id purpose emergencyReason revokeReason } }"""
RECEIVER = "st-elsewhere"


async def test_consent_notes_and_a_shares_purpose_and_reasons_are_sealed(
    app: Any, http: Any, client_as: Any, settings: Any
) -> None:
    r = await record()
    await ServiceClient(
        client_id=RECEIVER, secret_hash="unused", roles=[Role.SERVICE], name="St Elsewhere"
    ).insert()
    doctor = client_as(roles=["doctor"], sid=str(r.doctor.id), did=str(r.department.id))
    patient = client_as(roles=["patient"], pid=str(r.patient.id))
    p = str(r.patient.id)
    note, purpose = "Agreed after the oncology referral talk", "second opinion on the lymphoma"
    emergency, revoked = "Admitted unconscious to their ICU", "The second opinion is in"

    # The consent's scope names the purpose: compared with the (sealed) purpose in Python.
    given = {"patientId": p, "kind": "SHARING", "scope": [purpose], "note": note}
    consent_id = (await patient.data(CONSENT, input=given))["recordConsent"]["id"]
    expires = (utcnow() + timedelta(days=7)).isoformat()
    share_input = {
        "patientId": p,
        "recipientClientId": RECEIVER,
        "purpose": purpose,
        "expiresAt": expires,
        "resourceTypes": ["Observation"],
    }
    shared = (await doctor.data(SHARE, input=share_input))["shareRecord"]
    assert (shared["basis"], shared["purpose"]) == ("CONSENT", purpose)
    urgent = {**share_input, "purpose": "emergency care", "emergencyReason": emergency}
    flagged = (await doctor.data(SHARE, input=urgent))["shareRecord"]
    assert flagged["emergencyReason"] == emergency

    # The receiver's reads under the emergency share are flagged with its reason, opened.
    token = token_for(app, sub=f"client:{RECEIVER}", client_id=RECEIVER, roles=["service"])
    response = await http.get(EVERYTHING.format(p), headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    reads = await AuditEvent.find(
        {"actor_subject": f"client:{RECEIVER}", "break_glass": True, "entity": "Patient"}
    ).to_list()
    assert reads and all(emergency in (e.reason or "") for e in reads)

    done = await patient.data(REVOKE, id=shared["id"], reason=revoked)
    assert done["revokeRecordShare"] == {"status": "REVOKED", "revokeReason": revoked}

    assert (await patient.data(CONSENTS, p=p))["consents"] == [{"id": consent_id, "note": note}]
    shares = {s["id"]: s for s in (await doctor.data(SHARES, p=p))["recordShares"]}
    assert (shares[shared["id"]]["purpose"], shares[shared["id"]]["revokeReason"]) == (
        purpose,
        revoked,
    )
    assert shares[flagged["id"]]["emergencyReason"] == emergency

    raw_consent = await raw_doc(Consent, consent_id)
    raw_share = await raw_doc(RecordShare, shared["id"])
    raw_flagged = await raw_doc(RecordShare, flagged["id"])
    assert is_sealed(raw_consent["note"])
    assert raw_consent["scope"] == [purpose]  # the scope stays clear (CLEAR_BY_DESIGN)
    assert is_sealed(raw_share["purpose"]) and is_sealed(raw_share["revoke_reason"])
    assert is_sealed(raw_flagged["purpose"]) and is_sealed(raw_flagged["emergency_reason"])
    stored = json_util.dumps([raw_share, raw_flagged, {**raw_consent, "scope": []}])
    assert_absent([note, purpose, emergency, revoked], stored, await redis_text(settings))


RECORD_VITALS = """mutation($input: RecordVitalSignsInput!) { recordVitalSigns(input: $input) {
  id } }"""
MARK = """mutation($id: ID!, $reason: String!) {
  markVitalSignsEnteredInError(id: $id, reason: $reason) { status errorReason } }"""
VITALS = "query($id: ID!) { vitalSigns(id: $id) { status errorReason } }"


async def test_why_vital_signs_were_entered_in_error_is_sealed(
    client_as: Any, settings: Any
) -> None:
    c = await clinic(client_as)
    made = await c.me.data(
        RECORD_VITALS,
        input={
            "patientId": str(c.patient.id),
            "visitId": str(c.visit.id),
            "recordedAt": HOUR_AGO.isoformat(),
            "pulse": 71,
        },
    )
    id = made["recordVitalSigns"]["id"]
    reason = "Recorded on the wrong patient's chart"
    marked = await c.me.data(MARK, id=id, reason=reason)
    assert marked["markVitalSignsEnteredInError"]["errorReason"] == reason
    shown = (await c.me.data(VITALS, id=id))["vitalSigns"]
    assert shown == {"status": "ENTERED_IN_ERROR", "errorReason": reason}

    raw = await raw_doc(VitalSigns, id)
    assert is_sealed(raw["error_reason"])
    cached = await redis_text(settings)
    assert "vital_signs" in cached  # the cache was filled
    assert_absent([reason], json_util.dumps(raw), cached)


CANCEL_LAB = """mutation($id: ID!, $reason: String!) {
  cancelLabOrder(id: $id, reason: $reason) { status cancelReason } }"""
LAB = """query($id: ID!) { labOrder(id: $id) {
  status cancelReason samples { nodes { id status rejectionReason } } } }"""


async def test_lab_cancel_and_sample_rejection_reasons_are_sealed(client_as: Any) -> None:
    w = await world(client_as)
    data = await w["doctor"].data(
        CREATE_LAB_ORDER, input={"patientId": str(w.patient.id), "testCodes": ["BMP"]}
    )
    id = data["createLabOrder"]["id"]
    collected = await w["tech"].data(COLLECT, id=id)
    (sample,) = collected["collectLabSamples"]["samples"]["nodes"]
    rejection, cancel = "Haemolysed after a difficult draw", "Patient transferred to hospice care"
    rejected = await w["tech"].data(REJECT, id=sample["id"], reason=rejection)
    assert rejected["rejectLabSample"]["rejectionReason"] == rejection
    done = await w["doctor"].data(CANCEL_LAB, id=id, reason=cancel)
    assert done["cancelLabOrder"] == {"status": "CANCELLED", "cancelReason": cancel}

    shown = (await w["doctor"].data(LAB, id=id))["labOrder"]
    assert shown["cancelReason"] == cancel
    assert [s["rejectionReason"] for s in shown["samples"]["nodes"]] == [rejection]

    raw_order = await raw_doc(LabOrder, id)
    raw_sample = await raw_doc(LabSample, sample["id"])
    assert is_sealed(raw_order["cancel_reason"]) and cancel not in json_util.dumps(raw_order)
    # Only the top-level field: the custody step keeps its copy (CLEAR_BY_DESIGN, a history).
    assert is_sealed(raw_sample["rejection_reason"])


CANCEL_IMAGING = """mutation($id: ID!, $reason: String) {
  cancelImagingOrder(id: $id, reason: $reason) { status bodyPart cancellationReason } }"""
IMAGING = "query($id: ID!) { imagingOrder(id: $id) { bodyPart cancellationReason } }"


async def test_an_imaging_orders_body_part_and_cancellation_reason_are_sealed(
    client_as: Any, settings: Any
) -> None:
    f = await rad.facility()
    c = rad.Callers(client_as, f)
    body_part, reason = "Left fifth metatarsal", "Fracture ruled out clinically"
    order_id = await rad.ordered(c, f, bodyPart=body_part)
    cancelled = (await c.doctor.data(CANCEL_IMAGING, id=order_id, reason=reason))[
        "cancelImagingOrder"
    ]
    assert cancelled == {"status": "CANCELLED", "bodyPart": body_part, "cancellationReason": reason}
    shown = (await c.doctor.data(IMAGING, id=order_id))["imagingOrder"]
    assert shown == {"bodyPart": body_part, "cancellationReason": reason}

    raw = await raw_doc(ImagingOrder, order_id)
    assert is_sealed(raw["body_part"]) and is_sealed(raw["cancellation_reason"])
    cached = await redis_text(settings)
    assert "imaging_orders" in cached  # the cache was filled
    assert_absent([body_part, reason], json_util.dumps(raw), cached)


DOCTOR_ORDER = "query($id: ID!) { doctorOrder(id: $id) { status reason } }"


async def test_why_a_doctor_order_was_held_or_cancelled_is_sealed(client_as: Any) -> None:
    w = await wards.ward()
    c = wards.Callers(client_as, w)
    start = wards.iso(utcnow() + timedelta(minutes=30))
    created = await c.doctor.data(wards.CREATE_ORDER, input=wards.medication(w, startAt=start))
    id = created["createDoctorOrder"]["id"]
    held, cancel = "Nil by mouth before the endoscopy", "Rash after the first dose"
    assert (await c.doctor.data(wards.HOLD, id=id, reason=held))["holdDoctorOrder"][
        "reason"
    ] == held
    assert is_sealed((await raw_doc(DoctorOrder, id))["reason"])
    await c.doctor.data(wards.RESUME, id=id)
    assert (await raw_doc(DoctorOrder, id))["reason"] is None  # resumed: no reason
    cancelled = await c.doctor.data(wards.CANCEL_ORDER, id=id, reason=cancel)
    assert cancelled["cancelDoctorOrder"]["reason"] == cancel
    shown = (await c.doctor.data(DOCTOR_ORDER, id=id))["doctorOrder"]
    assert shown == {"status": "CANCELLED", "reason": cancel}
    # Only the top-level field: the history keeps its copies (CLEAR_BY_DESIGN, a history).
    assert is_sealed((await raw_doc(DoctorOrder, id))["reason"])
