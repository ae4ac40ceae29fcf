"""The audit trail: who saw or changed whose data, when, and what the policy withheld or denied.

HIPAA's audit controls ask for a record that cannot be quietly rewritten, so ``AuditEvent`` is
append-only in code: ``insert``/``create``/``insert_one``/``insert_many`` work, and every
update or delete path Beanie offers raises ``AppendOnlyError`` before reaching the driver:

- on an event: ``save``, ``save_changes``, ``replace``, ``update``, ``set``, ``inc``,
  ``current_date``, ``delete``;
- on the class: ``update_all``, ``replace_many``, ``delete_all``, ``bulk_writer``;
- on ``find``/``find_one``/``find_all``/``get`` queries: ``update``, ``update_one``,
  ``update_many``, ``upsert``, ``set``, ``inc``, ``current_date``, ``delete``,
  ``delete_one``, ``delete_many``, ``replace_one``, and pipelines with ``$out``/``$merge``.

What code cannot stop: ``db.collection(AuditEvent)`` (the raw driver collection, which reads need),
a ``BulkWriter`` built by hand, and anyone holding other database credentials. In production
the application must therefore connect as a user that cannot update or remove audit events:

    // Privileges add up: a privilege on the whole database ({db: "shms", collection: ""})
    // would grant update/remove on audit_events again, so list domain collections one by one.
    db.getSiblingDB("shms").createRole({
      role: "shmsAuditAppendOnly",
      privileges: [{
        resource: {db: "shms", collection: "audit_events"},
        actions: ["find", "insert", "listIndexes", "createIndex"],
      }],
      roles: [],
    });
    db.getSiblingDB("shms").createRole({
      role: "shmsApp",
      privileges: [
        {resource: {db: "shms", collection: "patients"},
         actions: ["find", "insert", "update", "remove", "listIndexes", "createIndex"]},
        // ... the same for each domain collection, never for audit_events ...
      ],
      roles: ["shmsAuditAppendOnly"],
    });

``createIndex`` is there because ``init_beanie`` creates the declared indexes at start; a TTL
index could expire events, so hardened deployments create indexes with a deploy user and start
the app with ``skip_indexes``. Retention (no TTL: events are kept for the legal period) and
any archival run under a separate operator role, never the application's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, NoReturn

import pymongo
from beanie import Document
from beanie.odm.queries.find import FindMany, FindOne
from pydantic import AfterValidator, Field, model_validator

from auth.policy import A, R, declare, each, grant, row
from auth.policy import Classification as Class
from models.base import Ref, UtcDatetime, utcnow


class AppendOnlyError(PermissionError):
    """An attempt to change or remove an audit event: a bug to fix, never a case to handle."""


class AuditAction(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"  # status changes and cancellations too; `operation` names which
    DELETE = "delete"  # GDPR erasure included
    BREAK_GLASS = "break_glass"  # opening a record in an emergency, outside the usual policy


class AuditOutcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


def _refused(operation: str) -> Any:
    """A stand-in for a Beanie write method; works called on the class or on an instance."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"Audit events are append-only: {operation} is refused")

    refuse.__name__ = refuse.__qualname__ = operation
    return refuse


_QUERY_WRITES = (
    "update", "update_one", "update_many", "upsert", "set", "inc", "current_date",
    "delete", "delete_one", "delete_many", "replace_one",
)  # fmt: skip


class _ReadOnlyFindOne(FindOne[Any]):
    """``find_one``/``get`` queries over audit events: reading only."""


class _ReadOnlyFindMany(FindMany[Any]):
    """``find``/``find_all`` queries over audit events: reading only."""

    def aggregate(self, aggregation_pipeline: list[Any], *args: Any, **kwargs: Any) -> Any:
        # $out and $merge write their result into a collection, possibly this one.
        if any(set(stage) & {"$out", "$merge"} for stage in aggregation_pipeline):
            _refused("aggregate with $out/$merge")()
        return super().aggregate(aggregation_pipeline, *args, **kwargs)


