"""Admit, transfer, discharge: the bed follows the admission, history is kept, the note is
signed; every refusal answers with its code and changes nothing."""

from __future__ import annotations

from typing import Any

from models.admissions import Admission
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from models.wards import Bed
from services import admissions
from tests.admissions.helpers import (
    ADMIT,
    BED,
    BOARD,
    CLEANED,
    DISCHARGE,
    NOTE,
    ONE,
    TRANSFER,
    admit_input,
    inpatient,
)
from tests.graphql.helpers import code, snapshot


async def test_admit_transfer_discharge_and_clean(gql: Any) -> None:
    f = await inpatient()
    patient, first, second = f.patients[0], f.beds[0], f.beds[1]
    made = (await gql.data(ADMIT, input=admit_input(f, patient, first)))["admitPatient"]
    assert made["status"] == "ACTIVE" and made["bedId"] == str(first.id)
    assert made["wardId"] == str(f.ward.id) and made["departmentId"] == str(f.department.id)
    assert [s["bedId"] for s in made["stays"]] == [str(first.id)]
    bed = (await gql.data(BED, id=str(first.id)))["bed"]
    assert bed["status"] == "OCCUPIED" and not bed["incoming"]
    assert bed["patientId"] == str(patient.id) and bed["admissionId"] == made["id"]

    moved = (
        await gql.data(TRANSFER, id=made["id"], bedId=str(second.id), reason="Quieter bay", v=0)
    )["transferPatient"]
    assert moved["bedId"] == str(second.id) and moved["version"] == 1
    assert [s["bedId"] for s in moved["stays"]] == [str(first.id), str(second.id)]
    assert moved["stays"][0]["toAt"] == moved["stays"][1]["fromAt"]
    assert moved["stays"][1]["reason"] == "Quieter bay" and moved["stays"][1]["toAt"] is None
    old = (await gql.data(BED, id=str(first.id)))["bed"]
    assert old["status"] == "CLEANING" and old["patientId"] is None
    assert (await gql.data(BED, id=str(second.id)))["bed"]["admissionId"] == made["id"]

    gone = (await gql.data(DISCHARGE, id=made["id"], note=NOTE, d="HOME"))["dischargePatient"]
    assert gone["status"] == "DISCHARGED" and gone["dischargedAt"]
    note = gone["discharge"]
    assert note["summary"] == NOTE["summary"] and note["followUp"] == NOTE["followUp"]
    assert len(note["contentHash"]) == 64 and note["disposition"] == "HOME"
    stored = await Admission.get(made["id"])
    assert stored is not None and admissions.verify(stored)
    assert stored.open_patient_id is None and stored.stays[-1].to_at is not None
    freed = (await gql.data(BED, id=str(second.id)))["bed"]
    assert freed["status"] == "CLEANING" and freed["admissionId"] is None
    clean = (await gql.data(CLEANED, id=str(second.id)))["markBedCleaned"]
    assert clean["status"] == "AVAILABLE"

    # Discharged: the patient may be admitted again, to the bed just cleaned.
    again = await gql.data(ADMIT, input=admit_input(f, patient, second))
    assert again["admitPatient"]["status"] == "ACTIVE"


async def test_admission_from_an_outpatient_visit(gql: Any) -> None:
    f = await inpatient()
    patient = f.patients[0]
    visit = await _visit(f, patient)
    made = await gql.data(
        ADMIT,
        input=admit_input(f, patient, f.beds[0], source="OUTPATIENT", sourceId=str(visit.id)),
    )
    assert made["admitPatient"]["sourceId"] == str(visit.id)
    read = (await gql.data(ONE, id=made["admitPatient"]["id"]))["admission"]
    assert read["bed"]["label"] == f.beds[0].label and read["ward"]["code"] == f.ward.code


async def _visit(f: Any, patient: Any, **fields: Any) -> OutpatientVisit:
    from models.base import utcnow

    now = utcnow()
    return await OutpatientVisit(
        patient_id=patient.id,
        department_id=f.department.id,
        doctor_id=f.doctor.id,
        arrival=Arrival.WALK_IN,
        status=fields.pop("status", VisitStatus.IN_CONSULTATION),
        queue_date=now.date().isoformat(),
        queue_number=1 + len(f.patients),
        checked_in_at=now,
        status_at=now,
        **fields,
    ).insert()


