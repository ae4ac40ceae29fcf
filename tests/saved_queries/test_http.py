"""``GET /queries/{name}``: JSON and CSV answers, typed query-string variables, status codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from models.equipment import EquipmentStatus
from models.saved_queries import SavedQueryRun
from tests import factories
from tests.conftest import token_for
from tests.saved_queries.conftest import save


@pytest.fixture
def get(app: Any, http: Any) -> Any:
    """``get(path, roles=[...], **headers)``: a GET with a bearer token for those roles."""

    async def send(path: str, roles: list[str] | None = None, **headers: str) -> Any:
        if roles is not None:
            token = token_for(app, sub=f"test:{'+'.join(roles)}", roles=roles)
            headers["authorization"] = f"Bearer {token}"
        return await http.get(path, headers=headers)

    return send


async def csv_departments() -> None:
    await factories.department(name='Cardiology, "East"', code="CARD", location='=HYPERLINK("x")')
    await factories.department(name="Neurology", code="NEURO")
    await factories.department(name="Oncology", code="ONC", location="@risk\nwing")


EXPECTED_CSV = (
    "name,code,location\r\n"
    '"Cardiology, ""East""",CARD,"\'=HYPERLINK(""x"")"\r\n'
    "Neurology,NEURO,\r\n"
    'Oncology,ONC,"\'@risk\nwing"\r\n'
)


async def test_a_get_answers_json_as_the_caller(analyst: Any, get: Any) -> None:
    await factories.department(name="Cardiology", code="CARD")
    await save(analyst, "depts")
    response = await get("/queries/depts", roles=["analyst"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "data": {
            "departments": {
                "edges": [{"node": {"name": "Cardiology", "code": "CARD", "location": None}}]
            }
        },
        "name": "depts",
        "version": 1,
    }
    [logged] = await SavedQueryRun.find_all().to_list()
    assert (logged.via, logged.outcome, logged.actor_subject) == ("http", "ok", "test:analyst")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/queries/depts?format=csv", {}),
        ("/queries/depts", {"accept": "text/csv"}),
        ("/queries/depts", {"accept": "application/json;q=0.5, text/csv"}),
    ],
)
async def test_csv_is_exact_quoted_and_defused(
    analyst: Any, get: Any, path: str, headers: dict[str, str]
) -> None:
    await csv_departments()
    await save(analyst, "depts")
    response = await get(path, roles=["analyst"], **headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="depts.csv"'
    assert response.headers["cache-control"] == "no-store"
    assert response.text == EXPECTED_CSV


async def test_format_json_wins_over_accept(analyst: Any, get: Any) -> None:
    await save(analyst, "depts")
    response = await get("/queries/depts?format=json", roles=["analyst"], accept="text/csv")
    assert response.headers["content-type"] == "application/json"


async def test_csv_columns_are_dotted_paths_of_nested_objects(analyst: Any, get: Any) -> None:
    dept = await factories.department(name="Cardiology", code="CARD")
    await factories.doctor(dept, last_name="Osler")
    await factories.doctor(dept, last_name="Virchow")
    document = "query { doctors { totalCount nodes { lastName department { code name } } } }"
    await save(analyst, "doctors", document=document)
    response = await get("/queries/doctors?format=csv", roles=["analyst"])
    assert response.text == (
        "lastName,department.code,department.name\r\n"
        "Osler,CARD,Cardiology\r\n"
        "Virchow,CARD,Cardiology\r\n"
    )


async def test_query_string_values_follow_the_declared_types(analyst: Any, get: Any) -> None:
    dept = await factories.department()
    other = await factories.department()
    await factories.equipment(dept, name="ECG 1", status=EquipmentStatus.MAINTENANCE)
    await factories.equipment(dept, name="ECG 2", status=EquipmentStatus.MAINTENANCE)
    await factories.equipment(dept, name="ECG 3")
    await factories.equipment(other, name="ECG 4", status=EquipmentStatus.MAINTENANCE)
    document = """
    query Devices($dept: ID, $status: EquipmentStatus, $first: Int) {
      equipmentList(departmentId: $dept, status: $status, first: $first) { nodes { name } }
    }"""
    await save(analyst, "devices", document=document)
    response = await get(f"/queries/devices?dept={dept.id}&status=MAINTENANCE&first=1", ["analyst"])
    assert response.json()["data"] == {"equipmentList": {"nodes": [{"name": "ECG 1"}]}}


async def test_lists_repeat_the_parameter_and_input_objects_are_json(
    analyst: Any, get: Any
) -> None:
    start = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
    await factories.appointment(start=start, status="scheduled")
    await factories.appointment(start=start.replace(hour=10), status="cancelled")
    await factories.appointment(start=start.replace(hour=11), status="completed")
    await factories.appointment(start=start.replace(day=1), status="scheduled")
    listed = """
    query Visits($status: [AppointmentStatus!], $from: DateTime) {
      appointments(filter: {status: $status, from: $from}) { nodes { status } }
    }"""
    await save(analyst, "visits", document=listed)
    # Run by an admin: analysts are shown no appointment rows at all.
    response = await get(
        "/queries/visits?status=SCHEDULED&status=CANCELLED&from=2031-03-02T00:00:00Z", ["admin"]
    )
    statuses = [node["status"] for node in response.json()["data"]["appointments"]["nodes"]]
    assert statuses == ["SCHEDULED", "CANCELLED"]

    filtered = (
        "query Visits($f: AppointmentFilter) { appointments(filter: $f) { nodes { status } } }"
    )
    await save(analyst, "filtered", document=filtered)
    response = await get('/queries/filtered?f={"status":["COMPLETED"]}', ["admin"])
    assert response.json()["data"] == {"appointments": {"nodes": [{"status": "COMPLETED"}]}}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("first=abc", "variables.first"),
        ("first=1&first=2", "variables.first"),
        ("first=99999999999", "variables.first"),
        ("nope=1", "variables.nope"),
        ("format=xml", "format"),
        ("version=two", "version"),
    ],
)
async def test_bad_parameters_are_400_bad_user_input(
    analyst: Any, get: Any, query: str, field: str
) -> None:
    await save(analyst, "depts")
    response = await get(f"/queries/depts?{query}", roles=["analyst"])
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert field in error["extensions"]["fields"]


