"""Saved-query results in the result cache: per caller, dropped by writes, audited on hits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import parse

from api.schema import schema
from auth.principal import Principal
from auth.roles import Role
from cache.results import ANY, ResultCache
from models.audit import AuditEvent
from models.saved_queries import SavedQueryRun
from schema import saved_documents
from schema.context import Context
from schema.saved_documents import inputs_of
from services import departments, patients
from tests import factories
from tests.saved_queries.conftest import run, save

PATIENTS = "query Everyone { patients { nodes { id lastName } } }"


async def test_a_second_run_is_cached_until_a_service_writes_its_input(
    analyst: Any, client_as: Any
) -> None:
    alpha = await factories.patient(last_name="Alpha")
    await save(analyst, "everyone", document=PATIENTS, allowed=["ADMIN_STAFF"])
    desk = client_as(sub="test:desk", roles=["admin_staff"])

    first = await run(desk, "everyone")
    second = await run(desk, "everyone")
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["data"] == first["data"]

    assert alpha.id is not None
    await patients.update_patient(alpha.id, {"last_name": "Aardvark"})
    third = await run(desk, "everyone")
    assert third["cached"] is False
    assert third["data"] == {"patients": {"nodes": [{"id": str(alpha.id), "lastName": "Aardvark"}]}}
    assert (await run(desk, "everyone"))["cached"] is True
    runs = await SavedQueryRun.find_all().to_list()
    assert [r.cached for r in runs] == [False, True, False, True]


async def test_writes_to_unrelated_collections_keep_the_entry(analyst: Any) -> None:
    dept = await factories.department(name="Cardiology", code="CARD")
    await save(analyst, "depts")
    assert (await run(analyst, "depts"))["cached"] is False
    await factories.equipment()  # a raw insert: no service write, nothing bumped
    assert (await run(analyst, "depts"))["cached"] is True
    assert dept.id is not None
    await departments.update_department(dept.id, {"location": "B2"})
    fresh = await run(analyst, "depts")
    assert fresh["cached"] is False
    assert fresh["data"]["departments"]["edges"][0]["node"]["location"] == "B2"


async def test_answers_are_not_shared_between_callers_or_variables(
    analyst: Any, client_as: Any
) -> None:
    await save(analyst, "depts", allowed=["ANALYST"])
    await run(analyst, "depts")
    colleague = client_as(sub="test:colleague", roles=["analyst"])
    assert (await run(colleague, "depts"))["cached"] is False
    assert (await run(analyst, "depts", variables={"first": 3}))["cached"] is False
    assert (await run(analyst, "depts", variables={"first": 3}))["cached"] is True


async def test_answers_with_errors_are_not_cached(analyst: Any) -> None:
    await save(analyst, "patients", document=PATIENTS)  # analysts may not list patients
    first = await run(analyst, "patients")
    assert first["errors"] and first["cached"] is False
    assert (await run(analyst, "patients"))["cached"] is False


async def test_a_cache_hit_still_audits_every_read(analyst: Any, client_as: Any) -> None:
    alpha = await factories.patient(last_name="Alpha")
    beta = await factories.patient(last_name="Beta")
    await save(analyst, "everyone", document=PATIENTS, allowed=["ADMIN_STAFF"])
    desk = client_as(sub="test:desk", roles=["admin_staff"])

    await run(desk, "everyone")
    original = await AuditEvent.find({"entity": "Patient"}).to_list()
    assert len(original) == 1  # one read of two records with the same fields: one event
    assert set(original[0].patient_ids) == set(original[0].entity_ids) == {alpha.id, beta.id}
    assert (await run(desk, "everyone"))["cached"] is True

    events = await AuditEvent.find({"entity": "Patient"}).sort("at", "_id").to_list()
    replayed = events[len(original) :]
    assert len(replayed) == 1
    assert {p for e in replayed for p in e.patient_ids} == {alpha.id, beta.id}
    for event in replayed:
        assert event.actor_subject == "test:desk"
        assert event.actor_roles == ["admin_staff"]
        assert event.fields == ["id", "lastName"]
        assert event.operation == "Everyone"
        assert event.request_id != original[0].request_id  # this request's, not the first's


def test_inputs_follow_the_types_the_document_selects() -> None:
    always = {"access_grants", "patients", "saved_queries"}
    departments_only = parse(
        "query { departments { edges { node { name } } pageInfo { hasNextPage } } }"
    )
    assert inputs_of(schema, departments_only) == always | {"departments"}
    nested = parse(
        "query { appointments { nodes { doctor { lastName department { code } } "
        "rescheduleHistory { startAt } } } }"
    )
    assert inputs_of(schema, nested) == always | {"appointments", "doctors", "departments"}
    unknown = parse("query { viewer { permissions(entity: PATIENT) { visible } } }")
    assert ANY in inputs_of(schema, unknown)
    audit = parse("query { auditEvents { nodes { id } } }")
    assert "audit_events" in inputs_of(schema, audit)  # not tracked: the cache will not keep it


async def test_concurrent_identical_runs_are_each_audited(
    app: Any, settings: Any, analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache lets concurrent misses of one key share one computation: the run that waited
    for the other's answer still audits its own access."""
    patient = await factories.patient(last_name="Alpha")
    await save(analyst, "everyone", document=PATIENTS, allowed=["ADMIN_STAFF"])
    desk = Principal(subject="test:desk", roles=frozenset({Role.ADMIN_STAFF}))
    both_waiting = asyncio.Event()
    entered: list[str] = []
    executions: list[str] = []
    compute_once = ResultCache._compute_once
    execute = saved_documents._execute

    async def counting(self: ResultCache, digest: str, compute: Any) -> Any:
        entered.append(digest)
        if len(entered) == 2:
            both_waiting.set()
        return await compute_once(self, digest, compute)

    async def gated(*args: Any) -> Any:
        executions.append("run")
        await asyncio.wait_for(both_waiting.wait(), 10)  # until the second run joins in
        return await execute(*args)

    monkeypatch.setattr(ResultCache, "_compute_once", counting)
    monkeypatch.setattr(saved_documents, "_execute", gated)

    def context() -> Context:
        return Context(settings=settings, request=None, principal=desk)

    first, second = await asyncio.gather(
        saved_documents.run(schema, context(), "everyone"),
        saved_documents.run(schema, context(), "everyone"),
    )
    assert first.data == second.data
    assert executions == ["run"]  # one computation, shared
    events = await AuditEvent.find({"entity": "Patient"}).to_list()
    assert [e.patient_id for e in events] == [patient.id, patient.id]
    assert len({e.request_id for e in events}) == 2
