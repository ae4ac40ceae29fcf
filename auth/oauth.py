"""The OAuth 2.0 token endpoint (RFC 6749) and the documents that describe SHMS as an issuer.

``POST /oauth/token`` grants ``password``, ``client_credentials`` and ``refresh_token``;
``GET /.well-known/jwks.json`` publishes the public signing key and
``GET /.well-known/openid-configuration`` points clients at both. Failed password sign-ins are
counted in Redis per username and per client address; past the limit sign-in is refused, and
when Redis cannot answer sign-in is refused too (security state fails closed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth.tokens import TokenService
from errors import Unauthenticated
from services import accounts
from services.accounts import Grant

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024
GRANT_TYPES = ("password", "client_credentials", "refresh_token")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={**NO_STORE, **self.headers})


def _unavailable() -> OAuthError:
    return OAuthError(
        "temporarily_unavailable", "Sign-in is temporarily unavailable; try again later.", 503
    )


class LoginThrottle:
    """Counts password sign-in attempts per username and per client address in Redis.

    Every attempt takes a slot up front (INCR, and EXPIRE NX so the window starts at the first
    failure); a success gives its slots back. Taking the slot before checking the password
    means concurrent guesses cannot slip past the limit between a check and a count.
    """

    def __init__(self, redis: Any, max_failures: int, window: int) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window = window

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        user = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()[:32]
        return f"shms:login:fail:user:{user}", f"shms:login:fail:addr:{address}"

    async def acquire(self, username: str, address: str) -> None:
        """Take an attempt slot; ``OAuthError`` (429, or 503 if Redis fails) when none is left."""
        user_key, addr_key = self.keys(username, address)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in (user_key, addr_key):
                    pipe.incr(key)
                    pipe.expire(key, self.window, nx=True)
                    pipe.ttl(key)
                user_count, _, user_ttl, addr_count, _, addr_ttl = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            log.exception("the sign-in throttle cannot reach Redis; refusing sign-in")
            raise _unavailable() from None
        over = [
            ttl for count, ttl in ((user_count, user_ttl), (addr_count, addr_ttl))
            if count > self.max_failures
        ]  # fmt: skip
        if over:
            retry_after = max(max(over), 1)
            raise OAuthError(
                "temporarily_unavailable",
                "Too many failed sign-in attempts; try again later.",
                429,
                {"Retry-After": str(retry_after)},
            )

    async def release(self, username: str, address: str) -> None:
        """A successful sign-in clears the username's failures and returns the address's slot."""
        user_key, addr_key = self.keys(username, address)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(user_key)
                pipe.decr(addr_key)
                _, remaining = await pipe.execute()
            if remaining <= 0:
                await self.redis.delete(addr_key)  # never leave a count without its expiry
        except (RedisError, OSError, TimeoutError):
            # Failing here only leaves counts too high (stricter), never too low.
            log.warning("could not release a sign-in throttle slot", exc_info=True)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body; repeated parameters are an error and empty ones count as absent."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "The request body is too large.", 413)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "The request body cannot be parsed.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"Parameter {name!r} is repeated.")
        form[name] = value
    return {name: value for name, value in form.items() if value}


def _require(form: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if n not in form]
    if missing:
        raise OAuthError("invalid_request", f"Missing parameter: {', '.join(missing)}.")
    return [form[n] for n in names]


def _invalid_client(description: str = "Client authentication failed.") -> OAuthError:
    return OAuthError(
        "invalid_client", description, 401, {"WWW-Authenticate": 'Basic realm="shms"'}
    )


def _client_credentials(request: Request, form: Mapping[str, str]) -> tuple[str, str]:
    """The client's id and secret from HTTP Basic (RFC 6749 §2.3.1) or the form, not both."""
    header = request.headers.get("authorization")
    if header is None:
        if "client_id" not in form or "client_secret" not in form:
            raise _invalid_client()
        return form["client_id"], form["client_secret"]
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client("Only HTTP Basic client authentication is supported.")
    if "client_secret" in form:
        raise OAuthError("invalid_request", "Use one client authentication method only.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client() from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client()
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if form.get("client_id", client_id) != client_id:
        raise OAuthError("invalid_request", "client_id does not match the authenticated client.")
    return client_id, secret


def _token_response(tokens: TokenService, grant: Grant) -> JSONResponse:
    ttl = tokens.settings.shms_access_token_ttl_seconds
    body: dict[str, Any] = {
        "access_token": tokens.issue(grant.claims, ttl),
        "token_type": "Bearer",
        "expires_in": ttl,
    }
    if grant.refresh_token is not None:
        body["refresh_token"] = grant.refresh_token
    return JSONResponse(body, headers=NO_STORE)


def _invalid_grant(error: Unauthenticated) -> OAuthError:
    log.info("sign-in refused: %s", error.extensions.get("reason"))
    return OAuthError("invalid_grant", error.message)


async def _password(request: Request, form: Mapping[str, str], tokens: TokenService) -> Grant:
    username, password = _require(form, "username", "password")
    settings = tokens.settings
    throttle = LoginThrottle(
        request.app.state.redis,
        settings.shms_login_max_failures,
        settings.shms_login_window_seconds,
    )
    address = _client_address(request)
    await throttle.acquire(username, address)
    try:
        grant = await accounts.sign_in_with_password(
            username, password, refresh_ttl=settings.shms_refresh_token_ttl_seconds
        )
    except Unauthenticated as exc:
        raise _invalid_grant(exc) from None
    await throttle.release(username, address)
    return grant


async def _client(request: Request, form: Mapping[str, str], tokens: TokenService) -> Grant:
    client_id, secret = _client_credentials(request, form)
    try:
        return await accounts.sign_in_with_client_credentials(client_id, secret)
    except Unauthenticated:
        raise _invalid_client() from None


async def _refresh(request: Request, form: Mapping[str, str], tokens: TokenService) -> Grant:
    (token,) = _require(form, "refresh_token")
    try:
        return await accounts.refresh(
            token, refresh_ttl=tokens.settings.shms_refresh_token_ttl_seconds
        )
    except Unauthenticated as exc:
        raise _invalid_grant(exc) from None


_GRANTS: dict[str, Callable[[Request, Mapping[str, str], TokenService], Awaitable[Grant]]] = {
    "password": _password,
    "client_credentials": _client,
    "refresh_token": _refresh,
}


async def token_endpoint(request: Request) -> JSONResponse:
    """``POST /oauth/token``: exchange credentials for an access token (RFC 6749 §4.3, §4.4, §6)."""
    tokens: TokenService = request.app.state.tokens
    try:
        if tokens.embedded is None:
            raise OAuthError(
                "unsupported_grant_type", "Tokens are issued by the external identity provider."
            )
        form = await _form(request)
        (grant_type,) = _require(form, "grant_type")
        handler = _GRANTS.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", f"Grant type {grant_type!r} is unsupported.")
        grant = await handler(request, form, tokens)
    except OAuthError as error:
        return error.response()
    return _token_response(tokens, grant)


def _not_issuer() -> JSONResponse:
    return JSONResponse(
        {"error": "not_found", "error_description": "SHMS is not the token issuer here."}, 404
    )


async def jwks(request: Request) -> JSONResponse:
    """``GET /.well-known/jwks.json``: the public signing key, for anyone verifying our tokens."""
    keys = request.app.state.tokens.embedded
    if keys is None:
        return _not_issuer()
    return JSONResponse(keys.public_jwks(), headers={"Cache-Control": "public, max-age=300"})


async def openid_configuration(request: Request) -> JSONResponse:
    """``GET /.well-known/openid-configuration``: where our keys and token endpoint live."""
    tokens: TokenService = request.app.state.tokens
    keys = tokens.embedded
    if keys is None:
        return _not_issuer()
    document = {
        "issuer": tokens.issuer,
        "jwks_uri": str(request.url_for("jwks")),
        "token_endpoint": str(request.url_for("oauth_token")),
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys.algorithm],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "roles",
            "pid",
            "sid",
            "did",
        ],
    }
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


routes = [
    Route("/oauth/token", token_endpoint, methods=["POST"], name="oauth_token"),
    Route("/.well-known/jwks.json", jwks, methods=["GET"], name="jwks"),
    Route(
        "/.well-known/openid-configuration",
        openid_configuration,
        methods=["GET"],
        name="openid_configuration",
    ),
]
"""Mounted by ``app.py``."""