async def test_refusals_change_nothing(gql: Any) -> None:
    f = await inpatient(patients=3)
    patient, other = f.patients[0], f.patients[1]
    taken = await gql.data(ADMIT, input=admit_input(f, other, f.beds[1]))
    theirs = await _visit(f, other)
    inactive = await Bed(
        ward_id=f.ward.id, department_id=f.department.id, label="OFF", active=False
    ).insert()
    before = await snapshot(Admission, Bed)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"patientId": "0" * 24}, "BAD_USER_INPUT", "patientId"),
        ({"bedId": "0" * 24}, "BAD_USER_INPUT", "bedId"),
        ({"bedId": str(inactive.id)}, "BAD_USER_INPUT", "bedId"),
        ({"bedId": str(f.female_beds[0].id)}, "BAD_USER_INPUT", "bedId"),  # a male patient
        ({"attendingDoctorId": "0" * 24}, "BAD_USER_INPUT", "attendingDoctorId"),
        ({"reason": "  "}, "BAD_USER_INPUT", "reason"),
        ({"source": "OUTPATIENT"}, "BAD_USER_INPUT", "sourceId"),
        ({"source": "OUTPATIENT", "sourceId": str(theirs.id)}, "BAD_USER_INPUT", "sourceId"),
        ({"sourceId": str(theirs.id)}, "BAD_USER_INPUT", "sourceId"),  # elective has none
        ({"bedId": str(f.beds[1].id)}, "CONFLICT", "bedId"),  # occupied
    ]
    for overrides, expected, field in cases:
        error = await gql.error(ADMIT, input=admit_input(f, patient, f.beds[0], **overrides))
        assert code(error) == expected, (overrides, error)
        if expected == "BAD_USER_INPUT":
            assert field in error["extensions"]["fields"], (overrides, error)
    twice = await gql.error(ADMIT, input=admit_input(f, other, f.beds[0]))
    assert code(twice) == "CONFLICT"  # already in a bed
    assert await snapshot(Admission, Bed) == before

    admission = taken["admitPatient"]["id"]
    for variables, expected in (
        ({"bedId": str(f.beds[1].id)}, "BAD_USER_INPUT"),  # the bed it is in
        ({"bedId": str(f.female_beds[0].id)}, "BAD_USER_INPUT"),
        ({"bedId": str(f.beds[2].id), "v": 7}, "CONFLICT"),  # stale version
    ):
        error = await gql.error(TRANSFER, id=admission, **variables)
        assert code(error) == expected, (variables, error)
    assert code(await gql.error(CLEANED, id=str(f.beds[1].id))) == "CONFLICT"  # occupied
    assert await snapshot(Admission, Bed) == before

    await gql.data(DISCHARGE, id=admission, note=NOTE, d="HOME")
    after = await snapshot(Admission, Bed)
    late: list[tuple[str, dict[str, Any]]] = [
        (DISCHARGE, {"note": NOTE, "d": "HOME"}),
        (TRANSFER, {"bedId": str(f.beds[2].id)}),
    ]
    for query, variables in late:
        error = await gql.error(query, id=admission, **variables)
        assert code(error) == "BAD_USER_INPUT", error
    assert await snapshot(Admission, Bed) == after


async def test_admit_is_idempotent_with_a_key(gql: Any) -> None:
    f = await inpatient()
    payload = admit_input(f, f.patients[0], f.beds[0])
    first = await gql.data(ADMIT, input=payload, key="admit-1")
    again = await gql.data(ADMIT, input=payload, key="admit-1")
    assert first == again
    assert await Admission.find({"patient_id": f.patients[0].id}).count() == 1


async def test_the_board_counts_beds(gql: Any) -> None:
    f = await inpatient()
    await gql.data(ADMIT, input=admit_input(f, f.patients[0], f.beds[0]))
    await Bed.find_one({"_id": f.beds[3].id}).update({"$set": {"status": "blocked"}})
    board = (await gql.data(BOARD, wardId=str(f.ward.id)))["bedBoard"]
    assert board["wardId"] == str(f.ward.id)
    assert board["counts"] == {
        "available": 2, "occupied": 1, "incoming": 0, "cleaning": 0, "blocked": 1, "total": 4
    }  # fmt: skip
    assert [b["label"] for b in board["beds"]] == ["B1", "B2", "B3", "B4"]
    assert board["beds"][0]["patientId"] == str(f.patients[0].id)
    by_dept = (await gql.data(BOARD, departmentId=str(f.department.id)))["bedBoard"]
    assert by_dept["counts"]["total"] == 6
    assert code(await gql.error(BOARD)) == "BAD_USER_INPUT"
    assert code(await gql.error(BOARD, wardId="0" * 24)) == "NOT_FOUND"
