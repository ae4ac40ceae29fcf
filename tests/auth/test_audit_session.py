"""Issue 3 "Done when": a scripted session over HTTP, then the audit trail a compliance officer
reads back, asserted completely: who, what (entity, id, fields returned and withheld), the
outcome, the break-the-glass flag and reason, one request id per request, newest first.

The facility is the one of ``test_access_matrix`` (doctor A treats P, doctor B does not).
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLNamedType, get_named_type

from api.schema import schema
from models import AuditEvent
from tests.auth.test_access_matrix import (
    Facility,
    assert_denied,
    assert_forbidden_at,
    build_facility,
    caller,
)
from tests.conftest import GraphQLClient
from tests.graphql.helpers import code, snapshot


@pytest.fixture
def settings(settings: Any, state_dir: Any) -> Any:
    """The run's one signing key, as in test_access_matrix."""
    return settings.model_copy(update={"shms_state_dir": str(state_dir)})


@pytest.fixture
async def f(app: Any) -> Facility:
    return await build_facility()


EMERGENCY = "Unconscious in the emergency room, no chart at hand"

DOCTOR_CHART = """query DoctorChart($id: ID!) { patient(id: $id) {
  id firstName lastName nationalId allergies { substance } billingAccount { id } } }"""
UPDATE_PLAN = """mutation AdjustPlan($id: ID!) {
  updateTreatmentPlan(id: $id, input: {notes: "Increase the dose"}) { id notes } }"""
BOOK = """mutation Book($p: ID!, $d: ID!) {
  scheduleAppointment(idempotencyKey: "visit-1", input: {patientId: $p, doctorId: $d,
    startAt: "2031-04-01T09:00:00Z", endAt: "2031-04-01T09:30:00Z", reason: "Review"}) { id } }"""
BILLING_PLAN = """mutation BillingTriesThePlan($id: ID!) {
  updateTreatmentPlan(id: $id, input: {notes: "Cheaper drug"}) { id } }"""
MY_RECORD = """query MyRecord($id: ID!) { patient(id: $id) {
  id firstName nationalId allergies { substance } billingAccount { id balance { amount } } } }"""
BREAK_GLASS = """mutation Emergency($p: ID!, $reason: String!) {
  breakTheGlass(patientId: $p, reason: $reason) { patientId reason expiresAt } }"""
TRAIL = """query Trail($p: ID!, $outcome: AuditOutcome) {
  auditEvents(patientId: $p, outcome: $outcome, first: 50) {
    totalCount
    nodes { id at actorSubject actorRoles action outcome entity entityId patientId
            fields withheld reason breakGlass requestId operation }
  }
}"""


def _event(
    who: str,
    action: str,
    entity: str,
    entity_id: Any,
    operation: str | None,
    fields: str = "",
    withheld: str = "",
    outcome: str = "ALLOWED",
    reason: str | None = None,
    break_glass: bool = False,
    patient: Any = None,
) -> dict[str, Any]:
    """An expected audit event, minus what only the server knows (id, at, requestId).

    ``who`` is ``subject:role``; ``fields`` and ``withheld`` are space-separated names.
    """
    subject, role = who.split(":")
    return {
        "actorSubject": subject,
        "actorRoles": [role],
        "action": action,
        "outcome": outcome,
        "entity": entity,
        "entityId": str(entity_id),
        "patientId": str(patient if patient is not None else entity_id),
        "fields": fields.split(),
        "withheld": withheld.split(),
        "reason": reason,
        "breakGlass": break_glass,
        "operation": operation,
    }


