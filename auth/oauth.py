"""The OAuth 2.0 token endpoint (RFC 6749) and the documents that describe SHMS as an issuer.

``POST /oauth/token`` grants ``password``, ``client_credentials`` and ``refresh_token``;
``GET /.well-known/jwks.json`` publishes the public signing key and
``GET /.well-known/openid-configuration`` points clients at both. Password sign-in is throttled
in Redis (``LoginThrottle``): per account and address, per address, and per account with a
short, growing wait instead of a lock-out; when Redis cannot answer sign-in is refused (security
state fails closed). A deactivated account or staff record cannot sign in or refresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote_plus

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth.tokens import TokenService
from config import Settings
from errors import BadUserInput, ShmsError, Unauthenticated
from models.accounts import TicketPurpose
from services import accounts, totp
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
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> JSONResponse:
        body = {**self.extra, "error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={**NO_STORE, **self.headers})


def _unavailable() -> OAuthError:
    return OAuthError(
        "temporarily_unavailable", "Sign-in is temporarily unavailable; try again later.", 503
    )


REDIS_ERRORS = (RedisError, OSError, TimeoutError)
clock: Callable[[], float] = time.time
"""Where the sign-in throttle reads the time (wall clock: processes share its Redis state);
tests replace it to move time without sleeping."""


class ThrottleKeys(NamedTuple):
    """The Redis keys one password attempt touches; see ``LoginThrottle``."""

    pair: str  # failures of this account from this address (sorted set: attempt -> time)
    address: str  # failures from this address, any account
    account: str  # failures of this account, any address
    gate: str  # until when the account's next attempt must wait (one member, scored)
    known: str  # set when this account signed in from this address


@dataclass(frozen=True)
class Attempt:
    """One password attempt holding its slots; ``gated``: it took the account's gate."""

    id: str
    keys: ThrottleKeys
    gated: bool


