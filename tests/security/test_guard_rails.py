"""The limits hold against documents built to defeat them (issue 11).

* Fragments spread twice at every level expand exponentially; ``schema.limits.check`` measures
  each fragment once, so its work (counted in steps, never timed) grows with the document, and
  the request is refused before anything else looks at it.
* Documents that would make graphql-core's own validation slow (the same field or fragment
  repeated in one selection) are refused before validation runs.
* ``first`` given by a variable counts with the value the request supplies, else the declared
  default, inside fragments too.
* Whether the query timeout applies is decided by the parsed operation, not by the word
  "mutation" somewhere in the text.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, build_schema, parse
from starlette.testclient import TestClient

import db
import metrics
from app import _runs_mutation
from config import Settings
from schema.limits import PAIR_STEPS, check
from services import departments, patients
from tests.conftest import token_for
from tests.limits.conftest import bearer

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    """The served schema, from its committed SDL snapshot (kept equal by its own test)."""
    return build_schema(SDL.read_text())


def exponential(levels: int, leaf: str = "id name", on: str = "Department") -> str:
    """The classic: F1 spreads F0 twice, F2 spreads F1 twice, ... : 2^levels copies of F0."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"]
    fragments += [
        f"fragment F{i} on {on} {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return " ".join(fragments)


def fragment_bomb(levels: int = 20) -> str:
    return f"{{ departments {{ nodes {{ ...F{levels} }} }} }} {exponential(levels)}"


def typename_bomb(levels: int = 20) -> str:
    """Only ``__typename``: no cost, no depth, yet 2^levels fields for validation to compare."""
    bomb = exponential(levels, "__typename")
    return f"{{ departments {{ nodes {{ ...F{levels} }} }} }} {bomb}"


def overlapping(copies: int) -> str:
    """The same field ``copies`` times in one selection: validation compares every pair."""
    return "{ departments { nodes { " + " headDoctor { id }" * copies + " } } }"


def spreads(count: int) -> str:
    """``count`` distinct fragments spread side by side: validation compares every pair."""
    body = " ".join(f"...F{i}" for i in range(count))
    defs = " ".join(f"fragment F{i} on Department {{ id }}" for i in range(count))
    return f"{{ departments {{ nodes {{ {body} }} }} }} {defs}"


async def post(client: Any, query: str, headers: dict[str, str] | None = None, **extra: Any) -> Any:
    with db.operations.measure() as ops:
        response = await client.post(
            "/graphql", json={"query": query, **extra}, headers=headers or {}
        )
    assert response.status_code == 200, response.text
    return response.json(), ops.total


def codes(body: dict[str, Any]) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors", [])}


@pytest.fixture
async def production(settings: Any) -> Any:
    """An anonymous HTTP client on an app running with ``SHMS_ENV=production``."""
    from app import create_app

    application = create_app(settings.model_copy(update={"shms_env": "production"}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as client:
            client.app = application  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times graphql-core's validation runs."""
    import strawberry.schema.schema as strawberry_schema
    from graphql.validation import validate as real  # what strawberry calls

    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counted)
    return calls


# -- 1. exponential fragments: linear work, refused before anything else -------------------


def test_the_fragment_bomb_fits_the_token_limit() -> None:
    """The attack stays within what the parser accepts: the limit analysis must cope."""
    parse(fragment_bomb(20), max_tokens=Settings().shms_max_tokens)
    assert len(fragment_bomb(20)) < 1024


def test_analysis_work_grows_with_the_document_not_its_expansion(
    graphql_schema: GraphQLSchema,
) -> None:
    settings = Settings()
    steps = {}
    for levels in (10, 20, 40):
        verdict = check(graphql_schema, parse(fragment_bomb(levels)), settings)
        assert {e.extensions["code"] for e in verdict.errors} == {"COST_LIMIT"}  # type: ignore[index]
        steps[levels] = verdict.steps
    assert steps[20] < 400, steps  # 2^20 copies of the fragment; a few hundred steps
    assert steps[40] < 2.5 * steps[20], steps  # twice the document, about twice the work
    verdict = check(graphql_schema, parse(typename_bomb(20)), settings)
    assert [e.extensions["code"] for e in verdict.errors] == ["ANALYSIS_LIMIT"]  # type: ignore[index]
    assert verdict.steps <= settings.shms_max_analysis_steps


def test_the_analysis_stops_at_its_ceiling(graphql_schema: GraphQLSchema) -> None:
    """A hard ceiling on the analysis itself: a refusal with a code, never a hang."""
    settings = Settings(shms_max_analysis_steps=1000)
    verdict = check(graphql_schema, parse(spreads(60)), settings)
    assert [e.extensions["code"] for e in verdict.errors] == ["ANALYSIS_LIMIT"]  # type: ignore[index]
    assert verdict.errors[0].extensions["limit"] == "SHMS_MAX_ANALYSIS_STEPS"  # type: ignore[index]
    assert verdict.steps == 1000


def test_fragment_cycles_end(graphql_schema: GraphQLSchema) -> None:
    """Cycles are invalid (validation names them); the analysis must still finish."""
    cyclic = """{ departments { nodes { ...A } } }
      fragment A on Department { id ...B } fragment B on Department { name ...A ...C }
      fragment C on Department { ...C code }"""
    verdict = check(graphql_schema, parse(cyclic), Settings())
    assert verdict.errors == [] and verdict.steps < 200


@pytest.mark.parametrize("bomb", [fragment_bomb(20), typename_bomb(20)], ids=["fields", "typename"])
async def test_a_fragment_bomb_is_refused_anonymously_in_production(
    production: Any, validations: list[int], bomb: str
) -> None:
    body, ops = await post(production, bomb)
    assert codes(body) <= {"COST_LIMIT", "ANALYSIS_LIMIT"} and codes(body), body
    assert body.get("data") is None and ops == 0 and validations == []


async def test_a_fragment_bomb_is_refused_for_an_admin(
    app: Any, http: Any, validations: list[int]
) -> None:
    body, ops = await post(http, fragment_bomb(20), bearer(app, "admin"))
    assert codes(body) == {"COST_LIMIT"} and ops == 0 and validations == []


def test_a_fragment_bomb_is_refused_over_websocket(settings: Any) -> None:
    from app import create_app

    bomb = "subscription { appointmentChanged { appointment { ...F20 } } } " + exponential(
        20, "id reason", "Appointment"
    )
    with TestClient(create_app(settings)) as client:
        token = token_for(client.app, roles=["admin"])
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": bomb}})
            message = ws.receive_json()
    assert message["type"] == "error", message
    assert {e["extensions"]["code"] for e in message["payload"]} <= {
        "COST_LIMIT",
        "ANALYSIS_LIMIT",
    }


# -- 2. documents that would make validation slow are refused before it -----------------


@pytest.mark.parametrize("document", [overlapping(120), spreads(150)], ids=["fields", "spreads"])
async def test_validation_bombs_are_refused_before_validation(
    production: Any, app: Any, http: Any, validations: list[int], document: str
) -> None:
    parse(document, max_tokens=Settings().shms_max_tokens)  # within the token limit
    for client, headers in ((production, {}), (http, bearer(app, "admin"))):
        body, ops = await post(client, document, headers)
        assert codes(body) == {"ANALYSIS_LIMIT"}, body
        assert "SHMS_MAX_ANALYSIS_STEPS" in body["errors"][0]["message"]
        assert body.get("data") is None and ops == 0
    assert validations == []


def test_predicted_comparisons_count_against_the_ceiling(graphql_schema: GraphQLSchema) -> None:
    settings = Settings()
    small = check(graphql_schema, parse(overlapping(2)), settings)
    large = check(graphql_schema, parse(overlapping(40)), settings)
    assert small.errors == [] and large.errors == []
    # 40 copies: 780 pairs of headDoctor and 780 of their id, PAIR_STEPS each.
    assert large.steps >= 2 * 780 * PAIR_STEPS > 100 * small.steps


async def test_an_ordinary_document_is_validated_as_before(
    app: Any, http: Any, validations: list[int]
) -> None:
    query = """query Dashboard($n: Int = 5) { viewer { roles }
      departments(first: $n) { totalCount nodes { ...Dept headDoctor { id } } } }
      fragment Dept on Department { id name doctors(first: 3) { nodes { id lastName } } }"""
    body, _ = await post(http, query, bearer(app, "admin"))
    assert "errors" not in body, body
    assert validations == [1]
    body, _ = await post(http, "{ departmentz { totalCount } }", bearer(app, "admin"))
    assert codes(body) == {"GRAPHQL_VALIDATION_FAILED"}  # validation still runs and reports


# -- 3. variables: supplied values, then declared defaults ------------------------------------

NESTED = """query($n: Int = 100) { departments(first: $n) { nodes {
  doctors(first: $n) { nodes { id lastName } } } } }"""
IN_FRAGMENT = """query($n: Int = 100) { departments(first: $n) { nodes { ...D } } }
  fragment D on Department { doctors(first: $n) { nodes { id lastName } } }"""


@pytest.mark.parametrize("query", [NESTED, IN_FRAGMENT], ids=["inline", "fragment"])
async def test_a_variable_default_counts_for_first(
    app: Any, http: Any, production: Any, query: str
) -> None:
    body, ops = await post(http, query, bearer(app, "admin"))  # 100 x 100 rows: over 5000
    assert codes(body) == {"COST_LIMIT"} and ops == 0, body
    body, _ = await post(production, query)
    assert codes(body) == {"COST_LIMIT"}
    body, _ = await post(http, query, bearer(app, "admin"), variables={"n": 10})  # supplied wins
    assert "errors" not in body, body
    huge = query.replace("= 100", "= 100000")  # capped at SHMS_MAX_PAGE_SIZE, still counted
    body, _ = await post(http, huge, bearer(app, "admin"))
    assert codes(body) == {"COST_LIMIT"}


def test_cost_follows_supplied_then_default_then_page_size(graphql_schema: GraphQLSchema) -> None:
    settings = Settings()

    def cost(query: str, **variables: Any) -> int:
        return check(graphql_schema, parse(query), settings, variables=variables).cost

    declared = "query($n: Int = 7) { departments(first: $n) { nodes { id } } }"
    bare = "query($n: Int) { departments(first: $n) { nodes { id } } }"
    assert cost(declared) == 1 + 7 * 2
    assert cost(declared, n=3) == 1 + 3 * 2
    assert cost(declared, n=None) == 1 + settings.shms_default_page_size * 2
    assert cost(bare) == 1 + settings.shms_default_page_size * 2
    assert cost(bare, n=100_000) == 1 + settings.shms_max_page_size * 2


async def test_several_operations_are_charged_the_dearest(
    app: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``operationName`` the rate limiter is charged the dearest operation's cost."""
    from schema import ratelimit

    heavy = "query Heavy { departments(first: 100) { nodes { id name } } }"
    cheap = "query Cheap { viewer { roles } }"
    charged: list[int] = []
    real = ratelimit.charge

    async def spy(settings: Any, redis: Any, context: Any, cost: int) -> Any:
        charged.append(cost)
        return await real(settings, redis, context, cost)

    monkeypatch.setattr(ratelimit, "charge", spy)
    await http.post("/graphql", json={"query": f"{heavy} {cheap}"}, headers=bearer(app, "admin"))
    assert charged == [1 + 100 * 3], charged


# -- 4. the timeout reads the parsed operation -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "mutation"),
    [
        ("# mutation\n{ departments { totalCount } }", None, False),
        ('{ patients(search: "mutation") { totalCount } }', None, False),
        ("query mutation { departments { totalCount } }", None, False),  # a name, not a keyword
        ('mutation { createDepartment(input: {name: "X", code: "X"}) { id } }', None, True),
        ("  mutation M { __typename }", None, True),
        ("mutation M { __typename } query Q { __typename }", "Q", False),
        ("mutation M { __typename } query Q { __typename }", "M", True),
        ("mutation M { __typename } query Q { __typename }", None, False),  # runs neither
        ("mutation {", None, False),  # does not parse: runs nothing
    ],
)
def test_the_operation_type_comes_from_the_parsed_document(
    text: str, name: str | None, mutation: bool
) -> None:
    assert _runs_mutation(text, name, 2000) is mutation


@pytest.fixture
async def impatient(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An admin's client on an app with a 0.2 s query timeout, where departments and patients
    never answer: only the timeout ends a query over them."""
    from app import create_app

    never = asyncio.Event()

    async def wait(*args: Any, **kwargs: Any) -> Any:
        await never.wait()

    monkeypatch.setattr(departments, "list_departments", wait)
    monkeypatch.setattr(patients, "list_patients", wait)
    application = create_app(settings.model_copy(update={"shms_operation_timeout_seconds": 0.2}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://shms.test", headers=bearer(application, "admin")
        ) as client:
            yield client


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ("# mutation\n{ departments { totalCount } }", None),
        ("query Q { departments { totalCount } } # }mutation", None),
        ('{ patients(search: " mutation") { totalCount } }', None),
        ('mutation M { createDepartment(input: {name: "X", code: "X"}) { id } } '
         "query Q { departments { totalCount } }", "Q"),
    ],
)  # fmt: skip
async def test_a_query_dressed_as_a_mutation_still_times_out(
    impatient: Any, query: str, operation_name: str | None
) -> None:
    before = metrics.sample("shms_operation_timeouts_total")
    payload: dict[str, Any] = {"query": query}
    if operation_name is not None:
        payload["operationName"] = operation_name
    response = await asyncio.wait_for(impatient.post("/graphql", json=payload), 10)
    body = response.json()  # the old code never answered: no timeout for "mutations"
    assert codes(body) == {"TIMEOUT"}, body
    assert metrics.sample("shms_operation_timeouts_total") == before + 1
