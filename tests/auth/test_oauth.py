"""The token endpoint over HTTP: each grant, refresh rotation, throttling and the issuer documents.

Throttle counters live in the real test Redis and outlive a test, so every test signs in as
its own unique usernames from its own unique client address.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from auth import oauth
from auth.oauth import LoginThrottle
from auth.roles import Role
from auth.tokens import TokenService
from config import Settings
from demo import ids, seed_demo
from demo.accounts import DEMO_ACCOUNTS, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, seed_accounts
from models.accounts import Account, RefreshToken
from models.departments import Department
from models.staff import AdminDuty, AdminStaff, Doctor
from services import accounts
from tests.conftest import random_address

pytestmark = pytest.mark.usefixtures("fast_hashing")

PASSWORD = "correct horse battery"
Client = Callable[..., httpx.AsyncClient]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def user(app: Any) -> Account:
    return await accounts.create_account(unique("user"), PASSWORD, [Role.ANALYST])


async def password_grant(
    client: httpx.AsyncClient, username: str, password: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password, **extra}
    return await client.post("/oauth/token", data=form)


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


# --- password grant ---


async def test_password_grant_issues_a_verifiable_token(
    app: Any, client_from: Client, settings: Settings
) -> None:
    department = await Department(name="Cardiology", code="CARD").insert()
    doctor = await Doctor(
        first_name="Ada",
        last_name="Lovelace",
        department_id=department.id,
        specialty="Cardiology",
        licence_number=unique("MD"),
    ).insert()
    account = await accounts.create_account(
        unique("Dr.Ada"), PASSWORD, [Role.DOCTOR], staff_id=doctor.id
    )
    response = await password_grant(client_from(), account.username.upper(), PASSWORD, scope="x")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.shms_access_token_ttl_seconds
    assert body["refresh_token"] and set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
    }
    claims = await app.state.tokens.verify(body["access_token"])
    assert claims["sub"] == str(account.id) and claims["roles"] == ["doctor"]
    assert claims["sid"] == str(doctor.id) and claims["did"] == str(department.id)
    assert "pid" not in claims
    assert claims["iss"] == settings.shms_jwt_issuer and claims["aud"] == "shms"


async def test_wrong_unknown_and_inactive_users_get_the_same_answer(
    app: Any, client_from: Client, user: Account
) -> None:
    client = client_from()
    wrong = await password_grant(client, user.username, "not the password")
    unknown = await password_grant(client, unique("nobody"), PASSWORD)
    await Account.get_motor_collection().update_one({"_id": user.id}, {"$set": {"active": False}})
    inactive = await password_grant(client, user.username, PASSWORD)
    for response in (wrong, unknown, inactive):
        assert_oauth_error(response, 400, "invalid_grant")
    assert wrong.json() == unknown.json() == inactive.json()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "someone"}, "invalid_request"),
        ({"grant_type": "password", "username": "", "password": "x"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
async def test_malformed_requests(client_from: Client, form: dict[str, str], error: str) -> None:
    response = await client_from().post("/oauth/token", data=form)
    assert_oauth_error(response, 400, error)


async def test_only_urlencoded_posts_are_accepted(client_from: Client) -> None:
    client = client_from()
    as_json = await client.post("/oauth/token", json={"grant_type": "password"})
    assert_oauth_error(as_json, 400, "invalid_request")
    repeated = await client.post(
        "/oauth/token",
        content="grant_type=password&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(repeated, 400, "invalid_request")
    assert (await client.get("/oauth/token")).status_code == 405


# --- client credentials ---


@pytest.fixture
async def service_client(app: Any) -> tuple[str, str]:
    client, secret = await accounts.create_service_client(
        unique("dash"), [Role.SERVICE], "Ward dashboard"
    )
    return client.client_id, secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {encoded}"}


async def test_client_credentials_by_basic_auth_or_form(
    app: Any, client_from: Client, service_client: tuple[str, str]
) -> None:
    client_id, secret = service_client
    client = client_from()
    by_header = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    by_form = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    for response in (by_header, by_form):
        assert response.status_code == 200, response.text
        body = response.json()
        assert "refresh_token" not in body and response.headers["cache-control"] == "no-store"
        claims = await app.state.tokens.verify(body["access_token"])
        assert claims["sub"] == f"client:{client_id}" and claims["roles"] == ["service"]
        assert claims["client_id"] == client_id


async def test_bad_client_authentication(
    client_from: Client, service_client: tuple[str, str]
) -> None:
    client_id, secret = service_client
    client = client_from()
    grant = {"grant_type": "client_credentials"}
    for response in (
        await client.post("/oauth/token", data=grant, headers=basic(client_id, "wrong")),
        await client.post("/oauth/token", data=grant, headers=basic(unique("ghost"), secret)),
        await client.post("/oauth/token", data=grant),
        await client.post("/oauth/token", data=grant, headers={"authorization": "Basic !!"}),
        await client.post("/oauth/token", data=grant, headers={"authorization": "Bearer x"}),
    ):
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")
    both = await client.post(
        "/oauth/token",
        data={**grant, "client_secret": secret},
        headers=basic(client_id, secret),
    )
    assert_oauth_error(both, 400, "invalid_request")


# --- refresh tokens ---


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


async def test_refresh_rotates_and_reuse_revokes_the_family(
    app: Any, client_from: Client, user: Account
) -> None:
    client = client_from()
    first = (await password_grant(client, user.username, PASSWORD)).json()
    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    claims = await app.state.tokens.verify(rotated["access_token"])
    assert claims["sub"] == str(user.id)

    # The old token again: theft or replay. It fails, and so does the family's newest token.
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(await refresh(client, rotated["refresh_token"]), 400, "invalid_grant")
    stored = await RefreshToken.find({"account_id": user.id}).to_list()
    assert len(stored) == 2 and all(t.revoked for t in stored)
    assert all(len(t.token_hash) == 64 for t in stored)  # only hashes are stored

    # A fresh sign-in starts a new, unaffected family.
    fresh = (await password_grant(client, user.username, PASSWORD)).json()
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_a_refresh_token_wins_only_once_under_concurrency(
    client_from: Client, user: Account
) -> None:
    client = client_from()
    token = (await password_grant(client, user.username, PASSWORD)).json()["refresh_token"]
    responses = await asyncio.gather(*(refresh(client, token) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] + [400] * 7


async def test_unknown_refresh_tokens_and_inactive_accounts_are_refused(
    client_from: Client, user: Account
) -> None:
    client = client_from()
    assert_oauth_error(await refresh(client, "made-up"), 400, "invalid_grant")
    token = (await password_grant(client, user.username, PASSWORD)).json()["refresh_token"]
    await Account.get_motor_collection().update_one({"_id": user.id}, {"$set": {"active": False}})
    assert_oauth_error(await refresh(client, token), 400, "invalid_grant")


# --- lock-out ---


async def test_failures_from_any_address_slow_an_account_down_briefly(
    client_from: Client, user: Account, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a lock-out: the account's next attempt waits seconds (tests/security has more)."""
    monkeypatch.setattr(oauth, "clock", lambda: 1_000_000.0)  # time stands still
    for _ in range(settings.shms_login_backoff_after):
        response = await password_grant(client_from(), user.username, "guess")
        assert_oauth_error(response, 400, "invalid_grant")
    slowed = await password_grant(client_from(), user.username, PASSWORD)
    assert_oauth_error(slowed, 429, "temporarily_unavailable")
    retry_after = int(slowed.headers["retry-after"])
    assert 0 < retry_after <= settings.shms_login_backoff_max_seconds


