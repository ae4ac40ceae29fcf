"""An external OpenID Connect provider, end to end over real HTTP.

The provider is a real HTTP server on 127.0.0.1 (a random port) serving a JWKS of keys made
with joserfc; SHMS fetches it with its own client. Time, for the key cache, is a controllable
clock: no test sleeps. Requests to SHMS go through the app's HTTP interface.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

import cli
import config
import db
from app import create_app
from auth.identity import claim_at, provider_roles
from auth.keys import RemoteJWKS
from auth.roles import Role
from auth.tokens import TokenService
from config import Settings
from errors import Unauthenticated
from models.accounts import Account
from services import accounts, staff
from tests import factories
from tests.conftest import TEST_MONGODB_URL

ISSUER = "https://idp.test/realms/shms"
AUDIENCE = "shms"
REFRESH = 300.0
MAX_AGE = 3600.0
UNKNOWN_KID_INTERVAL = 5.0


# -- the provider ------------------------------------------------------------------------------


def new_key(kind: str = "EC") -> ECKey | RSAKey:
    if kind == "RSA":
        return RSAKey.generate_key(2048, {"alg": "RS256", "use": "sig"}, auto_kid=True)
    return ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"}, auto_kid=True)


class LocalIdP:
    """A JWKS endpoint over real HTTP; ``keys`` is what it publishes, ``requests`` how often it
    was asked, ``stop()`` takes it down (connections are refused from then on)."""

    def __init__(self) -> None:
        self.keys: list[ECKey | RSAKey] = [new_key()]
        self.requests = 0
        self._lock = threading.Lock()
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with idp._lock:
                    idp.requests += 1
                    document = {"keys": [k.as_dict(private=False) for k in idp.keys]}
                body = json.dumps(document).encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def rotate(self) -> ECKey | RSAKey:
        key = new_key()
        with self._lock:
            self.keys.append(key)
        return key

    def remove(self, key: ECKey | RSAKey) -> None:
        with self._lock:
            self.keys.remove(key)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp() -> Iterator[LocalIdP]:
    provider = LocalIdP()
    yield provider
    provider.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def sign(key: ECKey | RSAKey, kid: str | None = None, /, **claims: object) -> str:
    """A token as the provider would issue it (``kid`` overrides the key's own)."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
    alg = "RS256" if isinstance(key, RSAKey) else "ES256"
    header = {"alg": alg, "kid": kid or key.kid, "typ": "JWT"}
    return jwt.encode(header, payload, key, algorithms=[alg])


def idp_settings(settings: Settings, idp: LocalIdP, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "shms_oidc_jwks_url": idp.url,
            "shms_jwt_issuer": ISSUER,
            "shms_jwt_audience": AUDIENCE,
            "shms_oidc_jwks_refresh_seconds": REFRESH,
            "shms_oidc_jwks_max_age_seconds": MAX_AGE,
            "shms_oidc_jwks_unknown_kid_seconds": UNKNOWN_KID_INTERVAL,
            **changes,
        }
    )


def verifier(settings: Settings, idp: LocalIdP, clock: Clock) -> TokenService:
    configured = idp_settings(settings, idp)
    keys = RemoteJWKS(
        idp.url, algorithms=configured.jwt_algorithms, settings=configured, clock=clock
    )
    return TokenService(configured, keys)


