"""Every kind of bad token, sent over real HTTP, is UNAUTHENTICATED and reaches no data."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests import factories
from tests.auth.test_tokens import DROP, b64, claims_for, forge, header_for


def _bad_tokens(app: Any) -> dict[str, str]:
    settings, embedded = app.state.tokens.settings, app.state.tokens.embedded
    key = embedded.signing_key
    now = int(time.time())
    good = forge(header_for(key), claims_for(settings), key)
    head, _, sig = good.split(".")
    elevated = b64(json.dumps(claims_for(settings, roles=["admin"])).encode())
    attacker = RSAKey.generate_key(2048, auto_kid=True)
    hs_header = header_for(key, alg="HS256")
    hs_input = (
        f"{b64(json.dumps(hs_header).encode())}.{b64(json.dumps(claims_for(settings)).encode())}"
    )
    public_pem = key.as_pem(private=False)
    confused = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    return {
        "malformed": "not.a.jwt",
        "expired": forge(
            header_for(key), claims_for(settings, iat=now - 900, nbf=now - 900, exp=now - 600), key
        ),
        "not_yet_valid": forge(header_for(key), claims_for(settings, nbf=now + 600), key),
        "wrong_issuer": forge(header_for(key), claims_for(settings, iss="https://evil"), key),
        "wrong_audience": forge(header_for(key), claims_for(settings, aud="other-api"), key),
        "issuer_not_string": forge(
            header_for(key), claims_for(settings, iss=[settings.shms_jwt_issuer]), key
        ),
        "alg_none": forge(header_for(key, alg="none"), claims_for(settings), None),
        "disallowed_alg": f"{hs_input}.{b64(confused)}",  # HS256 keyed with our public key
        "embedded_key": forge(
            header_for(attacker, jwk=attacker.as_dict(private=False)),
            claims_for(settings),
            attacker,
        ),
        "unsupported_crit": forge(
            header_for(key, crit=["exp-policy"], **{"exp-policy": "lenient"}),
            claims_for(settings),
            key,
        ),
        "bad_signature": f"{head}.{elevated}.{sig}",  # a tampered payload
        "unknown_kid": forge(header_for(key, kid="rotated-away"), claims_for(settings), key),
        "missing_claim": forge(header_for(key), claims_for(settings, exp=DROP), key),
        "missing": "",
    }


@pytest.fixture
async def patient_in_db(app: Any) -> Any:
    return await factories.patient()


async def test_every_bad_token_kind_is_unauthenticated_over_http(
    app: Any, http: Any, patient_in_db: Any
) -> None:
    query = {"query": "query($id: ID!) { patient(id: $id) { lastName } }"}
    query["variables"] = {"id": str(patient_in_db.id)}  # type: ignore[assignment]
    for reason, token in _bad_tokens(app).items():
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await http.post("/graphql", json=query, headers=headers)
        body = response.json()
        assert body["data"] in (None, {"patient": None}), (reason, body)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", (reason, error)
        if token:
            assert error["extensions"]["reason"] == reason, (reason, error)
            assert error["message"] == "Invalid or expired token"
