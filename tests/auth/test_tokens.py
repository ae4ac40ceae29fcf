"""Token verification: every kind of bad token is UNAUTHENTICATED with its own reason.

Bad tokens are forged by hand (base64 + a raw signature) so the tests can build headers that a
careful JOSE library would refuse to produce.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

import cli
import config
from auth.keys import KEY_FILE, RemoteJWKS, load_or_create_signing_key
from auth.tokens import MESSAGE, TokenService
from config import Settings
from errors import Unauthenticated

DROP = object()
"""A claim or header value meaning "leave this one out"."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any] | bytes, key: Key | None) -> str:
    """A compact JWS signed with ``key`` (RS256 or ES256 by key type), or unsigned."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    signature = b""
    if isinstance(key, RSAKey):
        private: Any = key.private_key
        signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ECKey):
        private = key.private_key
        der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def service(settings: Settings) -> TokenService:
    return TokenService.from_settings(settings)


@pytest.fixture
def key(service: TokenService) -> Key:
    assert service.embedded is not None
    return service.embedded.signing_key


def claims_for(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.shms_jwt_issuer,
        "aud": settings.shms_jwt_audience,
        "sub": "6955b9000200000000000001",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "t1",
        "roles": ["doctor"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not DROP}


def header_for(key: Key, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not DROP}


async def reason_of(service: TokenService, token: str | None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await service.verify(token)
    error = caught.value
    assert error.code == "UNAUTHENTICATED"
    assert error.message == MESSAGE  # generic: the reason is for logs, not for the caller
    reason: str = error.extensions["reason"]
    return reason


# --- good tokens ---


async def test_an_issued_token_verifies_with_every_claim(service: TokenService) -> None:
    token = service.issue({"sub": "acct-1", "roles": ["nurse"], "sid": "ab" * 12}, ttl=600)
    claims = await service.verify(token)
    assert claims["sub"] == "acct-1" and claims["roles"] == ["nurse"] and claims["sid"] == "ab" * 12
    assert claims["iss"] == "shms-embedded" and claims["aud"] == "shms"
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert isinstance(claims["jti"], str) and claims["jti"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "kid": service.embedded.kid, "typ": "JWT"}  # type: ignore[union-attr]


async def test_issue_refuses_to_let_callers_set_registered_claims(service: TokenService) -> None:
    with pytest.raises(ValueError, match="exp"):
        service.issue({"sub": "x", "exp": 1}, ttl=60)


async def test_an_audience_list_containing_ours_passes(
    service: TokenService, key: Key, settings: Settings
) -> None:
    token = forge(header_for(key), claims_for(settings, aud=["billing-api", "shms"]), key)
    assert (await service.verify(token))["aud"] == ["billing-api", "shms"]


async def test_clock_skew_within_the_leeway_is_tolerated(
    service: TokenService, key: Key, settings: Settings
) -> None:
    now = int(time.time())
    token = forge(header_for(key), claims_for(settings, exp=now - 10, nbf=now + 10), key)
    assert await service.verify(token)


# --- bad tokens, one reason each ---


async def test_a_missing_token_is_refused(service: TokenService) -> None:
    assert await reason_of(service, None) == "missing"
    assert await reason_of(service, "") == "missing"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        f"{b64(b'not json')}.e30.sig",
        f"{b64(b'[1, 2]')}.e30.sig",
        f"{b64(b'{}')}.e30.sig",  # no alg
        "x" * 9000,
    ],
)
async def test_malformed_tokens_are_refused(service: TokenService, token: str) -> None:
    assert await reason_of(service, token) == "malformed"


async def test_a_validly_signed_non_json_payload_is_malformed(
    service: TokenService, key: Key
) -> None:
    assert await reason_of(service, forge(header_for(key), b"[not json", key)) == "malformed"


async def test_an_expired_token_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    past = int(time.time()) - settings.shms_jwt_leeway_seconds - 5
    token = forge(header_for(key), claims_for(settings, exp=past), key)
    assert await reason_of(service, token) == "expired"


async def test_a_not_yet_valid_token_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    future = int(time.time()) + settings.shms_jwt_leeway_seconds + 60
    token = forge(header_for(key), claims_for(settings, nbf=future), key)
    assert await reason_of(service, token) == "not_yet_valid"


async def test_a_token_issued_in_the_future_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    future = int(time.time()) + settings.shms_jwt_leeway_seconds + 60
    token = forge(header_for(key), claims_for(settings, iat=future), key)
    assert await reason_of(service, token) == "issued_in_future"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example"}, "wrong_issuer"),
        ({"iss": ["shms-embedded"]}, "issuer_not_string"),
        ({"aud": "other-api"}, "wrong_audience"),
        ({"aud": ["other-api", "more"]}, "wrong_audience"),
        ({"aud": []}, "wrong_audience"),
        ({"exp": DROP}, "missing_claim"),
        ({"iss": DROP}, "missing_claim"),
        ({"aud": DROP}, "missing_claim"),
        ({"sub": DROP}, "missing_claim"),
        ({"iat": DROP}, "missing_claim"),
        ({"exp": "tomorrow"}, "invalid_expiry"),
    ],
)
async def test_claims_are_always_validated(
    service: TokenService, key: Key, settings: Settings, changes: dict[str, Any], reason: str
) -> None:
    token = forge(header_for(key), claims_for(settings, **changes), key)
    assert await reason_of(service, token) == reason


async def test_alg_none_is_refused(service: TokenService, key: Key, settings: Settings) -> None:
    for alg in ("none", "None", "NONE"):
        token = forge(header_for(key, alg=alg), claims_for(settings), None)
        assert await reason_of(service, token) == "alg_none"


async def test_hs256_signed_with_the_public_key_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    """Algorithm confusion: the public key (PEM or JWK) used as an HMAC secret."""
    assert service.embedded is not None
    assert isinstance(key, RSAKey)
    public_pem = key.as_pem(private=False)
    public_jwk = json.dumps(service.embedded.public_jwks()["keys"][0]).encode()
    for secret in (public_pem, public_jwk):
        header = header_for(key, alg="HS256")
        body = json.dumps(claims_for(settings)).encode()
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert await reason_of(service, f"{signing_input}.{b64(mac)}") == "disallowed_alg"


@pytest.mark.parametrize("parameter", ["jwk", "jku", "x5u", "x5c"])
async def test_headers_carrying_keys_are_never_trusted(
    service: TokenService, key: Key, settings: Settings, parameter: str
) -> None:
    attacker = RSAKey.generate_key(2048, auto_kid=True)
    values: dict[str, Any] = {
        "jwk": attacker.as_dict(private=False),
        "jku": "https://evil.example/jwks.json",
        "x5u": "https://evil.example/cert.pem",
        "x5c": ["MIIB"],
    }
    # Even validly signed with our own key: a header pointing at keys is refused outright.
    header = header_for(key, **{parameter: values[parameter]})
    assert await reason_of(service, forge(header, claims_for(settings), key)) == "embedded_key"
    attacker_signed = forge(header_for(attacker, **{parameter: values[parameter]}), {}, attacker)
    assert await reason_of(service, attacker_signed) == "embedded_key"


async def test_an_unknown_crit_header_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    header = header_for(key, crit=["exp-policy"], **{"exp-policy": "lenient"})
    assert await reason_of(service, forge(header, claims_for(settings), key)) == "unsupported_crit"


async def test_a_foreign_typ_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    token = forge(header_for(key, typ="logout+jwt"), claims_for(settings), key)
    assert await reason_of(service, token) == "wrong_type"


async def test_a_tampered_payload_or_signature_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    token = forge(header_for(key), claims_for(settings), key)
    head, _, signature = token.split(".")
    elevated = b64(json.dumps(claims_for(settings, roles=["admin"])).encode())
    assert await reason_of(service, f"{head}.{elevated}.{signature}") == "bad_signature"
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert await reason_of(service, f"{head}.{token.split('.')[1]}.{flipped}") == "bad_signature"


async def test_another_key_claiming_our_kid_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    impostor = RSAKey.generate_key(2048)
    token = forge(header_for(key), claims_for(settings), impostor)  # our kid, their signature
    assert await reason_of(service, token) == "bad_signature"


async def test_unknown_and_missing_kids_are_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    token = forge(header_for(key, kid="rotated-away"), claims_for(settings), key)
    assert await reason_of(service, token) == "unknown_kid"
    token = forge(header_for(key, kid=DROP), claims_for(settings), key)
    assert await reason_of(service, token) == "missing_kid"


async def test_an_allowed_algorithm_that_does_not_fit_the_key_is_refused(
    service: TokenService, key: Key, settings: Settings
) -> None:
    token = forge(header_for(key, alg="ES256"), claims_for(settings), ECKey.generate_key("P-256"))
    assert await reason_of(service, token) == "key_mismatch"


def test_symmetric_algorithms_cannot_be_configured(settings: Settings) -> None:
    for algorithms in ("HS256", "RS256,HS256", "none", ""):
        bad = settings.model_copy(update={"shms_jwt_algorithms": algorithms})
        with pytest.raises(ValueError, match="SHMS_JWT_ALGORITHMS"):
            TokenService.from_settings(bad)


# --- the embedded key ---


def test_the_signing_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = load_or_create_signing_key(state)
    path = state / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["kid"] == first.kid == first.thumbprint()
    assert {"d", "p", "q"} <= set(stored) and stored["alg"] == "RS256"
    assert load_or_create_signing_key(state).kid == first.kid
    assert [p.name for p in state.iterdir()] == [KEY_FILE]  # no temporary files left behind


def test_workers_starting_together_share_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        kids = set(pool.map(lambda _: load_or_create_signing_key(tmp_path).kid, range(6)))
    assert len(kids) == 1


def test_a_key_file_readable_by_others_is_restricted(tmp_path: Path) -> None:
    load_or_create_signing_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    load_or_create_signing_key(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


async def test_tokens_survive_a_restart(settings: Settings) -> None:
    token = TokenService.from_settings(settings).issue({"sub": "a", "roles": ["admin"]}, 60)
    restarted = TokenService.from_settings(settings)
    assert (await restarted.verify(token))["sub"] == "a"


def test_the_published_jwks_holds_the_public_half_only(service: TokenService) -> None:
    assert service.embedded is not None
    (published,) = service.embedded.public_jwks()["keys"]
    assert published["kid"] == service.embedded.kid and published["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(published)


async def test_an_es256_embedded_key_when_rs256_is_not_allowed(settings: Settings) -> None:
    only_ec = settings.model_copy(update={"shms_jwt_algorithms": "ES256"})
    service = TokenService.from_settings(only_ec)
    token = service.issue({"sub": "a", "roles": ["admin"]}, 60)
    assert service.embedded is not None and service.embedded.algorithm == "ES256"
    assert (await service.verify(token))["sub"] == "a"


# --- an external IdP's JWKS ---


class FakeIdP:
    """Serves a JWKS through an httpx MockTransport, counting requests."""

    def __init__(self) -> None:
        self.keys: list[Key] = [RSAKey.generate_key(2048, {"use": "sig"}, auto_kid=True)]
        self.extra: list[dict[str, Any]] = []
        self.requests = 0
        self.delay = 0.0
        self.down = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return httpx.Response(503)
        keys = [k.as_dict(private=False) for k in self.keys] + self.extra
        return httpx.Response(200, json={"keys": keys})

    def rotate(self) -> Key:
        new = RSAKey.generate_key(2048, {"use": "sig"}, auto_kid=True)
        self.keys.append(new)
        return new


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def remote(settings: Settings, idp: FakeIdP, clock: Clock) -> Iterator[Callable[..., TokenService]]:
    oidc = settings.model_copy(
        update={
            "shms_oidc_jwks_url": "https://idp.test/jwks",
            "shms_jwt_issuer": "https://idp.test",
        }
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(idp.handle))

    def make() -> TokenService:
        keys = RemoteJWKS(
            oidc.shms_oidc_jwks_url,
            algorithms=oidc.jwt_algorithms,
            client=client,
            settings=oidc,
            clock=clock,
        )
        return TokenService(oidc, keys)

    yield make


def idp_token(settings: Settings, key: Key, **changes: Any) -> str:
    claims = claims_for(settings, iss="https://idp.test", **changes)
    return forge(header_for(key), claims, key)


async def test_idp_tokens_verify_and_the_jwks_is_cached(
    remote: Callable[[], TokenService], idp: FakeIdP, settings: Settings
) -> None:
    service = remote()
    for _ in range(5):
        assert (await service.verify(idp_token(settings, idp.keys[0])))["iss"] == "https://idp.test"
    assert idp.requests == 1
    embedded_issuer = forge(header_for(idp.keys[0]), claims_for(settings), idp.keys[0])
    assert await reason_of(service, embedded_issuer) == "wrong_issuer"


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    remote: Callable[[], TokenService], idp: FakeIdP, clock: Clock, settings: Settings
) -> None:
    service = remote()
    await service.verify(idp_token(settings, idp.keys[0]))
    clock.now += 61
    rotated = idp.rotate()
    assert (await service.verify(idp_token(settings, rotated)))["sub"]
    assert idp.requests == 2
    await service.verify(idp_token(settings, idp.keys[0]))  # old key still cached
    assert idp.requests == 2


async def test_refreshes_on_unknown_kids_are_rate_limited(
    remote: Callable[[], TokenService], idp: FakeIdP, clock: Clock, settings: Settings
) -> None:
    service = remote()
    await service.verify(idp_token(settings, idp.keys[0]))
    # One fetch for the first unknown kid; within 5 s of it the rest are just unknown.
    for n in range(10):
        forged = forge(header_for(idp.keys[0], kid=f"made-up-{n}"), claims_for(settings), None)
        assert await reason_of(service, forged) == "unknown_kid"
    assert idp.requests == 2
    rotated = idp.rotate()
    assert await reason_of(service, idp_token(settings, rotated)) == "unknown_kid"
    assert idp.requests == 2
    clock.now += 5
    assert await service.verify(idp_token(settings, rotated))
    assert idp.requests == 3


async def test_concurrent_refreshes_are_coalesced(
    remote: Callable[[], TokenService], idp: FakeIdP, clock: Clock, settings: Settings
) -> None:
    service = remote()
    idp.delay = 0.05
    first = await asyncio.gather(
        *(service.verify(idp_token(settings, idp.keys[0])) for _ in range(20))
    )
    assert len(first) == 20 and idp.requests == 1
    clock.now += 61
    rotated = idp.rotate()
    results = await asyncio.gather(
        *(service.verify(idp_token(settings, rotated)) for _ in range(20))
    )
    assert len(results) == 20 and idp.requests == 2


async def test_symmetric_and_encryption_keys_in_a_jwks_are_ignored(
    remote: Callable[[], TokenService], idp: FakeIdP, settings: Settings
) -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    idp.extra = [
        {"kty": "oct", "kid": "shared", "k": b64(secret)},
        {**idp.rotate().as_dict(private=False), "kid": "enc-key", "use": "enc"},
    ]
    service = remote()
    signing_input = f"{b64(json.dumps({'alg': 'RS256', 'kid': 'shared'}).encode())}.{b64(b'{}')}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert await reason_of(service, f"{signing_input}.{b64(mac)}") == "unknown_kid"
    enc = forge(header_for(idp.keys[0], kid="enc-key"), claims_for(settings), idp.keys[1])
    assert await reason_of(service, enc) == "unknown_kid"


async def test_an_unreachable_idp_fails_closed(
    remote: Callable[[], TokenService], idp: FakeIdP, settings: Settings
) -> None:
    idp.down = True
    service = remote()
    assert await reason_of(service, idp_token(settings, idp.keys[0])) == "keys_unavailable"


async def test_the_idp_mode_never_issues(settings: Settings) -> None:
    oidc = settings.model_copy(update={"shms_oidc_jwks_url": "https://idp.test/jwks"})
    service = TokenService.from_settings(oidc)
    try:
        assert service.embedded is None
        with pytest.raises(RuntimeError):
            service.issue({"sub": "x"}, 60)
    finally:
        await service.aclose()


async def test_the_jwks_can_come_from_a_local_asgi_app(settings: Settings) -> None:
    """The same client code against a real (in-process) HTTP server rather than a mock."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    signer = ECKey.generate_key("P-256", {"alg": "ES256"}, auto_kid=True)

    async def jwks(request: Any) -> JSONResponse:
        return JSONResponse({"keys": [signer.as_dict(private=False)]})

    idp_app = Starlette(routes=[Route("/jwks", jwks)])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=idp_app), base_url="http://idp")
    oidc = settings.model_copy(update={"shms_jwt_issuer": "https://idp.test"})
    service = TokenService(oidc, RemoteJWKS("http://idp/jwks", algorithms=["ES256"], client=client))
    token = forge(header_for(signer, alg="ES256"), claims_for(oidc), signer)
    assert (await service.verify(token))["iss"] == "https://idp.test"
    await client.aclose()


