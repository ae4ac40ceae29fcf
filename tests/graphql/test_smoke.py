from __future__ import annotations

from typing import Any

from tests.conftest import TEST_MONGODB_URL


async def test_health_reports_both_stores(http: Any) -> None:
    response = await http.get("/health")
    store = "mongodb" if TEST_MONGODB_URL else "embedded"
    assert response.json() == {"status": "ok", "store": store, "mongodb": True, "redis": True}


async def test_register_and_read_patient(gql: Any) -> None:
    created = await gql.data(
        """mutation($input: RegisterPatientInput!) {
             registerPatient(input: $input) {
               id firstName lastName sex dateOfBirth contact { email }
             }
           }""",
        input={
            "firstName": "Zoë",
            "lastName": "Martin",
            "dateOfBirth": "1990-04-01",
            "sex": "FEMALE",
            "contact": {"email": "zoe@example.org"},
        },
    )
    patient = created["registerPatient"]
    assert patient["sex"] == "FEMALE" and patient["dateOfBirth"] == "1990-04-01"
    found = await gql.data('{ patients(search: "zoe mar") { totalCount nodes { id } } }')
    assert found["patients"] == {"totalCount": 1, "nodes": [{"id": patient["id"]}]}
    error = await gql.error(
        'mutation($id: ID!) { updatePatient(id: $id, input: {dateOfBirth: "2999-01-01"}) { id } }',
        id=patient["id"],
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "dateOfBirth" in error["extensions"]["fields"]
