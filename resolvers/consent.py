"""Consents over GraphQL: read a patient's, record or withdraw one (a new version each)."""

from __future__ import annotations

import strawberry

from errors import BadUserInput
from models.consent import ConsentStatus
from schema.common import oid, view
from schema.consent import Consent, ConsentChannel, ConsentKind, RecordConsentInput
from schema.context import Info
from schema.enforce import acts
from services import consent as consents

KIND = "Consent"


async def _patient(info: Info, patient_id: strawberry.ID) -> object:
    patient = await info.context.loaders.patient_by_id.load(oid(patient_id, "patientId"))
    if patient is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    return patient


async def _record(
    info: Info,
    action: str,
    patient_id: strawberry.ID,
    kind: ConsentKind,
    status: ConsentStatus,
    channel: ConsentChannel | None,
    scope: list[str] | None,
    note: str | None,
    expected_version: int | None,
) -> Consent:
    access = info.context.access
    patient = await _patient(info, patient_id)
    await access.require(KIND, action, patient=patient)
    principal = access.principal
    on_behalf = principal.patient_id != patient.id  # type: ignore[attr-defined]
    done = await consents.record(
        patient.id,  # type: ignore[attr-defined]
        kind,
        status,
        recorded_by=principal.subject,
        on_behalf=on_behalf,
        channel=channel,
        scope=scope or (),
        note=note,
        expected_version=expected_version,
    )
    fields = ("kind", "channel", "status", "scope", "note")
    access.wrote(KIND, done, action, fields, note="on the patient's behalf" if on_behalf else None)
    return view(Consent, done)


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="Every version of every consent of a patient, by topic.")
    async def consents(self, info: Info, patient_id: strawberry.ID) -> list[Consent]:
        info.context.access.require_kind(KIND)
        found = await consents.history(oid(patient_id, "patientId"))
        return [view(Consent, c) for c in found]


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(
        description="Grant a consent (or change its scope): its next version. The patient "
        "themself, or the front desk or an admin on their behalf.",
        metadata=acts(KIND, "recordConsent"),
    )
    async def record_consent(self, info: Info, input: RecordConsentInput) -> Consent:
        return await _record(
            info,
            "recordConsent",
            input.patient_id,
            input.kind,
            ConsentStatus.GRANTED,
            input.channel,
            input.scope,
            input.note,
            input.expected_version,
        )

    @strawberry.mutation(
        description="Withdraw a granted consent: its next version, status withdrawn. Shares "
        "resting on it stop giving anything at once.",
        metadata=acts(KIND, "withdrawConsent"),
    )
    async def withdraw_consent(
        self,
        info: Info,
        patient_id: strawberry.ID,
        kind: ConsentKind,
        channel: ConsentChannel | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Consent:
        return await _record(
            info,
            "withdrawConsent",
            patient_id,
            kind,
            ConsentStatus.WITHDRAWN,
            channel,
            None,
            note,
            expected_version,
        )
