"""The audit trail: merged per request, written in one batch, append-only, read newest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock_motor
import pytest
import strawberry
from bson import ObjectId
from pymongo.errors import AutoReconnect
from pymongo.operations import DeleteOne
from strawberry.schema.config import StrawberryConfig

import db
from auth.audit import MAX_RECORDS_PER_EVENT, AuditTrail, AuditUnavailable, require_audit_reader
from auth.principal import Principal
from auth.roles import Role
from errors import BadUserInput, Forbidden, Unauthenticated
from models.audit import AppendOnlyError, AuditAction, AuditEvent, AuditOutcome
from resolvers.audit import AuditQuery
from schema.common import SCALARS
from schema.errors import ErrorCodes
from services import audit
from services.pagination import PageArgs
from tests.graphql.helpers import snapshot

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DOCTOR = Principal("acct-doctor", frozenset({Role.DOCTOR}), staff_id=ObjectId())
COMPLIANCE = Principal("acct-compliance", frozenset({Role.COMPLIANCE}))


def trail(principal: Principal | None = DOCTOR) -> AuditTrail:
    return AuditTrail(principal, "req-1", "203.0.113.7", "PatientChart")


def event(**overrides: Any) -> AuditEvent:
    data: dict[str, Any] = {
        "actor_subject": "acct-doctor",
        "action": AuditAction.READ,
        "entity": "Patient",
        "request_id": "req-x",
        "at": T0,
        **overrides,
    }
    return AuditEvent(**data)


# -- the per-request trail -------------------------------------------------------------------
# Beanie documents can only be built once Beanie is bound, hence `database` even without I/O.


def test_repeated_reads_of_a_record_merge_into_one_event(database: Any) -> None:
    t, patient, other = trail(), ObjectId(), ObjectId()
    t.read("Patient", patient, patient, ["lastName", "firstName"], withheld=["nationalId"])
    t.read("Patient", patient, patient, ["dateOfBirth"], withheld=["contact"])
    t.read("Patient", patient, patient, ["contact"])  # returned after all: no longer withheld
    t.read("Patient", other, other, ["lastName"])
    assert len(t.events) == 2
    first, second = t.events
    assert first.fields == ["contact", "dateOfBirth", "firstName", "lastName"]
    assert first.withheld == ["nationalId"]
    assert (first.entity_id, first.patient_id, first.action) == (patient, patient, "read")
    assert (first.actor_subject, first.actor_roles) == ("acct-doctor", ["doctor"])
    assert (first.request_id, first.client_address, first.operation) == (
        "req-1",
        "203.0.113.7",
        "PatientChart",
    )
    assert (first.outcome, first.break_glass, first.reason) == ("allowed", False, None)
    assert second.entity_id == other


def test_a_break_glass_read_marks_the_merged_event(database: Any) -> None:
    t, patient = trail(), ObjectId()
    t.read("Patient", patient, patient, ["lastName"])
    t.read("Patient", patient, patient, ["allergies"], break_glass_reason="Unconscious in ER")
    (merged,) = t.events
    assert (merged.break_glass, merged.reason) == (True, "Unconscious in ER")
    assert merged.fields == ["allergies", "lastName"]


def test_writes_never_merge_and_repeated_denials_are_kept_once(database: Any) -> None:
    t, plan, patient = trail(), ObjectId(), ObjectId()
    t.write("TreatmentPlan", plan, patient, AuditAction.UPDATE, ["status"])
    t.write("TreatmentPlan", plan, patient, AuditAction.UPDATE, ["status"])
    t.write("Patient", patient, patient, AuditAction.BREAK_GLASS, [], "Cardiac arrest")
    for _ in range(3):
        t.denied("Prescription", None, patient, AuditAction.CREATE, "no relationship")
    t.denied("Prescription", None, patient, AuditAction.CREATE, "suspended account")
    actions = [(e.action, e.outcome) for e in t.events]
    assert actions == [
        ("update", "allowed"),
        ("update", "allowed"),
        ("break_glass", "allowed"),
        ("create", "denied"),
        ("create", "denied"),
    ]
    glass = t.events[2]
    assert (glass.break_glass, glass.reason) == (True, "Cardiac arrest")
    assert [e.reason for e in t.events[3:]] == ["no relationship", "suspended account"]
    with pytest.raises(ValueError):
        t.write("Patient", patient, patient, AuditAction.READ, ["lastName"])


def test_an_anonymous_caller_is_recorded_as_such(database: Any) -> None:
    t = trail(principal=None)
    t.denied("Patient", None, None, AuditAction.READ, "not signed in")
    (e,) = t.events
    assert (e.actor_subject, e.actor_roles, e.outcome) == ("anonymous", [], "denied")


async def test_flush_writes_every_event_in_one_operation(database: Any) -> None:
    t, patient = trail(), ObjectId()
    for n in range(5):
        t.read("Appointment", ObjectId(), patient, ["startAt"])
        t.read("Patient", patient, patient, [f"field{n}"])
    t.write("Patient", patient, patient, AuditAction.UPDATE, ["lastName"])
    with db.operations.measure() as ops:
        await t.flush()
    assert ops.total == 1
    assert {collection for collection, _ in ops.counts} == {"audit_events"}
    stored = await AuditEvent.find({"request_id": "req-1"}).to_list()
    # Five appointments read alike are one event listing them; the patient's five reads
    # merge into one record; the write is its own event.
    assert [(e.entity, e.action) for e in stored] == [
        ("Appointment", "read"),
        ("Patient", "read"),
        ("Patient", "update"),
    ]
    appointments, merged, _ = stored
    assert len(appointments.entity_ids) == 5 and appointments.entity_id is None
    assert appointments.patient_ids == [patient] and appointments.patient_id == patient
    assert merged.fields == [f"field{n}" for n in range(5)]
    assert merged.entity_ids == [patient] and merged.entity_id == patient
    with db.operations.measure() as ops:
        await t.flush()  # already written: nothing pending, no round trip
    assert ops.total == 0
    assert await AuditEvent.count() == 3


async def test_flushing_an_empty_trail_costs_nothing(database: Any) -> None:
    with db.operations.measure() as ops:
        await trail().flush()
    assert ops.total == 0


async def test_a_failing_insert_makes_flush_raise_and_keeps_the_events(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect("primary stepped down")

    t, patient = trail(), ObjectId()
    t.read("Patient", patient, patient, ["lastName"])
    collection = type(db.collection(AuditEvent))
    with monkeypatch.context() as patched:
        patched.setattr(collection, "insert_many", unreachable)
        with pytest.raises(AuditUnavailable) as failure:
            await t.flush()
    assert isinstance(failure.value.__cause__, AutoReconnect)
    assert failure.value.code == "INTERNAL"
    assert await AuditEvent.count() == 0
    assert len(t.events) == 1
    t.read("Patient", patient, patient, ["firstName"])  # still merges into the pending event
    await t.flush()
    (stored,) = await AuditEvent.find_all().to_list()
    assert stored.fields == ["firstName", "lastName"]


# -- append-only ----------------------------------------------------------------------------


def _write_paths(e: AuditEvent) -> dict[str, Callable[[], Any]]:
    by_id = {"_id": e.id}
    change: dict[str, Any] = {"$set": {"fields": []}}
    return {
        "save": lambda: e.save(),
        "save_changes": lambda: e.save_changes(),
        "replace": lambda: e.replace(),
        "update": lambda: e.update(change),
        "set": lambda: e.set({"reason": "tampered"}),
        "inc": lambda: e.inc({"n": 1}),
        "current_date": lambda: e.current_date({"at": True}),
        "delete": lambda: e.delete(),
        "update_all": lambda: AuditEvent.update_all(change),
        "replace_many": lambda: AuditEvent.replace_many([e]),
        "delete_all": lambda: AuditEvent.delete_all(),
        "bulk_writer": lambda: AuditEvent.bulk_writer(),
        "find.update": lambda: AuditEvent.find(by_id).update(change),
        "find.update_many": lambda: AuditEvent.find(by_id).update_many(change),
        "find.upsert": lambda: AuditEvent.find(by_id).upsert(change, on_insert=e),
        "find.set": lambda: AuditEvent.find(by_id).set({"reason": "x"}),
        "find.inc": lambda: AuditEvent.find(by_id).inc({"n": 1}),
        "find.current_date": lambda: AuditEvent.find(by_id).current_date({"at": True}),
        "find.delete": lambda: AuditEvent.find(by_id).delete(),
        "find.delete_many": lambda: AuditEvent.find(by_id).delete_many(),
        "find_all.delete": lambda: AuditEvent.find_all().delete(),
        "find_one.update": lambda: AuditEvent.find_one(by_id).update(change),
        "find_one.update_one": lambda: AuditEvent.find_one(by_id).update_one(change),
        "find_one.upsert": lambda: AuditEvent.find_one(by_id).upsert(change, on_insert=e),
        "find_one.set": lambda: AuditEvent.find_one(by_id).set({"reason": "x"}),
        "find_one.delete": lambda: AuditEvent.find_one(by_id).delete(),
        "find_one.delete_one": lambda: AuditEvent.find_one(by_id).delete_one(),
        "find_one.replace_one": lambda: AuditEvent.find_one(by_id).replace_one(e),
        "aggregate.$out": lambda: AuditEvent.aggregate([{"$out": "audit_events"}]),
        "find.aggregate.$merge": lambda: AuditEvent.find(by_id).aggregate(
            [{"$merge": {"into": "audit_events"}}]
        ),
    }


async def test_every_update_and_delete_path_is_refused(database: Any) -> None:
    e = event(fields=["lastName"], patient_id=ObjectId())
    await e.insert()
    await AuditEvent.insert_many([event(), event()])
    before = await snapshot(AuditEvent)
    e.reason = "tampered in memory"
    for name, attempt in _write_paths(e).items():
        with pytest.raises(AppendOnlyError, match="append-only"):
            result = attempt()  # refused on the call, before any coroutine exists
            if hasattr(result, "__await__"):
                await result
            pytest.fail(f"{name} was not refused")
    assert await snapshot(AuditEvent) == before
    # Reading still works, through every query shape.
    stored = await AuditEvent.get(e.id)
    assert stored is not None and stored.reason is None and stored.fields == ["lastName"]
    assert await AuditEvent.find({"patient_id": e.patient_id}).count() == 1
    rows = await AuditEvent.aggregate([{"$match": {"_id": e.id}}]).to_list()
    assert [row["_id"] for row in rows] == [e.id]


def test_the_refusal_is_a_permission_error() -> None:
    assert issubclass(AppendOnlyError, PermissionError)


async def test_the_raw_collection_is_the_gap_left_to_the_database_role(database: Any) -> None:
    """Documented, not hidden: code cannot stop the driver; the MongoDB role must."""
    e = event()
    await e.insert()
    await AuditEvent.get_motor_collection().bulk_write([DeleteOne({"_id": e.id})])
    assert await AuditEvent.count() == 0


# -- reading the trail ----------------------------------------------------------------------


async def seed_trail() -> dict[str, Any]:
    alice, bob = ObjectId(), ObjectId()
    rows = [
        event(at=T0, patient_id=alice, actor_subject="dr-a"),
        event(at=T0 + timedelta(minutes=1), patient_id=alice, actor_subject="dr-b"),
        event(
            at=T0 + timedelta(minutes=2),
            patient_id=bob,
            actor_subject="dr-a",
            action=AuditAction.UPDATE,
        ),
        event(
            at=T0 + timedelta(minutes=3),
            patient_id=bob,
            actor_subject="nurse-c",
            outcome=AuditOutcome.DENIED,
            reason="no relationship",
        ),
        event(
            at=T0 + timedelta(minutes=4),
            patient_id=alice,
            actor_subject="dr-b",
            action=AuditAction.BREAK_GLASS,
            break_glass=True,
            reason="ER",
        ),
    ]
    await AuditEvent.insert_many(rows)
    return {"alice": alice, "bob": bob}


async def listed(**criteria: Any) -> list[tuple[str, datetime]]:
    page = await audit.list_audit_events(audit.audit_filter(**criteria), PageArgs(50))
    return [(e.actor_subject, e.at) for e in page.items]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_listing_filters_newest_first(database: Any) -> None:
    ids = await seed_trail()
    everyone = await listed()
    assert [when for _, when in everyone] == [at(4), at(3), at(2), at(1), at(0)]
    assert await listed(patient_id=ids["alice"]) == [
        ("dr-b", at(4)),
        ("dr-b", at(1)),
        ("dr-a", at(0)),
    ]
    assert await listed(actor="dr-a") == [("dr-a", at(2)), ("dr-a", at(0))]
    assert await listed(since=at(1), before=at(3)) == [("dr-a", at(2)), ("dr-b", at(1))]
    assert await listed(since=at(3)) == [("dr-b", at(4)), ("nurse-c", at(3))]
    assert await listed(before=at(1)) == [("dr-a", at(0))]
    assert await listed(action=AuditAction.UPDATE) == [("dr-a", at(2))]
    assert await listed(action=AuditAction.BREAK_GLASS) == [("dr-b", at(4))]
    assert await listed(outcome=AuditOutcome.DENIED) == [("nurse-c", at(3))]
    assert await listed(patient_id=ids["bob"], outcome=AuditOutcome.ALLOWED) == [("dr-a", at(2))]
    assert await listed(actor="nobody") == []


async def test_listing_rejects_naive_and_inverted_time_windows(database: Any) -> None:
    with pytest.raises(BadUserInput) as naive:
        audit.audit_filter(since=datetime(2025, 3, 1, 9, 0))
    assert naive.value.fields == {"from": "must include a time zone offset"}
    with pytest.raises(BadUserInput) as inverted:
        audit.audit_filter(since=at(2), before=at(2))
    assert inverted.value.fields == {"to": "must be after from"}


async def test_cursor_paging_walks_newest_first_across_pages_and_ties(database: Any) -> None:
    # Seven events, three sharing one instant: the _id breaks the tie, newest first.
    times = [at(0), at(1), at(1), at(1), at(2), at(3), at(4)]
    rows = [event(at=t, request_id=f"req-{n}") for n, t in enumerate(times)]
    rows.append(event(at=at(5), actor_subject="someone-else"))
    await AuditEvent.insert_many(rows)
    query = audit.audit_filter(actor="acct-doctor")
    seen: list[AuditEvent] = []
    after, pages = None, 0
    while True:
        page = await audit.list_audit_events(query, PageArgs(3, after))
        seen += page.items
        pages += 1
        if not page.has_next:
            break
        after = page.cursors[-1]
    assert pages == 3
    assert [e.request_id for e in seen] == [f"req-{n}" for n in (6, 5, 4, 3, 2, 1, 0)]
    assert await page.count() == 7


# -- access ---------------------------------------------------------------------------------


def test_only_admins_and_compliance_read_the_trail() -> None:
    assert require_audit_reader(COMPLIANCE) is COMPLIANCE
    admin = Principal("acct-admin", frozenset({Role.ADMIN}))
    assert require_audit_reader(admin) is admin
    with pytest.raises(Unauthenticated, match="Sign in first"):
        require_audit_reader(None)
    expired = Unauthenticated("The token has expired")
    with pytest.raises(Unauthenticated) as raised:
        require_audit_reader(None, expired)
    assert raised.value is expired
    for role in set(Role) - {Role.ADMIN, Role.COMPLIANCE}:
        with pytest.raises(Forbidden):
            require_audit_reader(Principal("acct", frozenset({role})))


@dataclass
class _Context:
    """Just what the audit resolver reads; the real Context builds loaders and policy too."""

    principal: Principal | None
    auth_error: Unauthenticated | None = None
    request_id: str = "req-test"

    def page(self, first: int | None, after: str | None) -> PageArgs:
        return PageArgs.of(first, after, default=2, cap=50)


AUDIT_EVENTS = """query($patientId: ID, $from: DateTime, $after: String) {
  auditEvents(patientId: $patientId, from: $from, first: 2, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id at actorSubject action outcome patientId fields breakGlass reason }
  }
}"""


async def test_the_audit_events_field_serves_readers_and_refuses_others(database: Any) -> None:
    ids = await seed_trail()
    schema = strawberry.Schema(
        query=AuditQuery, extensions=[ErrorCodes], config=StrawberryConfig(scalar_map=SCALARS)
    )
    variables = {"patientId": str(ids["alice"]), "from": at(0).isoformat()}
    result = await schema.execute(
        AUDIT_EVENTS, variable_values=variables, context_value=_Context(COMPLIANCE)
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    events = result.data["auditEvents"]
    assert events["totalCount"] == 3 and events["pageInfo"]["hasNextPage"] is True
    first = events["nodes"][0]
    assert first["action"] == "BREAK_GLASS" and first["outcome"] == "ALLOWED"
    assert (first["breakGlass"], first["reason"], first["patientId"]) == (
        True,
        "ER",
        str(ids["alice"]),
    )
    more = await schema.execute(
        AUDIT_EVENTS,
        variable_values={**variables, "after": events["pageInfo"]["endCursor"]},
        context_value=_Context(COMPLIANCE),
    )
    assert more.data is not None
    assert [n["actorSubject"] for n in more.data["auditEvents"]["nodes"]] == ["dr-a"]
    for who, code in ((DOCTOR, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        refused = await schema.execute(
            AUDIT_EVENTS, variable_values=variables, context_value=_Context(who)
        )
        assert refused.errors is not None and len(refused.errors) == 1
        assert refused.errors[0].extensions == {"code": code}
    assert await AuditEvent.count() == 5  # reading the trail is not itself audited


async def test_reads_group_by_entity_and_fields_and_split_when_large(database: Any) -> None:
    t, patients = trail(), [ObjectId() for _ in range(3)]
    rows = [ObjectId() for _ in range(MAX_RECORDS_PER_EVENT + 5)]
    for n, row in enumerate(rows):
        t.read("Appointment", row, patients[n % 3], ["id", "startAt"])
    t.read("Appointment", ObjectId(), patients[0], ["id"], ["notes"])  # fewer fields: its own
    await t.flush()
    stored = await AuditEvent.find({"request_id": "req-1"}).sort("_id").to_list()
    assert [len(e.entity_ids) for e in stored] == [MAX_RECORDS_PER_EVENT, 5, 1]
    assert [e.entity_id for e in stored[:2]] == [None, None]
    assert [i for e in stored[:2] for i in e.entity_ids] == rows  # every record, in order
    assert set(stored[0].patient_ids) == set(patients)
    assert stored[2].withheld == ["notes"] and stored[2].fields == ["id"]
    # Compliance finds each patient's accesses through the multikey list.
    found = await AuditEvent.find({"patient_ids": patients[1]}).to_list()
    assert len(found) == 2


async def test_the_embedded_store_keeps_the_newest_events_only(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory, under load, the trail would only grow: the embedded store keeps the newest
    ``EMBEDDED_KEEP`` (plus a tenth of slack); MongoDB keeps everything (nothing is trimmed)."""
    monkeypatch.setattr(db, "EMBEDDED_KEEP", 20)
    for n in range(40):
        t = trail()
        t.request_id = f"req-{n}"
        t.write("Patient", ObjectId(), None, AuditAction.UPDATE, ["lastName"])
        await t.flush()
    stored = await AuditEvent.find({}).sort("_id").to_list()
    if not isinstance(db.collection(AuditEvent), mongomock_motor.AsyncMongoMockCollection):
        assert len(stored) == 40
        return
    assert 20 <= len(stored) <= 22
    assert stored[-1].request_id == "req-39"
    assert [e.request_id for e in stored] == [f"req-{n}" for n in range(40 - len(stored), 40)]
