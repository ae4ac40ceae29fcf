"""The per-request audit trail: record every access as it is decided, write them all at the end.

Resolvers record synchronously (no await, so concurrent resolvers cannot interleave a record) and
the request writes the whole batch with one ``insert_many`` when it is done: auditing a page of
100 patients costs one database operation, not 100.

``flush`` raises ``AuditUnavailable`` when the insert fails, and the caller must then turn the
response into an error: an access that cannot be audited must not silently succeed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

import db
from auth.principal import Principal
from auth.roles import Role
from errors import Forbidden, ShmsError, Unauthenticated
from models.audit import AuditAction, AuditEvent, AuditOutcome

ANONYMOUS = "anonymous"
AUDIT_READERS = frozenset({Role.ADMIN, Role.COMPLIANCE})


class AuditUnavailable(ShmsError):
    """The trail could not be written; clients see ``INTERNAL`` with this message only."""

    code = "INTERNAL"


def require_audit_reader(
    principal: Principal | None, auth_error: Unauthenticated | None = None
) -> Principal:
    """Only administrators and compliance officers may read the trail.

    ``auth_error`` is why a token was rejected, if one was: more useful than "sign in".
    """
    if principal is None:
        raise auth_error or Unauthenticated("Sign in first")
    if not principal.has(*AUDIT_READERS):
        raise Forbidden("Only administrators and compliance officers may read the audit trail")
    return principal


@dataclass(frozen=True)
class _Key:
    """What makes two records one event: repeated reads of a record within a request merge."""

    outcome: AuditOutcome
    action: AuditAction
    entity: str
    entity_id: ObjectId | None
    patient_id: ObjectId | None
    reason: str | None = None


def _stored(event: AuditEvent) -> dict[str, Any]:
    """An event as MongoDB stores it (enums by value, ``_id`` left to the driver)."""
    raw = event.model_dump(exclude={"id", "revision_id"})
    raw["action"], raw["outcome"] = event.action.value, event.outcome.value
    return raw


def _union(*groups: Iterable[str]) -> list[str]:
    return sorted({name for group in groups for name in group})


class AuditTrail:
    """Collects one request's audit events in memory; ``flush`` writes them in one batch."""

    def __init__(
        self,
        principal: Principal | None,
        request_id: str,
        client_address: str | None,
        operation: str | None = None,
        client_request_id: str | None = None,
    ) -> None:
        self.principal = principal
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.client_address = client_address
        self.operation = operation
        self._events: list[AuditEvent] = []  # reads, writes and denials, in recording order
        self._merged: dict[_Key, AuditEvent] = {}  # the reads and denials that merge by key
        self.keep_written = False
        """Set it to have ``snapshot`` include what ``flush`` already wrote (saved queries)."""
        self._written: list[AuditEvent] = []

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        """What ``flush`` would write, in the order first recorded."""
        return tuple(self._events)

    def _event(
        self,
        action: AuditAction,
        outcome: AuditOutcome,
        entity: str,
        entity_id: ObjectId | None,
        patient_id: ObjectId | None,
        fields: Iterable[str] = (),
        withheld: Iterable[str] = (),
        reason: str | None = None,
        break_glass: bool = False,
    ) -> AuditEvent:
        who = self.principal
        return AuditEvent(
            actor_subject=who.subject if who else ANONYMOUS,
            actor_roles=sorted(who.roles) if who else [],
            action=action,
            outcome=outcome,
            entity=entity,
            entity_id=entity_id,
            patient_id=patient_id,
            fields=_union(fields),
            withheld=_union(withheld),
            reason=reason,
            break_glass=break_glass,
            request_id=self.request_id,
            client_request_id=self.client_request_id,
            client_address=self.client_address,
            operation=self.operation,
        )

    def read(
        self,
        entity: str,
        entity_id: ObjectId | None,
        patient_id: ObjectId | None,
        fields: Iterable[str],
        withheld: Iterable[str] = (),
        break_glass_reason: str | None = None,
    ) -> None:
        """Record that ``fields`` of a record were returned and ``withheld`` were not.

        Reading the same record again in this request merges into its first event: the field
        sets are united, and a field returned by any read is no longer counted as withheld.
        """
        key = _Key(AuditOutcome.ALLOWED, AuditAction.READ, entity, entity_id, patient_id)
        event = self._merged.get(key)
        if event is None:
            event = self._event(
                AuditAction.READ,
                AuditOutcome.ALLOWED,
                entity,
                entity_id,
                patient_id,
                fields,
                withheld,
                break_glass_reason,
                break_glass_reason is not None,
            )
            self._merged[key] = event
            self._events.append(event)
        else:
            event.fields = _union(event.fields, fields)
            event.withheld = _union(event.withheld, withheld)
            if break_glass_reason is not None and not event.break_glass:
                event.break_glass, event.reason = True, break_glass_reason
        returned = set(event.fields)
        event.withheld = [name for name in event.withheld if name not in returned]

    def write(
        self,
        entity: str,
        entity_id: ObjectId | None,
        patient_id: ObjectId | None,
        action: AuditAction,
        fields: Iterable[str],
        break_glass_reason: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record a change (create, update, delete) or the opening of a record by break-glass.

        Every write is its own event, even to the same record: each one changed the data.
        ``note`` says why when it is not break-glass (an admin writing in a clinician's name).
        """
        if action is AuditAction.READ:
            raise ValueError("record reads with AuditTrail.read")
        glass = break_glass_reason is not None or action is AuditAction.BREAK_GLASS
        self._events.append(
            self._event(
                action,
                AuditOutcome.ALLOWED,
                entity,
                entity_id,
                patient_id,
                fields,
                reason="; ".join(r for r in (note, break_glass_reason) if r is not None) or None,
                break_glass=glass,
            )
        )

    def denied(
        self,
        entity: str,
        entity_id: ObjectId | None,
        patient_id: ObjectId | None,
        action: AuditAction,
        reason: str,
        fields: Iterable[str] = (),
    ) -> None:
        """Record a refused access (``fields``: those refused, for a field-level denial); the
        same refusal repeated within a request is kept once."""
        key = _Key(AuditOutcome.DENIED, action, entity, entity_id, patient_id, reason)
        if key in self._merged:
            merged = self._merged[key]
            merged.fields = _union(merged.fields, fields)
            return
        event = self._event(
            action, AuditOutcome.DENIED, entity, entity_id, patient_id, fields, (), reason
        )
        self._merged[key] = event
        self._events.append(event)

    async def flush(self) -> None:
        """Write every recorded event with one ``insert_many``; nothing at all when empty.

        On failure it raises ``AuditUnavailable`` (the driver error as its cause) and keeps the
        events pending for a retry; the caller must fail the response, not return unaudited data.
        """
        if not self._events:
            return
        batch, merged = self._events, self._merged
        # Records made while the insert is in flight belong to the next flush.
        self._events, self._merged = [], {}
        try:
            # Plain documents in one insert: the events were validated as they were built, and
            # Beanie's per-document encoding cost more than the rest of a large read.
            await db.collection(AuditEvent).insert_many([_stored(e) for e in batch])
        except Exception as exc:
            self._events, self._merged = batch + self._events, {**self._merged, **merged}
            raise AuditUnavailable("This access could not be audited, so it was refused") from exc
        if self.keep_written:
            self._written += batch

    def snapshot(self) -> list[dict[str, Any]]:
        """The events recorded so far, JSON-able, for ``replay``: a cached answer served again
        is a new access to the same records, so it must be audited like the run that made it."""
        return [
            {
                "action": e.action.value,
                "outcome": e.outcome.value,
                "entity": e.entity,
                "entity_id": str(e.entity_id) if e.entity_id is not None else None,
                "patient_id": str(e.patient_id) if e.patient_id is not None else None,
                "fields": list(e.fields),
                "withheld": list(e.withheld),
                "reason": e.reason,
                "break_glass": e.break_glass,
            }
            for e in (*self._written, *self._events)
        ]

    def replay(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Record the events of a ``snapshot`` again, as this trail's caller and request."""
        for r in records:
            action, outcome = AuditAction(r["action"]), AuditOutcome(r["outcome"])
            entity_id = ObjectId(r["entity_id"]) if r.get("entity_id") else None
            patient_id = ObjectId(r["patient_id"]) if r.get("patient_id") else None
            glass = r.get("reason") if r.get("break_glass") else None
            if outcome is AuditOutcome.DENIED:
                self.denied(
                    r["entity"], entity_id, patient_id, action, r.get("reason") or "", r["fields"]
                )
            elif action is AuditAction.READ:
                self.read(r["entity"], entity_id, patient_id, r["fields"], r["withheld"], glass)
            else:
                self.write(r["entity"], entity_id, patient_id, action, r["fields"], glass)