# --- the `shms token` command ---


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("SHMS_STATE_DIR", str(tmp_path / "cli-state"))
    monkeypatch.delenv("SHMS_OIDC_JWKS_URL", raising=False)
    config.get_settings.cache_clear()
    yield Settings(shms_state_dir=str(tmp_path / "cli-state"))
    config.get_settings.cache_clear()


async def test_shms_token_signs_with_the_embedded_key(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    doctor, department = "6955b9000200000000000001", "6955b9000100000000000001"
    argv = ["token", "--role", "doctor", "--subject", doctor, "--department", department]
    assert cli.main([*argv, "--ttl", "120"]) == 0
    claims = await TokenService.from_settings(cli_env).verify(capsys.readouterr().out.strip())
    assert claims["sub"] == f"cli:doctor:{doctor}" and claims["roles"] == ["doctor"]
    assert claims["sid"] == doctor and claims["did"] == department and "pid" not in claims
    assert claims["exp"] - claims["iat"] == 120

    patient = "6955b9000600000000000001"
    assert cli.main(["token", "--role", "patient", "--subject", patient]) == 0
    claims = await TokenService.from_settings(cli_env).verify(capsys.readouterr().out.strip())
    assert (
        claims["pid"] == patient and "sid" not in claims and claims["exp"] - claims["iat"] == 3600
    )


def test_shms_token_refuses_bad_input(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["token", "--role", "nurse", "--subject", "not-an-id"]) == 2
    assert "not an ObjectId" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["token", "--role", "overlord", "--subject", "x"])
    with pytest.raises(SystemExit):
        cli.main(["token", "--role", "admin", "--subject", "x", "--ttl", "5"])
    monkeypatch.setenv("SHMS_OIDC_JWKS_URL", "https://idp.test/jwks")
    config.get_settings.cache_clear()
    assert cli.main(["token", "--role", "admin", "--subject", "ops"]) == 2
    assert "external identity provider" in capsys.readouterr().err


