"""Running saved queries over GraphQL: as the caller, refused before running, logged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from models.audit import AuditEvent
from models.saved_queries import SavedQueryRun
from tests import factories
from tests.graphql.helpers import code
from tests.saved_queries.conftest import RUN, run, save

PATIENTS = """
query MyPatients($search: String) {
  patients(search: $search) { edges { node { lastName contact { phone } } } }
}
"""
RUNS = """
query Runs($name: String, $first: Int, $after: String) {
  savedQueryRuns(name: $name, first: $first, after: $after) {
    edges { node {
      name version actorSubject actorRoles at durationMs outcome via cached variableNames variables
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_an_allowed_role_runs_it_and_gets_the_answer(analyst: Any, client_as: Any) -> None:
    await factories.department(name="Cardiology", code="CARD", location="B2")
    await factories.department(name="Neurology", code="NEURO")
    await save(analyst, "depts", allowed=["ANALYST", "NURSE"], defaults={"first": 1})
    before = datetime.now().astimezone()
    result = await run(client_as(roles=["nurse"]), "depts")
    assert result["name"] == "depts" and result["version"] == 1
    assert result["data"] == {
        "departments": {
            "edges": [{"node": {"name": "Cardiology", "code": "CARD", "location": "B2"}}]
        }
    }
    assert result["errors"] == []
    assert result["cached"] is False
    assert result["durationMs"] > 0
    ran_at = datetime.fromisoformat(result["ranAt"])
    assert before - timedelta(seconds=1) <= ran_at <= datetime.now().astimezone()
    wider = await run(analyst, "depts", variables={"first": 5})  # variables beat defaults
    assert len(wider["data"]["departments"]["edges"]) == 2


async def test_a_role_not_allowed_is_refused_before_anything_runs(
    analyst: Any, client_as: Any
) -> None:
    await factories.patient(last_name="Alpha")
    await save(analyst, "patients", document=PATIENTS, allowed=["DOCTOR"])
    front_desk = client_as(sub="test:desk", roles=["admin_staff"])  # could read every patient
    error = await front_desk.error(RUN, name="patients")
    assert code(error) == "FORBIDDEN"
    assert error["path"] == ["runSavedQuery"]
    assert await AuditEvent.find({"entity": "Patient"}).count() == 0  # nothing was read
    [logged] = await SavedQueryRun.find_all().to_list()
    assert (logged.name, logged.version, logged.outcome) == ("patients", 1, "FORBIDDEN")
    assert (logged.actor_subject, logged.actor_roles) == ("test:desk", ["admin_staff"])
    assert logged.cached is False


async def test_admins_and_the_author_always_may(analyst: Any, admin: Any) -> None:
    await save(analyst, "depts", allowed=[])
    assert (await run(analyst, "depts"))["errors"] == []
    assert (await run(admin, "depts"))["errors"] == []


async def test_the_policy_applies_inside_the_run(analyst: Any, client_as: Any) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    phone = {"phone": "+1 555 0100"}
    colleague = await factories.doctor(dept)
    mine = await factories.patient(last_name="Alpha", clinician_access=False, contact=phone)
    await factories.treatment_plan(mine, doctor)  # the doctor treats Alpha
    ward = await factories.patient(last_name="Beta", clinician_access=False, contact=phone)
    await factories.appointment(ward, colleague)  # Beta is being seen in the doctor's department
    await factories.patient(last_name="Gamma", clinician_access=False, contact=phone)
    await save(analyst, "patients", document=PATIENTS, allowed=["DOCTOR"])
    client = client_as(sub="test:doctor", roles=["doctor"], sid=str(doctor.id), did=str(dept.id))

    result = await run(client, "patients")
    assert result["data"] == {
        "patients": {
            "edges": [
                {"node": {"lastName": "Alpha", "contact": phone}},
                {"node": {"lastName": "Beta", "contact": None}},  # department, not care
            ]
        }
    }
    [error] = result["errors"]
    assert error["path"] == ["patients", "edges", 1, "node", "contact"]
    assert error["extensions"]["code"] == "FORBIDDEN"

    # The inner reads are audited as the doctor's, with what the policy withheld.
    events = await AuditEvent.find({"entity": "Patient"}).sort("entity_id").to_list()
    assert all(e.actor_subject == "test:doctor" for e in events)
    by_patient = {e.patient_id: e for e in events if e.outcome == "allowed"}
    assert set(by_patient) == {mine.id, ward.id}
    assert by_patient[ward.id].withheld == ["contact"]
    assert by_patient[mine.id].withheld == []
    [refusal] = [e for e in events if e.outcome == "denied"]  # the field refusal, findable
    assert (refusal.patient_id, refusal.fields) == (ward.id, ["contact"])
    [logged] = await SavedQueryRun.find_all().to_list()
    assert logged.outcome == "FORBIDDEN"  # the error codes of the run


async def test_bad_variables_are_bad_user_input_and_logged(analyst: Any) -> None:
    await save(analyst, "depts")
    cases = [
        ({"first": "ten"}, "variables.first"),
        ({"nope": 1}, "variables.nope"),
        ([1, 2], "variables"),
    ]
    for variables, field in cases:
        error = await analyst.error(RUN, name="depts", variables=variables)
        assert code(error) == "BAD_USER_INPUT", variables
        assert field in error["extensions"]["fields"], error
    runs = await SavedQueryRun.find_all().to_list()
    assert [r.outcome for r in runs] == ["BAD_USER_INPUT"] * 3
    assert runs[0].variable_names == ["first"]


async def test_a_missing_required_variable_is_bad_user_input(analyst: Any) -> None:
    document = "query ($id: ID!) { department(id: $id) { name } }"
    await save(analyst, "one-dept", document=document)
    error = await analyst.error(RUN, name="one-dept")
    assert code(error) == "BAD_USER_INPUT"
    assert "variables.id" in error["extensions"]["fields"]


async def test_every_run_is_logged_for_admin_and_compliance(
    analyst: Any, compliance: Any, client_as: Any
) -> None:
    await save(analyst, "depts", allowed=["ANALYST"])
    await save(analyst, "depts", allowed=["ANALYST"])  # version 2
    await run(analyst, "depts", variables={"first": 3})
    await run(analyst, "depts", version=1)
    await client_as(sub="test:nurse", roles=["nurse"]).error(RUN, name="depts")
    await analyst.error(RUN, name="other")

    data = await compliance.data(RUNS, name="depts")
    rows = [edge["node"] for edge in data["savedQueryRuns"]["edges"]]
    assert [(r["actorSubject"], r["version"], r["outcome"]) for r in rows] == [
        ("test:nurse", 2, "FORBIDDEN"),
        ("test:analyst", 1, "ok"),
        ("test:analyst", 2, "ok"),
    ]
    newest, _, oldest = rows
    assert newest["actorRoles"] == ["nurse"]
    assert oldest["variableNames"] == ["first"] and oldest["variables"] == {"first": 3}
    assert all(r["via"] == "graphql" and r["durationMs"] >= 0 for r in rows)
    assert oldest["durationMs"] > 0
    assert datetime.fromisoformat(newest["at"]) >= datetime.fromisoformat(oldest["at"])

    everything = await compliance.data(RUNS, first=3)
    unknown, *_ = [edge["node"] for edge in everything["savedQueryRuns"]["edges"]]
    assert (unknown["name"], unknown["version"], unknown["outcome"]) == ("other", None, "NOT_FOUND")
    assert everything["savedQueryRuns"]["pageInfo"]["hasNextPage"] is True
    after = everything["savedQueryRuns"]["pageInfo"]["endCursor"]
    rest = await compliance.data(RUNS, first=3, after=after)
    assert [edge["node"] for edge in rest["savedQueryRuns"]["edges"]] == [oldest]


async def test_only_admin_and_compliance_read_the_run_log(
    analyst: Any, admin: Any, client_as: Any
) -> None:
    assert (await admin.data(RUNS))["savedQueryRuns"]["edges"] == []
    for client in (analyst, client_as(roles=["doctor"])):
        assert code(await client.error(RUNS)) == "FORBIDDEN"


async def test_an_anonymous_run_is_unauthenticated(http: Any, analyst: Any) -> None:
    await save(analyst, "depts")
    response = await http.post("/graphql", json={"query": RUN, "variables": {"name": "depts"}})
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
