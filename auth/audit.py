"""The per-request audit trail: record every access as it is decided, write them all at the end.

Resolvers record synchronously (no await, so concurrent resolvers cannot interleave a record) and
the request writes the whole batch with one ``insert_many`` when it is done: auditing a page of
100 patients costs one database operation, not 100.

``flush`` raises ``AuditUnavailable`` when the insert fails, and the caller must then turn the
response into an error: an access that cannot be audited must not silently succeed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId

import db
from auth.principal import Principal
from auth.roles import Role
from errors import Forbidden, ShmsError, Unauthenticated
from models.audit import AuditAction, AuditEvent, AuditOutcome
from models.base import utcnow

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
    """What makes two refusals one event: the same refusal repeated within a request."""

    action: AuditAction
    entity: str
    entity_id: ObjectId | None
    patient_id: ObjectId | None
    reason: str | None = None


@dataclass
class _Read:
    """Every read of one record in this request, merged; events are made from these at flush."""

    seq: int
    entity: str
    entity_id: ObjectId | None
    patient_id: ObjectId | None
    fields: set[str]
    withheld: set[str]
    glass: str | None
    at: datetime = field(default_factory=utcnow)
    """When it was first read: the event's time, so a read and a refusal made after it in the
    same request keep that order in the trail (not the time of the flush)."""


MAX_RECORDS_PER_EVENT = 1000
"""Records one read event may list; a larger read is split (documents stay far below 16 MB)."""


def _union(*groups: Iterable[str]) -> list[str]:
    return sorted({name for group in groups for name in group})


def _distinct(ids: Iterable[ObjectId | None]) -> list[ObjectId]:
    # Plain ObjectIds: a PydanticObjectId has a __dict__, so the garbage collector tracks every
    # one an embedded trail holds, and full collections grew slower with each request.
    return list(
        dict.fromkeys(i if type(i) is ObjectId else ObjectId(i) for i in ids if i is not None)
    )


class AuditTrail:
    """Collects one request's audit trail in memory; ``flush`` writes it in one batch.

    Reads are kept per record (cheap: a set union per row) and become events at flush, one
    per entity and identical field sets, listing every record and patient it covers: a page of
    100 appointments with their patients is two events, not 150, and records exactly the same
    accesses. Writes and refusals are one event each.
    """

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
        self._seq = 0
        self._reads: dict[tuple[str, ObjectId | None, ObjectId | None], _Read] = {}
        self._others: list[tuple[int, dict[str, Any]]] = []  # writes and refusals, as stored
        self._denials: dict[_Key, dict[str, Any]] = {}
        self.keep_written = False
        """Set it to have ``snapshot`` include what ``flush`` already wrote (saved queries)."""
        self._written: list[dict[str, Any]] = []  # writes and refusals already flushed
        self._written_reads: list[_Read] = []

    # -- recording -------------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _document(
        self,
        action: AuditAction,
        outcome: AuditOutcome,
        entity: str,
        entity_ids: list[ObjectId],
        patient_ids: list[ObjectId],
        fields: Iterable[str] = (),
        withheld: Iterable[str] = (),
        reason: str | None = None,
        break_glass: bool = False,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """An event as MongoDB stores it; ``AuditEvent`` validates the same shape on reads."""
        who = self.principal
        return {
            "at": at or utcnow(),
            "actor_subject": who.subject if who else ANONYMOUS,
            "actor_roles": sorted(who.roles) if who else [],
            "action": action.value,
            "outcome": outcome.value,
            "entity": entity,
            "entity_id": entity_ids[0] if len(entity_ids) == 1 else None,
            "patient_id": patient_ids[0] if len(patient_ids) == 1 else None,
            "entity_ids": entity_ids,
            "patient_ids": patient_ids,
            "fields": _union(fields),
            "withheld": _union(withheld),
            "reason": reason,
            "break_glass": break_glass,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "client_address": self.client_address,
            "operation": self.operation,
        }

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

        Reading the same record again in this request merges into its first read: the field
        sets are united, and a field returned by any read is no longer counted as withheld.
        """
        key = (entity, entity_id, patient_id)
        record = self._reads.get(key)
        if record is None:
            self._reads[key] = _Read(
                self._next(),
                entity,
                entity_id,
                patient_id,
                set(fields),
                set(withheld),
                break_glass_reason,
            )
            return
        record.fields.update(fields)
        record.withheld.update(withheld)
        if break_glass_reason is not None and record.glass is None:
            record.glass = break_glass_reason

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
        reason = "; ".join(r for r in (note, break_glass_reason) if r is not None) or None
        event = self._document(
            action,
            AuditOutcome.ALLOWED,
            entity,
            _distinct([entity_id]),
            _distinct([patient_id]),
            fields,
            reason=reason,
            break_glass=glass,
        )
        self._others.append((self._next(), event))

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
        key = _Key(action, entity, entity_id, patient_id, reason)
        merged = self._denials.get(key)
        if merged is not None:
            merged["fields"] = _union(merged["fields"], fields)
            return
        event = self._document(
            action,
            AuditOutcome.DENIED,
            entity,
            _distinct([entity_id]),
            _distinct([patient_id]),
            fields,
            reason=reason,
        )
        self._denials[key] = event
        self._others.append((self._next(), event))

    # -- the events ------------------------------------------------------------------------

    def _read_events(self) -> list[tuple[int, dict[str, Any]]]:
        groups: dict[tuple[Any, ...], list[_Read]] = {}
        for r in self._reads.values():
            withheld = r.withheld - r.fields
            key = (r.entity, frozenset(r.fields), frozenset(withheld), r.glass)
            groups.setdefault(key, []).append(r)
        out: list[tuple[int, dict[str, Any]]] = []
        for (entity, fields, withheld, glass), records in groups.items():
            for start in range(0, len(records), MAX_RECORDS_PER_EVENT):
                part = records[start : start + MAX_RECORDS_PER_EVENT]
                event = self._document(
                    AuditAction.READ,
                    AuditOutcome.ALLOWED,
                    entity,
                    _distinct(r.entity_id for r in part),
                    _distinct(r.patient_id for r in part),
                    fields,
                    withheld,
                    glass,
                    glass is not None,
                    at=part[0].at,
                )
                out.append((part[0].seq, event))
        return out

    def _pending(self) -> list[dict[str, Any]]:
        """What ``flush`` would write, in the order first recorded."""
        return [e for _, e in sorted([*self._read_events(), *self._others], key=lambda p: p[0])]

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        """What ``flush`` would write, as validated models (for tests and tools, not requests)."""
        return tuple(AuditEvent.model_validate(e) for e in self._pending())

    async def flush(self) -> None:
        """Write every recorded event with one ``insert_many``; nothing at all when empty.

        On failure it raises ``AuditUnavailable`` (the driver error as its cause) and keeps the
        events pending for a retry; the caller must fail the response, not return unaudited data.
        """
        if not self._reads and not self._others:
            return
        batch = self._pending()
        reads, others, denials = self._reads, self._others, self._denials
        # Records made while the insert is in flight belong to the next flush.
        self._reads, self._others, self._denials = {}, [], {}
        try:
            # Plain documents in one insert (copies: the driver adds ``_id`` to what it sends).
            trail = db.collection(AuditEvent)
            await trail.insert_many([dict(e) for e in batch])
        except Exception as exc:
            self._reads = {**reads, **self._reads}
            self._others = others + self._others
            self._denials = {**denials, **self._denials}
            raise AuditUnavailable("This access could not be audited, so it was refused") from exc
        db.keep_newest(trail)  # the embedded store only: bounded, as it lives in memory
        if self.keep_written:
            self._written_reads += reads.values()
            self._written += [e for _, e in others]

    def snapshot(self) -> list[dict[str, Any]]:
        """The accesses recorded so far, JSON-able, for ``replay``: a cached answer served again
        is a new access to the same records, so it must be audited like the run that made it.
        Reads are listed per record, so replaying regroups them exactly."""
        reads, others = (
            [*self._written_reads, *self._reads.values()],
            self._written + [e for _, e in self._others],
        )
        out = [
            {
                "action": AuditAction.READ.value,
                "outcome": AuditOutcome.ALLOWED.value,
                "entity": r.entity,
                "entity_id": _text(r.entity_id),
                "patient_id": _text(r.patient_id),
                "fields": sorted(r.fields),
                "withheld": sorted(r.withheld - r.fields),
                "reason": r.glass,
                "break_glass": r.glass is not None,
            }
            for r in sorted(reads, key=lambda r: r.seq)
        ]
        out += [
            {
                "action": e["action"],
                "outcome": e["outcome"],
                "entity": e["entity"],
                "entity_id": _text(e["entity_id"]),
                "patient_id": _text(e["patient_id"]),
                "fields": list(e["fields"]),
                "withheld": list(e["withheld"]),
                "reason": e["reason"],
                "break_glass": e["break_glass"],
            }
            for e in others
        ]
        return out

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


def _text(value: ObjectId | None) -> str | None:
    return str(value) if value is not None else None