async def reason(service: TokenService, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        await service.verify(token)
    found: str = refused.value.extensions["reason"]
    return found


# -- SHMS, configured for the provider ---------------------------------------------------------


@dataclass
class Api:
    app: Any
    http: httpx.AsyncClient

    async def call(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.call(token, query, **variables)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def refusal(self, token: str, query: str, **variables: Any) -> tuple[str, str | None]:
        """(code, reason) of the first error of a request that must fail."""
        body = await self.call(token, query, **variables)
        assert body.get("errors"), body
        extensions = body["errors"][0]["extensions"]
        return extensions["code"], extensions.get("reason")


@asynccontextmanager
async def shms(
    settings: Settings, idp: LocalIdP, clock: Clock, **changes: Any
) -> AsyncIterator[Api]:
    """The app, trusting ``idp``, with its key cache on ``clock``."""
    configured = idp_settings(settings, idp, **changes)
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        await app.state.tokens.aclose()
        app.state.tokens = verifier(configured, idp, clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            yield Api(app, http)
        if TEST_MONGODB_URL:
            await app.state.mongo.drop_database(configured.mongodb_db)


VIEWER = "{ viewer { subject roles patientId staffId departmentId } }"
PATIENT = "query($id: ID!) { patient(id: $id) { lastName } }"
PATIENTS = "{ patients { nodes { id } } }"
LINK = """
mutation($subject: String!, $username: String, $roles: [Role!], $patientId: ID, $staffId: ID) {
  linkExternalIdentity(subject: $subject, username: $username, roles: $roles,
                       patientId: $patientId, staffId: $staffId) {
    id username roles active externalSubject patientId staffId departmentId displayName
  }
}"""
UNLINK = (
    "mutation($s: String!) { unlinkExternalIdentity(subject: $s) { username externalSubject } }"
)


# -- keys: rotation, removal, floods, outages --------------------------------------------------


async def test_a_new_signing_key_works_from_its_first_token(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    service = verifier(settings, idp, clock)
    assert (await service.verify(sign(idp.keys[0], sub="u1")))["sub"] == "u1"
    assert idp.requests == 1
    clock.now += 1  # moments after the last fetch, the provider rotates
    rotated = idp.rotate()
    assert (await service.verify(sign(rotated, sub="u2")))["sub"] == "u2"
    assert idp.requests == 2
    for _ in range(3):  # both keys are now cached
        await service.verify(sign(idp.keys[0], sub="u1"))
        await service.verify(sign(rotated, sub="u2"))
    assert idp.requests == 2
    await service.aclose()


async def test_concurrent_tokens_with_the_same_new_kid_share_one_fetch(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    service = verifier(settings, idp, clock)
    await service.verify(sign(idp.keys[0], sub="u"))
    rotated = idp.rotate()
    results = await asyncio.gather(*(service.verify(sign(rotated, sub="u")) for _ in range(25)))
    assert len(results) == 25 and idp.requests == 2
    await service.aclose()


async def test_a_removed_key_is_refused_after_the_periodic_refresh(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    service = verifier(settings, idp, clock)
    old, new = idp.keys[0], idp.rotate()
    await service.verify(sign(old, sub="u"))
    idp.remove(old)  # compromised, say
    clock.now += REFRESH - 1
    assert await service.verify(sign(old, sub="u"))  # the cached copy is still young
    assert idp.requests == 1
    clock.now += 1
    assert await reason(service, sign(old, sub="u")) == "unknown_kid"
    assert idp.requests == 2  # the periodic refresh; the unknown kid asked nothing more
    assert await service.verify(sign(new, sub="u"))
    await service.aclose()


async def test_a_flood_of_unknown_kids_costs_one_fetch_per_interval(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    service = verifier(settings, idp, clock)
    await service.verify(sign(idp.keys[0], sub="u"))
    made_up = [sign(idp.keys[0], f"made-up-{n}", sub="u") for n in range(200)]
    started = time.perf_counter()
    for token in made_up[:100]:
        assert await reason(service, token) == "unknown_kid"
    together = await asyncio.gather(
        *(service.verify(t) for t in made_up[100:]), return_exceptions=True
    )
    assert all(isinstance(r, Unauthenticated) for r in together)
    assert idp.requests == 2  # the first fetch, and one for the whole flood
    assert time.perf_counter() - started < 5  # the rest were refused without waiting
    rotated = idp.rotate()  # a genuine new key inside the interval waits for the next one
    assert await reason(service, sign(rotated, sub="u")) == "unknown_kid"
    clock.now += UNKNOWN_KID_INTERVAL
    assert await service.verify(sign(rotated, sub="u"))
    assert idp.requests == 3
    await service.aclose()


async def test_provider_down_cached_keys_work_until_their_max_age(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    service = verifier(settings, idp, clock)
    key = idp.keys[0]
    await service.verify(sign(key, sub="u"))
    idp.stop()
    clock.now += REFRESH  # the periodic refresh fails: the cached keys carry on
    assert await service.verify(sign(key, sub="u"))
    assert await reason(service, sign(new_key(), sub="u")) == "keys_unavailable"
    clock.now += MAX_AGE - REFRESH - 1
    assert await service.verify(sign(key, sub="u"))
    clock.now += 1  # an hour without the provider: nothing is trusted any more
    assert await reason(service, sign(key, sub="u")) == "keys_unavailable"
    await service.aclose()


async def test_provider_down_over_http_is_unauthenticated_never_an_error(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    key = idp.keys[0]
    async with shms(settings, idp, clock) as api:
        token = sign(key, sub="ops-1", roles=["admin"])
        assert (await api.data(token, VIEWER))["viewer"]["roles"] == ["ADMIN"]
        idp.stop()
        unknown = sign(new_key(), sub="ops-1", roles=["admin"])
        assert await api.refusal(unknown, VIEWER) == ("UNAUTHENTICATED", "keys_unavailable")
        assert (await api.data(token, VIEWER))["viewer"]["subject"] == "ops-1"
        clock.now += MAX_AGE
        assert await api.refusal(token, VIEWER) == ("UNAUTHENTICATED", "keys_unavailable")


async def test_the_provider_down_from_the_start_is_unauthenticated(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    idp.stop()
    service = verifier(settings, idp, clock)
    assert await reason(service, sign(idp.keys[0], sub="u")) == "keys_unavailable"
    assert await reason(service, sign(idp.keys[0], sub="u")) == "keys_unavailable"
    await service.aclose()


# -- roles: exactly the configured claim, through the map ---------------------------------------


def test_the_role_claim_is_a_verbatim_name_or_a_dotted_path() -> None:
    claims = {
        "https://shms.example/roles": ["nurse"],
        "realm_access": {"roles": ["doctor"]},
        "resource_access": {"shms.api": {"roles": ["billing"]}},
        "a.b": {"c": 1},
        "a": {"b": {"c": 2}},
    }
    assert claim_at(claims, "https://shms.example/roles") == ["nurse"]
    assert claim_at(claims, "realm_access.roles") == ["doctor"]
    assert claim_at(claims, "resource_access.shms.api.roles") == ["billing"]
    assert claim_at(claims, "a.b.c") == 1  # the name with the dot, verbatim, first
    assert claim_at(claims, "realm_access.missing") is None
    assert claim_at({"roles": "x"}, "roles.deeper") is None


def test_provider_roles_are_mapped_and_unknown_ones_ignored(settings: Settings) -> None:
    plain = settings.model_copy(update={"shms_oidc_role_claim": "groups"})
    token = {"groups": ["doctor", "overlord", 7], "roles": ["admin"]}
    assert provider_roles(token, plain) == {"doctor"}
    mapped = Settings(shms_oidc_role_claim="groups", shms_oidc_role_map='{"md": ["doctor"]}')
    assert provider_roles({"groups": ["md", "doctor"]}, mapped) == {"doctor"}
    assert provider_roles({"groups": "md other"}, mapped) == {"doctor"}
    with pytest.raises(ValueError, match="unknown roles"):
        Settings(shms_oidc_role_map='{"md": "surgeon"}')
    with pytest.raises(ValueError, match="JSON object"):
        Settings(shms_oidc_role_map='["admin"]')


async def test_the_configured_claim_wins_over_roles(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    async with shms(settings, idp, clock, shms_oidc_role_claim="shms_roles") as api:
        patient = await factories.patient()
        token = sign(idp.keys[0], sub="mallory", roles=["admin"], shms_roles=["patient"])
        viewer = (await api.data(token, VIEWER))["viewer"]
        assert viewer["roles"] == ["PATIENT"] and viewer["patientId"] is None
        # A patient linked to no record sees nothing of anyone.
        assert (await api.data(token, PATIENTS))["patients"]["nodes"] == []
        assert (await api.refusal(token, PATIENT, id=str(patient.id)))[0] == "FORBIDDEN"
        code, _ = await api.refusal(token, LINK, subject="mallory", username="m", roles=["ADMIN"])
        assert code == "FORBIDDEN"
        only_roles = sign(idp.keys[0], sub="mallory", roles=["admin"])
        assert await api.refusal(only_roles, VIEWER) == ("UNAUTHENTICATED", "no_role")


async def test_a_keycloak_token(settings: Settings, idp: LocalIdP, clock: Clock) -> None:
    keycloak = {
        "shms_oidc_role_claim": "realm_access.roles",
        "shms_oidc_role_map": '{"shms-admin": "admin", "shms-clinician": ["doctor"]}',
    }
    async with shms(settings, idp, clock, **keycloak) as api:
        patient = await factories.patient()
        await accounts.create_account(
            "alice", "a-long-password", [Role.PATIENT], patient_id=patient.id
        )  # a local account whose username the token's preferred_username repeats
        subject = str(uuid.uuid4())
        token = sign(
            idp.keys[0],
            sub=subject,
            typ="Bearer",
            azp="shms-web",
            preferred_username="alice",
            realm_access={"roles": ["offline_access", "uma_authorization", "shms-admin"]},
            resource_access={"account": {"roles": ["manage-account"]}},
            scope="openid profile email",
        )
        viewer = (await api.data(token, VIEWER))["viewer"]
        assert viewer == {
            "subject": subject,
            "roles": ["ADMIN"],
            "patientId": None,  # preferred_username links nothing: only `sub` can be linked
            "staffId": None,
            "departmentId": None,
        }


async def test_an_auth0_token(settings: Settings, idp: LocalIdP, clock: Clock) -> None:
    auth0 = {
        "shms_oidc_role_claim": "https://shms.example/roles",
        "shms_oidc_role_map": '{"Nurse": "nurse", "Ward Clerk": "admin_staff"}',
    }
    idp.keys.append(new_key("RSA"))  # Auth0 signs with RS256
    async with shms(settings, idp, clock, **auth0) as api:
        department = await factories.department()
        nurse = await factories.nurse(department)
        await accounts.link_identity(
            "auth0|123", username="nina", roles=[Role.NURSE], staff_id=nurse.id
        )
        token = sign(
            idp.keys[1],
            sub="auth0|123",
            aud=[AUDIENCE, "https://tenant.eu.auth0.com/userinfo"],
            azp="spa-client",
            scope="openid profile",
            sid=str(ObjectId()),  # Auth0's session id, not a staff record: ignored
            **{"https://shms.example/roles": ["Nurse", "Member"]},
        )
        viewer = (await api.data(token, VIEWER))["viewer"]
        assert viewer["subject"] == "auth0|123" and viewer["roles"] == ["NURSE"]
        assert viewer["staffId"] == str(nurse.id) and viewer["departmentId"] == str(department.id)
        clerk = sign(idp.keys[1], sub="auth0|456", **{"https://shms.example/roles": ["Ward Clerk"]})
        assert (await api.data(clerk, VIEWER))["viewer"]["roles"] == ["ADMIN_STAFF"]
        assert nurse.id is not None
        await staff.update_nurse(nurse.id, {"active": False})  # the linked record, deactivated
        assert await api.refusal(token, VIEWER) == ("UNAUTHENTICATED", "account_disabled")


# -- records: only from the SHMS link -----------------------------------------------------------


async def test_an_unlinked_subject_gets_no_record_bound_access(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    async with shms(settings, idp, clock) as api:
        department = await factories.department()
        doctor = await factories.doctor(department)
        patient = await factories.patient(clinician_access=False)
        await factories.appointment(patient, doctor)  # the doctor treats this patient
        as_patient = sign(idp.keys[0], sub="p-1", roles=["patient"], pid=str(patient.id))
        viewer = (await api.data(as_patient, VIEWER))["viewer"]
        assert viewer["roles"] == ["PATIENT"] and viewer["patientId"] is None
        assert (await api.refusal(as_patient, PATIENT, id=str(patient.id)))[0] == "FORBIDDEN"
        assert (await api.data(as_patient, PATIENTS))["patients"]["nodes"] == []
        as_doctor = sign(
            idp.keys[0], sub="d-1", roles=["doctor"], sid=str(doctor.id), did=str(department.id)
        )
        viewer = (await api.data(as_doctor, VIEWER))["viewer"]
        assert viewer["staffId"] is None and viewer["departmentId"] is None
        assert (await api.refusal(as_doctor, PATIENT, id=str(patient.id)))[0] == "FORBIDDEN"


async def test_an_admin_links_a_subject_over_graphql_then_it_has_its_record(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    async with shms(settings, idp, clock) as api:
        patient = await factories.patient(clinician_access=False)
        admin = sign(idp.keys[0], sub="ops-1", roles=["admin"])
        zoe = sign(idp.keys[0], sub="auth0|777", roles=["patient"])
        assert (await api.refusal(zoe, PATIENT, id=str(patient.id)))[0] == "FORBIDDEN"

        linked = await api.data(
            admin, LINK, subject="auth0|777", username="zoe", roles=["PATIENT"],
            patientId=str(patient.id),
        )  # fmt: skip
        account = linked["linkExternalIdentity"]
        assert account["username"] == "zoe" and account["roles"] == ["PATIENT"]
        assert account["externalSubject"] == "auth0|777" and account["active"] is True
        assert account["patientId"] == str(patient.id) and account["staffId"] is None

        assert (await api.data(zoe, VIEWER))["viewer"]["patientId"] == str(patient.id)
        mine = await api.data(zoe, PATIENT, id=str(patient.id))
        assert mine["patient"]["lastName"] == patient.last_name

        again = await api.refusal(
            admin, LINK, subject="auth0|777", username="other", roles=["ADMIN"]
        )
        assert again == ("CONFLICT", None)
        assert (await api.refusal(zoe, LINK, subject="x", username="y", roles=["ADMIN"]))[0] == (
            "FORBIDDEN"
        )
        unlinked = (await api.data(admin, UNLINK, s="auth0|777"))["unlinkExternalIdentity"]
        assert unlinked == {"username": "zoe", "externalSubject": None}
        assert (await api.data(zoe, VIEWER))["viewer"]["patientId"] is None
        assert (await api.refusal(zoe, PATIENT, id=str(patient.id)))[0] == "FORBIDDEN"
        assert (await api.refusal(admin, UNLINK, s="auth0|777"))[0] == "NOT_FOUND"


async def test_a_link_is_checked_like_an_account(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    async with shms(settings, idp, clock) as api:
        admin = sign(idp.keys[0], sub="ops-1", roles=["admin"])
        no_record = await api.refusal(admin, LINK, subject="s-1", username="p", roles=["PATIENT"])
        assert no_record == ("BAD_USER_INPUT", None)
        no_roles = await api.refusal(admin, LINK, subject="s-1", username="p")
        assert no_roles == ("BAD_USER_INPUT", None)
        ghost = await api.refusal(
            admin, LINK, subject="s-1", username="d", roles=["DOCTOR"], staffId=str(ObjectId())
        )
        assert ghost == ("BAD_USER_INPUT", None)
        assert await Account.find_one({"idp_subject": "s-1"}) is None


async def test_a_disabled_linked_account_is_refused_whatever_the_token_says(
    settings: Settings, idp: LocalIdP, clock: Clock
) -> None:
    async with shms(settings, idp, clock) as api:
        patient = await factories.patient(clinician_access=False)
        account = await accounts.link_identity(
            "kc-42", username="pat", roles=[Role.PATIENT], patient_id=patient.id
        )
        token = sign(idp.keys[0], sub="kc-42", roles=["patient", "admin"])
        viewer = (await api.data(token, VIEWER))["viewer"]  # the standing is now cached
        assert viewer["roles"] == ["PATIENT"]  # a linked account's roles decide
        assert account.id is not None
        await accounts.update_account(account.id, active=False)
        assert await api.refusal(token, VIEWER) == ("UNAUTHENTICATED", "account_disabled")
        assert await api.refusal(token, PATIENT, id=str(patient.id)) == (
            "UNAUTHENTICATED",
            "account_disabled",
        )
        await accounts.update_account(account.id, active=True)
        assert (await api.data(token, VIEWER))["viewer"]["patientId"] == str(patient.id)


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def mongo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """MONGODB_URL set, backed by one embedded store every command shares (or the test server)."""
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URL", TEST_MONGODB_URL or "mongodb://demo.invalid:27017")
    monkeypatch.setenv("MONGODB_DB", name)
    monkeypatch.delenv("REDIS_URL", raising=False)
    if not TEST_MONGODB_URL:
        shared = db.create_client("")
        monkeypatch.setattr(db, "create_client", lambda url: shared)
        monkeypatch.setattr(db, "close_client", lambda client: None)
    config.get_settings.cache_clear()
    yield name
    config.get_settings.cache_clear()


def test_shms_link_identity(mongo_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    link = ["link-identity", "--subject", "auth0|1", "--username", "root"]
    assert cli.main([*link, "--role", "admin", "--role", "compliance"]) == 0
    assert "Linked 'auth0|1' and account root" in capsys.readouterr().out
    assert cli.main([*link[:2], "auth0|2", "--username", "root"]) == 1
    assert "linked to another subject" in capsys.readouterr().err
    assert cli.main(["link-identity", "--subject", "auth0|1"]) == 2
    assert cli.main(["link-identity", "--subject", "s", "--username", "u", "--staff-id", "x"]) == 2
    assert cli.main(["link-identity", "--subject", "auth0|1", "--unlink"]) == 0
    assert "Unlinked 'auth0|1' and account root" in capsys.readouterr().out
    assert cli.main([*link[:2], "auth0|2", "--username", "root"]) == 0


def test_shms_link_identity_needs_a_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONGODB_URL", "")
    config.get_settings.cache_clear()
    try:
        assert cli.main(["link-identity", "--subject", "s", "--username", "u"]) == 2
        assert "linkExternalIdentity" in capsys.readouterr().err
    finally:
        config.get_settings.cache_clear()
