"""Subscriptions over WebSocket, both protocols: a write over HTTP reaches the right subscribers,
seen through the same row and field policy as a query, read fresh for every event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from starlette.testclient import TestClient

from app import create_app
from models.audit import AuditEvent
from models.equipment import MedicalEquipment
from models.patients import Patient
from models.staff import Doctor
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    LEGACY_WS,
    PROTOCOLS,
    TIMEOUT,
    TRANSPORT_WS,
    call,
    data,
    metric,
    open_subscriptions,
    scrape,
    subscriber,
    wait_for_metric,
)

EQUIPMENT_EVENTS = """subscription($departmentId: ID, $equipmentId: ID) {
  equipmentStatusChanged(departmentId: $departmentId, equipmentId: $equipmentId) {
    change equipmentId equipment { id name status departmentId department { code } }
  }
}"""
APPOINTMENT_EVENTS = """subscription($doctorId: ID, $patientId: ID, $departmentId: ID) {
  appointmentChanged(doctorId: $doctorId, patientId: $patientId, departmentId: $departmentId) {
    change appointmentId appointment { id status startAt reason patientId }
  }
}"""
STATUS = """mutation($id: ID!, $status: EquipmentStatus!) {
  updateEquipmentStatus(id: $id, status: $status) { status }
}"""
ALLOCATE = """mutation($id: ID!, $departmentId: ID!) {
  allocateEquipment(id: $id, departmentId: $departmentId) { departmentId }
}"""
SCHEDULE = (
    """mutation($input: ScheduleAppointmentInput!) { scheduleAppointment(input: $input) { id } }"""
)
RESCHEDULE = """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $input) { id }
}"""
CANCEL = """mutation($id: ID!) { cancelAppointment(id: $id) { id } }"""
RENAME = """mutation($id: ID!, $input: UpdateDepartmentInput!) {
  updateDepartment(id: $id, input: $input) { code }
}"""
START = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)
EQUIPMENT_FIELD = "equipmentStatusChanged"
APPOINTMENT_FIELD = "appointmentChanged"


@pytest.fixture
def client(settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def staff_token(client: TestClient) -> str:
    """The writer: front desk and equipment manager at once."""
    return token_for(client.app, roles=["admin", "admin_staff"])


def subscribed(client: TestClient, field: str, before: float) -> None:
    wait_for_metric(client, open_subscriptions(field), before + 1)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def book(
    client: TestClient, patient: Patient, doctor: Doctor, hours: int = 0, reason: str = "Check-up"
) -> str:
    start = START + timedelta(hours=hours)
    booking = {
        "patientId": str(patient.id),
        "doctorId": str(doctor.id),
        "startAt": iso(start),
        "endAt": iso(start + timedelta(minutes=30)),
        "reason": reason,
    }
    booked = data(client, staff_token(client), SCHEDULE, input=booking)
    return str(booked["scheduleAppointment"]["id"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_equipment_writes_reach_a_department_subscriber(client: TestClient, protocol: str) -> None:
    icu = call(client, factories.department, code="ICU")
    ward = call(client, factories.department, code="WARD")
    device = call(client, factories.equipment, icu, name="Ventilator 1")
    before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
    with subscriber(client, protocol, token_for(client.app, roles=["nurse"])) as live:
        live.subscribe("icu", EQUIPMENT_EVENTS, departmentId=str(icu.id))
        subscribed(client, EQUIPMENT_FIELD, before)

        data(client, staff_token(client), STATUS, id=str(device.id), status="MAINTENANCE")
        event = live.next("icu")
        assert "errors" not in event
        changed = event["data"]["equipmentStatusChanged"]
        assert changed["change"] == "status_changed"
        assert changed["equipmentId"] == str(device.id)
        assert changed["equipment"]["status"] == "MAINTENANCE"
        assert changed["equipment"]["department"] == {"code": "ICU"}

        # A move out of the department still reaches its board, showing where the device went.
        data(client, staff_token(client), ALLOCATE, id=str(device.id), departmentId=str(ward.id))
        moved = live.next("icu")["data"]["equipmentStatusChanged"]
        assert moved["change"] == "allocated"
        assert moved["equipment"]["departmentId"] == str(ward.id)
        assert moved["equipment"]["department"] == {"code": "WARD"}

        live.stop("icu")
        if protocol != TRANSPORT_WS:  # only the legacy protocol confirms a stop
            live.completed("icu")
        wait_for_metric(client, open_subscriptions(EQUIPMENT_FIELD), before)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_appointment_changes_carry_the_change_and_the_appointment(
    client: TestClient, protocol: str
) -> None:
    doctor = call(client, factories.doctor)
    patient = call(client, factories.patient)
    before = metric(client, open_subscriptions(APPOINTMENT_FIELD))
    with subscriber(client, protocol, staff_token(client)) as live:
        live.subscribe("mine", APPOINTMENT_EVENTS, doctorId=str(doctor.id))
        subscribed(client, APPOINTMENT_FIELD, before)

        id = book(client, patient, doctor, reason="Annual check-up")
        created = live.next("mine")["data"]["appointmentChanged"]
        assert created["change"] == "created"
        assert created["appointment"]["id"] == id == created["appointmentId"]
        assert created["appointment"]["reason"] == "Annual check-up"
        assert created["appointment"]["status"] == "SCHEDULED"

        later = START + timedelta(days=1)
        moved = {"startAt": iso(later), "endAt": iso(later + timedelta(minutes=30))}
        data(client, staff_token(client), RESCHEDULE, id=id, input=moved)
        rescheduled = live.next("mine")["data"]["appointmentChanged"]
        assert rescheduled["change"] == "rescheduled"
        assert rescheduled["appointment"]["startAt"] == later.isoformat()

        data(client, staff_token(client), CANCEL, id=id)
        cancelled = live.next("mine")["data"]["appointmentChanged"]
        assert (cancelled["change"], cancelled["appointment"]["status"]) == (
            "cancelled",
            "CANCELLED",
        )


def test_filters_pass_only_what_was_asked_for(client: TestClient) -> None:
    dept = call(client, factories.department)
    watched = call(client, factories.equipment, dept)
    other = call(client, factories.equipment, dept)
    doctor, other_doctor, third_doctor = (call(client, factories.doctor) for _ in range(3))
    patient = call(client, factories.patient)
    staff = staff_token(client)
    eq_before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
    ap_before = metric(client, open_subscriptions(APPOINTMENT_FIELD))
    with subscriber(client, TRANSPORT_WS, staff) as live:
        live.subscribe("device", EQUIPMENT_EVENTS, equipmentId=str(watched.id))
        live.subscribe("doctor", APPOINTMENT_EVENTS, doctorId=str(doctor.id))
        live.subscribe("patient", APPOINTMENT_EVENTS, patientId=str(patient.id))
        live.subscribe("dept", APPOINTMENT_EVENTS, departmentId=str(third_doctor.department_id))
        subscribed(client, EQUIPMENT_FIELD, eq_before)
        wait_for_metric(client, open_subscriptions(APPOINTMENT_FIELD), ap_before + 3)

        data(client, staff, STATUS, id=str(other.id), status="IN_USE")
        data(client, staff, STATUS, id=str(watched.id), status="IN_USE")
        event = live.next("device")["data"]["equipmentStatusChanged"]
        assert event["equipmentId"] == str(watched.id)  # the other device's event was skipped

        a = book(client, patient, other_doctor, hours=1)
        b = book(client, call(client, factories.patient), doctor, hours=2)
        c = book(client, call(client, factories.patient), third_doctor, hours=3)
        d = book(client, patient, doctor, hours=4)
        received: dict[str, list[str]] = {}
        for _ in range(5):  # a: patient; b: doctor; c: dept; d: patient and doctor
            message = live.receive()
            changed = message["payload"]["data"]["appointmentChanged"]
            received.setdefault(message["id"], []).append(changed["appointmentId"])
        assert received == {"patient": [a, d], "doctor": [b, d], "dept": [c]}


def test_rows_the_subscriber_may_not_see_are_skipped_and_audited(client: TestClient) -> None:
    doctor = call(client, factories.doctor)
    me, someone_else = call(client, factories.patient), call(client, factories.patient)
    token = token_for(client.app, sub="patient:me", roles=["patient"], pid=str(me.id))
    before = metric(client, open_subscriptions(APPOINTMENT_FIELD))
    denied_before = metric(
        client, f'shms_subscription_events_denied_total{{field="{APPOINTMENT_FIELD}"}}'
    )
    with subscriber(client, TRANSPORT_WS, token) as live:
        live.subscribe("mine", APPOINTMENT_EVENTS)
        subscribed(client, APPOINTMENT_FIELD, before)

        theirs = book(client, someone_else, doctor, hours=1, reason="Private matter")
        mine = book(client, me, doctor, hours=2)
        event = live.next("mine")["data"]["appointmentChanged"]
        assert event["appointmentId"] == mine  # the other patient's booking never arrived
        assert "Private matter" not in live.last_raw

    denied = f'shms_subscription_events_denied_total{{field="{APPOINTMENT_FIELD}"}}'
    assert metric(client, denied) == denied_before + 1
    trail = call(client, AuditEvent.find({"actor_subject": "patient:me"}).to_list)
    outcomes = {(e.entity_id, e.outcome.value, e.action.value) for e in trail}
    assert (ObjectId(theirs), "denied", "read") in outcomes
    assert (ObjectId(mine), "allowed", "read") in outcomes
    read = next(e for e in trail if e.entity_id == ObjectId(mine))
    assert read.operation == APPOINTMENT_FIELD and "reason" in read.fields


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_field_the_subscriber_may_not_query_is_null_and_forbidden(
    client: TestClient, protocol: str
) -> None:
    doctor = call(client, factories.doctor)
    patient = call(client, factories.patient)
    analyst = token_for(client.app, roles=["service"])
    before = metric(client, open_subscriptions(APPOINTMENT_FIELD))
    with subscriber(client, protocol, analyst) as live:
        live.subscribe("stats", APPOINTMENT_EVENTS)
        subscribed(client, APPOINTMENT_FIELD, before)

        book(client, patient, doctor, reason="Sensitive reason")
        event = live.next("stats")
        appointment = event["data"]["appointmentChanged"]["appointment"]
        assert appointment["status"] == "SCHEDULED"  # the row itself is visible to machine clients
        assert appointment["reason"] is None and appointment["patientId"] is None
        errors = {tuple(e["path"][-1:]): e["extensions"]["code"] for e in event["errors"]}
        assert errors == {("reason",): "FORBIDDEN", ("patientId",): "FORBIDDEN"}
        assert "Sensitive reason" not in live.last_raw
        assert str(patient.id) not in live.last_raw


def test_every_event_is_read_fresh(client: TestClient) -> None:
    dept = call(client, factories.department, code="LAB", name="Laboratory")
    device = call(client, factories.equipment, dept)
    staff = staff_token(client)
    before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
    with subscriber(client, TRANSPORT_WS, staff) as live:
        live.subscribe("lab", EQUIPMENT_EVENTS, equipmentId=str(device.id))
        subscribed(client, EQUIPMENT_FIELD, before)

        data(client, staff, STATUS, id=str(device.id), status="IN_USE")
        first = live.next("lab")["data"]["equipmentStatusChanged"]["equipment"]
        assert first["status"] == "IN_USE"

        # A change the event does not name: only a fresh loader can show it.
        data(client, staff, RENAME, id=str(dept.id), input={"code": "LB2"})
        data(client, staff, STATUS, id=str(device.id), status="AVAILABLE")
        second = live.next("lab")["data"]["equipmentStatusChanged"]["equipment"]
        assert second["status"] == "AVAILABLE"
        assert second["department"] == {"code": "LB2"}


def test_subscribing_without_any_equipment_grant_is_forbidden(client: TestClient) -> None:
    with subscriber(client, TRANSPORT_WS, token_for(client.app, roles=["compliance"])) as live:
        live.subscribe("x", EQUIPMENT_EVENTS)
        refused = live.next("x")
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        live.completed("x")


def test_metrics_follow_events_and_subscriptions(client: TestClient) -> None:
    device = call(client, factories.equipment)
    published = 'shms_events_published_total{entity="equipment"}'
    delivered = 'shms_events_delivered_total{entity="equipment"}'
    counts = {name: metric(client, name) for name in (published, delivered)}
    before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
    with subscriber(client, TRANSPORT_WS, staff_token(client)) as live:
        live.subscribe("all", EQUIPMENT_EVENTS)
        subscribed(client, EQUIPMENT_FIELD, before)
        data(client, staff_token(client), STATUS, id=str(device.id), status="IN_USE")
        live.next("all")
        assert metric(client, published) == counts[published] + 1
        assert metric(client, delivered) >= counts[delivered] + 1
    wait_for_metric(client, open_subscriptions(EQUIPMENT_FIELD), before)  # closed with the socket
    text = scrape(client).text
    assert "# TYPE shms_subscriptions_open gauge" in text
    assert "# TYPE shms_document_cache_total counter" in text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shutdown_completes_open_subscriptions(client: TestClient, protocol: str) -> None:
    before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
    with subscriber(client, protocol, staff_token(client)) as live:
        live.subscribe("board", EQUIPMENT_EVENTS)
        subscribed(client, EQUIPMENT_FIELD, before)
        bus = client.app.state.bus  # type: ignore[attr-defined]
        call(client, bus.aclose)  # what the lifespan does first on shutdown
        live.completed("board")
    wait_for_metric(client, open_subscriptions(EQUIPMENT_FIELD), before)


def test_live_status_is_in_step_after_writes_over_the_socket_app(client: TestClient) -> None:
    """The same app that serves subscriptions keeps the status board in Redis."""
    dept = call(client, factories.department)
    device = call(client, factories.equipment, dept)
    data(client, staff_token(client), STATUS, id=str(device.id), status="MAINTENANCE")
    board = data(
        client,
        staff_token(client),
        "query($d: ID!) { departmentEquipmentStatus(departmentId: $d) { id status } }",
        d=str(dept.id),
    )
    assert board["departmentEquipmentStatus"] == [{"id": str(device.id), "status": "MAINTENANCE"}]
    stored = call(client, MedicalEquipment.get, device.id)
    assert stored is not None and stored.status.value == "maintenance"


def test_the_embedded_default_delivers_in_process(settings: Any) -> None:
    """With no REDIS_URL (fakeredis), the in-process bus serves the same subscriptions."""
    embedded = settings.model_copy(update={"redis_url": ""})
    with TestClient(create_app(embedded)) as client:
        assert type(client.app.state.bus).__name__ == "LocalBus"  # type: ignore[attr-defined]
        device = call(client, factories.equipment)
        before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
        with subscriber(client, LEGACY_WS, staff_token(client)) as live:
            live.subscribe("all", EQUIPMENT_EVENTS, equipmentId=str(device.id))
            subscribed(client, EQUIPMENT_FIELD, before)
            data(client, staff_token(client), STATUS, id=str(device.id), status="IN_USE")
            event = live.next("all")["data"]["equipmentStatusChanged"]
            assert (event["change"], event["equipment"]["status"]) == ("status_changed", "IN_USE")


def test_subscribers_who_view_an_event_alike_share_one_load_check_and_audit(
    client: TestClient,
) -> None:
    """One patient watching their appointments on three screens (same token and address):
    the event's row is loaded, judged and executed once and audited once; a screen asking
    other fields gets its own execution; another viewer is judged on their own."""
    doctor = call(client, factories.doctor)
    me, other = call(client, factories.patient), call(client, factories.patient)
    token = token_for(client.app, sub="patient:screens", roles=["patient"], pid=str(me.id))
    stranger = token_for(client.app, sub="patient:other", roles=["patient"], pid=str(other.id))
    narrow = "subscription { appointmentChanged { appointmentId appointment { status } } }"
    before = metric(client, open_subscriptions(APPOINTMENT_FIELD))
    with (
        subscriber(client, TRANSPORT_WS, token) as live,
        subscriber(client, TRANSPORT_WS, stranger) as theirs,
    ):
        for screen in ("a", "b"):
            live.subscribe(screen, APPOINTMENT_EVENTS)
        live.subscribe("narrow", narrow)
        theirs.subscribe("x", APPOINTMENT_EVENTS)
        subscribed(client, APPOINTMENT_FIELD, before + 3)

        booked = book(client, me, doctor, hours=3, reason="Screens")
        answers = {}
        for _ in range(3):
            message = live.receive()
            answers[message["id"]] = message["payload"]
        assert answers["a"] == answers["b"]
        assert answers["a"]["data"]["appointmentChanged"]["appointment"]["reason"] == "Screens"
        assert answers["narrow"]["data"]["appointmentChanged"] == {
            "appointmentId": booked,
            "appointment": {"status": "SCHEDULED"},
        }

    # The stranger is sent nothing, so nothing says when their copy of the event was judged:
    # wait (bounded) for its refusal to reach the trail before reading it.
    deadline = time.monotonic() + TIMEOUT
    while True:
        query = AuditEvent.find({"entity_ids": ObjectId(booked), "action": "read"})
        trail = call(client, query.to_list)
        if any(e.actor_subject == "patient:other" for e in trail):
            break
        assert time.monotonic() < deadline, "the stranger's refusal was never audited"
    mine = [e for e in trail if e.actor_subject == "patient:screens"]
    assert [e.outcome.value for e in mine] == ["allowed", "allowed"]  # two selections, not three
    assert sorted(tuple(e.fields) for e in mine) == [
        ("id", "patientId", "reason", "startAt", "status"),  # screens a and b: one execution
        ("status",),  # the narrow screen's own
    ]
    refused = [e for e in trail if e.actor_subject == "patient:other"]
    assert [e.outcome.value for e in refused] == ["denied"]


def test_a_subscriber_too_far_behind_is_disconnected_with_4429(settings: Any) -> None:
    from starlette.websockets import WebSocketDisconnect

    from events.types import DomainEvent

    slow = settings.model_copy(update={"shms_event_queue_size": 2})
    with TestClient(create_app(slow)) as client:
        device = call(client, factories.equipment)
        before = metric(client, open_subscriptions(EQUIPMENT_FIELD))
        with subscriber(client, TRANSPORT_WS, staff_token(client)) as live:
            live.subscribe("all", EQUIPMENT_EVENTS)
            subscribed(client, EQUIPMENT_FIELD, before)

            async def burst() -> None:
                app: Any = client.app
                bus = app.state.bus
                for _ in range(4):  # offered at once: the subscriber cannot have read any
                    bus._deliver(DomainEvent("equipment", str(device.id), "status_changed"))

            call(client, burst)
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(5):
                    live.receive()
            assert closed.value.code == 4429 and closed.value.reason == "slow_consumer"
        assert metric(client, f'shms_subscribers_dropped_total{{field="{EQUIPMENT_FIELD}"}}') == 1
