"""``SHMS_ENV=production``: no introspection, suggestions or GET queries except as noted."""

from __future__ import annotations

from typing import Any

from tests.limits.conftest import bearer, measured

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPO = "{ departmentz { totalCount } }"


async def _post(client: Any, app: Any, query: str, *roles: str) -> tuple[dict[str, Any], int]:
    headers = bearer(app, *roles) if roles else {}
    response, ops = await measured(client.post("/graphql", json={"query": query}, headers=headers))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, ops


async def test_introspection_is_refused_to_non_admins(prod: Any) -> None:
    # Not a clinician: signing a clinician in reads their break-glass grants, before any of this.
    for roles in [(), ("billing",), ("analyst",)]:
        body, ops = await _post(prod, prod.app, INTROSPECTION, *roles)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INTROSPECTION_DISABLED"]
        assert body.get("data") is None and ops == 0
    body, _ = await _post(prod, prod.app, '{ __type(name: "Patient") { name } }', "doctor")
    assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


async def test_admins_may_introspect_in_production(prod: Any) -> None:
    body, _ = await _post(prod, prod.app, INTROSPECTION, "admin")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_typename_is_not_introspection(prod: Any) -> None:
    body, _ = await _post(prod, prod.app, "{ __typename }", "analyst")
    assert body == {"data": {"__typename": "Query"}}


async def test_suggestions_are_hidden_from_non_admins(prod: Any) -> None:
    body, ops = await _post(prod, prod.app, TYPO, "analyst")
    message = body["errors"][0]["message"]
    assert "Did you mean" not in message and "departmentz" in message and ops == 0
    body, _ = await _post(prod, prod.app, TYPO, "admin")
    assert "Did you mean" in body["errors"][0]["message"]


async def test_development_keeps_introspection_and_suggestions(app: Any, http: Any) -> None:
    body, _ = await _post(http, app, INTROSPECTION, "analyst")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    body, _ = await _post(http, app, TYPO, "analyst")
    assert "Did you mean" in body["errors"][0]["message"]


async def test_queries_over_get_are_refused_in_production(prod: Any) -> None:
    response, ops = await measured(
        prod.get(
            "/graphql",
            params={"query": "{ departments { totalCount } }"},
            headers=bearer(prod.app, "admin"),
        )
    )
    assert response.status_code in {400, 404, 405} and ops == 0
    assert "data" not in response.text


async def test_graphiql_is_off_in_production(prod: Any) -> None:
    response = await prod.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in response.text.lower()
