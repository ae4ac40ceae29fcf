"""Access tokens: verifying every bearer token, and issuing them when SHMS is its own issuer.

Verification is deliberately paranoid and explicit: the header is inspected before any key is
touched (pinned asymmetric algorithms, no embedded or remote key references, no ``crit``
extensions), the key is chosen by ``kid`` from our own key source only, and the claims are
always validated after the signature. Each rejection carries a distinct ``reason`` extension
for logs and tests, while the message stays generic so callers learn nothing useful.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyTypeError,
    JoseError,
    MissingClaimError,
    UnsupportedKeyAlgorithmError,
)
from joserfc.jws import JWSRegistry

from auth.keys import EmbeddedKeys, KeyProvider, RemoteJWKS, pinned_algorithms
from config import Settings
from errors import Unauthenticated

MESSAGE = "Invalid or expired token"
MAX_TOKEN_LENGTH = 8192
VERIFIED_TOKENS = 4096
"""Signatures remembered per process: a client sends the same token with every request, and
checking an RS256 signature cost a fifth of a small request."""
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})
"""Headers that carry or point at a key: trusting them lets the sender pick their own key."""
ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
REGISTERED_CLAIMS = frozenset({"iss", "aud", "iat", "nbf", "exp", "jti"})
_CLAIM_REASONS = {
    "iss": "wrong_issuer",
    "aud": "wrong_audience",
    "nbf": "not_yet_valid",
    "iat": "issued_in_future",
    "exp": "invalid_expiry",
}


def reject(reason: str) -> Unauthenticated:
    return Unauthenticated(MESSAGE, reason=reason)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:  # an empty signature is alg "none"
        raise reject("malformed")
    try:
        header = json.loads(_b64decode(parts[0]))
    except (binascii.Error, ValueError):
        raise reject("malformed") from None
    if not isinstance(header, dict):
        raise reject("malformed")
    return header


class TokenService:
    """Verifies bearer tokens against ``keys``; issues them when the keys are SHMS's own."""

    def __init__(
        self, settings: Settings, keys: KeyProvider, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.algorithms = pinned_algorithms(settings.jwt_algorithms)
        self.issuer = settings.shms_jwt_issuer
        self.audience = settings.shms_jwt_audience
        self.leeway = settings.shms_jwt_leeway_seconds
        self._clock = clock
        self._registry = JWSRegistry(algorithms=self.algorithms)
        self._verified: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
        """Tokens whose signature was checked, with the key that checked it (bounded LRU)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        """The external IdP's JWKS when ``SHMS_OIDC_JWKS_URL`` is set, else the embedded key.

        The embedded key is loaded (or created) right away, so a broken key file stops the
        server at start-up rather than failing its first sign-in.
        """
        algorithms = pinned_algorithms(settings.jwt_algorithms)
        if settings.shms_oidc_jwks_url:
            jwks = RemoteJWKS(settings.shms_oidc_jwks_url, algorithms=algorithms, settings=settings)
            return cls(settings, jwks)
        keys = EmbeddedKeys(settings.shms_state_dir, algorithms)
        keys.load()
        return cls(settings, keys)

    @property
    def embedded(self) -> EmbeddedKeys | None:
        """The local signing key source, or ``None`` when an external IdP issues tokens."""
        return self.keys if isinstance(self.keys, EmbeddedKeys) else None

    async def verify(self, token: str | None) -> dict[str, Any]:
        """The validated claims of ``token``; ``UNAUTHENTICATED`` with a ``reason`` otherwise."""
        if not token:
            raise reject("missing")
        if len(token) > MAX_TOKEN_LENGTH:
            raise reject("malformed")
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise reject("malformed")
        if alg.lower() == "none":
            raise reject("alg_none")
        if alg not in self.algorithms:
            raise reject("disallowed_alg")
        if FORBIDDEN_HEADERS.intersection(header):
            raise reject("embedded_key")
        if "crit" in header:
            raise reject("unsupported_crit")  # we implement no JWS extension
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES):
            raise reject("wrong_type")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise reject("missing_kid")
        key = await self.keys.find(kid)
        if key is None:
            raise reject("unknown_kid")
        known = self._verified.get(token)
        if known is not None and known[0] is key:
            # The same bytes under the same key: the signature holds as it did. Expiry and
            # the other claims are checked again below, on every request.
            self._verified.move_to_end(token)
            claims = dict(known[1])
            self._validate(claims)
            return claims
        try:
            key.check_use("sig")
            key.check_alg(alg)
            decoded = jwt.decode(token, key, algorithms=[alg], registry=self._registry)
        except BadSignatureError:
            raise reject("bad_signature") from None
        except (InvalidKeyTypeError, UnsupportedKeyAlgorithmError):
            raise reject("key_mismatch") from None
        except JoseError:
            raise reject("malformed") from None
        claims = dict(decoded.claims)
        if not isinstance(claims.get("iss", ""), str):
            raise reject("issuer_not_string")  # RFC 7519: one StringOrURI, never a list
        self._validate(claims)
        self._verified[token] = (key, dict(claims))
        while len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return claims

    def _validate(self, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock()),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise reject("expired") from None
        except MissingClaimError as exc:
            raise Unauthenticated(MESSAGE, reason="missing_claim", claims=exc.claim) from None
        except ClaimError as exc:
            raise reject(_CLAIM_REASONS.get(exc.claim, "invalid_claim")) from None

    def issue(self, claims: Mapping[str, Any], ttl: int) -> str:
        """Sign an access token: ``claims`` (sub, roles, links) plus iss/aud/iat/nbf/exp/jti.

        Only the embedded issuer signs; with an external IdP, SHMS never mints tokens.
        """
        keys = self.embedded
        if keys is None:
            raise RuntimeError("SHMS issues no tokens when an external IdP is configured")
        reserved = REGISTERED_CLAIMS.intersection(claims)
        if reserved:
            raise ValueError(f"claims {sorted(reserved)} are set by the issuer")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now = int(self._clock())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
        }
        header = {"alg": keys.algorithm, "kid": keys.kid, "typ": "JWT"}
        return jwt.encode(header, payload, keys.signing_key, algorithms=[keys.algorithm])

    async def aclose(self) -> None:
        await self.keys.aclose()