async def test_the_trail_of_a_scripted_session_is_complete_and_newest_first(
    client_as: Any, f: Facility
) -> None:
    doctor_a = caller(client_as, f, "doctor")
    patient_p = caller(client_as, f, "patient")
    doctor_b = caller(client_as, f, "doctor_b")
    p = str(f.p.id)

    # 1. The treating doctor reads P; the billing account is withheld (billing/patient only).
    chart = await doctor_a(DOCTOR_CHART, id=p)
    assert_forbidden_at(chart, ("patient", "billingAccount"))
    assert chart["data"]["patient"]["allergies"] == [{"substance": "Penicillin"}]
    # 2. ... and changes the treatment plan; billing may not, and is refused.
    await doctor_a.data(UPDATE_PLAN, id=str(f.plan_p.id))
    assert_denied(await caller(client_as, f, "billing")(BILLING_PLAN, id=str(f.plan_p.id)))
    # 3. The patient reads their own record, billing account included.
    mine = await patient_p.data(MY_RECORD, id=p)
    assert mine["patient"]["billingAccount"]["id"] == str(f.bill_p.id)
    # 4. Another clinician, with no relationship, is refused ...
    assert_denied(await doctor_b(DOCTOR_CHART, id=p))
    # 5. ... breaks the glass ...
    opened = await doctor_b.data(BREAK_GLASS, p=p, reason=EMERGENCY)
    assert opened["breakTheGlass"]["reason"] == EMERGENCY
    # 6. ... and now reads P, clinical fields included (national id still masked).
    emergency = await doctor_b(DOCTOR_CHART, id=p)
    assert_forbidden_at(emergency, ("patient", "billingAccount"))
    assert emergency["data"]["patient"]["allergies"] == [{"substance": "Penicillin"}]
    assert emergency["data"]["patient"]["nationalId"].endswith("3456")

    # 7. The front desk books a visit, and its client retries the same request.
    desk = caller(client_as, f, "admin_staff")
    booked = await desk.data(BOOK, p=p, d=str(f.doctor_a.id))
    assert await desk.data(BOOK, p=p, d=str(f.doctor_a.id)) == booked
    visit = booked["scheduleAppointment"]["id"]

    compliance = caller(client_as, f, "compliance")
    trail = (await compliance.data(TRAIL, p=p))["auditEvents"]
    events = trail["nodes"]
    booking = "doctorId endAt patientId reason startAt"
    chart_fields = "allergies firstName id lastName nationalId"
    expected = [
        # 7. The retry, answered from its key: audited like the first answer, marked a replay.
        _event(
            "acct-admin_staff:admin_staff", "CREATE", "Appointment", visit, "Book",
            fields=booking, patient=p,
            reason="idempotent replay of visit-1: the first answer again, nothing written",
        ),
        _event(
            "acct-admin_staff:admin_staff", "CREATE", "Appointment", visit, "Book",
            fields=booking, patient=p,
        ),
        # 6. B's emergency read: flagged, with the reason given; the billing account refused.
        _event(
            "acct-doctor_b:doctor", "READ", "Patient", p, "DoctorChart", outcome="DENIED",
            fields="billingAccount", reason="billing fields",
        ),
        _event(
            "acct-doctor_b:doctor", "READ", "Patient", p, "DoctorChart",
            fields=chart_fields, withheld="billingAccount", reason=EMERGENCY, break_glass=True,
        ),
        # 5. The break-the-glass itself.
        _event(
            "acct-doctor_b:doctor", "BREAK_GLASS", "Patient", p, "Emergency",
            fields="emergencyAccess", reason=EMERGENCY, break_glass=True,
        ),
        # 4. B's refused read.
        _event(
            "acct-doctor_b:doctor", "READ", "Patient", p, "DoctorChart",
            outcome="DENIED", reason="no relationship",
        ),
        # 3. The patient's own record and billing account, in one request.
        _event(
            "acct-patient:patient", "READ", "BillingAccount", f.bill_p.id, "MyRecord",
            fields="balance id", patient=p,
        ),
        _event(
            "acct-patient:patient", "READ", "Patient", p, "MyRecord",
            fields="allergies billingAccount firstName id nationalId",
        ),
        # 2. Billing's refused change, in the patient's trail with the plan it named ...
        _event(
            "acct-billing:billing", "UPDATE", "TreatmentPlan", f.plan_p.id, "BillingTriesThePlan",
            outcome="DENIED", reason="no role grants it", patient=p,
        ),
        # ... and A's change of the plan.
        _event(
            "acct-doctor:doctor", "UPDATE", "TreatmentPlan", f.plan_p.id, "AdjustPlan",
            fields="notes", patient=p,
        ),
        # 1. A's read, the billing account withheld: a denial of its own, findable as such.
        _event(
            "acct-doctor:doctor", "READ", "Patient", p, "DoctorChart", outcome="DENIED",
            fields="billingAccount", reason="billing fields",
        ),
        _event(
            "acct-doctor:doctor", "READ", "Patient", p, "DoctorChart",
            fields=chart_fields, withheld="billingAccount",
        ),
        # The facility's own seed event, older than the whole session.
        _event("acct-seed:admin", "READ", "Patient", p, None),
    ]  # fmt: skip
    server_only = ("id", "at", "requestId")
    assert [{k: v for k, v in e.items() if k not in server_only} for e in events] == expected
    assert trail["totalCount"] == len(expected)

    # Newest first.
    instants = [e["at"] for e in events]
    assert instants == sorted(instants, reverse=True)
    # One request id per request: each request's events share one, and no two requests do.
    requests = [e["requestId"] for e in events[:-1]]
    by_request = [(2, 3), (6, 7), (10, 11)]  # B's emergency chart, the patient's, A's chart
    assert all(requests[i] == requests[j] for i, j in by_request)
    assert len(set(requests)) == len(requests) - len(by_request)
    assert all(len(r) >= 16 for r in requests)

    # The denials are found by their outcome too: rows, fields and writes alike.
    denied = (await compliance.data(TRAIL, p=p, outcome="DENIED"))["auditEvents"]["nodes"]
    assert [(e["actorSubject"], e["action"], e["reason"]) for e in denied] == [
        ("acct-doctor_b", "READ", "billing fields"),
        ("acct-doctor_b", "READ", "no relationship"),
        ("acct-billing", "UPDATE", "no role grants it"),
        ("acct-doctor", "READ", "billing fields"),
    ]
    # Reading the trail is not itself recorded in the patient's trail.
    assert (await compliance.data(TRAIL, p=p))["auditEvents"]["totalCount"] == len(expected)


