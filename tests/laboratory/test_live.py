"""The ordering doctor hears of a critical result at once, over a live subscription."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from demo.laboratory import seed_catalogue
from models.patients import Sex
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)
from tests.laboratory.world import COLLECT, CREATE, ENTER, RECEIVE, results

CRITICAL = """subscription {
  labResultEntered(criticalOnly: true) {
    change resultId result { analyteCode value flag critical orderId }
  }
}"""
FIELD = "labResultEntered"


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_critical_result_reaches_the_ordering_doctor_live(client: TestClient) -> None:
    call(client, seed_catalogue)
    dept = call(client, factories.department)
    doctor = call(client, factories.doctor, dept)
    patient = call(
        client, factories.patient, clinician_access=False, sex=Sex.FEMALE,
        date_of_birth=date(1990, 2, 2),
    )  # fmt: skip
    call(client, factories.appointment, patient, doctor)
    mine = token_for(client.app, roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    tech = token_for(client.app, sub="lab:tech-1", roles=["lab_technician"])
    order = data(client, mine, CREATE, input={"patientId": str(patient.id), "testCodes": ["BMP"]})
    id = order["createLabOrder"]["id"]
    samples = data(client, tech, COLLECT, id=id)["collectLabSamples"]["samples"]["nodes"]
    data(client, tech, RECEIVE, id=samples[0]["id"])
    with subscriber(client, TRANSPORT_WS, mine) as live:
        live.subscribe("critical", CRITICAL)
        wait_for_metric(client, open_subscriptions(FIELD), 1)
        data(client, tech, ENTER, id=id, results=results({"NA": 139, "K": 2.2}))
        event = live.next("critical")
        assert "errors" not in event, event
        got = event["data"][FIELD]
        assert got["change"] == "entered"
        assert got["result"] == {
            "analyteCode": "K",
            "value": 2.2,
            "flag": "CRITICAL_LOW",
            "critical": True,
            "orderId": id,
        }


def test_patients_billing_and_analysts_cannot_follow_results(client: TestClient) -> None:
    for roles in (["patient"], ["billing"], ["analyst"]):
        token = token_for(client.app, roles=roles)
        with subscriber(client, TRANSPORT_WS, token) as live:
            live.subscribe("x", CRITICAL)
            message = live.receive()
            assert message["type"] in ("error", "next"), message
            errors = (
                message["payload"]
                if message["type"] == "error"
                else message["payload"].get("errors")
            )
            assert errors and errors[0]["extensions"]["code"] == "FORBIDDEN", (roles, message)
