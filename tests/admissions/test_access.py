"""Who admits, moves, discharges, cleans and reads: each as declared in models/admissions.py
and models/wards.py; refusals are FORBIDDEN and change nothing."""

from __future__ import annotations

from typing import Any

from models.admissions import Admission
from models.wards import Bed
from tests import factories
from tests.admissions.helpers import (
    ADMIT,
    BED,
    BOARD,
    CLEANED,
    DISCHARGE,
    LIST,
    NOTE,
    ONE,
    TRANSFER,
    admit_input,
    inpatient,
)
from tests.graphql.helpers import code, snapshot


async def _setting(client_as: Any) -> tuple[Any, Any, dict[str, Any]]:
    f = await inpatient(patients=0)
    f.patients = [await factories.patient(clinician_access=False) for _ in range(3)]
    doctor = client_as(roles=["doctor"], sid=str(f.doctor.id), did=str(f.department.id))
    made = await doctor.data(ADMIT, input=admit_input(f, f.patients[0], f.beds[0]))
    return f, doctor, made["admitPatient"]


async def test_who_may_admit(client_as: Any) -> None:
    f, _doctor, made = await _setting(client_as)
    assert made["attendingDoctorId"] == str(f.doctor.id)
    stranger_dept = await factories.department()
    stranger = await factories.doctor(stranger_dept)
    outsider = client_as(roles=["doctor"], sid=str(stranger.id), did=str(stranger_dept.id))
    desk = client_as(roles=["admin_staff"], did=str(f.department.id))
    before = await snapshot(Admission, Bed)
    for caller, payload in (
        (outsider, admit_input(f, f.patients[1], f.beds[1])),  # no relation at all
        (desk, admit_input(f, f.patients[1], f.beds[1], source="OUTPATIENT",
                           sourceId=str(f.patients[1].id))),  # only electively
        (client_as(roles=["nurse"], sid=str(f.nurse.id), did=str(f.department.id)),
         admit_input(f, f.patients[1], f.beds[1])),
        (client_as(roles=["billing"]), admit_input(f, f.patients[1], f.beds[1])),
        (client_as(roles=["analyst"]), admit_input(f, f.patients[1], f.beds[1])),
        (client_as(roles=["patient"], pid=str(f.patients[1].id)),
         admit_input(f, f.patients[1], f.beds[1])),
    ):  # fmt: skip
        assert code(await caller.error(ADMIT, input=payload)) == "FORBIDDEN", caller
    assert await snapshot(Admission, Bed) == before
    # The front desk admits electively, naming the attending doctor.
    ops = "mutation($input: AdmitPatientInput!) { admitPatient(input: $input) { id status } }"
    elective = await desk.data(ops, input=admit_input(f, f.patients[1], f.beds[1]))
    assert elective["admitPatient"]["status"] == "ACTIVE"  # (the reason is not theirs to read)
    # A doctor of the ward's department admits a patient they have never seen.
    colleague = await factories.doctor(f.department)
    same_dept = client_as(roles=["doctor"], sid=str(colleague.id), did=str(f.department.id))
    assert await same_dept.data(ADMIT, input=admit_input(f, f.patients[2], f.beds[2]))


