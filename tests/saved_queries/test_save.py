"""Saving, validating, versioning, listing and deleting saved queries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.schema import schema
from auth.principal import Principal
from auth.roles import Role
from errors import Conflict, Forbidden
from models.saved_queries import SavedQuery
from schema import saved_documents
from services import saved_queries
from tests import factories
from tests.graphql.helpers import code
from tests.saved_queries.conftest import DEPARTMENTS, RUN, SAVE, run, save, save_input

SHOW = """
query Show($name: String!, $version: Int) {
  savedQuery(name: $name, version: $version) {
    name version latestVersion document allowedRoles author
    versions { number document author allowedRoles }
  }
}
"""
LIST = "query { savedQueries { edges { node { name latestVersion allowedRoles } } } }"
DELETE = "mutation Delete($name: String!) { deleteSavedQuery(name: $name) { name } }"


async def names_listed(client: Any) -> list[str]:
    data = await client.data(LIST)
    return [edge["node"]["name"] for edge in data["savedQueries"]["edges"]]


async def test_an_analyst_saves_a_query_with_defaults_and_roles(analyst: Any) -> None:
    saved = await save(
        analyst,
        "departments-by-name",
        defaults={"first": 2},
        allowed=["ANALYST", "DOCTOR"],
        description="  Every department  ",
    )
    assert saved["name"] == "departments-by-name"
    assert (saved["version"], saved["latestVersion"]) == (1, 1)
    assert saved["document"] == DEPARTMENTS
    assert saved["description"] == "Every department"
    assert saved["variableDefaults"] == {"first": 2}
    assert saved["allowedRoles"] == ["ANALYST", "DOCTOR"]
    assert saved["author"] == "test:analyst"
    [version] = saved["versions"]
    assert version["number"] == 1 and version["author"] == "test:analyst"
    assert await SavedQuery.find({"name": "departments-by-name"}).count() == 1


async def test_the_list_shows_what_the_caller_may_run(
    analyst: Any, admin: Any, client_as: Any
) -> None:
    await save(analyst, "for-analysts", allowed=["ANALYST"])
    await save(analyst, "for-doctors", allowed=["DOCTOR"])  # still the author's own
    await save(admin, "admins-only", allowed=[])
    doctor = client_as(roles=["doctor"])
    other_analyst = client_as(roles=["analyst"])
    assert await names_listed(analyst) == ["for-analysts", "for-doctors"]
    assert await names_listed(other_analyst) == ["for-analysts"]
    assert await names_listed(doctor) == ["for-doctors"]
    assert await names_listed(admin) == ["admins-only", "for-analysts", "for-doctors"]


SYNTAX_ERROR = "query { departments { edges { node { name } } "
UNKNOWN_FIELD = "query { departments { edges { node { name budget } } } }"
MUTATION = 'mutation { createDepartment(input: {name: "X", code: "XX"}) { id } }'
SUBSCRIPTION = "subscription { equipmentStatusChanged { equipmentId } }"
TWO_OPERATIONS = "query A { departments { nodes { name } } } query B { viewer { subject } }"
RECURSIVE = 'query { runSavedQuery(name: "loop") { data } }'


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (SYNTAX_ERROR, "Syntax Error"),
        (UNKNOWN_FIELD, "Cannot query field 'budget' on type 'Department'"),
        (MUTATION, "Only queries can be saved, not a mutation"),
        (SUBSCRIPTION, "Only queries can be saved, not a subscription"),
        (TWO_OPERATIONS, "exactly one operation"),
        (RECURSIVE, "may not use runSavedQuery"),
        ("   ", "must not be empty"),
    ],
)
async def test_a_document_that_is_not_one_valid_query_is_refused(
    analyst: Any, document: str, message: str
) -> None:
    error = await analyst.error(SAVE, input=save_input("bad", document=document))
    assert code(error) == "BAD_USER_INPUT"
    assert message in error["message"]
    assert "document" in error["extensions"]["fields"]
    assert await SavedQuery.find_all().count() == 0


async def test_validation_errors_are_listed_with_their_locations(analyst: Any) -> None:
    document = "query {\n  departments { edges { node { name budget } } }\n  nope\n}"
    error = await analyst.error(SAVE, input=save_input("bad", document=document))
    listed = error["extensions"]["errors"]
    assert [e["message"] for e in listed] == [
        "Cannot query field 'budget' on type 'Department'.",
        "Cannot query field 'nope' on type 'Query'.",
    ]
    assert listed[0]["locations"] == [{"line": 2, "column": 37}]
    assert listed[1]["locations"] == [{"line": 3, "column": 3}]
    syntax = await analyst.error(SAVE, input=save_input("bad", document="query {\n  {"))
    assert syntax["extensions"]["errors"][0]["locations"] == [{"line": 2, "column": 3}]


@pytest.mark.parametrize(
    ("defaults", "field"),
    [
        ({"nope": 1}, "variableDefaults.nope"),
        ({"first": "ten"}, "variableDefaults.first"),
        ({"first": 2**40}, "variableDefaults.first"),
        ([1, 2], "variableDefaults"),
        ("first", "variableDefaults"),
    ],
)
async def test_defaults_must_be_declared_variables_of_their_type(
    analyst: Any, defaults: Any, field: str
) -> None:
    error = await analyst.error(SAVE, input=save_input("bad", defaults=defaults))
    assert code(error) == "BAD_USER_INPUT"
    assert field in error["extensions"]["fields"]
    assert await SavedQuery.find_all().count() == 0


async def test_defaults_are_checked_against_non_null_and_input_types(analyst: Any) -> None:
    document = "query ($f: AppointmentFilter!) { appointments(filter: $f) { nodes { id } } }"
    ok = await save(analyst, "visits", document=document, defaults={"f": {"status": ["SCHEDULED"]}})
    assert ok["variableDefaults"] == {"f": {"status": ["SCHEDULED"]}}
    for bad in ({"f": None}, {"f": {"status": ["LOST"]}}, {"f": {"colour": "red"}}):
        error = await analyst.error(
            SAVE, input=save_input("visits", document=document, defaults=bad)
        )
        assert error["extensions"]["fields"].keys() == {"variableDefaults.f"}, bad


@pytest.mark.parametrize("name", ["a", "Upper", "9lives", "has space", "x" * 65, "dot.ted"])
async def test_names_are_slugs(analyst: Any, name: str) -> None:
    error = await analyst.error(SAVE, input=save_input(name))
    assert code(error) == "BAD_USER_INPUT"
    assert "name" in error["extensions"]["fields"]


async def test_only_analysts_and_admins_save(client_as: Any) -> None:
    for role in ("doctor", "nurse", "admin_staff", "billing", "patient", "compliance"):
        error = await client_as(roles=[role]).error(SAVE, input=save_input("mine"))
        assert code(error) == "FORBIDDEN", role
    assert await SavedQuery.find_all().count() == 0


async def test_saving_again_keeps_every_version(analyst: Any) -> None:
    await factories.department(name="Cardiology", code="CARD")
    await save(analyst, "depts", document="query { departments { nodes { name } } }")
    second = await save(
        analyst, "depts", document="query { departments { nodes { code } } }", allowed=["NURSE"]
    )
    assert (second["version"], second["latestVersion"]) == (2, 2)
    assert [v["number"] for v in second["versions"]] == [1, 2]
    assert second["versions"][0]["document"] == "query { departments { nodes { name } } }"
    assert second["versions"][0]["allowedRoles"] == ["ANALYST"]
    assert second["allowedRoles"] == ["NURSE"]  # the latest version's roles decide

    latest = await run(analyst, "depts")
    assert latest["version"] == 2
    assert latest["data"] == {"departments": {"nodes": [{"code": "CARD"}]}}
    old = await run(analyst, "depts", version=1)
    assert old["version"] == 1
    assert old["data"] == {"departments": {"nodes": [{"name": "Cardiology"}]}}

    shown = (await analyst.data(SHOW, name="depts", version=1))["savedQuery"]
    assert (shown["version"], shown["latestVersion"]) == (1, 2)
    assert shown["document"] == "query { departments { nodes { name } } }"
    missing = await analyst.error(RUN, name="depts", version=3)
    assert code(missing) == "NOT_FOUND"
    assert code(await analyst.error(SHOW, name="depts", version=7)) == "NOT_FOUND"


async def test_a_new_version_is_for_the_author_or_an_admin(
    analyst: Any, admin: Any, client_as: Any
) -> None:
    await save(analyst, "depts")
    intruder = client_as(sub="test:other-analyst", roles=["analyst"])
    error = await intruder.error(SAVE, input=save_input("depts", allowed=["PATIENT"]))
    assert code(error) == "FORBIDDEN"
    by_admin = await save(admin, "depts", allowed=["ANALYST", "NURSE"])
    assert by_admin["version"] == 2
    assert by_admin["author"] == "test:analyst"  # the owner stays
    assert [v["author"] for v in by_admin["versions"]] == ["test:analyst", "test:admin"]


async def test_unknown_names_are_not_found(analyst: Any) -> None:
    assert code(await analyst.error(SHOW, name="nothing")) == "NOT_FOUND"
    assert code(await analyst.error(RUN, name="nothing")) == "NOT_FOUND"
    assert code(await analyst.error(DELETE, name="nothing")) == "NOT_FOUND"


async def test_showing_a_query_takes_the_right_to_run_it(analyst: Any, client_as: Any) -> None:
    await save(analyst, "depts", allowed=["ANALYST"])
    assert code(await client_as(roles=["nurse"]).error(SHOW, name="depts")) == "FORBIDDEN"


async def test_delete_frees_the_name(analyst: Any, admin: Any, client_as: Any) -> None:
    await save(analyst, "depts")
    await save(analyst, "depts")
    intruder = client_as(sub="test:other-analyst", roles=["analyst"])
    assert code(await intruder.error(DELETE, name="depts")) == "FORBIDDEN"
    assert code(await client_as(roles=["doctor"]).error(DELETE, name="depts")) == "FORBIDDEN"

    deleted = await analyst.data(DELETE, name="depts")
    assert deleted == {"deleteSavedQuery": {"name": "depts"}}
    assert code(await analyst.error(SHOW, name="depts")) == "NOT_FOUND"
    assert code(await analyst.error(RUN, name="depts")) == "NOT_FOUND"
    again = await save(intruder, "depts")
    assert (again["version"], again["author"]) == (1, "test:other-analyst")
    await admin.data(DELETE, name="depts")  # admins delete anyone's
    assert await SavedQuery.find_all().count() == 0


ANALYST = Principal(subject="svc:analyst", roles=frozenset({Role.ANALYST}))


async def test_concurrent_saves_of_one_name_make_one_query_with_numbered_versions(
    database: Any,
) -> None:
    data = saved_queries.SaveInput(name="race", document=DEPARTMENTS)
    await asyncio.gather(*(saved_documents.save(schema, ANALYST, data) for _ in range(4)))
    [stored] = await SavedQuery.find_all().to_list()
    assert [v.number for v in stored.versions] == [1, 2, 3, 4]
    assert stored.version == 4


async def test_a_first_save_that_loses_the_race_becomes_the_next_version(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = saved_queries.SaveInput(name="race", document=DEPARTMENTS)
    await saved_documents.save(schema, ANALYST, data)
    real = SavedQuery.find_one
    calls = {"n": 0}

    def stale_first_read(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # as if the other save had not landed yet when we looked
            return real({"name": "no-such-name"})
        return real(*args, **kwargs)

    monkeypatch.setattr(SavedQuery, "find_one", stale_first_read)
    saved = await saved_documents.save(schema, ANALYST, data)
    assert saved.version == 2
    assert await SavedQuery.find_all().count() == 1


async def test_a_version_append_is_a_compare_and_set(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = saved_queries.SaveInput(name="race", document=DEPARTMENTS)
    first = await saved_documents.save(schema, ANALYST, data)
    stale = first.model_copy()
    await saved_documents.save(schema, ANALYST, data)  # version 2 lands meanwhile

    async def always_stale(*args: Any, **kwargs: Any) -> SavedQuery:
        return stale

    monkeypatch.setattr(SavedQuery, "find_one", always_stale)
    with pytest.raises(Conflict):
        await saved_documents.save(schema, ANALYST, data)
    monkeypatch.undo()
    stored = await SavedQuery.find_one({"name": "race"})
    assert stored is not None and [v.number for v in stored.versions] == [1, 2]


async def test_another_analysts_racing_save_is_refused_not_merged(database: Any) -> None:
    data = saved_queries.SaveInput(name="race", document=DEPARTMENTS)
    other = Principal(subject="svc:other", roles=frozenset({Role.ANALYST}))
    outcomes = await asyncio.gather(
        saved_documents.save(schema, ANALYST, data),
        saved_documents.save(schema, other, data),
        return_exceptions=True,
    )
    assert sum(isinstance(o, SavedQuery) for o in outcomes) == 1
    assert sum(isinstance(o, Forbidden) for o in outcomes) == 1
    assert await SavedQuery.find_all().count() == 1
