"""Issue 3: ``viewer`` says who the caller is and what they may do with a record, and what it
says agrees with what the same caller actually gets (fields, masking, mutations).

The expected permissions are written out by hand from ``auth/policy.py``; the facility is the
one of ``test_access_matrix`` (doctor A treats P, doctor C shares P's department, doctor B has
no relation to P until he breaks the glass).
"""

from __future__ import annotations

from typing import Any

import pytest

from models import Patient
from tests.auth.test_access_matrix import (
    ENTITIES,
    P_NATIONAL_ID,
    P_NATIONAL_ID_MASKED,
    READS,
    Facility,
    assert_denied,
    build_facility,
    caller,
    claims_of,
    errors_at,
)
from tests.conftest import GraphQLClient


@pytest.fixture
def settings(settings: Any, state_dir: Any) -> Any:
    """The run's one signing key, as in test_access_matrix."""
    return settings.model_copy(update={"shms_state_dir": str(state_dir)})


@pytest.fixture
async def f(app: Any) -> Facility:
    return await build_facility()


VIEWER = """query($id: ID!) { viewer {
  subject roles patientId staffId departmentId
  permissions(entity: PATIENT, id: $id) { entity id visible actions fields { name access } }
  emergencyAccess { patientId reason }
} }"""

# The guarded Patient fields, by group, as the policy's FIELDS table lists them.
GROUPS = {
    "contact": ("contact", "emergencyContact"),
    "nationalId": ("nationalId",),
    "clinical": ("allergies", "medicalHistory", "treatmentPlans", "prescriptions"),
    "schedule": ("appointments", "primaryDoctor", "primaryDoctorId"),
    "billing": ("billingAccount",),
}
F, M, N = "FULL", "MASKED", "NONE"
CLINICIAN_IN_CARE = ["breakTheGlass", "update:clinical"]
DESK = ["create", "update:identity", "update:contact"]

# who -> (visible, access per group in GROUPS order, actions), on patient P.
EXPECTED: dict[str, tuple[bool, tuple[str, ...], list[str]]] = {
    #              visible   contact nationalId clinical schedule billing   actions
    "doctor":      (True,  (F,      M,         F,       F,       N),      CLINICIAN_IN_CARE),
    "doctor_c":    (True,  (N,      N,         N,       F,       N),      ["breakTheGlass"]),
    "doctor_b":    (False, (N,      N,         N,       N,       N),      ["breakTheGlass"]),
    "nurse":       (True,  (F,      M,         F,       F,       N),      CLINICIAN_IN_CARE),
    "admin_staff": (True,  (F,      M,         N,       F,       N),      DESK),
    "billing":     (True,  (F,      M,         N,       F,       F),      []),
    "patient":     (True,  (F,      F,         F,       F,       F),      ["update:contact"]),
    "patient_q":   (False, (N,      N,         N,       N,       N),      []),
    "admin":       (True,  (F,      F,         N,       F,       N),      DESK),
    "analyst":     (False, (N,      N,         N,       N,       N),      []),
    "compliance":  (False, (N,      N,         N,       N,       N),      []),
}  # fmt: skip

# How to ask for each guarded field, and what P's record holds there.
SELECTIONS = {
    "contact": "contact { phone }",
    "emergencyContact": "emergencyContact { name }",
    "nationalId": "nationalId",
    "allergies": "allergies { substance }",
    "medicalHistory": "medicalHistory { condition }",
    "treatmentPlans": "treatmentPlans { nodes { id } }",
    "prescriptions": "prescriptions { nodes { id } }",
    "appointments": "appointments { nodes { id } }",
    "primaryDoctor": "primaryDoctor { lastName }",
    "primaryDoctorId": "primaryDoctorId",
    "billingAccount": "billingAccount { id }",
}
CHART = "query($id: ID!) { patient(id: $id) { id " + " ".join(SELECTIONS.values()) + " } }"


def full_values(f: Facility) -> dict[str, Any]:
    return {
        "contact": {"phone": "+44 20 7946 0001"},
        "emergencyContact": {"name": "Paul Palmer"},
        "nationalId": P_NATIONAL_ID,
        "allergies": [{"substance": "Penicillin"}],
        "medicalHistory": [{"condition": "Asthma"}],
        "treatmentPlans": {"nodes": [{"id": str(f.plan_p.id)}]},
        "prescriptions": {"nodes": [{"id": str(f.rx_p.id)}]},
        "appointments": {"nodes": [{"id": str(f.appt_p.id)}]},
        "primaryDoctor": {"lastName": "Attending"},
        "primaryDoctorId": str(f.doctor_a.id),
        "billingAccount": {"id": str(f.bill_p.id)},
    }


def expected_fields(who: str) -> dict[str, str]:
    _, accesses, _ = EXPECTED[who]
    return {
        name: access
        for names, access in zip(GROUPS.values(), accesses, strict=True)
        for name in names
    }