async def test_who_may_move_and_discharge(client_as: Any) -> None:
    f, doctor, made = await _setting(client_as)
    stranger_dept = await factories.department()
    stranger = await factories.doctor(stranger_dept)
    outsider = client_as(roles=["doctor"], sid=str(stranger.id), did=str(stranger_dept.id))
    before = await snapshot(Admission, Bed)
    for caller in (
        outsider,
        client_as(roles=["admin_staff"]),
        client_as(roles=["nurse"], sid=str(f.nurse.id), did=str(f.department.id)),
        client_as(roles=["patient"], pid=str(f.patients[0].id)),
    ):
        error = await caller.error(TRANSFER, id=made["id"], bedId=str(f.beds[1].id))
        assert code(error) == "FORBIDDEN"
        error = await caller.error(DISCHARGE, id=made["id"], note=NOTE, d="HOME")
        assert code(error) == "FORBIDDEN"
    assert await snapshot(Admission, Bed) == before
    await doctor.data(TRANSFER, id=made["id"], bedId=str(f.beds[1].id))
    gone = await doctor.data(DISCHARGE, id=made["id"], note=NOTE, d="HOME")
    assert gone["dischargePatient"]["discharge"]["authorId"] == str(f.doctor.id)
    # Cleaning: the department's nurses and the front desk, not billing.
    refused = await client_as(roles=["billing"]).error(CLEANED, id=str(f.beds[1].id))
    assert code(refused) == "FORBIDDEN"
    nurse = client_as(roles=["nurse"], sid=str(f.nurse.id), did=str(f.department.id))
    assert (await nurse.data(CLEANED, id=str(f.beds[1].id)))["markBedCleaned"]


async def test_who_reads_what(client_as: Any) -> None:
    f, doctor, made = await _setting(client_as)
    full = (await doctor.data(ONE, id=made["id"]))["admission"]
    assert full["reason"] == "Elective hip replacement"
    # The ward's nurse treats the patient while admitted (ward care).
    nurse = client_as(roles=["nurse"], sid=str(f.nurse.id))
    assert (await nurse.data(ONE, id=made["id"]))["admission"]["reason"]
    listed = (await nurse.data(LIST, wardId=str(f.ward.id)))["admissions"]["nodes"]
    assert [a["id"] for a in listed] == [made["id"]]
    # Billing: operational fields, not the clinical ones.
    billing = await client_as(roles=["billing"])(ONE, id=made["id"])
    assert billing["data"]["admission"]["bedId"] == made["bedId"]
    assert billing["data"]["admission"]["reason"] is None
    assert {code(e) for e in billing["errors"]} == {"FORBIDDEN"}
    # The patient: their own, not another's; analysts: nothing.
    mine = client_as(roles=["patient"], pid=str(f.patients[0].id))
    assert (await mine.data(ONE, id=made["id"]))["admission"]["id"] == made["id"]
    theirs = client_as(roles=["patient"], pid=str(f.patients[1].id))
    assert code(await theirs.error(ONE, id=made["id"])) == "FORBIDDEN"
    assert (await theirs.data(LIST))["admissions"]["nodes"] == []
    analyst = client_as(roles=["analyst"])
    assert code(await analyst.error(ONE, id=made["id"])) == "FORBIDDEN"
    assert code(await analyst.error(LIST)) == "FORBIDDEN"


async def test_the_board_hides_who_lies_there_from_those_without_a_relation(
    client_as: Any,
) -> None:
    f, _doctor, _made = await _setting(client_as)
    desk = await client_as(roles=["admin_staff"]).data(BOARD, wardId=str(f.ward.id))
    assert desk["bedBoard"]["beds"][0]["patientId"] == str(f.patients[0].id)
    screen = await client_as(roles=["service"])(BOARD, wardId=str(f.ward.id))
    assert screen["data"]["bedBoard"]["counts"]["occupied"] == 1
    assert screen["data"]["bedBoard"]["beds"][0]["patientId"] is None
    assert {code(e) for e in screen["errors"]} == {"FORBIDDEN"}
    other_dept = await factories.department()
    stranger = await factories.nurse(other_dept)
    nurse = client_as(roles=["nurse"], sid=str(stranger.id), did=str(other_dept.id))
    hidden = await nurse(BED, id=str(f.beds[0].id))
    assert hidden["data"]["bed"]["status"] == "OCCUPIED"
    assert hidden["data"]["bed"]["patientId"] is None
    for roles in (["patient"], ["analyst"]):
        refused = await client_as(roles=roles, pid=str(f.patients[0].id)).error(
            BOARD, wardId=str(f.ward.id)
        )
        assert code(refused) == "FORBIDDEN"
