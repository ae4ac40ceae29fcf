"""Every error carries extensions.code; unexpected ones are masked and logged, not shown."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from services import patients
from tests.graphql.helpers import code


async def test_unexpected_exception_is_masked_as_internal(
    gql: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*args: Any) -> None:
        raise RuntimeError("Patient Jane Roe, NID 123-45-6789")

    monkeypatch.setattr(patients, "list_patients", explode)
    with caplog.at_level(logging.ERROR, logger="shms.errors"):
        body = await gql("{ patients { nodes { id } } }")
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"]
    assert "Jane" not in str(body) and "Traceback" not in str(body)
    [record] = caplog.records
    assert error["extensions"]["requestId"] in record.getMessage()
    assert "Jane" not in record.getMessage()  # the exception text stays out of the log line


async def test_the_request_id_is_ours_echoed_in_a_header_and_in_internal_errors(
    gql: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: Any) -> None:
        raise KeyError("x")

    monkeypatch.setattr(patients, "list_patients", explode)
    response = await http.post(
        "/graphql",
        json={"query": "{ patients { nodes { id } } }"},
        headers={"x-request-id": "trace-42", **gql.headers},
    )
    # SHMS makes the id (a client's could repeat); it is echoed, the client's kept in the audit.
    ours = response.headers["x-request-id"]
    assert ours != "trace-42" and len(ours) == 32
    assert response.json()["errors"][0]["extensions"]["requestId"] == ours


async def test_document_errors_have_codes(gql: Any) -> None:
    assert code(await gql.error("{ patients { ")) == "GRAPHQL_PARSE_FAILED"
    assert code(await gql.error("{ patients { nodes { shoeSize } } }")) == (
        "GRAPHQL_VALIDATION_FAILED"
    )
    bad_variable = await gql.error(
        "query($first: Int) { patients(first: $first) { nodes { id } } }", first="many"
    )
    assert code(bad_variable) == "BAD_USER_INPUT"