class LoginThrottle:
    """Limits password sign-in attempts, in Redis, so guessing is slow and lock-out is local.

    - Per (account, address): ``SHMS_LOGIN_MAX_FAILURES`` failures within the sliding window
      ``SHMS_LOGIN_WINDOW_SECONDS``; then that address is refused for that account.
    - Per address: ``SHMS_LOGIN_ADDRESS_MAX_FAILURES`` failures across accounts (spraying).
    - Per account, from any address: after ``SHMS_LOGIN_BACKOFF_AFTER`` failures each attempt
      takes the account's gate, which makes the next one wait ``base * 2**(failures - after)``
      seconds, at most ``SHMS_LOGIN_BACKOFF_MAX_SECONDS``. Guessing one account from many
      addresses is thus slowed to one guess per that delay, and its owner waits at most that
      long; an address the account signed in from within ``SHMS_LOGIN_KNOWN_ADDRESS_SECONDS``
      skips the gate (a stranger cannot keep the owner out by re-arming it).

    Every attempt records itself in the three windows before the password is checked, in one
    MULTI, so concurrent guesses are counted before any is decided; the gate is a sorted set
    whose one member is added with NX after expired holds are trimmed, in one MULTI, so only
    one attempt per delay gets it. A refused attempt takes its records back (it guessed
    nothing), a failed one leaves them as its failures, and a success clears the account's
    and the pair's failures and gives back its address slot. Times are ``clock()`` scores, so
    tests move time by passing a clock; Redis expiry only collects keys left idle.
    """

    GATE = "held"

    def __init__(
        self, redis: Any, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.pair_limit = settings.shms_login_max_failures
        self.address_limit = settings.shms_login_address_max_failures
        self.window = settings.shms_login_window_seconds
        self.backoff_after = settings.shms_login_backoff_after
        self.base = settings.shms_login_backoff_base_seconds
        self.cap = settings.shms_login_backoff_max_seconds
        self.known_for = settings.shms_login_known_address_seconds
        self.namespace = settings.shms_cache_namespace or (
            f"{settings.shms_cache_prefix}:{settings.mongodb_db}"
        )
        self.clock = clock

    def keys(self, username: str, address: str) -> ThrottleKeys:
        """Usernames are hashed: Redis never holds who tried to sign in."""
        user = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()[:32]
        base = f"{self.namespace}:login"
        return ThrottleKeys(
            pair=f"{base}:pair:{user}:{address}",
            address=f"{base}:addr:{address}",
            account=f"{base}:user:{user}",
            gate=f"{base}:gate:{user}",
            known=f"{base}:known:{user}:{address}",
        )

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure of an account (0 below the threshold)."""
        if failures < self.backoff_after:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(failures - self.backoff_after, 32)))

    async def acquire(self, username: str, address: str) -> Attempt:
        """Record an attempt; ``OAuthError`` 429 (with ``Retry-After``) when a limit or the
        account's wait refuses it, 503 when Redis cannot answer (security state fails closed)."""
        keys = self.keys(username, address)
        attempt = secrets.token_hex(8)
        now = self.clock()
        counted = (keys.pair, keys.address, keys.account)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in counted:
                    pipe.zremrangebyscore(key, "-inf", now - self.window)
                    pipe.zadd(key, {attempt: now})
                    pipe.zcard(key)
                    pipe.zrange(key, 0, 0, withscores=True)
                    pipe.expire(key, self.window)
                pipe.exists(keys.known)
                replies = await pipe.execute()
        except REDIS_ERRORS:
            log.exception("the sign-in throttle cannot reach Redis; refusing sign-in")
            raise _unavailable() from None
        (pair, pair_oldest), (addr, addr_oldest), (failures, _) = (
            (replies[i + 2], replies[i + 3]) for i in range(0, 15, 5)
        )
        waits = [
            oldest[0][1] + self.window - now
            for count, oldest, limit in (
                (pair, pair_oldest, self.pair_limit),
                (addr, addr_oldest, self.address_limit),
            )
            if count > limit
        ]
        if waits:
            await self._give_back(keys, attempt)
            raise _too_many(max(waits))
        gated = failures >= self.backoff_after and not replies[15]
        if gated:
            until = await self._take_gate(keys.gate, now, self.delay(failures))
            if until is not None:
                await self._give_back(keys, attempt)
                raise _too_many(until - now)
        return Attempt(attempt, keys, gated)

    async def _take_gate(self, gate: str, now: float, delay: float) -> float | None:
        """Hold the account's gate for ``delay``; ``None`` if taken, else until when it is
        held by another attempt."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(gate, "-inf", now)
                pipe.zadd(gate, {self.GATE: now + delay}, nx=True)
                pipe.zscore(gate, self.GATE)
                pipe.expire(gate, self.window)
                _, added, until, _ = await pipe.execute()
        except REDIS_ERRORS:
            log.exception("the sign-in throttle cannot reach Redis; refusing sign-in")
            raise _unavailable() from None
        return None if added else float(until)

    async def _give_back(self, keys: ThrottleKeys, attempt: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in (keys.pair, keys.address, keys.account):
                    pipe.zrem(key, attempt)
                await pipe.execute()
        except REDIS_ERRORS:  # the refused attempt then counts as a failure: stricter only
            log.warning("could not give back a sign-in throttle slot", exc_info=True)

    async def succeeded(self, attempt: Attempt) -> None:
        """A correct password: clear the account's and the pair's failures, return the
        address's slot, open the gate this attempt held, remember the address."""
        keys = attempt.keys
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.pair, keys.account)
                pipe.zrem(keys.address, attempt.id)
                if attempt.gated:
                    pipe.zrem(keys.gate, self.GATE)
                if self.known_for:
                    pipe.set(keys.known, 1, ex=self.known_for)
                await pipe.execute()
        except REDIS_ERRORS:  # counts stay too high (stricter), never too low
            log.warning("could not release a sign-in throttle slot", exc_info=True)


def _too_many(wait: float) -> OAuthError:
    return OAuthError(
        "temporarily_unavailable",
        "Too many failed sign-in attempts; try again later.",
        429,
        {"Retry-After": str(max(1, math.ceil(wait)))},
    )


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
    throttle = LoginThrottle(request.app.state.redis, settings, clock=clock)
    attempt = await throttle.acquire(username, _client_address(request))
    try:
        grant = await accounts.sign_in_with_password(
            username,
            password,
            refresh_ttl=settings.shms_refresh_token_ttl_seconds,
            code=form.get("totp"),
            totp_required=settings.totp_required,
        )
    except accounts.EnrolmentRequired as exc:
        await throttle.succeeded(attempt)  # the password was right
        raise OAuthError(
            "mfa_enrolment_required", exc.message, extra={"enrolment_token": exc.token}
        ) from None
    except Unauthenticated as exc:
        # The attempt's records stay as its failures: a missing or wrong TOTP code too, so
        # guessing codes is throttled exactly like guessing passwords.
        if exc.extensions.get("reason") == "mfa_required":
            raise OAuthError("mfa_required", exc.message) from None
        raise _invalid_grant(exc) from None
    await throttle.succeeded(attempt)
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
            token,
            refresh_ttl=tokens.settings.shms_refresh_token_ttl_seconds,
            totp_required=tokens.settings.totp_required,
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


