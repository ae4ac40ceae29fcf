"""Vital signs over GraphQL: recording, BMI, validation, the policy, and the trend series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.vitals import VitalSigns
from tests import factories
from tests.graphql.helpers import code, snapshot
from tests.vitals.helpers import HOUR_AGO, clinic, visit

RECORD = """mutation($input: RecordVitalSignsInput!) {
  recordVitalSigns(input: $input) {
    id recordedAt recordedById recordedByRole visitId status
    temperature { value unit } pulse { value unit } systolic { value unit }
    diastolic { value unit } respiratoryRate { value unit } spo2 { value unit }
    height { value unit } weight { value unit } bmi { value unit } painScore { value unit }
  }
}"""
ONE = """query($id: ID!) {
  vitalSigns(id: $id) {
    id bmi { value unit } patient { id } recordedBy { id lastName } visit { id }
  }
}"""
SERIES = """query($patientId: ID!, $m: VitalMeasurement!, $from: DateTime, $to: DateTime,
  $first: Int, $after: String) {
  vitalSignsSeries(patientId: $patientId, measurement: $m, from: $from, to: $to,
    first: $first, after: $after) {
    totalCount nodes { value unit recordedAt vitalSignsId measurement }
    pageInfo { hasNextPage endCursor }
  }
}"""
MARK = """mutation($id: ID!, $reason: String!) {
  markVitalSignsEnteredInError(id: $id, reason: $reason) { status errorReason }
}"""


def _input(c: Any, **fields: Any) -> dict[str, Any]:
    return {
        "patientId": str(c.patient.id),
        "visitId": str(c.visit.id),
        "recordedAt": HOUR_AGO.isoformat(),
        **fields,
    }


FULL = {
    "temperature": 37.2,
    "pulse": 72,
    "systolic": 128,
    "diastolic": 82,
    "respiratoryRate": 16,
    "spo2": 97.5,
    "height": 180,
    "weight": 81,
    "painScore": 3,
}


async def test_a_clinician_records_a_full_set_with_units_and_bmi(client_as: Any) -> None:
    c = await clinic(client_as)
    made = (await c.me.data(RECORD, input=_input(c, **FULL)))["recordVitalSigns"]
    assert made["recordedById"] == str(c.doctor.id) and made["recordedByRole"] == "DOCTOR"
    assert made["visitId"] == str(c.visit.id) and made["status"] == "FINAL"
    units = {k: v["unit"] for k, v in made.items() if isinstance(v, dict)}
    assert units == {
        "temperature": "Cel",
        "pulse": "/min",
        "systolic": "mm[Hg]",
        "diastolic": "mm[Hg]",
        "respiratoryRate": "/min",
        "spo2": "%",
        "height": "cm",
        "weight": "kg",
        "bmi": "kg/m2",
        "painScore": "{score}",
    }
    assert made["bmi"]["value"] == 25.0  # 81 kg / 1.80 m squared
    read = (await c.me.data(ONE, id=made["id"]))["vitalSigns"]
    assert read["patient"] == {"id": str(c.patient.id)}
    assert read["recordedBy"] == {"id": str(c.doctor.id), "lastName": c.doctor.last_name}
    assert read["visit"] == {"id": str(c.visit.id)}
    # The patient reads their own.
    mine = await c.patient_client.data(ONE, id=made["id"])
    assert mine["vitalSigns"]["bmi"] == {"value": 25.0, "unit": "kg/m2"}


async def test_bmi_is_computed_only_from_the_same_sets_height_and_weight(client_as: Any) -> None:
    c = await clinic(client_as)
    both = await c.me.data(RECORD, input=_input(c, height=165, weight=70))
    assert both["recordVitalSigns"]["bmi"] == {"value": 25.7, "unit": "kg/m2"}  # 25.71...
    small = await c.me.data(RECORD, input=_input(c, height=52.5, weight=3.9))
    assert small["recordVitalSigns"]["bmi"]["value"] == 14.1
    weight_only = await c.me.data(RECORD, input=_input(c, weight=70))
    assert weight_only["recordVitalSigns"]["bmi"] is None


async def test_every_bad_field_is_listed_at_once_and_nothing_is_written(client_as: Any) -> None:
    c = await clinic(client_as)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    error = await c.me.error(
        RECORD,
        input=_input(
            c,
            recordedAt=future,
            temperature=50,
            pulse=400,
            spo2=101,
            painScore=11,
            respiratoryRate=2,
            height=10,
            weight=-1,
        ),
    )
    assert code(error) == "BAD_USER_INPUT"
    fields = error["extensions"]["fields"]
    assert set(fields) == {
        "recordedAt",
        "temperature",
        "pulse",
        "spo2",
        "painScore",
        "respiratoryRate",
        "height",
        "weight",
    }
    assert "Cel" in fields["temperature"] and "mm[Hg]" not in fields["pulse"]
    pressures = await c.me.error(RECORD, input=_input(c, systolic=80, diastolic=90))
    assert set(pressures["extensions"]["fields"]) == {"diastolic"}
    empty = await c.me.error(RECORD, input=_input(c))
    assert code(empty) == "BAD_USER_INPUT" and "input" in empty["extensions"]["fields"]
    extreme_bmi = await c.me.error(RECORD, input=_input(c, height=250, weight=0.5))
    assert {"height", "weight"} <= set(extreme_bmi["extensions"]["fields"])
    assert await VitalSigns.count() == 0


async def test_a_set_belongs_to_exactly_one_visit_of_the_same_patient(client_as: Any) -> None:
    c = await clinic(client_as)
    theirs = await visit(c.other_patient, c.doctor)
    no_show = await visit(c.patient, c.doctor, status="no_show")
    cases: list[dict[str, Any]] = [
        {"visitId": str(theirs.id)},
        {"visitId": str(no_show.id)},
        {"visitId": "0" * 24},
        {"visitId": None},
        {"admissionId": "a" * 24},  # and the visit: one or the other
    ]
    for change in cases:
        error = await c.me.error(RECORD, input={**_input(c, pulse=70), **change})
        assert code(error) == "BAD_USER_INPUT" and "visitId" in error["extensions"]["fields"]
    missing = await c.me.error(RECORD, input=_input(c, pulse=70, patientId="0" * 24))
    assert code(missing) == "BAD_USER_INPUT" and "patientId" in missing["extensions"]["fields"]
    assert await VitalSigns.count() == 0
    unknown = await c.me.error(
        RECORD, input={**_input(c, pulse=70), "visitId": None, "admissionId": "b" * 24}
    )  # admissions are checked like visits (services.admissions.check_admission)
    assert code(unknown) == "BAD_USER_INPUT" and "admissionId" in unknown["extensions"]["fields"]
    assert await VitalSigns.count() == 0


async def test_who_may_record_and_read(client_as: Any) -> None:
    c = await clinic(client_as)
    made = (await c.me.data(RECORD, input=_input(c, pulse=70)))["recordVitalSigns"]
    before = await snapshot(VitalSigns)
    for caller in (c.colleague, c.billing, c.analyst, c.patient_client):
        refused = await caller.error(RECORD, input=_input(c, pulse=80))
        assert code(refused) == "FORBIDDEN"
    assert await snapshot(VitalSigns) == before
    for caller in (c.colleague, c.billing, c.analyst, c.other_patient_client):
        assert code(await caller.error(ONE, id=made["id"])) == "FORBIDDEN"
    for caller in (c.billing, c.analyst):
        listed = await caller.error(SERIES, patientId=str(c.patient.id), m="PULSE")
        assert code(listed) == "FORBIDDEN"
        sets = await caller.error("{ vitalSignsSets { nodes { id } } }")
        assert code(sets) == "FORBIDDEN"
    # Outside the care team, lists are simply empty: the query itself is scoped.
    for caller in (c.colleague, c.other_patient_client):
        series = await caller.data(SERIES, patientId=str(c.patient.id), m="PULSE")
        assert series["vitalSignsSeries"]["nodes"] == []
        sets = await caller.data("{ vitalSignsSets { totalCount nodes { id } } }")
        assert sets["vitalSignsSets"]["nodes"] == []
    mine = await c.patient_client.data(SERIES, patientId=str(c.patient.id), m="PULSE")
    assert [n["value"] for n in mine["vitalSignsSeries"]["nodes"]] == [70.0]


async def test_the_series_is_one_measurement_in_time_order_within_a_range(client_as: Any) -> None:
    c = await clinic(client_as)
    start = HOUR_AGO - timedelta(days=10)
    ids = []
    for day, pulse in [(3, 88), (0, 80), (6, 76), (9, 70)]:  # recorded out of order
        at = (start + timedelta(days=day)).isoformat()
        made = await c.me.data(RECORD, input=_input(c, pulse=pulse, recordedAt=at))
        ids.append(made["recordVitalSigns"]["id"])
    await c.me.data(RECORD, input=_input(c, temperature=37.0))  # no pulse: not in the trend
    wrong = await c.me.data(RECORD, input=_input(c, pulse=150))
    await c.me.data(MARK, id=wrong["recordVitalSigns"]["id"], reason="wrong patient")
    everything = await c.me.data(SERIES, patientId=str(c.patient.id), m="PULSE")
    series = everything["vitalSignsSeries"]
    assert [n["value"] for n in series["nodes"]] == [80.0, 88.0, 76.0, 70.0]
    assert series["totalCount"] == 4 and {n["unit"] for n in series["nodes"]} == {"/min"}
    assert all(n["measurement"] == "PULSE" for n in series["nodes"])
    ranged = await c.me.data(
        SERIES,
        patientId=str(c.patient.id),
        m="PULSE",
        **{
            "from": (start + timedelta(days=2)).isoformat(),
            "to": (start + timedelta(days=7)).isoformat(),
        },
    )
    assert [n["value"] for n in ranged["vitalSignsSeries"]["nodes"]] == [88.0, 76.0]
    first = await c.me.data(SERIES, patientId=str(c.patient.id), m="PULSE", first=3)
    page = first["vitalSignsSeries"]
    assert len(page["nodes"]) == 3 and page["pageInfo"]["hasNextPage"]
    rest = await c.me.data(
        SERIES, patientId=str(c.patient.id), m="PULSE", after=page["pageInfo"]["endCursor"]
    )
    assert [n["value"] for n in rest["vitalSignsSeries"]["nodes"]] == [70.0]
    backwards = await c.me.error(
        SERIES,
        patientId=str(c.patient.id),
        m="PULSE",
        **{"from": HOUR_AGO.isoformat(), "to": start.isoformat()},
    )
    assert code(backwards) == "BAD_USER_INPUT"


async def test_only_the_recorder_marks_a_set_entered_in_error_once(client_as: Any) -> None:
    c = await clinic(client_as)
    made = (await c.me.data(RECORD, input=_input(c, pulse=70)))["recordVitalSigns"]
    nurse = await factories.nurse(c.department)
    ward = client_as(roles=["nurse"], sid=str(nurse.id), did=str(c.department.id))
    before = await snapshot(VitalSigns)
    assert code(await ward.error(MARK, id=made["id"], reason="typo")) == "FORBIDDEN"
    assert code(await c.me.error(MARK, id=made["id"], reason="")) == "BAD_USER_INPUT"
    assert await snapshot(VitalSigns) == before
    done = await c.me.data(MARK, id=made["id"], reason="typo")
    assert done["markVitalSignsEnteredInError"] == {
        "status": "ENTERED_IN_ERROR",
        "errorReason": "typo",
    }
    again = await c.me.error(MARK, id=made["id"], reason="typo")
    assert code(again) == "BAD_USER_INPUT"
    # A nurse of the department records in their own name.
    theirs = await ward.data(RECORD, input=_input(c, pulse=71))
    assert theirs["recordVitalSigns"]["recordedById"] == str(nurse.id)
    assert theirs["recordVitalSigns"]["recordedByRole"] == "NURSE"