for _query in (_ReadOnlyFindOne, _ReadOnlyFindMany):
    for _name in _QUERY_WRITES:
        setattr(_query, _name, _refused(f"{_name} on a query"))


def _to_millis(value: datetime) -> datetime:
    # MongoDB keeps milliseconds; equal in memory and stored keeps keyset cursors exact.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


Instant = Annotated[UtcDatetime, AfterValidator(_to_millis)]


class AuditEvent(Document):
    """One access to (or refusal of) records; never changed once inserted.

    A request's reads of one entity with the same fields are one event listing every record
    (``entity_ids``) and patient (``patient_ids``); writes and refusals name one record each.
    """

    at: Instant = Field(default_factory=utcnow)
    actor_subject: str = Field(description="The principal's token subject; 'anonymous' if none.")
    actor_roles: list[str] = Field(default_factory=list)
    action: AuditAction
    outcome: AuditOutcome = AuditOutcome.ALLOWED
    entity: str = Field(description="The GraphQL type of the record, e.g. 'Patient'.")
    entity_id: Ref | None = Field(default=None, description="The record, when it is one.")
    patient_id: Ref | None = Field(
        default=None, description="Whose health data this is, when it is one patient's."
    )
    entity_ids: list[Ref] = Field(
        default_factory=list, description="Every record the event covers (reads are grouped)."
    )
    patient_ids: list[Ref] = Field(
        default_factory=list, description="Every patient whose data those records hold."
    )
    fields: list[str] = Field(default_factory=list, description="Fields returned or written.")
    withheld: list[str] = Field(default_factory=list, description="Asked for, withheld by policy.")
    reason: str | None = Field(default=None, description="Break-the-glass or denial reason.")
    break_glass: bool = False
    request_id: str = Field(description="Generated by SHMS for the request (X-Request-Id).")
    client_request_id: str | None = Field(
        default=None, description="The id the client sent in X-Request-Id, if any, as given."
    )
    client_address: str | None = None
    operation: str | None = Field(default=None, description="GraphQL operation or mutation.")

    @model_validator(mode="after")
    def _lists_name_the_single_record(self) -> AuditEvent:
        """An event made for one record lists it too: queries look in the lists only."""
        if not self.entity_ids and self.entity_id is not None:
            self.entity_ids = [self.entity_id]
        if not self.patient_ids and self.patient_id is not None:
            self.patient_ids = [self.patient_id]
        return self

    _find_one_query_class: ClassVar[type] = _ReadOnlyFindOne
    _find_many_query_class: ClassVar[type] = _ReadOnlyFindMany

    save = _refused("save")
    save_changes = _refused("save_changes")
    replace = _refused("replace")
    update = _refused("update")
    set = _refused("set")
    inc = _refused("inc")
    current_date = _refused("current_date")
    delete = _refused("delete")
    update_all = _refused("update_all")
    replace_many = _refused("replace_many")
    delete_all = _refused("delete_all")
    bulk_writer = _refused("bulk_writer")

    class Settings:
        name = "audit_events"
        indexes = [
            pymongo.IndexModel([("patient_ids", 1), ("at", -1), ("_id", -1)]),
            pymongo.IndexModel([("actor_subject", 1), ("at", -1), ("_id", -1)]),
            pymongo.IndexModel([("at", -1), ("_id", -1)]),
        ]


AUDIT_EVENT = declare(
    "AuditEvent",
    AuditEvent,
    row(
        Class.SECURITY,
        (
            "id",
            "at",
            "actorSubject",
            "actorRoles",
            "action",
            "outcome",
            "entity",
            "fields",
            "withheld",
            "reason",
            "breakGlass",
            "requestId",
            "clientRequestId",
            "clientAddress",
            "operation",
            "entityId",
            "entityIds",
            "patientIds",
            "patientId",
        ),
        each((R.ADMIN, R.COMPLIANCE), grant(A)),
    ),
    published=False,
)
