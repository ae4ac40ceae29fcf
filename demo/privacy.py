"""Demo consents and a record share: patients who agreed to sharing, research use or messages
on a channel (some withdrew one later: a second version), and one share of a consenting
patient's record with the demo partner hospital (``st-elsewhere``, a service client seeded with
the demo sign-ins), so the consent history, the share and the receiver's view can be tried.

Deterministic like the rest of the demo: ids are hashes of what they stand for, times count
from ``ANCHOR``; the share runs for a year from it.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from beanie import PydanticObjectId

from demo.clock import ANCHOR
from models.consent import Consent, ConsentChannel, ConsentKind, ConsentStatus, topic_of
from models.patients import Patient
from models.sharing import RecordShare, ShareBasis

PARTNER_CLIENT_ID = "st-elsewhere"
PARTNER_NAME = "St Elsewhere Hospital"
FRONT_DESK = "demo:frontdesk"
SHARED_TYPES = ["Condition", "MedicationRequest", "Observation", "Patient"]


def _id(name: str) -> PydanticObjectId:
    return PydanticObjectId(hashlib.sha256(f"privacy:{name}".encode()).hexdigest()[:24])


def _consent(
    patient: Patient,
    kind: ConsentKind,
    status: ConsentStatus,
    version: int,
    days_before: int,
    channel: ConsentChannel | None = None,
) -> Consent:
    topic = topic_of(kind, channel)
    at = ANCHOR - timedelta(days=days_before)
    return Consent(
        id=_id(f"consent:{patient.id}:{topic}:{version}"),
        patient_id=patient.id,
        kind=kind,
        channel=channel,
        topic=topic,
        status=status,
        version=version,
        recorded_at=at,
        recorded_by=FRONT_DESK,
        on_behalf=True,
        note="Signed form at registration" if version == 1 else "Asked at the desk",
        created_at=at,
        updated_at=at,
    )


def consents_of(n: int, patient: Patient) -> list[Consent]:
    """Patient ``n``'s consents: email for every other patient, sharing for every third,
    research for every fourth, SMS granted then withdrawn for every fifth."""
    g, w = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN
    out = []
    if n % 2 == 1:
        out.append(_consent(patient, ConsentKind.NOTIFICATIONS, g, 1, 60, ConsentChannel.EMAIL))
    if n % 3 == 0:
        out.append(_consent(patient, ConsentKind.SHARING, g, 1, 45))
    if n % 4 == 0:
        out.append(_consent(patient, ConsentKind.RESEARCH, g, 1, 40))
    if n % 5 == 0:
        out.append(_consent(patient, ConsentKind.NOTIFICATIONS, g, 1, 50, ConsentChannel.SMS))
        out.append(_consent(patient, ConsentKind.NOTIFICATIONS, w, 2, 10, ConsentChannel.SMS))
    return out


async def seed_privacy() -> None:
    patients = await Patient.find_all().sort("_id").to_list()
    consents = [c for n, p in enumerate(patients, start=1) for c in consents_of(n, p)]
    if consents:
        await Consent.insert_many(consents)
    sharing = next(
        (
            c
            for c in consents
            if c.kind is ConsentKind.SHARING and c.status is ConsentStatus.GRANTED
        ),
        None,
    )
    patient = next((p for p in patients if sharing and p.id == sharing.patient_id), None)
    if sharing is None or patient is None or patient.primary_doctor_id is None:
        return
    at = ANCHOR - timedelta(days=7)
    await RecordShare(
        id=_id(f"share:{patient.id}"),
        patient_id=patient.id,
        shared_by_id=patient.primary_doctor_id,
        shared_by=f"demo:doctor:{patient.primary_doctor_id}",
        recipient_client_id=PARTNER_CLIENT_ID,
        recipient_name=PARTNER_NAME,
        purpose="continuity of care",
        resource_types=SHARED_TYPES,
        starts_at=at,
        expires_at=ANCHOR + timedelta(days=365),
        basis=ShareBasis.CONSENT,
        consent_id=sharing.id,
        consent_version=sharing.version,
        created_at=at,
        updated_at=at,
    ).insert()
