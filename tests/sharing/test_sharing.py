"""Sharing: only with consent (or an audited emergency), the receiver reads exactly what was
shared while it lasts, and nothing after revocation, expiry or withdrawal of the consent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId
from fhir.resources.R4B.bundle import Bundle

from auth.roles import Role
from models.accounts import ServiceClient
from models.audit import AuditEvent
from models.base import utcnow
from models.sharing import RecordShare
from tests import factories
from tests.conftest import token_for
from tests.fhir.helpers import EVERYTHING, NAME, record, types
from tests.graphql.helpers import code

SHARE = """mutation($input: ShareRecordInput!) { shareRecord(input: $input) {
  id basis status resourceTypes consentVersion emergencyReason recipientName active } }"""
REVOKE = (
    """mutation($id: ID!) { revokeRecordShare(id: $id, reason: "done") { status revokedBy } }"""
)
CONSENT = """mutation($input: RecordConsentInput!) { recordConsent(input: $input) { version } }"""
WITHDRAW = """mutation($p: ID!, $kind: ConsentKind!) {
  withdrawConsent(patientId: $p, kind: $kind) { version } }"""
RECEIVER = "st-elsewhere"


async def _setup(client_as: Any) -> Any:
    r = await record()
    await ServiceClient(
        client_id=RECEIVER, secret_hash="unused", roles=[Role.SERVICE], name="St Elsewhere"
    ).insert()
    doctor = client_as(roles=["doctor"], sid=str(r.doctor.id), did=str(r.department.id))
    patient = client_as(roles=["patient"], pid=str(r.patient.id))
    return r, doctor, patient


def _share_input(r: Any, **extra: Any) -> dict[str, Any]:
    expires = (utcnow() + timedelta(days=7)).isoformat()
    return {
        "patientId": str(r.patient.id),
        "recipientClientId": RECEIVER,
        "purpose": "continuity of care",
        "expiresAt": expires,
        "resourceTypes": ["Observation", "MedicationRequest"],
        **extra,
    }


async def _receive(app: Any, http: Any, r: Any, client_id: str = RECEIVER) -> Any:
    token = token_for(app, sub=f"client:{client_id}", client_id=client_id, roles=["service"])
    return await http.get(
        EVERYTHING.format(r.patient.id), headers={"authorization": f"Bearer {token}"}
    )


async def test_no_consent_no_share_then_exactly_what_was_shared(
    app: Any, http: Any, client_as: Any
) -> None:
    r, doctor, patient = await _setup(client_as)
    refused = await doctor.error(SHARE, input=_share_input(r))
    assert code(refused) == "FORBIDDEN" and await RecordShare.count() == 0
    assert (await _receive(app, http, r)).status_code == 403  # nothing shared: no side door
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "SHARING"})
    share = (await doctor.data(SHARE, input=_share_input(r)))["shareRecord"]
    assert share["basis"] == "CONSENT" and share["consentVersion"] == 1 and share["active"]
    response = await _receive(app, http, r)
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert types(bundle) == {"Patient", "Observation", "MedicationRequest"}
    assert NAME[1] in response.text  # identified: a share for care
    reads = await AuditEvent.find(
        {"actor_subject": f"client:{RECEIVER}", "action": "read", "outcome": "allowed"}
    ).to_list()
    assert {e.entity for e in reads} >= {"Patient", "VitalSigns", "Prescription"}
    assert "Encounter" not in types(bundle) and not any(e.entity == "Appointment" for e in reads)
    assert (await _receive(app, http, r, client_id="someone-else")).status_code in (401, 403)


async def test_revoked_expired_or_withdrawn_gives_403(app: Any, http: Any, client_as: Any) -> None:
    r, doctor, patient = await _setup(client_as)
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "SHARING"})
    share = (await doctor.data(SHARE, input=_share_input(r)))["shareRecord"]
    assert (await _receive(app, http, r)).status_code == 200
    # the consent withdrawn: the share gives nothing from now on
    await patient.data(WITHDRAW, p=str(r.patient.id), kind="SHARING")
    assert (await _receive(app, http, r)).status_code == 403
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "SHARING"})
    assert (await _receive(app, http, r)).status_code == 200
    # expired
    await RecordShare.find({"_id": ObjectId(share["id"])}).update(
        {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    assert (await _receive(app, http, r)).status_code == 403
    await RecordShare.find({}).update({"$set": {"expires_at": utcnow() + timedelta(days=1)}})
    # revoked (by the patient themself)
    revoked = (await patient.data(REVOKE, id=share["id"]))["revokeRecordShare"]
    assert revoked["status"] == "REVOKED"
    response = await _receive(app, http, r)
    assert response.status_code == 403 and "revoked" in response.text
    assert code(await patient.error(REVOKE, id=share["id"])) == "CONFLICT"


async def test_emergency_share_is_flagged_like_break_the_glass(
    app: Any, http: Any, client_as: Any
) -> None:
    r, doctor, _ = await _setup(client_as)
    blank = await doctor.error(SHARE, input=_share_input(r, emergencyReason="  "))
    assert code(blank) == "BAD_USER_INPUT"
    share = (
        await doctor.data(SHARE, input=_share_input(r, emergencyReason="unconscious in their ED"))
    )["shareRecord"]
    assert share["basis"] == "EMERGENCY"
    made = await AuditEvent.find({"entity": "RecordShare", "break_glass": True}).to_list()
    assert made and "unconscious" in (made[0].reason or "")
    assert (await _receive(app, http, r)).status_code == 200
    flagged = await AuditEvent.find(
        {"actor_subject": f"client:{RECEIVER}", "break_glass": True, "entity": "Patient"}
    ).to_list()
    assert flagged


async def test_only_clinicians_with_care_share(client_as: Any) -> None:
    r, _, patient = await _setup(client_as)
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "SHARING"})
    stranger = client_as(roles=["doctor"], sid=str((await factories.doctor()).id))
    assert code(await stranger.error(SHARE, input=_share_input(r))) == "FORBIDDEN"
    billing = client_as(roles=["billing"])
    assert code(await billing.error(SHARE, input=_share_input(r))) == "FORBIDDEN"
    assert await RecordShare.count() == 0


async def test_research_share_is_deidentified_and_needs_research_consent(
    app: Any, http: Any, client_as: Any
) -> None:
    r, doctor, patient = await _setup(client_as)
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "SHARING"})
    research = _share_input(r, deidentified=True, purpose="research")
    assert code(await doctor.error(SHARE, input=research)) == "FORBIDDEN"
    await patient.data(CONSENT, input={"patientId": str(r.patient.id), "kind": "RESEARCH"})
    await doctor.data(SHARE, input=research)
    response = await _receive(app, http, r)
    assert response.status_code == 200
    Bundle.model_validate(response.json())
    assert NAME[0] not in response.text and NAME[1] not in response.text
    assert str(r.patient.id) not in response.text
    assert response.json()["meta"]["security"][0]["code"] == "safe-harbor"
