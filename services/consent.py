"""Recording and reading consents: every change is a new version (``models.consent``)."""

from __future__ import annotations

from collections.abc import Iterable

from beanie.odm.enums import SortDirection
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from errors import BadUserInput, Conflict
from models.base import utcnow
from models.consent import Consent, ConsentChannel, ConsentKind, ConsentStatus, topic_of
from services.changes import changed


async def current(
    patient_id: ObjectId, kind: ConsentKind, channel: ConsentChannel | None = None
) -> Consent | None:
    """The patient's latest consent of that topic (None: never recorded)."""
    found = (
        await Consent.find({"patient_id": patient_id, "topic": topic_of(kind, channel)})
        .sort([("version", SortDirection.DESCENDING)])
        .limit(1)
        .to_list()
    )
    return found[0] if found else None


async def granted(
    patient_id: ObjectId,
    kind: ConsentKind,
    channel: ConsentChannel | None = None,
    scope: str | None = None,
) -> Consent | None:
    """The current consent if it is granted and covers ``scope`` (an empty scope covers any)."""
    consent = await current(patient_id, kind, channel)
    if consent is None or consent.status is not ConsentStatus.GRANTED:
        return None
    if scope is not None and consent.scope and scope not in consent.scope:
        return None
    return consent


async def history(patient_id: ObjectId) -> list[Consent]:
    """Every version of every topic, oldest first."""
    return (
        await Consent.find({"patient_id": patient_id})
        .sort([("topic", SortDirection.ASCENDING), ("version", SortDirection.ASCENDING)])
        .to_list()
    )


async def record(
    patient_id: ObjectId,
    kind: ConsentKind,
    status: ConsentStatus,
    recorded_by: str,
    on_behalf: bool,
    channel: ConsentChannel | None = None,
    scope: Iterable[str] = (),
    note: str | None = None,
    expected_version: int | None = None,
) -> Consent:
    """Add the next version of a topic. ``expected_version`` (the version the caller saw; 0
    for none) turns a concurrent change into ``CONFLICT`` instead of silently following it;
    two writers racing for the same version are told apart by the unique index anyway."""
    if kind is ConsentKind.NOTIFICATIONS and channel is None:
        raise BadUserInput("channel: required for notifications", {"channel": "required"})
    if kind is not ConsentKind.NOTIFICATIONS and channel is not None:
        raise BadUserInput(
            "channel: only notifications have a channel", {"channel": "must be left out"}
        )
    before = await current(patient_id, kind, channel)
    version = before.version if before is not None else 0
    if expected_version is not None and expected_version != version:
        raise Conflict(
            f"The consent changed meanwhile (now version {version}); read it again",
            version=version,
        )
    if status is ConsentStatus.WITHDRAWN and (
        before is None or before.status is ConsentStatus.WITHDRAWN
    ):
        raise Conflict("There is no granted consent of this kind to withdraw")
    consent = Consent(
        patient_id=patient_id,
        kind=kind,
        channel=channel,
        topic=topic_of(kind, channel),
        status=status,
        version=version + 1,
        scope=sorted(set(scope)) if status is ConsentStatus.GRANTED else [],
        recorded_at=utcnow(),
        recorded_by=recorded_by,
        on_behalf=on_behalf,
        note=note,
    )
    try:
        await consent.insert()
    except DuplicateKeyError:
        raise Conflict("The consent changed meanwhile; read it again") from None
    await changed(consent, "recorded" if status is ConsentStatus.GRANTED else "withdrawn")
    return consent


async def withdrawn_channels(patient_id: ObjectId) -> set[ConsentChannel]:
    """Notification channels whose current consent is withdrawn (never recorded: allowed, as
    before consents existed: appointment confirmations are part of care)."""
    out: set[ConsentChannel] = set()
    for channel in ConsentChannel:
        consent = await current(patient_id, ConsentKind.NOTIFICATIONS, channel)
        if consent is not None and consent.status is ConsentStatus.WITHDRAWN:
            out.add(channel)
    return out
