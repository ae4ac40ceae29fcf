"""Who reads laboratory data: the care team and the lab; the patient their verified report;
billing the charge; analysts nothing."""

from __future__ import annotations

from typing import Any

from tests.graphql.helpers import code
from tests.laboratory.world import ENTER, ORDER, received, resulted, results, verified, world

REPORT = "query($id: ID!) { labOrder(id: $id) { id status report { analyteCode value flag } } }"
RESULTS = "query($id: ID!) { labOrder(id: $id) { results { nodes { value } } } }"
RESULT = "query($id: ID!) { labResult(id: $id) { id value } }"
CHARGE = """query($id: ID!) {
  labOrder(id: $id) { id status chargedAt charge { amount currency } }
}"""
LIST = "{ labOrders { nodes { id } } }"


async def test_the_patient_reads_their_verified_report_only(client_as: Any) -> None:
    w = await world(client_as)
    pending = await resulted(w, {"NA": 140, "K": 6.8, "CL": 101, "CREA": 80, "GLU": 5})
    seen = await w["patient"].data(REPORT, id=pending)
    assert seen["labOrder"] == {"id": pending, "status": "RESULTED", "report": []}
    assert code(await w["patient"].error(RESULTS, id=pending)) == "FORBIDDEN"
    result_id = (await w["doctor"].data(ORDER, id=pending))["labOrder"]["results"]["nodes"][0]["id"]
    assert code(await w["patient"].error(RESULT, id=result_id)) == "FORBIDDEN"

    done = await verified(w)
    report = (await w["patient"].data(REPORT, id=done))["labOrder"]["report"]
    assert {r["analyteCode"]: r["value"] for r in report}["K"] == 4.2
    mine = await w["patient"].data(LIST)
    assert {n["id"] for n in mine["labOrders"]["nodes"]} == {pending, done}
    # Another patient sees none of it.
    assert code(await w["other_patient"].error(REPORT, id=done)) == "FORBIDDEN"
    assert (await w["other_patient"].data(LIST))["labOrders"]["nodes"] == []


async def test_billing_sees_the_charge_but_not_the_results(client_as: Any) -> None:
    w = await world(client_as)
    id = await verified(w)
    seen = (await w["billing"].data(CHARGE, id=id))["labOrder"]
    assert seen["status"] == "VERIFIED" and seen["chargedAt"]
    assert seen["charge"] == {"amount": 2500, "currency": "EUR"}
    for query in (REPORT, RESULTS):
        assert code(await w["billing"].error(query, id=id)) == "FORBIDDEN"
    tests = "query($id: ID!) { labOrder(id: $id) { tests { code } priority } }"
    body = await w["billing"](tests, id=id)
    assert body["data"]["labOrder"] == {"tests": None, "priority": None}
    assert {code(e) for e in body["errors"]} == {"FORBIDDEN"}
    result_id = (await w["doctor"].data(ORDER, id=id))["labOrder"]["results"]["nodes"][0]["id"]
    assert code(await w["billing"].error(RESULT, id=result_id)) == "FORBIDDEN"
    # Clinicians and the lab do not see the money.
    money = "query($id: ID!) { labOrder(id: $id) { chargedAt } }"
    assert code(await w["tech"].error(money, id=id)) == "FORBIDDEN"


async def test_analysts_are_refused_every_row(client_as: Any) -> None:
    w = await world(client_as)
    id = await verified(w)
    result_id = (await w["doctor"].data(ORDER, id=id))["labOrder"]["results"]["nodes"][0]["id"]
    analyst = w["analyst"]
    for query, variables in (
        (LIST, {}),
        (REPORT, {"id": id}),
        (RESULT, {"id": result_id}),
        ("query($id: ID!) { labSample(id: $id) { id } }", {"id": id}),
    ):
        error = await analyst.error(query, **variables)
        assert code(error) == "FORBIDDEN", query


async def test_the_care_team_and_the_lab_read_results_others_do_not(client_as: Any) -> None:
    w = await world(client_as)
    id = await resulted(w)
    for role in ("doctor", "tech", "tech2"):
        nodes = (await w[role].data(RESULTS, id=id))["labOrder"]["results"]["nodes"]
        assert len(nodes) == 5, role
    # A doctor with no relation to the patient, a nurse of another department: nothing.
    assert code(await w["stranger"].error(RESULTS, id=id)) == "FORBIDDEN"
    assert (await w["stranger"].data(LIST))["labOrders"]["nodes"] == []
    assert code(await w["nurse"].error(RESULTS, id=id)) == "FORBIDDEN"
    # Lab technicians see lab work, not the rest of the chart.
    plans = await w["tech"].error("{ treatmentPlans { nodes { id } } }")
    assert code(plans) == "FORBIDDEN"


async def test_only_the_lab_enters_results_and_orders_are_placed_by_doctors(
    client_as: Any,
) -> None:
    w = await world(client_as)
    id = await received(w)
    for role in ("doctor", "billing", "analyst", "patient", "admin"):
        error = await w[role].error(ENTER, id=id, results=results({"K": 4.0}))
        assert code(error) == "FORBIDDEN", role
    create = """mutation($input: CreateLabOrderInput!) { createLabOrder(input: $input) { id } }"""
    order = {"patientId": str(w.patient.id), "testCodes": ["CRP"]}
    for role in ("tech", "billing", "patient", "stranger"):
        assert code(await w[role].error(create, input=order)) == "FORBIDDEN", role
