"""Automatic persisted queries over HTTP, as Apollo clients speak them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schema import persisted_documents
from services import departments, persisted
from tests import factories
from tests.persisted.conftest import (
    LOOKUP,
    apq,
    apq_get,
    bearer,
    codes,
    measured,
    stored,
)

QUERY = "query Departments { departments(first: 5) { totalCount nodes { name } } }"
SHA = persisted.digest(QUERY)


def _deep(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"doctors(first: 1) {{ nodes {{ department {{ {inner} }} }} }}"
    return f"{{ departments(first: 1) {{ nodes {{ {inner} }} }} }}"


async def test_an_unknown_hash_asks_for_the_text(app: Any, http: Any) -> None:
    response, ops = await measured(apq(http, bearer(app, "admin"), sha=SHA))
    not_found = {
        "message": "PersistedQueryNotFound",
        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
    }
    assert response.json() == {"errors": [not_found]}
    assert ops == {LOOKUP: 1}
    assert await stored() == {}


async def test_text_and_hash_run_and_register_then_the_hash_alone_runs(app: Any, http: Any) -> None:
    await factories.department(name="Cardiology")
    admin = bearer(app, "admin", sub="test:deploy-admin")
    first = (await apq(http, admin, query=QUERY, sha=SHA)).json()
    assert first == {"data": {"departments": {"totalCount": 1, "nodes": [{"name": "Cardiology"}]}}}
    rows = await stored()
    assert list(rows) == [SHA]
    assert rows[SHA]["document"] == QUERY and rows[SHA]["registered_by"] == "test:deploy-admin"

    again, ops = await measured(apq(http, admin, sha=SHA))
    assert again.json() == first
    assert LOOKUP not in ops  # served by the in-process LRU

    # Sending the text again (another client, an old cache) stores nothing new.
    assert (await apq(http, admin, query=QUERY, sha=SHA)).json() == first
    assert list(await stored()) == [SHA]


async def test_a_hash_registered_elsewhere_is_read_from_mongodb(app: Any, http: Any) -> None:
    admin = bearer(app, "admin")
    await apq(http, admin, query=QUERY, sha=SHA)
    persisted.recent.clear()  # as if another process had registered it
    response, ops = await measured(apq(http, admin, sha=SHA))
    assert response.json()["data"]["departments"]["totalCount"] == 0
    assert ops.get(LOOKUP) == 1
    _, ops = await measured(apq(http, admin, sha=SHA))
    assert LOOKUP not in ops  # cached from then on


async def test_a_mismatched_hash_is_refused_and_stores_nothing(app: Any, http: Any) -> None:
    other = persisted.digest(QUERY + " ")
    response, ops = await measured(apq(http, bearer(app, "admin"), query=QUERY, sha=other))
    [error] = response.json()["errors"]
    assert error["message"] == "provided sha does not match query"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" not in response.json()
    assert ops == {}
    assert await stored() == {}


@pytest.mark.parametrize(
    ("sha", "version", "code"),
    [
        (SHA, 2, "PERSISTED_QUERY_NOT_SUPPORTED"),
        (SHA, "1", "PERSISTED_QUERY_NOT_SUPPORTED"),
        (SHA.upper(), 1, "BAD_USER_INPUT"),
        ("abc", 1, "BAD_USER_INPUT"),
    ],
)
async def test_bad_persisted_query_extensions(
    app: Any, http: Any, sha: str, version: Any, code: str
) -> None:
    response, ops = await measured(
        apq(http, bearer(app, "admin"), query=QUERY, sha=sha, version=version)
    )
    assert codes(response.json()) == [code] and ops == {}
    assert await stored() == {}


async def test_unsupported_version_uses_apollos_message(app: Any, http: Any) -> None:
    body = (await apq(http, bearer(app, "admin"), sha=SHA, version=3)).json()
    assert body["errors"][0]["message"] == "PersistedQueryNotSupported"


async def test_a_document_that_does_not_parse_is_not_stored(app: Any, http: Any) -> None:
    junk = "{ departments { totalCount "
    body = (await apq(http, bearer(app, "admin"), query=junk, sha=persisted.digest(junk))).json()
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert await stored() == {}


async def test_anonymous_callers_run_but_never_store(app: Any, http: Any) -> None:
    await apq(http, {}, query=QUERY, sha=SHA)
    assert await stored() == {}


async def test_a_persisted_mutation_runs_by_hash(app: Any, http: Any) -> None:
    mutation = "mutation Add($name: String!, $code: String!) { createDepartment(input: {name: $name, code: $code}) { name } }"  # noqa: E501
    sha = persisted.digest(mutation)
    admin = bearer(app, "admin")
    await apq(http, admin, query=mutation, sha=sha, variables={"name": "Oncology", "code": "ON"})
    body = (await apq(http, admin, sha=sha, variables={"name": "Surgery", "code": "SU"})).json()
    assert body == {"data": {"createDepartment": {"name": "Surgery"}}}


async def test_get_with_extensions_runs_a_persisted_query(app: Any, http: Any) -> None:
    admin = bearer(app, "admin")
    await apq(http, admin, query=QUERY, sha=SHA)
    # A browser-like Accept header must not turn the request into a visit to GraphiQL.
    response = await apq_get(http, {**admin, "accept": "text/html,*/*"}, SHA)
    assert response.status_code == 200
    assert response.json() == {"data": {"departments": {"totalCount": 0, "nodes": []}}}
    unknown = await apq_get(http, admin, persisted.digest("{ viewer { roles } }"))
    assert codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_limits_apply_to_a_persisted_document(app: Any, http: Any) -> None:
    deep = _deep(10)
    # As `shms persist` would: parsed, but not checked by the operation limits.
    sha = await persisted_documents.register(deep, "cli")
    response, ops = await measured(apq(http, bearer(app, "admin"), sha=sha))
    assert codes(response.json()) == ["DEPTH_LIMIT"]
    assert ops == {}  # from the LRU; no resolver ran


async def test_the_rate_limit_charges_a_persisted_query(app: Any, http: Any) -> None:
    admin = bearer(app, "admin")
    await apq(http, admin, query=QUERY, sha=SHA)
    response = await apq(http, admin, sha=SHA)
    assert "RateLimit-Remaining" in response.headers


@pytest.mark.parametrize("overrides", [{"shms_operation_timeout_seconds": 0.2}])
async def test_the_timeout_applies_to_a_persisted_query(
    app: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = bearer(app, "admin")
    sha = await persisted_documents.register(QUERY, "cli")
    never = asyncio.Event()

    async def stuck(*args: Any) -> Any:
        await never.wait()

    monkeypatch.setattr(departments, "list_departments", stuck)
    body = (await apq(http, admin, sha=sha)).json()
    assert codes(body) == ["TIMEOUT"]


async def test_the_ide_still_opens_without_extensions(app: Any, http: Any) -> None:
    response = await http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and "<html" in response.text.lower()


@pytest.mark.parametrize("overrides", [{"shms_rate_limit_points": 3}])
async def test_unknown_hashes_are_metered_before_the_lookup(app: Any, http: Any) -> None:
    """A not-found answer comes before the operation's own charge; the lookup pays a point."""
    admin = bearer(app, "admin")
    for n in range(3):
        response = await apq(http, admin, sha=persisted.digest(f"{{ n{n}: __typename }}"))
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    response, ops = await measured(apq(http, admin, sha=SHA))
    assert codes(response.json()) == ["RATE_LIMITED"]
    assert ops == {}  # refused before MongoDB was asked