def test_the_forging_helper_signs_es256_like_jose() -> None:
    """The forging helper's ES256 path produces the raw r||s form JOSE expects."""
    signer = ECKey.generate_key("P-256", {"alg": "ES256"}, auto_kid=True)
    token = forge({"alg": "ES256", "kid": signer.kid}, {"a": 1}, signer)
    assert jwt.decode(token, signer, algorithms=["ES256"]).claims == {"a": 1}


# --- remembered signatures ---


async def test_a_token_seen_before_skips_only_its_signature(
    service: TokenService, key: Key, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[str] = []
    real = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr("auth.tokens.jwt.decode", counted)
    token = service.issue({"sub": "acct-1", "roles": ["nurse"]}, ttl=600)
    first, second = await service.verify(token), await service.verify(token)
    assert first == second and len(decodes) == 1
    second["roles"] = ["admin"]  # callers get copies: the remembered claims stay as verified
    assert (await service.verify(token))["roles"] == ["nurse"]
    # A tampered copy is other bytes: checked, and refused.
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert await reason_of(service, f"{head}.{body}.{flipped}") == "bad_signature"


async def test_a_remembered_token_still_expires(
    service: TokenService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = service.issue({"sub": "acct-1", "roles": ["nurse"]}, ttl=60)
    await service.verify(token)
    later = time.time() + 60 + settings.shms_jwt_leeway_seconds + 5
    monkeypatch.setattr(service, "_clock", lambda: later)
    assert await reason_of(service, token) == "expired"


async def test_a_remembered_token_of_a_key_no_longer_served_is_refused(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = service.issue({"sub": "acct-1", "roles": ["nurse"]}, ttl=600)
    await service.verify(token)

    async def rotated_away(kid: str) -> Any:
        return None

    monkeypatch.setattr(service.keys, "find", rotated_away)
    assert await reason_of(service, token) == "unknown_kid"
