"""Consents: versions, who may record them, audit, and notifications that respect them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.audit import AuditEvent
from models.base import utcnow
from models.consent import Consent
from models.notifications import Notification, NotificationKind, Recipient, RecipientKind
from services import notifications
from tests import factories
from tests.graphql.helpers import code

RECORD = """mutation($input: RecordConsentInput!) { recordConsent(input: $input) {
  id kind channel status version scope recordedBy onBehalf patientId } }"""
WITHDRAW = """mutation($p: ID!, $kind: ConsentKind!, $channel: ConsentChannel, $v: Int) {
  withdrawConsent(patientId: $p, kind: $kind, channel: $channel, expectedVersion: $v) {
    version status scope } }"""
HISTORY = """query($p: ID!) { consents(patientId: $p) { kind channel status version } }"""


async def test_patient_grants_and_withdraws_with_history(client_as: Any) -> None:
    patient = await factories.patient(clinician_access=False)
    me = client_as(roles=["patient"], pid=str(patient.id))
    first = (
        await me.data(
            RECORD, input={"patientId": str(patient.id), "kind": "SHARING", "scope": ["org-a"]}
        )
    )["recordConsent"]
    assert (first["version"], first["status"], first["onBehalf"]) == (1, "GRANTED", False)
    second = (await me.data(WITHDRAW, p=str(patient.id), kind="SHARING", v=1))["withdrawConsent"]
    assert (second["version"], second["status"], second["scope"]) == (2, "WITHDRAWN", [])
    history = (await me.data(HISTORY, p=str(patient.id)))["consents"]
    assert [(c["version"], c["status"]) for c in history] == [(1, "GRANTED"), (2, "WITHDRAWN")]
    events = await AuditEvent.find({"entity": "Consent", "patient_id": patient.id}).to_list()
    assert sorted(e.action for e in events) == ["create", "create", "read"]  # the history read


async def test_front_desk_records_on_behalf_others_may_not(client_as: Any) -> None:
    patient = await factories.patient(clinician_access=False)
    other = await factories.patient(clinician_access=False)
    desk = client_as(roles=["admin_staff"])
    done = (
        await desk.data(
            RECORD,
            input={"patientId": str(patient.id), "kind": "NOTIFICATIONS", "channel": "SMS"},
        )
    )["recordConsent"]
    assert done["onBehalf"] is True and done["channel"] == "SMS"
    stranger = client_as(roles=["patient"], pid=str(other.id))
    refused = await stranger.error(RECORD, input={"patientId": str(patient.id), "kind": "RESEARCH"})
    assert code(refused) == "FORBIDDEN"
    doctor = client_as(roles=["doctor"], sid=str((await factories.doctor()).id))
    refused = await doctor.error(RECORD, input={"patientId": str(patient.id), "kind": "RESEARCH"})
    assert code(refused) == "FORBIDDEN"
    assert await Consent.find({"patient_id": patient.id}).count() == 1


async def test_conflicts_and_bad_input_change_nothing(client_as: Any) -> None:
    patient = await factories.patient(clinician_access=False)
    me = client_as(roles=["patient"], pid=str(patient.id))
    assert code(await me.error(WITHDRAW, p=str(patient.id), kind="RESEARCH")) == "CONFLICT"
    await me.data(RECORD, input={"patientId": str(patient.id), "kind": "RESEARCH"})
    stale = {"patientId": str(patient.id), "kind": "RESEARCH", "expectedVersion": 0}
    assert code(await me.error(RECORD, input=stale)) == "CONFLICT"
    no_channel = {"patientId": str(patient.id), "kind": "NOTIFICATIONS"}
    assert code(await me.error(RECORD, input=no_channel)) == "BAD_USER_INPUT"
    assert await Consent.find({"patient_id": patient.id}).count() == 1


class _Channel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


async def test_a_withdrawn_channel_is_skipped(client_as: Any) -> None:
    patient = await factories.patient(clinician_access=False)
    me = client_as(roles=["patient"], pid=str(patient.id))
    await me.data(
        RECORD, input={"patientId": str(patient.id), "kind": "NOTIFICATIONS", "channel": "EMAIL"}
    )
    await me.data(WITHDRAW, p=str(patient.id), kind="NOTIFICATIONS", channel="EMAIL")
    message = await Notification(
        key=f"test:{patient.id}",
        recipient=Recipient(kind=RecipientKind.PATIENT, id=patient.id),
        kind=NotificationKind.APPOINTMENT_CANCELLED,  # stays relevant: only consent skips it
        subject="Your appointment",
        body="Tomorrow at 9:00",
        next_attempt_at=utcnow() - timedelta(seconds=1),
    ).insert()
    email = _Channel("smtp")
    result = await notifications.dispatch(email)
    assert result.skipped == 1 and email.sent == []
    stored = await Notification.get(message.id)
    assert stored is not None and stored.status == "skipped"
    # SMS was never withdrawn: still sent there.
    await Notification.find({"_id": message.id}).update(
        {"$set": {"status": "pending", "next_attempt_at": utcnow() - timedelta(seconds=1)}}
    )
    sms = _Channel("sms")
    assert (await notifications.dispatch(sms)).sent == 1 and len(sms.sent) == 1
