"""Deactivation takes effect at once: an inactive staff record or a disabled account cannot sign
in or refresh, and tokens already issued are refused (``account_disabled``) on the very next
request, at WebSocket ``connection_init``, and at the next event of a live subscription.

Everything goes over real HTTP (and WebSocket) through the app; deactivation goes through the
GraphQL mutation an administrator would use, or the account service (accounts have no mutation).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import db
from app import create_app
from auth import passwords
from auth import status as auth_status
from auth.roles import Role
from config import Settings
from errors import BadUserInput
from models.accounts import Account
from models.staff import Doctor
from services import accounts
from tests import factories
from tests.conftest import token_for
from tests.events.live import (
    LEGACY_WS,
    PROTOCOLS,
    TRANSPORT_WS,
    call,
    data,
    open_subscriptions,
    subscriber,
    wait_for_metric,
)

PASSWORD = "correct horse battery"
VIEWER = "{ viewer { subject roles staffId departmentId } }"
DOCTOR = "query($id: ID!) { doctor(id: $id) { id lastName active } }"
UPDATE_DOCTOR = """mutation($id: ID!, $input: UpdateDoctorInput!) {
  updateDoctor(id: $id, input: $input) { id active } }"""
EQUIPMENT_EVENTS = """subscription($departmentId: ID) {
  equipmentStatusChanged(departmentId: $departmentId) { change equipmentId }
}"""
STATUS = """mutation($id: ID!, $status: EquipmentStatus!) {
  updateEquipmentStatus(id: $id, status: $status) { status }
}"""


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: these tests are about access, not hashing cost."""
    monkeypatch.setattr(
        passwords, "DEFAULT_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def post(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def ok(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    body = await post(http, token, query, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


async def refused(http: httpx.AsyncClient, token: str, reason: str = "account_disabled") -> None:
    """The token reaches nothing: every field is ``UNAUTHENTICATED`` with ``reason``."""
    body = await post(http, token, VIEWER)
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED", error
    assert error["extensions"]["reason"] == reason, error


async def sign_in(http: httpx.AsyncClient, username: str) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    return await http.post("/oauth/token", data=form)


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    return await http.post("/oauth/token", data=form)


def admin(app: Any) -> str:
    return token_for(app, roles=["admin"])


async def set_doctor_active(
    http: httpx.AsyncClient, app: Any, doctor: Doctor, active: bool
) -> None:
    changed = await ok(http, admin(app), UPDATE_DOCTOR, id=str(doctor.id), input={"active": active})
    assert changed["updateDoctor"] == {"id": str(doctor.id), "active": active}


@pytest.fixture
async def doctor(app: Any) -> Doctor:
    return await factories.doctor()


@pytest.fixture
async def doctor_account(doctor: Doctor) -> Account:
    return await accounts.create_account(unique("dr"), PASSWORD, [Role.DOCTOR], staff_id=doctor.id)


# --- staff deactivated through the API ---


async def test_a_deactivated_doctor_loses_sign_in_refresh_and_issued_tokens(
    app: Any, http: httpx.AsyncClient, doctor: Doctor, doctor_account: Account
) -> None:
    signed_in = await sign_in(http, doctor_account.username)
    assert signed_in.status_code == 200, signed_in.text
    access, refresh_token = signed_in.json()["access_token"], signed_in.json()["refresh_token"]
    viewer = (await ok(http, access, VIEWER))["viewer"]
    assert viewer["staffId"] == str(doctor.id)
    assert (await ok(http, access, DOCTOR, id=str(doctor.id)))["doctor"]["active"] is True

    await set_doctor_active(http, app, doctor, False)

    await refused(http, access)  # the very next request
    body = await post(http, access, DOCTOR, id=str(doctor.id))
    assert body["errors"][0]["extensions"]["reason"] == "account_disabled"
    again = await sign_in(http, doctor_account.username)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    renewed = await refresh(http, refresh_token)
    assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant"


async def test_reactivating_a_doctor_restores_access(
    app: Any, http: httpx.AsyncClient, doctor: Doctor, doctor_account: Account
) -> None:
    access = (await sign_in(http, doctor_account.username)).json()["access_token"]
    await set_doctor_active(http, app, doctor, False)
    await refused(http, access)
    await set_doctor_active(http, app, doctor, True)
    assert (await ok(http, access, VIEWER))["viewer"]["staffId"] == str(doctor.id)
    assert (await sign_in(http, doctor_account.username)).status_code == 200


async def test_tokens_naming_no_account_are_checked_by_their_staff_record(
    app: Any, http: httpx.AsyncClient, doctor: Doctor
) -> None:
    """``shms token`` and the tests sign ``sub``s that name no account: ``sid`` still counts."""
    token = token_for(app, sub="test:staff", roles=["doctor"], sid=str(doctor.id))
    viewer = (await ok(http, token, VIEWER))["viewer"]
    assert viewer["departmentId"] == str(doctor.department_id)  # filled in from the record
    await set_doctor_active(http, app, doctor, False)
    await refused(http, token)
    await set_doctor_active(http, app, doctor, True)
    await ok(http, token, VIEWER)


# --- accounts and service clients disabled ---


async def test_a_disabled_account_loses_sign_in_refresh_and_issued_tokens(
    app: Any, http: httpx.AsyncClient
) -> None:
    user = await accounts.create_account(unique("analyst"), PASSWORD, [Role.ANALYST])
    assert user.id is not None
    signed_in = (await sign_in(http, user.username)).json()
    access = signed_in["access_token"]
    await ok(http, access, VIEWER)

    await accounts.update_account(user.id, active=False)

    await refused(http, access)
    assert (await sign_in(http, user.username)).status_code == 400
    assert (await refresh(http, signed_in["refresh_token"])).status_code == 400
    await accounts.update_account(user.id, active=True)
    await ok(http, access, VIEWER)  # the token is good again; the refresh family is not


async def test_roles_taken_from_an_account_leave_its_tokens_at_once(
    app: Any, http: httpx.AsyncClient
) -> None:
    user = await accounts.create_account(unique("multi"), PASSWORD, [Role.ANALYST, Role.COMPLIANCE])
    assert user.id is not None
    access = (await sign_in(http, user.username)).json()["access_token"]
    assert len((await ok(http, access, VIEWER))["viewer"]["roles"]) == 2
    await accounts.update_account(user.id, roles=[Role.ANALYST])
    roles = (await ok(http, access, VIEWER))["viewer"]["roles"]
    assert [r.lower() for r in roles] == ["analyst"]
    await accounts.update_account(user.id, roles=[Role.ADMIN])  # none of the token's: refused
    await refused(http, access, reason="roles_revoked")


async def test_a_disabled_service_client_loses_its_tokens(
    app: Any, http: httpx.AsyncClient
) -> None:
    client, secret = await accounts.create_service_client(
        unique("dash"), [Role.SERVICE], "Ward dashboard"
    )
    grant = {"grant_type": "client_credentials", "client_id": client.client_id}
    response = await http.post("/oauth/token", data={**grant, "client_secret": secret})
    access = response.json()["access_token"]
    await ok(http, access, VIEWER)
    await accounts.update_service_client(client.client_id, active=False)
    await refused(http, access)
    again = await http.post("/oauth/token", data={**grant, "client_secret": secret})
    assert again.status_code == 401


# --- the cache: cheap on a hit, shared between processes, safe without Redis ---


async def test_a_warm_request_checks_standing_in_one_round_trip_and_no_mongodb_read(
    app: Any, http: httpx.AsyncClient, doctor: Doctor, doctor_account: Account
) -> None:
    statuses: auth_status.StatusCache = app.state.status
    written = [statuses.key(ref) for ref in auth_status.refs_of(doctor_account)]
    await app.state.redis.delete(*written)  # as if the creation's tombstone had expired
    access = (await sign_in(http, doctor_account.username)).json()["access_token"]
    await ok(http, access, VIEWER)  # warms the account's and the doctor's entries
    trips, reads = statuses.round_trips, statuses.mongo_reads
    with db.operations.measure() as ops:
        await ok(http, access, VIEWER)
    assert statuses.round_trips == trips + 1 and statuses.mongo_reads == reads
    assert not {c for c, _ in ops.counts} & {"accounts", "doctors", "nurses", "admin_staff"}


@pytest.fixture
async def two_apps(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Two app instances on one Redis and one namespace, as two server processes would be.

    Beanie binds the documents once per process, so both apps read the same store (the second
    one's): what the pair shares beyond that is Redis, which is what this is about.
    """
    shared = settings.model_copy(update={"shms_cache_namespace": unique("two-apps")})
    first, second = create_app(shared), create_app(shared)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a.test") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b.test") as b,
    ):
        yield a, b


async def test_a_deactivation_through_one_app_is_seen_by_the_other(
    two_apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two_apps
    app_a: Any = a._transport.app  # type: ignore[attr-defined]
    app_b: Any = b._transport.app  # type: ignore[attr-defined]
    doctor = await factories.doctor()
    token = token_for(app_a, sub="test:doctor", roles=["doctor"], sid=str(doctor.id))
    await ok(a, token, VIEWER)
    await ok(b, token, VIEWER)  # served from what A cached
    statuses: auth_status.StatusCache = app_a.state.status
    reads = statuses.mongo_reads
    await ok(a, token, VIEWER)
    assert statuses.mongo_reads == reads  # A now answers from Redis alone...

    await set_doctor_active(b, app_b, doctor, False)  # ...so only Redis can tell A

    await refused(a, token)
    await refused(b, token)


async def test_without_redis_standing_is_read_from_mongodb_never_assumed(
    settings: Settings,
) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    application = create_app(down)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            doctor = await factories.doctor()
            token = token_for(application, sub="test:doctor", roles=["doctor"], sid=str(doctor.id))
            await ok(http, token, VIEWER)
            await set_doctor_active(http, application, doctor, False)
            await refused(http, token)
            await set_doctor_active(http, application, doctor, True)
            await ok(http, token, VIEWER)


# --- WebSocket ---


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def deactivate(client: TestClient, doctor: Doctor) -> None:
    update = {"input": {"active": False}, "id": str(doctor.id)}
    data(client, token_for(client.app, roles=["admin"]), UPDATE_DOCTOR, **update)


def test_connection_init_refuses_a_deactivated_doctors_token(client: TestClient) -> None:
    doctor = call(client, factories.doctor)
    token = token_for(client.app, sub="test:doctor", roles=["doctor"], sid=str(doctor.id))
    with subscriber(client, TRANSPORT_WS, token):
        pass  # accepted while active
    deactivate(client, doctor)
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws,
    ):
        ws.send_json(init)
        ws.receive_json()
    assert closed.value.code == 4403
    with client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        ws.send_json(init)
        error = ws.receive_json()
    assert error["type"] == "connection_error"
    assert error["payload"] == {"code": "UNAUTHENTICATED", "reason": "account_disabled"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_live_subscription_ends_at_its_next_event_once_the_doctor_is_deactivated(
    client: TestClient, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_status, "RECHECK_SECONDS", 0.0)  # every event looks again
    dept = call(client, factories.department)
    device = call(client, factories.equipment, dept)
    doctor = call(client, factories.doctor, dept)
    token = token_for(client.app, sub="test:doctor", roles=["doctor"], sid=str(doctor.id))
    writer = token_for(client.app, roles=["admin", "admin_staff"])
    field = open_subscriptions("equipmentStatusChanged")
    with subscriber(client, protocol, token) as live:
        live.subscribe("board", EQUIPMENT_EVENTS, departmentId=str(dept.id))
        wait_for_metric(client, field, 1)
        data(client, writer, STATUS, id=str(device.id), status="MAINTENANCE")
        assert "errors" not in live.next("board")

        deactivate(client, doctor)
        data(client, writer, STATUS, id=str(device.id), status="AVAILABLE")
        ended = live.next("board")
        assert ended["data"] is None
        (error,) = ended["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["extensions"]["reason"] == "account_disabled"
        live.completed("board")
        wait_for_metric(client, field, 0)


# --- radiologists: doctors' accounts with the radiologist role only ---


@pytest.fixture
async def radiologist(app: Any) -> Doctor:
    radiology = await factories.department(code="RAD", name="Radiology")
    return await factories.doctor(radiology, specialty="Diagnostic Radiology")


async def test_a_deactivated_radiologist_loses_sign_in_refresh_and_issued_tokens(
    app: Any, http: httpx.AsyncClient, radiologist: Doctor
) -> None:
    account = await accounts.create_account(
        unique("rad"), PASSWORD, [Role.RADIOLOGIST], staff_id=radiologist.id
    )
    assert account.department_id == radiologist.department_id
    signed_in = (await sign_in(http, account.username)).json()
    access, refresh_token = signed_in["access_token"], signed_in["refresh_token"]
    viewer = (await ok(http, access, VIEWER))["viewer"]
    assert viewer["staffId"] == str(radiologist.id)
    assert viewer["departmentId"] == str(radiologist.department_id)

    await set_doctor_active(http, app, radiologist, False)

    await refused(http, access)
    assert (await sign_in(http, account.username)).status_code == 400
    assert (await refresh(http, refresh_token)).status_code == 400
    await set_doctor_active(http, app, radiologist, True)
    await ok(http, access, VIEWER)


async def test_a_radiologists_doctor_record_is_checked_whatever_other_roles_they_hold(
    app: Any, http: httpx.AsyncClient, radiologist: Doctor
) -> None:
    """Staff records are looked up in the collections of the token's staff roles: the
    radiologist role must name the doctors' one, or a second role (here the front desk's) would
    hide the deactivated doctor record."""
    token = token_for(
        app, sub="test:rad", roles=["radiologist", "admin_staff"], sid=str(radiologist.id)
    )
    assert (await ok(http, token, VIEWER))["viewer"]["departmentId"] == str(
        radiologist.department_id
    )
    await set_doctor_active(http, app, radiologist, False)
    await refused(http, token)
    # Only where a radiologist's record can be: one key, one collection.
    refs = auth_status.StatusCache._staff_refs([Role.RADIOLOGIST], radiologist.id)
    assert refs == [auth_status.Ref("doctors", str(radiologist.id))]


async def test_a_radiologist_account_must_name_a_doctor(app: Any) -> None:
    """A radiologist is a doctor's account: no account without a doctor record behind it."""
    nurse = await factories.nurse()
    for staff_id, field in ((nurse.id, "staffId"), (None, "staffId")):
        with pytest.raises(BadUserInput) as refused_:
            await accounts.create_account(
                unique("rad"), PASSWORD, [Role.RADIOLOGIST], staff_id=staff_id
            )
        assert field in refused_.value.fields
