"""Abusive documents are refused with a code naming the limit, before any database work."""

from __future__ import annotations

from typing import Any

import pytest

from tests.limits.conftest import MUTATION, bearer, measured


async def _post(http: Any, app: Any, query: str, **variables: Any) -> tuple[dict[str, Any], int]:
    response, ops = await measured(
        http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=bearer(app, "admin"),
        )
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, ops


def _codes(body: dict[str, Any]) -> set[str]:
    return {e["extensions"]["code"] for e in body.get("errors", [])}


def _depth_bomb(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"doctors(first: 1) {{ nodes {{ department {{ {inner} }} }} }}"
    return f"{{ departments(first: 1) {{ nodes {{ {inner} }} }} }}"


async def test_a_depth_bomb_is_refused(app: Any, http: Any) -> None:
    body, ops = await _post(http, app, _depth_bomb(10))
    assert _codes(body) == {"DEPTH_LIMIT"}
    assert "SHMS_MAX_DEPTH" in body["errors"][0]["message"]
    assert body.get("data") is None and ops == 0


async def test_a_shallow_query_passes(app: Any, http: Any) -> None:
    body, _ = await _post(http, app, _depth_bomb(2))
    assert "errors" not in body, body


async def test_an_alias_bomb_is_refused(app: Any, http: Any) -> None:
    query = "{ " + " ".join(f"a{i}: departments(first: 1) {{ totalCount }}" for i in range(31))
    body, ops = await _post(http, app, query + " }")
    assert "ALIAS_LIMIT" in _codes(body) and ops == 0
    assert any("SHMS_MAX_ALIASES" in e["message"] for e in body["errors"])


async def test_too_many_root_fields_are_refused(app: Any, http: Any) -> None:
    query = "{ " + " ".join(f"a{i}: departments {{ totalCount }}" for i in range(21)) + " }"
    body, ops = await _post(http, app, query)
    assert _codes(body) == {"ROOT_FIELD_LIMIT"} and ops == 0


async def test_a_directive_flood_is_refused(app: Any, http: Any) -> None:
    flood = " ".join("@include(if: true)" for _ in range(6))
    body, ops = await _post(http, app, f"{{ departments {{ totalCount {flood} }} }}")
    assert "DIRECTIVE_LIMIT" in _codes(body) and ops == 0


async def test_a_token_flood_is_refused(app: Any, http: Any) -> None:
    query = "{ departments { " + " ".join("totalCount" for _ in range(2500)) + " } }"
    body, ops = await _post(http, app, query)
    assert _codes(body) == {"TOKEN_LIMIT"} and ops == 0
    assert "SHMS_MAX_TOKENS" in body["errors"][0]["message"]


async def test_an_expensive_nesting_of_pages_is_refused(app: Any, http: Any) -> None:
    query = """query($n: Int) { departments(first: $n) { nodes {
        doctors(first: $n) { nodes { id lastName } } } } }"""
    body, ops = await _post(http, app, query, n=100)
    assert _codes(body) == {"COST_LIMIT"} and ops == 0
    assert "SHMS_MAX_COST" in body["errors"][0]["message"]
    body, _ = await _post(http, app, query, n=10)  # 10 x 10 rows: well within the limit
    assert "errors" not in body, body


async def test_a_huge_page_is_bad_user_input(app: Any, http: Any) -> None:
    body, ops = await _post(http, app, "{ departments(first: 100000) { totalCount } }")
    assert _codes(body) == {"BAD_USER_INPUT"} and ops == 0


async def test_a_megabyte_body_is_413(app: Any, http: Any) -> None:
    query = "{ departments { totalCount } }" + " " * 1_000_000
    response, ops = await measured(http.post("/graphql", json={"query": query}))
    assert response.status_code == 413 and "SHMS_MAX_BODY_BYTES" in response.text
    assert ops == 0


async def test_a_streamed_body_without_length_is_counted(app: Any, http: Any) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 10_000

    response, ops = await measured(
        http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    )
    assert response.status_code == 413 and ops == 0


async def test_a_batch_is_refused(app: Any, http: Any) -> None:
    batch = [{"query": "{ departments { totalCount } }"}] * 2
    response, ops = await measured(http.post("/graphql", json=batch, headers=bearer(app, "admin")))
    assert response.status_code == 400 and ops == 0


async def test_a_mutation_over_get_is_refused(app: Any, http: Any) -> None:
    response, ops = await measured(
        http.get("/graphql", params={"query": MUTATION}, headers=bearer(app, "admin"))
    )
    assert response.status_code == 400 and ops == 0
    assert "mutations are not allowed when using GET" in response.text


async def test_a_query_over_get_works_in_development(app: Any, http: Any) -> None:
    response = await http.get(
        "/graphql",
        params={"query": "{ departments { totalCount } }"},
        headers=bearer(app, "admin"),
    )
    assert response.status_code == 200 and "errors" not in response.json()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", f"query={MUTATION}"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            f'{{"query": "{MUTATION}"}}\r\n--x--\r\n',
        ),
        ("text/plain", f'{{"query": "{MUTATION}"}}'),
    ],
)
async def test_a_non_json_mutation_is_refused(
    app: Any, http: Any, content_type: str, body: str
) -> None:
    response, ops = await measured(
        http.post(
            "/graphql",
            content=body.encode(),
            headers={"content-type": content_type, **bearer(app, "admin")},
        )
    )
    assert response.status_code in {400, 415} and ops == 0


async def test_a_clinicians_bomb_costs_no_database_work_either(app: Any, http: Any) -> None:
    """Break-the-glass grants are read only when access is decided, never for a refused query."""
    from bson import ObjectId

    from tests.conftest import token_for

    token = token_for(app, roles=["doctor"], sid=str(ObjectId()), did=str(ObjectId()))
    # The caller's account status is checked per request and then cached: warm it first.
    await http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"authorization": f"Bearer {token}"}
    )
    response, ops = await measured(
        http.post(
            "/graphql",
            json={"query": _depth_bomb(10)},
            headers={"authorization": f"Bearer {token}"},
        )
    )
    assert _codes(response.json()) == {"DEPTH_LIMIT"} and ops == 0


async def test_the_cost_ceiling_depends_on_the_role(app: Any, http: Any) -> None:
    query = """{ departments(first: 30) { nodes {
        doctors(first: 30) { nodes { id lastName } } } } }"""
    admin, _ = await _post(http, app, query)
    assert "errors" not in admin, admin  # within SHMS_MAX_COST (5000)
    response, ops = await measured(
        http.post("/graphql", json={"query": query}, headers=bearer(app, "service"))
    )
    body = response.json()
    assert _codes(body) == {"COST_LIMIT"} and ops == 0  # service: 2000 (SHMS_MAX_COST_BY_ROLE)
    assert body["errors"][0]["extensions"]["max"] == 2000