async def test_an_address_locks_after_too_many_failures_on_any_account(
    app: Any, client_from: Client, settings: Settings
) -> None:
    address = random_address()
    for _ in range(settings.shms_login_address_max_failures):
        response = await password_grant(client_from(address), unique("nobody"), "guess")
        assert_oauth_error(response, 400, "invalid_grant")
    other = await accounts.create_account(unique("user"), PASSWORD, [Role.ANALYST])
    locked = await password_grant(client_from(address), other.username, PASSWORD)
    assert_oauth_error(locked, 429, "temporarily_unavailable")
    assert (await password_grant(client_from(), other.username, PASSWORD)).status_code == 200


async def test_a_success_clears_the_accounts_failures(
    client_from: Client, user: Account, settings: Settings
) -> None:
    for _ in range(2):
        for _ in range(settings.shms_login_backoff_after - 1):
            await password_grant(client_from(), user.username, "guess")
        assert (await password_grant(client_from(), user.username, PASSWORD)).status_code == 200


async def test_concurrent_guesses_cannot_exceed_the_limit(
    client_from: Client, user: Account, settings: Settings
) -> None:
    client = client_from()
    responses = await asyncio.gather(
        *(password_grant(client, user.username, f"guess {n}") for n in range(20))
    )
    codes = [r.status_code for r in responses]
    assert codes.count(400) == settings.shms_login_max_failures
    assert codes.count(429) == 20 - settings.shms_login_max_failures


async def test_successful_sign_ins_do_not_use_up_an_address(
    app: Any, client_from: Client, user: Account, settings: Settings
) -> None:
    address = random_address()
    for _ in range(settings.shms_login_max_failures + 3):
        response = await password_grant(client_from(address), user.username, PASSWORD)
        assert response.status_code == 200
    keys = LoginThrottle(app.state.redis, settings).keys(user.username, address)
    assert await app.state.redis.exists(keys.pair, keys.address, keys.account, keys.gate) == 0
    assert await app.state.redis.exists(keys.known) == 1  # only: this address is the owner's


