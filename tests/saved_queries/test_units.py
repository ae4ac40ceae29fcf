"""The pieces on their own: CSV rendering, query-string conversion, audit snapshot and replay."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId
from graphql import OperationDefinitionNode, parse

from api.schema import schema
from auth.audit import AuditTrail
from auth.principal import Principal
from auth.roles import Role
from errors import BadUserInput
from models.audit import AuditAction, AuditEvent, AuditOutcome
from routes.queries import to_csv
from schema.saved_documents import from_query_string

# -- CSV -------------------------------------------------------------------------------------


def test_csv_takes_the_first_list_depth_first_and_flattens_rows() -> None:
    data = {
        "summary": {"total": 2},
        "report": {
            "rows": {
                "edges": [
                    {"node": {"a": 1, "b": {"c": "x", "d": None}, "tags": ["p", "q"]}},
                    {"node": {"a": 2.5, "b": None, "tags": [], "ok": True}},
                ]
            }
        },
        "later": [{"z": 1}],
    }
    assert to_csv(data) == ('a,b.c,b.d,tags,ok\r\n1,x,,"[""p"",""q""]",\r\n2.5,,,[],true\r\n')


def test_csv_defuses_formulas_in_text_but_not_numbers() -> None:
    rows: list[dict[str, Any]] = [
        {"v": text} for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b")
    ]
    rows.append({"v": -3})
    assert to_csv({"rows": rows}).split("\r\n") == [
        "v",
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        '"\'\rx"',
        "a=b",
        "-3",
        "",
    ]


def test_csv_of_data_without_a_list_is_one_row_and_of_nothing_is_empty() -> None:
    assert to_csv({"viewer": {"subject": "s", "staffId": None, "n": 3}}) == (
        "viewer.subject,viewer.staffId,viewer.n\r\ns,,3\r\n"
    )
    assert to_csv({"viewer": {"subject": "s", "roles": ["ADMIN"]}}) == "value\r\nADMIN\r\n"
    assert to_csv(None) == ""
    assert to_csv({"rows": []}) == ""
    assert to_csv({"names": ["a", "b"]}) == "value\r\na\r\nb\r\n"


# -- query-string variables ------------------------------------------------------------------

DECLARATIONS = parse(
    "query ($i: Int, $f: Float!, $b: Boolean, $s: String, $id: ID, $ids: [ID!], "
    "$e: EquipmentStatus, $o: UpdateDepartmentInput, $dt: DateTime, $ll: [[Int]]) "
    "{ __typename }"
)


def operation() -> OperationDefinitionNode:
    node = DECLARATIONS.definitions[0]
    assert isinstance(node, OperationDefinitionNode)
    return node


def test_values_are_converted_by_declared_type() -> None:
    params = {
        "i": ["-7"],
        "f": ["2.5"],
        "b": ["true"],
        "s": ["=text"],
        "id": ["42"],
        "ids": ["a", "b"],
        "e": ["MAINTENANCE"],
        "o": ['{"name": "Cardio"}'],
        "dt": ["2031-03-03T09:00:00Z"],
        "ll": ["[1,2]", "[3]"],
    }
    assert from_query_string(schema, operation(), params) == {
        "i": -7,
        "f": 2.5,
        "b": True,
        "s": "=text",
        "id": "42",
        "ids": ["a", "b"],
        "e": "MAINTENANCE",
        "o": {"name": "Cardio"},
        "dt": "2031-03-03T09:00:00Z",
        "ll": [[1, 2], [3]],
    }
    assert from_query_string(schema, operation(), {"b": ["0"], "ids": ["only"]}) == {
        "b": False,
        "ids": ["only"],
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"i": ["1.5"]}, "variables.i"),
        ({"f": ["nan"]}, "variables.f"),
        ({"f": ["x"]}, "variables.f"),
        ({"b": ["yes"]}, "variables.b"),
        ({"o": ["{"]}, "variables.o"),
        ({"s": ["a", "b"]}, "variables.s"),
        ({"zz": ["1"]}, "variables.zz"),
        ({"ll": ["[1,"]}, "variables.ll.0"),
    ],
)
def test_unconvertible_values_are_bad_user_input(params: dict[str, list[str]], field: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        from_query_string(schema, operation(), params)
    assert field in caught.value.fields


# -- audit snapshot and replay ---------------------------------------------------------------

DESK = Principal(subject="desk", roles=frozenset({Role.ADMIN_STAFF}))
DOCTOR = Principal(subject="doc", roles=frozenset({Role.DOCTOR}))


def recorded(trail: AuditTrail) -> list[tuple[Any, ...]]:
    return [
        (
            e.action,
            e.outcome,
            e.entity,
            e.entity_id,
            e.patient_id,
            e.fields,
            e.withheld,
            e.reason,
            e.break_glass,
        )
        for e in trail.events
    ]


def test_replay_records_the_same_events_as_the_new_request(database: Any) -> None:
    patient, other = ObjectId(), ObjectId()
    original = AuditTrail(DOCTOR, "first-request", "10.0.0.1", "Ward")
    original.read("Patient", patient, patient, ["lastName"], ["contact"])
    original.read("Patient", other, other, ["lastName"], [], "cardiac arrest")
    original.denied("Prescription", None, other, AuditAction.READ, "no relationship")
    original.write("Patient", other, other, AuditAction.BREAK_GLASS, ["emergencyAccess"], "x")

    again = AuditTrail(DOCTOR, "second-request", "10.0.0.2", "Ward")
    again.replay(original.snapshot())
    assert recorded(again) == recorded(original)
    assert {e.request_id for e in again.events} == {"second-request"}
    assert {e.client_address for e in again.events} == {"10.0.0.2"}
    assert [e.outcome for e in again.events].count(AuditOutcome.DENIED) == 1


def test_a_snapshot_is_json_and_replays_merge_with_later_reads(database: Any) -> None:
    patient = ObjectId()
    original = AuditTrail(DESK, "r1", None)
    original.read("Patient", patient, patient, ["lastName"])
    records = json.loads(json.dumps(original.snapshot()))
    again = AuditTrail(DESK, "r2", None)
    again.replay(records)
    again.read("Patient", patient, patient, ["firstName"])
    [event] = again.events
    assert event.fields == ["firstName", "lastName"]


async def test_snapshot_keeps_flushed_events_only_when_asked(database: Any) -> None:
    patient = ObjectId()
    plain = AuditTrail(DESK, "r1", None)
    plain.read("Patient", patient, patient, ["lastName"])
    await plain.flush()
    assert plain.snapshot() == []  # unchanged behaviour: a flushed trail holds nothing

    keeping = AuditTrail(DESK, "r2", None)
    keeping.keep_written = True
    keeping.read("Patient", patient, patient, ["lastName"])
    await keeping.flush()
    keeping.read("Patient", patient, patient, ["firstName"])  # pending, not yet written
    assert [r["fields"] for r in keeping.snapshot()] == [["lastName"], ["firstName"]]
    assert await AuditEvent.find_all().count() == 2
