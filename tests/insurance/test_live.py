"""Billing dashboards follow the claim cycle live; clinicians cannot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)
from tests.insurance.helpers import ADJUDICATE, CREATE, PAY, SUBMIT, create_input, decide, world

FIELD = "claimChanged"
FOLLOW = """subscription($payerId: ID, $status: ClaimStatus) {
  claimChanged(payerId: $payerId, status: $status) { change claimId claim { status payerId } } }"""


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_billing_dashboard_sees_every_step_of_its_payers_claims(client: TestClient) -> None:
    w = call(client, world)
    other = call(client, world)
    clerk = token_for(client.app, roles=["billing"])
    payer = str(w.payer.id)
    with subscriber(client, TRANSPORT_WS, clerk) as live:
        live.subscribe("all", FOLLOW, payerId=payer)
        live.subscribe("paid", FOLLOW, status="PAID")
        wait_for_metric(client, open_subscriptions(FIELD), 2)
        data(client, clerk, CREATE, input=create_input(other))  # another payer's: not in "all"
        made = data(client, clerk, CREATE, input=create_input(w))["createClaim"]
        data(client, clerk, SUBMIT, id=made["id"])
        approve = decide(made, (7200, 0, None), (4000, 0, None))
        data(client, clerk, ADJUDICATE, id=made["id"], input=approve)
        data(client, clerk, PAY, id=made["id"], amount=11200)
        got: dict[str, list[dict[str, Any]]] = {"all": [], "paid": []}
        for _ in range(5):  # the two subscriptions' messages interleave
            message = live.receive()
            got[message["id"]].append(message["payload"]["data"][FIELD])
        seen = got["all"]
        assert [(e["change"], e["claim"]["status"]) for e in seen] == [
            ("created", "DRAFT"),
            ("submitted", "SUBMITTED"),
            ("adjudicated", "ADJUDICATED"),
            ("insurer_paid", "PAID"),
        ]
        assert {e["claimId"] for e in seen} == {made["id"]}
        assert {e["claim"]["payerId"] for e in seen} == {payer}
        [paid] = got["paid"]
        assert (paid["change"], paid["claimId"]) == ("insurer_paid", made["id"])


def test_clinicians_cannot_follow_claims(client: TestClient) -> None:
    token = token_for(client.app, roles=["doctor"])
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.subscribe("x", FOLLOW)
        message = live.receive()
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