@pytest.fixture
def redis_down(settings: Settings) -> Settings:
    return settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})


async def test_sign_in_is_refused_when_redis_is_down(redis_down: Settings) -> None:
    """Lock-out state fails closed: no Redis, no password sign-in (other grants still work)."""
    from app import create_app

    application = create_app(redis_down)
    async with application.router.lifespan_context(application):
        user = await accounts.create_account(unique("user"), PASSWORD, [Role.ANALYST])
        client_id = unique("dash")
        _, secret = await accounts.create_service_client(client_id, [Role.SERVICE], "Dash")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            response = await password_grant(http, user.username, PASSWORD)
            assert_oauth_error(response, 503, "temporarily_unavailable")
            machine = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers=basic(client_id, secret),
            )
            assert machine.status_code == 200


# --- issuer documents ---


async def test_jwks_publishes_the_public_key_of_issued_tokens(
    app: Any, http: httpx.AsyncClient, client_from: Client, user: Account
) -> None:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    token = (await password_grant(client_from(), user.username, PASSWORD)).json()["access_token"]
    header = token.split(".")[0]
    assert key["kid"] in base64.urlsafe_b64decode(header + "==").decode()


async def test_discovery_document(app: Any, http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == settings.shms_jwt_issuer
    assert document["jwks_uri"] == "http://shms.test/.well-known/jwks.json"
    assert document["token_endpoint"] == "http://shms.test/oauth/token"
    assert set(document["grant_types_supported"]) == {
        "password",
        "client_credentials",
        "refresh_token",
    }
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


async def test_with_an_external_idp_shms_issues_nothing(settings: Settings) -> None:
    from app import create_app

    oidc = settings.model_copy(update={"shms_oidc_jwks_url": "https://idp.test/jwks"})
    application = create_app(oidc)
    async with application.router.lifespan_context(application):
        assert isinstance(application.state.tokens, TokenService)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            assert (await http.get("/.well-known/jwks.json")).status_code == 404
            assert (await http.get("/.well-known/openid-configuration")).status_code == 404
            response = await http.post("/oauth/token", data={"grant_type": "password"})
            assert_oauth_error(response, 400, "unsupported_grant_type")


# --- the demo accounts ---


async def test_every_demo_account_signs_in_with_its_links(app: Any, client_from: Client) -> None:
    await seed_demo(3)
    expected = {
        "admin": ("admin", {}),
        "doctor": ("doctor", {"sid": ids.doctor_id(1), "did": ids.department_id(1)}),
        "nurse": ("nurse", {"sid": ids.nurse_id(1), "did": ids.department_id(1)}),
        "frontdesk": (
            "admin_staff",
            {"sid": ids.admin_staff_id(1), "did": ids.department_id(1)},
        ),
        "billing": ("billing", {"sid": ids.admin_staff_id(8), "did": ids.department_id(4)}),
        "patient": ("patient", {"pid": ids.patient_id(1)}),
        "analyst": ("analyst", {}),
        "compliance": ("compliance", {}),
        "labtech": ("lab_technician", {}),
        "radiologist": ("radiologist", {"sid": ids.doctor_id(8), "did": ids.department_id(3)}),
        "pharmacist": ("pharmacist", {}),
        "pharmacist2": ("pharmacist", {}),
        "storekeeper": ("storekeeper", {}),
    }
    assert [spec.username for spec in DEMO_ACCOUNTS] == list(expected)
    for spec in DEMO_ACCOUNTS:
        response = await password_grant(client_from(), spec.username, spec.password)
        assert response.status_code == 200, (spec.username, response.text)
        claims = await app.state.tokens.verify(response.json()["access_token"])
        role, links = expected[spec.username]
        assert claims["roles"] == [role]
        assert {k: claims[k] for k in ("pid", "sid", "did") if k in claims} == {
            k: str(v) for k, v in links.items()
        }
    front_desk = await AdminStaff.get(ids.admin_staff_id(1))
    billing = await AdminStaff.get(ids.admin_staff_id(8))
    assert front_desk is not None and AdminDuty.FRONT_DESK in front_desk.duties
    assert billing is not None and AdminDuty.BILLING in billing.duties

    dashboard = await client_from().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert dashboard.status_code == 200
    claims = await app.state.tokens.verify(dashboard.json()["access_token"])
    assert claims["sub"] == "client:dashboard" and claims["roles"] == ["service"]
    assert await seed_accounts() == 0  # re-seeding keeps what exists