async def test_bad_enum_and_json_values_are_400(analyst: Any, get: Any) -> None:
    document = "query Visits($f: AppointmentFilter) { appointments(filter: $f) { nodes { id } } }"
    await save(analyst, "filtered", document=document)
    for query in ("f=not-json", 'f={"status":["LOST"]}'):
        response = await get(f"/queries/filtered?{query}", roles=["analyst"])
        assert response.status_code == 400, query
        assert "variables.f" in response.json()["errors"][0]["extensions"]["fields"]


async def test_refusals_map_to_http_statuses(analyst: Any, get: Any) -> None:
    await save(analyst, "depts", allowed=["ANALYST"])
    anonymous = await get("/queries/depts")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad_token = await get("/queries/depts", authorization="Bearer nonsense")
    assert bad_token.status_code == 401
    forbidden = await get("/queries/depts", roles=["nurse"])
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    missing = await get("/queries/nothing", roles=["analyst"])
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    old = await get("/queries/depts?version=9", roles=["analyst"])
    assert old.status_code == 404
    outcomes = [r.outcome for r in await SavedQueryRun.find_all().to_list()]
    assert outcomes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "NOT_FOUND"]


async def test_errors_inside_the_query_answer_200_json_even_for_csv(analyst: Any, get: Any) -> None:
    await save(analyst, "patients", document="query { patients { nodes { lastName } } }")
    response = await get("/queries/patients?format=csv", roles=["analyst"])  # may not list them
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert (body["name"], body["version"]) == ("patients", 1)
