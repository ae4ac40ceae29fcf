"""Allow-list mode: restricted callers run only persisted operations and saved queries."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from services import persisted
from tests.persisted.conftest import LOOKUP, apq, bearer, codes, measured, stored

VIEWER = "query Me { viewer { roles } }"
VIEWER_SHA = persisted.digest(VIEWER)
RUN_SAVED = 'query { runSavedQuery(name: "no-shows") { __typename } }'

patients_only = pytest.mark.parametrize("overrides", [{"shms_allowlist_roles": "patient"}])
every_role = pytest.mark.parametrize("overrides", [{"shms_allowlist_roles": "*"}])


def _patient(app: Any) -> dict[str, str]:
    return bearer(app, "patient", pid=str(ObjectId()))


def _refused(body: dict[str, Any]) -> str:
    assert codes(body) == ["OPERATION_NOT_ALLOWED"], body
    assert "data" not in body
    message: str = body["errors"][0]["message"]
    assert "SHMS_ALLOWLIST_ROLES" in message
    return message


@patients_only
async def test_an_ad_hoc_query_is_refused_before_any_work(app: Any, http: Any) -> None:
    response, ops = await measured(apq(http, _patient(app), query=VIEWER))
    _refused(response.json())
    assert ops == {LOOKUP: 1}  # is the text persisted? Nothing else is read


@patients_only
async def test_the_same_text_runs_once_an_admin_persisted_it(app: Any, http: Any) -> None:
    patient = _patient(app)
    _refused((await apq(http, patient, query=VIEWER)).json())
    await apq(http, bearer(app, "admin"), query=VIEWER, sha=VIEWER_SHA)
    mine = {"data": {"viewer": {"roles": ["PATIENT"]}}}
    assert (await apq(http, patient, query=VIEWER)).json() == mine
    assert (await apq(http, patient, sha=VIEWER_SHA)).json() == mine
    assert (await apq(http, patient, query=VIEWER, sha=VIEWER_SHA)).json() == mine
    persisted.recent.clear()  # another process: the decision reads MongoDB
    assert (await apq(http, patient, query=VIEWER)).json() == mine


@patients_only
async def test_a_patient_cannot_register_an_operation(app: Any, http: Any) -> None:
    patient = _patient(app)
    assert codes((await apq(http, patient, sha=VIEWER_SHA)).json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    response, ops = await measured(apq(http, patient, query=VIEWER, sha=VIEWER_SHA))
    assert "register" in _refused(response.json())
    assert ops == {LOOKUP: 1}
    assert await stored() == {}
    assert codes((await apq(http, patient, sha=VIEWER_SHA)).json()) == ["PERSISTED_QUERY_NOT_FOUND"]


@patients_only
@pytest.mark.parametrize(
    "document",
    [
        RUN_SAVED,
        'query Saved { a: savedQuery(name: "x") { __typename } savedQueries { __typename } }',
        "query { ...Saved } fragment Saved on Query { savedQueries { __typename } }",
        "query { ... on Query { savedQueries { __typename } } }",
    ],
)
async def test_saved_query_documents_pass_the_gate(app: Any, http: Any, document: str) -> None:
    """The saved-query fields may not exist yet: they may fail, but not with the allow-list."""
    response, ops = await measured(
        apq(http, _patient(app), query=document, sha=persisted.digest(document))
    )
    assert "OPERATION_NOT_ALLOWED" not in codes(response.json())
    assert LOOKUP not in ops  # decided from the document alone
    assert await stored() == {}  # a restricted caller stores nothing, even these


@patients_only
@pytest.mark.parametrize(
    "document",
    [
        '{ runSavedQuery(name: "x") { __typename } viewer { roles } }',
        '{ ...Mixed } fragment Mixed on Query { savedQuery(name: "x") { __typename } viewer { id } }',  # noqa: E501
        'mutation { runSavedQuery(name: "x") { __typename } }',
        "query A { savedQueries { __typename } } query B { viewer { roles } }",
        "{ ...Missing }",
    ],
)
async def test_documents_mixing_other_fields_are_refused(
    app: Any, http: Any, document: str
) -> None:
    _refused((await apq(http, _patient(app), query=document)).json())


@patients_only
async def test_a_document_that_does_not_parse_gets_the_parse_error(app: Any, http: Any) -> None:
    body = (await apq(http, _patient(app), query="{ viewer { roles ")).json()
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]


@patients_only
async def test_other_roles_are_unaffected(app: Any, http: Any) -> None:
    for headers in (bearer(app, "admin"), bearer(app, "analyst")):
        response, ops = await measured(apq(http, headers, query=VIEWER))
        assert "errors" not in response.json()
        assert LOOKUP not in ops
    # Anonymous callers hold no listed role: only `*` restricts them.
    anonymous = (await apq(http, {}, query=VIEWER)).json()
    assert "OPERATION_NOT_ALLOWED" not in codes(anonymous)


@every_role
async def test_star_restricts_every_role_but_admin(app: Any, http: Any) -> None:
    for headers in (bearer(app, "doctor", sid=str(ObjectId())), bearer(app, "service"), {}):
        _refused((await apq(http, headers, query=VIEWER)).json())
    admin = bearer(app, "admin")
    assert (await apq(http, admin, query=VIEWER, sha=VIEWER_SHA)).json() == {
        "data": {"viewer": {"roles": ["ADMIN"]}}
    }
    doctor = bearer(app, "doctor", sid=str(ObjectId()))
    assert (await apq(http, doctor, sha=VIEWER_SHA)).json() == {
        "data": {"viewer": {"roles": ["DOCTOR"]}}
    }


async def test_without_the_setting_nobody_is_restricted(app: Any, http: Any) -> None:
    response, ops = await measured(apq(http, _patient(app), query=VIEWER))
    assert response.json() == {"data": {"viewer": {"roles": ["PATIENT"]}}}
    assert ops == {}
