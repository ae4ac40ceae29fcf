"""Erasure reaches live views: a subscriber watching the erased patient's appointments gets one
``erased`` event per record, showing the pseudonym and no free text, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from models.base import utcnow
from models.scheduling import AppointmentStatus
from services.erasure_plan import ERASED_TEXT
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    TRANSPORT_WS,
    call,
    data,
    metric,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)

EVENTS = """subscription($patientId: ID) {
  appointmentChanged(patientId: $patientId) {
    change appointmentId appointment { id reason status patient { firstName lastName } }
  }
}"""
ERASE = """mutation($id: ID!, $reason: String!) {
  erasePatient(patientId: $id, reason: $reason) { status pseudonym } }"""
FIELD = "appointmentChanged"


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_subscriber_sees_each_record_erased_under_the_pseudonym(client: TestClient) -> None:
    patient = call(client, factories.patient, first_name="Ingrid", last_name="Valtonen")
    past = utcnow() - timedelta(days=30)
    visits = [
        call(
            client,
            factories.appointment,
            patient,
            start=past + timedelta(days=i),
            status=AppointmentStatus.COMPLETED,
            reason=f"Follow-up of Valtonen's migraine {i}",
        )
        for i in range(2)
    ]
    staff = token_for(client.app, roles=["admin", "admin_staff"])
    before = metric(client, open_subscriptions(FIELD))
    with subscriber(client, TRANSPORT_WS, staff) as live:
        live.subscribe("mine", EVENTS, patientId=str(patient.id))
        wait_for_metric(client, open_subscriptions(FIELD), before + 1)

        erased = data(client, staff, ERASE, id=str(patient.id), reason="Art. 17 request")
        assert erased["erasePatient"]["status"] == "DONE"
        pseudonym = erased["erasePatient"]["pseudonym"]

        events = [live.next("mine")["data"][FIELD] for _ in visits]
        assert sorted(e["appointmentId"] for e in events) == sorted(str(v.id) for v in visits)
        for event in events:
            assert event["change"] == "erased"
            shown = event["appointment"]
            assert shown["reason"] == ERASED_TEXT and shown["status"] == "COMPLETED"
            assert shown["patient"]["lastName"] == pseudonym
            assert "Valtonen" not in repr(event) and "Ingrid" not in repr(event)
