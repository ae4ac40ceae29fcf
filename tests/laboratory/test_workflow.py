"""The laboratory path over GraphQL: order -> samples -> results -> verification -> charge."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from models.billing import BillingAccount, ChargeSource
from models.laboratory import LabOrder, LabResult, LabSample
from models.notifications import Notification, NotificationKind
from tests.graphql.helpers import code, snapshot
from tests.laboratory.world import (
    BMP_NORMAL,
    COLLECT,
    CREATE,
    ENTER,
    ORDER,
    RECEIVE,
    REJECT,
    VERIFY,
    ordered,
    received,
    resulted,
    results,
    verified,
    visit,
    world,
)


async def test_an_order_goes_from_ordered_to_verified_and_charged_once(client_as: Any) -> None:
    w = await world(client_as)
    seen = await visit(w.patient, w.doctor)
    created = await w["doctor"].data(
        CREATE,
        input={
            "patientId": str(w.patient.id),
            "testCodes": ["bmp", "TROP"],
            "priority": "STAT",
            "visitId": str(seen.id),
        },
    )
    order = created["createLabOrder"]
    assert order["status"] == "ORDERED" and order["priority"] == "STAT"
    assert order["orderingDoctorId"] == str(w.doctor.id)  # the caller
    assert order["visitId"] == str(seen.id)
    assert [t["code"] for t in order["tests"]] == ["BMP", "TROP"]

    collected = (await w["tech"].data(COLLECT, id=order["id"]))["collectLabSamples"]
    assert collected["status"] == "COLLECTED"
    samples = collected["samples"]["nodes"]
    assert sorted(s["specimenType"] for s in samples) == ["PLASMA", "SERUM"]
    assert all(re.fullmatch(r"L\d{8}-\d{5}", s["accessionNumber"]) for s in samples)
    assert len({s["accessionNumber"] for s in samples}) == 2

    first = await w["tech"].data(RECEIVE, id=samples[0]["id"])
    assert first["receiveLabSample"]["custody"] == [
        {"status": "COLLECTED", "by": "lab:tech-1"},
        {"status": "RECEIVED", "by": "lab:tech-1"},
    ]
    assert (await w["doctor"].data(ORDER, id=order["id"]))["labOrder"]["status"] == "COLLECTED"
    await w["tech"].data(RECEIVE, id=samples[1]["id"])
    assert (await w["doctor"].data(ORDER, id=order["id"]))["labOrder"]["status"] == "RECEIVED"

    # Part of the values: the order stays received; the rest: resulted.
    entered = await w["tech"].data(ENTER, id=order["id"], results=results({"NA": 140, "K": 6.8}))
    by_code = {r["analyteCode"]: r for r in entered["enterLabResults"]}
    assert all(ObjectId.is_valid(r["id"]) for r in entered["enterLabResults"])
    assert by_code["K"]["flag"] == "CRITICAL_HIGH" and by_code["K"]["critical"]
    assert by_code["K"]["unit"] == "mmol/L" and by_code["K"]["referenceRange"] == "3.5-5.1"
    assert by_code["NA"]["flag"] == "NORMAL" and by_code["NA"]["status"] == "PRELIMINARY"
    assert (await w["doctor"].data(ORDER, id=order["id"]))["labOrder"]["status"] == "RECEIVED"
    rest = {"CL": 101, "CREA": 130, "GLU": 5.1}
    await w["tech"].data(ENTER, id=order["id"], results=results(rest))
    await w["tech"].data(ENTER, id=order["id"], results=results({"TNIHS": 12}, "TROP"))
    now = (await w["doctor"].data(ORDER, id=order["id"]))["labOrder"]
    assert now["status"] == "RESULTED" and now["report"] == []
    flags = {r["analyteCode"]: r["flag"] for r in now["results"]["nodes"]}
    assert flags == {
        "NA": "NORMAL",
        "K": "CRITICAL_HIGH",
        "CL": "NORMAL",
        "CREA": "HIGH",  # a man's range, 62-106
        "GLU": "NORMAL",
        "TNIHS": "NORMAL",
    }

    done = (await w["tech2"].data(VERIFY, id=order["id"]))["verifyLabOrder"]
    assert done["status"] == "VERIFIED" and done["verifiedAt"]
    assert {line["analyteCode"]: line["flag"] for line in done["report"]} == flags
    stored = await LabResult.find({"order_id": _oid(order)}).to_list()
    assert {r.status.value for r in stored} == {"verified"}
    assert {r.verified_by for r in stored} == {"lab:tech-2"}

    account = await BillingAccount.find_one({"patient_id": w.patient.id})
    assert account is not None
    lab = [c for c in account.charges if c.source == ChargeSource.LAB_ORDER]
    assert [(c.amount, str(c.source_id)) for c in lab] == [(2500 + 3000, order["id"])]
    assert lab[0].department_id == w.doctor.department_id
    assert "BMP" not in lab[0].description  # billing reads the account: no test names
    stored_order = await LabOrder.get(_oid(order))
    assert stored_order is not None and stored_order.charged_at is not None


def _oid(order: dict[str, Any]) -> Any:
    return ObjectId(order["id"])


async def test_a_critical_value_notifies_the_ordering_doctor_at_once(client_as: Any) -> None:
    w = await world(client_as)
    id = await received(w)
    await w["tech"].data(ENTER, id=id, results=results({"K": 2.1}))
    notes = await Notification.find({"kind": NotificationKind.LAB_CRITICAL_RESULT.value}).to_list()
    assert len(notes) == 1
    assert (notes[0].recipient.kind.value, notes[0].recipient.id) == ("doctor", w.doctor.id)
    assert "2.1" not in notes[0].body and "otassium" not in notes[0].body  # no values in mail
    # A normal value queues nothing; another critical value its own message.
    await w["tech"].data(ENTER, id=id, results=results({"NA": 139}))
    assert await Notification.find({}).count() == 1
    glucose = await w["tech"].data(ENTER, id=id, results=results({"GLU": 1.9}))
    assert glucose["enterLabResults"][0]["flag"] == "CRITICAL_LOW"
    assert await Notification.find({}).count() == 2
    mine = await w["doctor"].data("{ notifications { nodes { kind subject } } }")
    assert mine["notifications"]["nodes"] == 2 * [
        {"kind": "LAB_CRITICAL_RESULT", "subject": "Critical laboratory result"}
    ]


async def test_the_verifier_must_not_be_who_entered(client_as: Any) -> None:
    w = await world(client_as)
    id = await resulted(w)
    before = await snapshot(LabOrder, LabResult, BillingAccount)
    error = await w["tech"].error(VERIFY, id=id)
    assert code(error) == "FORBIDDEN"
    assert await snapshot(LabOrder, LabResult, BillingAccount) == before
    # A doctor of the patient's care may verify instead.
    done = await w["doctor"].data(VERIFY, id=id)
    assert done["verifyLabOrder"]["status"] == "VERIFIED"


async def test_a_correction_is_a_new_version_and_keeps_the_old(client_as: Any) -> None:
    w = await world(client_as)
    id = await verified(w)
    bad = await w["tech"].error(ENTER, id=id, results=results({"K": 4.9}))
    assert code(bad) == "BAD_USER_INPUT"
    assert "results.0.correctionReason" in bad["extensions"]["fields"]
    fixed = await w["tech"].data(
        ENTER, id=id, results=results({"K": 4.9}, correctionReason="transcription error")
    )
    new = fixed["enterLabResults"][0]
    assert (new["version"], new["current"], new["status"]) == (2, True, "PRELIMINARY")
    order = (await w["doctor"].data(ORDER, id=id))["labOrder"]
    assert order["status"] == "RESULTED"
    assert {r["analyteCode"]: r["value"] for r in order["report"]}["K"] == 4.2  # still the last
    every = await w["doctor"].data(
        "query($id: ID!) { labOrder(id: $id) { results(allVersions: true) "
        "{ nodes { analyteCode version current status value } } } }",
        id=id,
    )
    k = [r for r in every["labOrder"]["results"]["nodes"] if r["analyteCode"] == "K"]
    assert sorted((r["version"], r["current"], r["status"], r["value"]) for r in k) == [
        (1, False, "VERIFIED", 4.2),
        (2, True, "PRELIMINARY", 4.9),
    ]
    again = (await w["tech2"].data(VERIFY, id=id))["verifyLabOrder"]
    assert {r["analyteCode"]: (r["value"], r["version"]) for r in again["report"]}["K"] == (4.9, 2)
    account = await BillingAccount.find_one({"patient_id": w.patient.id})
    assert account is not None and len(account.charges) == 1  # re-verifying charges nothing


async def test_a_rejected_sample_is_recollected(client_as: Any) -> None:
    w = await world(client_as)
    id = await received(w)
    order = await w["doctor"].data(
        "query($id: ID!) { labOrder(id: $id) { samples { nodes { id } } } }", id=id
    )
    sample = order["labOrder"]["samples"]["nodes"][0]["id"]
    empty = await w["tech"].error(REJECT, id=sample, reason="  ")
    assert code(empty) == "BAD_USER_INPUT"
    rejected = await w["tech"].data(REJECT, id=sample, reason="haemolysed")
    assert rejected["rejectLabSample"] == {
        "id": sample,
        "status": "REJECTED",
        "rejectionReason": "haemolysed",
    }
    assert (await w["doctor"].data(ORDER, id=id))["labOrder"]["status"] == "ORDERED"
    no_sample = await w["tech"].error(ENTER, id=id, results=results({"K": 4}))
    assert code(no_sample) == "BAD_USER_INPUT"
    again = (await w["tech"].data(COLLECT, id=id))["collectLabSamples"]
    nodes = again["samples"]["nodes"]
    assert [n["status"] for n in nodes] == ["REJECTED", "COLLECTED"]
    assert nodes[1]["replacesSampleId"] == sample
    assert nodes[1]["accessionNumber"] != nodes[0]["accessionNumber"]


async def test_bad_input_changes_nothing(client_as: Any) -> None:
    w = await world(client_as)
    other = await visit(await _someone(), w.doctor)
    before = await snapshot(LabOrder, LabSample, LabResult)
    error = await w["doctor"].error(
        CREATE,
        input={
            "patientId": str(w.patient.id),
            "testCodes": ["BMP", "NOPE", "BMP"],
            "visitId": str(other.id),
        },
    )
    assert code(error) == "BAD_USER_INPUT"
    fields = error["extensions"]["fields"]
    assert {"testCodes", "testCodes.1", "visitId"} <= set(fields)
    assert "another patient" in fields["visitId"]
    bad_id = await w["doctor"].error(CREATE, input={"patientId": "nope", "testCodes": ["BMP"]})
    assert code(bad_id) == "BAD_USER_INPUT"
    assert await snapshot(LabOrder, LabSample, LabResult) == before

    id = await received(w)
    before = await snapshot(LabOrder, LabSample, LabResult)
    wrong = [
        {"testCode": "BMP", "analyteCode": "K", "value": 4.0},
        {"testCode": "BMP", "analyteCode": "HGB", "value": 13.0},
        {"testCode": "CBC", "analyteCode": "HGB", "value": 13.0},
    ]
    error = await w["tech"].error(ENTER, id=id, results=wrong)
    assert code(error) == "BAD_USER_INPUT"
    assert set(error["extensions"]["fields"]) == {"results.1.analyteCode", "results.2.testCode"}
    assert await snapshot(LabOrder, LabSample, LabResult) == before  # not even the valid one
    early = await w["tech2"].error(VERIFY, id=id)
    assert code(early) == "BAD_USER_INPUT"
    missing = await w["tech"].error(RECEIVE, id="0" * 24)
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(LabOrder, LabSample, LabResult) == before


async def _someone() -> Any:
    from tests import factories

    return await factories.patient(clinician_access=False)


async def test_cancelled_before_results_only(client_as: Any) -> None:
    w = await world(client_as)
    id = await ordered(w)
    cancel = 'mutation($id: ID!) { cancelLabOrder(id: $id, reason: "duplicate") { status } }'
    assert (await w["doctor"].data(cancel, id=id))["cancelLabOrder"]["status"] == "CANCELLED"
    assert code(await w["tech"].error(COLLECT, id=id)) == "BAD_USER_INPUT"
    done = await verified(w, BMP_NORMAL)
    assert code(await w["doctor"].error(cancel, id=done)) == "BAD_USER_INPUT"


async def test_lab_orders_filter_by_patient_status_priority_doctor_and_date(
    client_as: Any,
) -> None:
    w = await world(client_as)
    routine = await ordered(w)
    stat = await ordered(w, ["CRP"], priority="STAT")
    done = await verified(w)
    query = """query($f: DateTime, $t: DateTime, $s: LabOrderStatus, $p: LabPriority, $d: ID,
                     $pid: ID) {
      labOrders(orderedFrom: $f, orderedTo: $t, status: $s, priority: $p, orderedBy: $d,
                patientId: $pid) { nodes { id } totalCount }
    }"""
    doctor = w["doctor"]

    async def ids(**variables: Any) -> list[str]:
        found = await doctor.data(query, **variables)
        return [n["id"] for n in found["labOrders"]["nodes"]]

    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert await ids() == [routine, stat, done]
    assert await ids(s="VERIFIED") == [done]
    assert await ids(p="STAT") == [stat]
    assert await ids(d=str(w.doctor.id), pid=str(w.patient.id)) == [routine, stat, done]
    assert await ids(d=str(w.patient.id)) == []
    assert await ids(f=(now - hour).isoformat(), t=(now + hour).isoformat()) == [
        routine,
        stat,
        done,
    ]
    assert await ids(f=(now + hour).isoformat()) == []
    backwards = await doctor.error(query, f=now.isoformat(), t=(now - hour).isoformat())
    assert code(backwards) == "BAD_USER_INPUT"


async def test_admissions_are_refused_until_they_exist(client_as: Any) -> None:
    w = await world(client_as)
    error = await w["doctor"].error(
        CREATE,
        input={"patientId": str(w.patient.id), "testCodes": ["CRP"], "admissionId": "0" * 24},
    )
    assert code(error) == "BAD_USER_INPUT" and "admissionId" in error["extensions"]["fields"]