async def check_viewer_agrees(
    client: GraphQLClient, f: Facility, who: str, expect: str | None = None
) -> None:
    """``viewer`` on P is as written in EXPECTED (for ``expect``, by default ``who`` itself),
    and querying P gives exactly that."""
    expect = expect or who
    visible, _, actions = EXPECTED[expect]
    viewer = (await client.data(VIEWER, id=str(f.p.id)))["viewer"]
    claims = claims_of(f, who)
    assert viewer["subject"] == claims["sub"]
    assert viewer["roles"] == [role.upper() for role in claims["roles"]]
    assert (viewer["patientId"], viewer["staffId"], viewer["departmentId"]) == (
        claims.get("pid"),
        claims.get("sid"),
        claims.get("did"),
    )
    permissions = viewer["permissions"]
    assert (permissions["entity"], permissions["id"]) == ("PATIENT", str(f.p.id))
    assert permissions["visible"] is visible
    assert permissions["actions"] == actions
    said = {field["name"]: field["access"] for field in permissions["fields"]}
    assert said == expected_fields(expect)

    body = await client(CHART, id=str(f.p.id))
    if not visible:
        assert_denied(body)
        return
    errors = errors_at(body)
    chart, values = body["data"]["patient"], full_values(f)
    assert chart["id"] == str(f.p.id)
    for name, access in said.items():
        if access == N:
            assert errors.get(("patient", name)) == "FORBIDDEN", (name, body)
            assert chart[name] is None
        else:
            assert ("patient", name) not in errors, (name, body)
            expected = P_NATIONAL_ID_MASKED if access == M else values[name]
            assert chart[name] == expected, name
    assert set(errors) == {("patient", n) for n, a in said.items() if a == N}


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_viewer_permissions_agree_with_what_the_caller_gets(
    client_as: Any, f: Facility, who: str
) -> None:
    client = caller(client_as, f, who)
    await check_viewer_agrees(client, f, who)
    assert (await client.data(VIEWER, id=str(f.p.id)))["viewer"]["emergencyAccess"] == []


UPDATES = {
    "update:identity": {"lastName": "Palmer-Smith"},
    "update:contact": {"contact": {"phone": "+44 20 7946 0999"}},
    "update:clinical": {"allergies": [{"substance": "Aspirin"}]},
}
UPDATE_PATIENT = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id } }"""
REGISTER = """mutation { registerPatient(input: {
  firstName: "Rita", lastName: "Newcomer", dateOfBirth: "1990-02-03"}) { id } }"""
BREAK_GLASS = """mutation($p: ID!) { breakTheGlass(patientId: $p,
  reason: "Unconscious in the emergency room") { patientId } }"""


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_viewer_actions_agree_with_what_the_caller_may_do(
    client_as: Any, f: Facility, who: str
) -> None:
    client = caller(client_as, f, who)
    _, _, actions = EXPECTED[who]
    attempts: dict[str, tuple[str, dict[str, Any]]] = {
        "create": (REGISTER, {}),
        **{
            action: (UPDATE_PATIENT, {"id": str(f.p.id), "input": change})
            for action, change in UPDATES.items()
        },
        # Last: a grant would widen what the caller may do with P from here on.
        "breakTheGlass": (BREAK_GLASS, {"p": str(f.p.id)}),
    }
    for action, (query, variables) in attempts.items():
        body = await client(query, **variables)
        if action in actions:
            assert "errors" not in body, (action, body)
        else:
            assert_denied(body)
    assert await Patient.count() == 2 + ("create" in actions)


async def test_break_the_glass_shows_in_the_viewer_and_opens_the_record(
    client_as: Any, f: Facility
) -> None:
    doctor_b = caller(client_as, f, "doctor_b")
    await check_viewer_agrees(doctor_b, f, "doctor_b")
    reason = "Unconscious in the emergency room"
    await doctor_b.data(BREAK_GLASS, p=str(f.p.id))

    # A new request: the grant now gives B what a treating doctor has, and the viewer says so.
    viewer = (await doctor_b.data(VIEWER, id=str(f.p.id)))["viewer"]
    assert viewer["emergencyAccess"] == [{"patientId": str(f.p.id), "reason": reason}]
    await check_viewer_agrees(doctor_b, f, "doctor_b", expect="doctor")
    # The grant covers P only.
    q = (await doctor_b.data(VIEWER, id=str(f.q.id)))["viewer"]["permissions"]
    assert q["visible"] is True  # B treats Q
    other = caller(client_as, f, "doctor_c")
    assert (await other.data(VIEWER, id=str(f.p.id)))["viewer"]["emergencyAccess"] == []


KIND = "query($e: EntityKind!) { viewer { permissions(entity: $e) { visible } } }"
KIND_NAMES = {
    "Patient": "PATIENT",
    "Appointment": "APPOINTMENT",
    "TreatmentPlan": "TREATMENT_PLAN",
    "Treatment": "TREATMENT",
    "Prescription": "PRESCRIPTION",
    "BillingAccount": "BILLING_ACCOUNT",
    "Department": "DEPARTMENT",
    "Doctor": "DOCTOR",
    "Nurse": "NURSE",
    "AdminStaff": "ADMIN_STAFF",
    "MedicalEquipment": "EQUIPMENT",
    "AuditEvent": "AUDIT_EVENT",
}


@pytest.mark.parametrize("who", ["admin", "billing", "analyst", "compliance"])
async def test_kind_permissions_agree_with_listing_for_roles_granted_any(
    client_as: Any, f: Facility, who: str
) -> None:
    client = caller(client_as, f, who)
    for entity in ENTITIES:
        said = await client.data(KIND, e=KIND_NAMES[entity])
        listed = await client(READS[entity].list_query)
        assert said["viewer"]["permissions"]["visible"] is ("errors" not in listed), entity


@pytest.mark.parametrize("who", ["doctor", "nurse", "patient"])
async def test_kind_permissions_agree_with_listing_for_roles_granted_by_relation(
    client_as: Any, f: Facility, who: str
) -> None:
    client = caller(client_as, f, who)
    disagree = {}
    for entity in ENTITIES:
        said = await client.data(KIND, e=KIND_NAMES[entity])
        listed = await client(READS[entity].list_query)
        visible, answered = said["viewer"]["permissions"]["visible"], "errors" not in listed
        if visible is not answered:
            disagree[entity] = (visible, answered)
    assert disagree == {}
