from __future__ import annotations

from datetime import date
from typing import Any

from models import Patient
from tests import factories
from tests.graphql.helpers import code, snapshot

REGISTER = """mutation($input: RegisterPatientInput!) {
  registerPatient(input: $input) {
    id firstName lastName nationalId sex primaryDoctorId primaryDoctor { lastName }
    contact { phone email address { city country } }
    emergencyContact { name phone } createdAt updatedAt
  }
}"""
UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id firstName lastName nationalId updatedAt }
}"""


def full_input(**overrides: Any) -> dict[str, Any]:
    return {
        "firstName": "Grace",
        "lastName": "Hopper",
        "dateOfBirth": "1986-12-09",
        "sex": "FEMALE",
        "nationalId": "NID-1001",
        "contact": {
            "phone": "+44 20 7946 0000",
            "email": "grace@example.org",
            "address": {
                "line1": "1 Main St",
                "city": "Leeds",
                "postalCode": "LS1",
                "country": "GB",
            },
        },
        "allergies": [{"substance": "Penicillin", "severity": "SEVERE"}],
        "medicalHistory": [{"condition": "Asthma", "diagnosedOn": "2001-05-01"}],
        "emergencyContact": {"name": "Vince", "relationship": "Brother", "phone": "+44 1234 5678"},
        **overrides,
    }


async def test_register_patient_stores_the_whole_record(gql: Any) -> None:
    doc = await factories.doctor(last_name="Kildare")
    data = await gql.data(REGISTER, input=full_input(primaryDoctorId=str(doc.id)))
    p = data["registerPatient"]
    assert p["primaryDoctor"] == {"lastName": "Kildare"}
    assert p["contact"]["address"] == {"city": "Leeds", "country": "GB"}
    assert p["createdAt"] == p["updatedAt"]
    stored = await Patient.get(p["id"])
    assert stored is not None and stored.national_id == "NID-1001"
    # Registration takes the intake's clinical data; reading it back is for the care team.
    assert [(a.substance, a.severity) for a in stored.allergies] == [("Penicillin", "severe")]
    assert [(h.condition, h.diagnosed_on) for h in stored.medical_history] == [
        ("Asthma", date(2001, 5, 1))
    ]


async def test_register_patient_rejects_bad_input_and_writes_nothing(gql: Any) -> None:
    await gql.data(REGISTER, input=full_input())
    before = await snapshot(Patient)
    cases = {
        "contact.email": full_input(nationalId="NID-X1", contact={"email": "not-an-email"}),
        "dateOfBirth": full_input(nationalId="NID-X2", dateOfBirth="2999-01-01"),
        "firstName": full_input(nationalId="NID-X3", firstName="   "),
        "primaryDoctorId": full_input(nationalId="NID-X4", primaryDoctorId="0" * 24),
        "contact.address.country": full_input(
            nationalId="NID-X5",
            contact={"address": {"line1": "x", "city": "y", "postalCode": "1", "country": "UK!"}},
        ),
    }
    for field, payload in cases.items():
        error = await gql.error(REGISTER, input=payload)
        assert code(error) == "BAD_USER_INPUT", error
        assert field in error["extensions"]["fields"], error
    error = await gql.error(REGISTER, input=full_input(primaryDoctorId="nope"))
    assert error["extensions"]["fields"] == {"primaryDoctorId": "is not a valid id"}
    duplicate = await gql.error(REGISTER, input=full_input())
    assert code(duplicate) == "CONFLICT" and "nationalId" in duplicate["message"]
    assert await snapshot(Patient) == before


async def test_register_patient_rejects_an_unknown_enum_value(gql: Any) -> None:
    error = await gql.error(REGISTER, input=full_input(sex="ROBOT"))
    assert code(error) == "BAD_USER_INPUT"
    assert await Patient.count() == 0


async def test_update_patient_changes_only_given_fields(gql: Any) -> None:
    patient = await factories.patient(first_name="Ada", last_name="Byron", national_id="NID-1")
    data = await gql.data(UPDATE, id=str(patient.id), input={"lastName": "Lovelace"})
    assert data["updatePatient"]["firstName"] == "Ada"
    assert data["updatePatient"]["lastName"] == "Lovelace"
    assert data["updatePatient"]["nationalId"] == "NID-1"
    found = await gql.data('{ patients(search: "lovel") { nodes { id } } }')
    assert found["patients"]["nodes"] == [{"id": str(patient.id)}]
    gone = await gql.data('{ patients(search: "byron") { nodes { id } } }')
    assert gone["patients"]["nodes"] == []
    cleared = await gql.data(UPDATE, id=str(patient.id), input={"nationalId": None})
    assert cleared["updatePatient"]["nationalId"] is None


async def test_update_patient_rejections_change_nothing(gql: Any) -> None:
    patient = await factories.patient(national_id="NID-1")
    await factories.patient(national_id="NID-2")
    before = await snapshot(Patient)
    empty = await gql.error(UPDATE, id=str(patient.id), input={})
    assert code(empty) == "BAD_USER_INPUT"
    nulled = await gql.error(UPDATE, id=str(patient.id), input={"firstName": None})
    assert code(nulled) == "BAD_USER_INPUT" and "firstName" in nulled["extensions"]["fields"]
    taken = await gql.error(UPDATE, id=str(patient.id), input={"nationalId": "NID-2"})
    assert code(taken) == "CONFLICT"
    missing = await gql.error(UPDATE, id="0" * 24, input={"lastName": "X"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(Patient) == before


async def test_patient_search_is_accent_and_case_insensitive_prefix_match(gql: Any) -> None:
    zoe = await factories.patient(first_name="Zoë", last_name="O'Neill-Smith")
    await factories.patient(first_name="Zoltan", last_name="Smith")
    for search in ["zoe", "ZOË smi", "neill zo", "o smith zo"]:
        data = await gql.data(
            "query($s: String) { patients(search: $s) { nodes { id } } }", s=search
        )
        assert data["patients"]["nodes"] == [{"id": str(zoe.id)}], search
    both = await gql.data('{ patients(search: "smith") { totalCount } }')
    assert both["patients"]["totalCount"] == 2


async def test_patients_page_through_in_registration_order_with_cursors(gql: Any) -> None:
    # Names are encrypted at rest (the database cannot sort by them): registration order.
    for name in ["Delta", "Alpha", "Echo", "Charlie", "Bravo"]:
        await factories.patient(last_name=name)
    seen: list[str] = []
    after = None
    while True:
        data = await gql.data(
            "query($after: String) { patients(first: 2, after: $after) {"
            " nodes { lastName } pageInfo { hasNextPage endCursor } } }",
            after=after,
        )
        page = data["patients"]
        seen += [n["lastName"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Delta", "Alpha", "Echo", "Charlie", "Bravo"]


async def test_list_arguments_are_checked(gql: Any) -> None:
    too_many = await gql.error("{ patients(first: 5000) { nodes { id } } }")
    assert code(too_many) == "BAD_USER_INPUT" and too_many["extensions"]["fields"]["first"]
    bad_cursor = await gql.error('{ patients(after: "garbage") { nodes { id } } }')
    assert code(bad_cursor) == "BAD_USER_INPUT"
    assert (await gql.error('{ patient(id: "xyz") { id } }'))["extensions"]["code"] == (
        "BAD_USER_INPUT"
    )
    assert (await gql.data(f'{{ patient(id: "{"0" * 24}") {{ id }} }}')) == {"patient": None}
