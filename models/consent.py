"""Patients' consents: to share their record, to research use, to notifications per channel.

A consent is never edited: each change (granted, withdrawn, a new scope) is a new version, so
the history of what the patient agreed to, when, and who recorded it, is the collection itself.
The current consent of a topic is its highest version; a unique index on (patient, topic,
version) makes two concurrent changes of one topic conflict instead of both becoming version
n+1.

Who reads and records them: the patient (their own), the front desk and admin on the patient's
behalf (recorded as such), compliance reads; clinicians who treat the patient read them (they
share records only with consent).
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import Field

from auth.policy import A, C, R, S, declare, each, grant, row
from auth.policy import Classification as Class
from crypto.fields import sealed
from models.base import Entity, Ref, ShortText, UtcDatetime, utcnow


class ConsentKind(StrEnum):
    SHARING = "sharing"  # the record may be shared with other providers (models.sharing)
    RESEARCH = "research"  # de-identified use in research (Safe Harbor exports)
    NOTIFICATIONS = "notifications"  # messages on one channel


class ConsentChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


def topic_of(kind: ConsentKind, channel: ConsentChannel | None) -> str:
    """The key versions are counted under: ``sharing``, ``research``, ``notifications:sms``."""
    return f"{kind.value}:{channel.value}" if channel is not None else kind.value


class Consent(Entity):
    patient_id: Ref
    kind: ConsentKind
    channel: ConsentChannel | None = None
    topic: str = Field(max_length=40)
    status: ConsentStatus
    version: int = Field(ge=1)
    scope: list[ShortText] = Field(
        default_factory=list,
        max_length=50,
        description="Organisations or purposes it covers; empty: any.",
    )
    recorded_at: UtcDatetime = Field(default_factory=utcnow)
    recorded_by: str = Field(max_length=255, description="The token subject who recorded it.")
    on_behalf: bool = Field(default=False, description="Recorded by staff for the patient.")
    note: ShortText | None = None

    class Settings:
        name = "consents"
        indexes = [
            pymongo.IndexModel(
                [("patient_id", 1), ("topic", 1), ("version", 1)],
                unique=True,
                name="one_version_per_topic",
            ),
            pymongo.IndexModel([("patient_id", 1), ("topic", 1), ("version", -1)]),
        ]


_RECORDERS = {**each((R.ADMIN, R.ADMIN_STAFF), grant(A)), R.PATIENT: grant(S)}

CONSENT = declare(
    "Consent",
    Consent,
    row(
        Class.SECURITY,
        (
            "id",
            "patientId",
            "kind",
            "channel",
            "status",
            "version",
            "scope",
            "recordedAt",
            "recordedBy",
            "onBehalf",
            "note",
            "createdAt",
            "updatedAt",
        ),
        {**_RECORDERS, R.COMPLIANCE: grant(A), R.DOCTOR: grant(C), R.NURSE: grant(C)},
    ),
    actions={"recordConsent": _RECORDERS, "withdrawConsent": _RECORDERS},
    creates=frozenset({"recordConsent", "withdrawConsent"}),
    patient="patient_id",
    refs=("patient_id",),
    order=(("recorded_at", 1), ("_id", 1)),
)

# The note is what the patient or the desk said about the consent: free text, never queried.
CONSENT_SEALED = sealed(Consent, "consents", ("note",), {})