async def test_another_patients_trail_holds_none_of_this_session(
    client_as: Any, f: Facility
) -> None:
    doctor = caller(client_as, f, "doctor")
    await doctor.data("query($id: ID!) { patient(id: $id) { id lastName } }", id=str(f.p.id))
    compliance = caller(client_as, f, "compliance")
    trail = (await compliance.data(TRAIL, p=str(f.q.id)))["auditEvents"]["nodes"]
    assert [(e["actorSubject"], e["entityId"]) for e in trail] == [("acct-seed", str(f.q.id))]


async def test_admin_reads_the_trail_a_doctor_may_not_and_anonymous_callers_neither(
    client_as: Any, f: Facility, http: Any
) -> None:
    admin = caller(client_as, f, "admin")
    assert (await admin.data(TRAIL, p=str(f.p.id)))["auditEvents"]["totalCount"] == 1
    for who in ("doctor", "nurse", "admin_staff", "billing", "patient", "analyst", "service"):
        assert_denied(await caller(client_as, f, who)(TRAIL, p=str(f.p.id)))
    assert_denied(await GraphQLClient(http)(TRAIL, p=str(f.p.id)), "UNAUTHENTICATED")
    assert_denied(await GraphQLClient(http, "garbage")(TRAIL, p=str(f.p.id)), "UNAUTHENTICATED")


def _input_types(named: GraphQLNamedType, seen: set[str]) -> set[str]:
    """``named`` and every type reachable through its input fields."""
    if named.name in seen:
        return set()
    seen.add(named.name)
    found = {named.name}
    if isinstance(named, GraphQLInputObjectType):
        for field in named.fields.values():
            found |= _input_types(get_named_type(field.type), seen)
    return found


def test_no_mutation_touches_audit_events() -> None:
    mutation = schema._schema.mutation_type
    assert mutation is not None
    for name, field in mutation.fields.items():
        touched = {get_named_type(field.type).name}
        for arg in field.args.values():
            touched |= _input_types(get_named_type(arg.type), set())
        assert "audit" not in name.lower(), name
        assert not {t for t in touched if t.startswith("Audit")}, (name, touched)


async def test_audit_events_cannot_be_changed_through_the_api(client_as: Any, f: Facility) -> None:
    before = await snapshot(AuditEvent)
    for attempt in (
        'mutation { deleteAuditEvent(id: "x") }',
        'mutation { updateAuditEvent(id: "x", input: {reason: "oops"}) { id } }',
    ):
        error = await caller(client_as, f, "admin").error(attempt)
        assert code(error) == "GRAPHQL_VALIDATION_FAILED"
    assert await snapshot(AuditEvent) == before


async def test_the_request_id_is_made_by_shms_and_the_clients_is_kept_beside_it(
    app: Any, http: Any, client_as: Any, f: Facility
) -> None:
    from tests.auth.test_access_matrix import claims_of
    from tests.conftest import token_for

    token = token_for(app, **claims_of(f, "doctor"))
    headers = {"authorization": f"Bearer {token}", "x-request-id": "trace-42"}
    query = "query Chart($id: ID!) { patient(id: $id) { id } }"
    answers = [
        await http.post("/graphql", json={"query": query, "variables": {"id": str(f.p.id)}},
                        headers=headers)
        for _ in range(2)
    ]  # fmt: skip
    ours = [r.headers["x-request-id"] for r in answers]
    assert len(set(ours)) == 2 and "trace-42" not in ours  # two requests, two ids
    events = await AuditEvent.find({"operation": "Chart"}).to_list()
    assert sorted(e.request_id for e in events) == sorted(ours)
    assert {e.client_request_id for e in events} == {"trace-42"}