async def _ticket_step(request: Request, throttled_as: str) -> tuple[LoginThrottle, Attempt]:
    """Take a throttle slot for a step authorised by a one-time token (``throttled_as`` names
    whose counters it uses: guessing tokens or codes costs as guessing passwords does)."""
    throttle = LoginThrottle(
        request.app.state.redis, request.app.state.tokens.settings, clock=clock
    )
    return throttle, await throttle.acquire(throttled_as, _client_address(request))


async def password_reset_endpoint(request: Request) -> JSONResponse:
    """``POST /oauth/password-reset``: ``token`` (from ``resetPassword`` or ``createAccount``)
    and ``new_password`` set the password; the token is then used up and every refresh token
    of the account revoked. Unauthenticated by design (its owner cannot sign in yet), so
    throttled like sign-in, per address and per token."""
    try:
        form = await _form(request)
        token, new_password = _require(form, "token", "new_password")
        throttle, attempt = await _ticket_step(request, f"ticket:{token}")
        try:
            await accounts.complete_password_reset(token, new_password)
        except Unauthenticated as exc:
            raise _invalid_grant(exc) from None
        except BadUserInput as exc:
            await throttle.succeeded(attempt)  # the token was good; the password was not
            raise OAuthError("invalid_request", exc.message, extra={"fields": exc.fields}) from None
        await throttle.succeeded(attempt)
    except OAuthError as error:
        return error.response()
    return JSONResponse({"status": "password_set"}, headers=NO_STORE)


async def totp_enrolment_endpoint(request: Request) -> JSONResponse:
    """``POST /oauth/totp-enrolment``: how an account whose role requires TOTP enrols before
    its first two-factor sign-in, with the ``enrolment_token`` the password grant returned
    (``mfa_enrolment_required``). Without ``totp`` it begins (a secret and its ``otpauth://``
    URI); with ``totp``, a code from that secret, it turns TOTP on, uses the token up and
    answers as the token endpoint does. Code guesses count as the account's sign-in failures."""
    tokens: TokenService = request.app.state.tokens
    try:
        form = await _form(request)
        (token,) = _require(form, "enrolment_token")
        try:
            ticket, account = await accounts.find_ticket(token, TicketPurpose.TOTP_ENROLMENT)
        except Unauthenticated as exc:
            raise _invalid_grant(exc) from None
        assert account.id is not None
        code = form.get("totp")
        if code is None:
            try:
                enrolment = await totp.begin(account.id)
            except ShmsError as exc:
                raise OAuthError("invalid_request", exc.message) from None
            body = {"secret": enrolment.secret, "otpauth_uri": enrolment.uri}
            return JSONResponse(body, headers=NO_STORE)
        throttle, attempt = await _ticket_step(request, account.username)
        try:
            claimed_at = await accounts.claim_ticket(ticket)
        except Unauthenticated as exc:
            raise _invalid_grant(exc) from None
        try:
            await totp.confirm(account.id, code)
        except ShmsError as exc:
            await accounts.release_ticket(ticket, claimed_at)  # a typo: let them try again
            raise OAuthError("invalid_grant", exc.message) from None
        await throttle.succeeded(attempt)
        grant = await accounts.enrolment_grant(
            account.id, refresh_ttl=tokens.settings.shms_refresh_token_ttl_seconds
        )
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
    Route(
        "/oauth/password-reset",
        password_reset_endpoint,
        methods=["POST"],
        name="oauth_password_reset",
    ),
    Route(
        "/oauth/totp-enrolment",
        totp_enrolment_endpoint,
        methods=["POST"],
        name="oauth_totp_enrolment",
    ),
    Route("/.well-known/jwks.json", jwks, methods=["GET"], name="jwks"),
    Route(
        "/.well-known/openid-configuration",
        openid_configuration,
        methods=["GET"],
        name="openid_configuration",
    ),
]
"""Mounted by ``app.py``."""
