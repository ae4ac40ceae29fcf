"""Where verification keys come from: SHMS's own signing key, or an external IdP's JWKS.

Embedded (no ``SHMS_OIDC_JWKS_URL``): one signing key is generated on first use into
``SHMS_STATE_DIR`` and reused on every restart, so tokens survive restarts and every worker
process signs with the same key. Production: keys are fetched from the IdP's JWKS URL, cached,
refetched periodically (removed keys stop working) and at once when a token names a key we do
not know (the IdP rotated), within a flood bound (see ``RemoteJWKS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from config import Settings, get_settings
from errors import Unauthenticated

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The only algorithms SHMS will ever verify: a public key can never double as an HMAC secret."""

KEY_FILE = "jwt-signing-key.json"
EMBEDDED_ALGORITHMS = ("RS256", "ES256")  # what the embedded key can be, in order of preference
_REMOTE_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})  # never "oct": no shared secrets from a JWKS


def _unavailable() -> Unauthenticated:
    return Unauthenticated("Invalid or expired token", reason="keys_unavailable")


class KeyProvider(Protocol):
    """Finds the public key a token's ``kid`` names; ``None`` when there is none."""

    async def find(self, kid: str) -> Key | None: ...

    async def aclose(self) -> None: ...


def pinned_algorithms(configured: Collection[str]) -> list[str]:
    """The configured algorithms, refusing any symmetric one or ``none`` at start-up."""
    algorithms = list(dict.fromkeys(configured))
    bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if bad or not algorithms:
        raise ValueError(
            f"SHMS_JWT_ALGORITHMS may only list {sorted(ASYMMETRIC_ALGORITHMS)}; got {bad or '[]'}"
        )
    return algorithms


def _generate(algorithm: str) -> Key:
    parameters: dict[str, Any] = {"alg": algorithm, "use": "sig"}
    if algorithm == "RS256":
        return RSAKey.generate_key(2048, parameters, private=True, auto_kid=True)  # type: ignore[arg-type]
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", parameters, private=True, auto_kid=True)  # type: ignore[arg-type]
    raise ValueError(f"cannot generate an embedded key for {algorithm}")


def _read_key(path: Path) -> Key:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); restricting it to 0600", path, mode)
        path.chmod(0o600)
    data = json.loads(path.read_text(encoding="utf-8"))
    key = JWKRegistry.import_key(data)
    if not key.is_private or key.key_type not in ("RSA", "EC"):
        raise ValueError(f"{path} must hold a private RSA or EC JWK")
    key.ensure_kid()
    return key


def load_or_create_signing_key(state_dir: str | Path, algorithm: str = "RS256") -> Key:
    """The signing key stored in ``state_dir``, generated there (mode 0600) if absent.

    The new key is written to a temporary file and hard-linked into place, which fails if the
    file appeared meanwhile: workers starting together all end up with the first one's key.
    """
    directory = Path(state_dir)
    path = directory / KEY_FILE
    if path.exists():
        return _read_key(path)
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    key = _generate(algorithm)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".signing-key-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp opens it 0600
            json.dump(key.as_dict(private=True), handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
            log.info("generated a new %s signing key %s in %s", algorithm, key.kid, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return _read_key(path)


class EmbeddedKeys:
    """SHMS as its own issuer: one local signing key, loaded (or created) on first use."""

    def __init__(self, state_dir: str | Path, algorithms: Collection[str] = ("RS256",)) -> None:
        self.state_dir = Path(state_dir)
        preferred = [a for a in EMBEDDED_ALGORITHMS if a in algorithms]
        if not preferred:
            raise ValueError(f"the embedded issuer needs one of {EMBEDDED_ALGORITHMS} allowed")
        self._algorithms = set(algorithms)
        self._preferred = preferred[0]
        self._key: Key | None = None

    @property
    def signing_key(self) -> Key:
        return self.load()

    def load(self) -> Key:
        """The signing key, read from (or first created in) the state folder once."""
        if self._key is None:
            key = load_or_create_signing_key(self.state_dir, self._preferred)
            if key.alg is not None and key.alg not in self._algorithms:
                raise ValueError(f"the stored signing key uses {key.alg}, which is not allowed")
            self._key = key
        return self._key

    @property
    def algorithm(self) -> str:
        return self.signing_key.alg or self._preferred

    @property
    def kid(self) -> str:
        kid = self.signing_key.kid
        assert kid is not None  # _read_key ensures one
        return kid

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document: the public half only."""
        return {"keys": [dict(self.signing_key.as_dict(private=False))]}

    async def find(self, kid: str) -> Key | None:
        return self.signing_key if kid == self.kid else None

    async def aclose(self) -> None:
        return None


class RemoteJWKS:
    """An external IdP's keys, cached, refetched when stale or when a token names a new ``kid``.

    - Periodic: a copy older than ``SHMS_OIDC_JWKS_REFRESH_SECONDS`` is refetched before it is
      used, so a key the IdP removed stops being trusted within that interval. The request that
      notices waits for the fetch; requests meanwhile keep using the cached keys.
    - Rotation: a token naming a ``kid`` we do not hold triggers a fetch at once, so a new key
      works from its first token; concurrent callers share the fetch in flight.
    - Floods: fetches for unknown ``kid`` values are at least
      ``SHMS_OIDC_JWKS_UNKNOWN_KID_SECONDS`` apart; an unknown ``kid`` arriving sooner (and no
      fetch in flight to share) is refused at once (``unknown_kid``), so made-up ``kid`` values
      cannot make us hammer the IdP. Failed fetches are retried no sooner either.
    - Outages: a failed fetch keeps the cached keys, trusted until
      ``SHMS_OIDC_JWKS_MAX_AGE_SECONDS`` after the last successful one; after that, or while an
      unknown ``kid`` cannot be looked up, tokens are refused with ``keys_unavailable``.

    ``settings`` defaults to the process's (``config.get_settings()``); ``clock`` is monotonic.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Collection[str],
        client: httpx.AsyncClient | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = settings or get_settings()
        self.url = url
        self.algorithms = frozenset(algorithms)
        self.refresh_interval = settings.shms_oidc_jwks_refresh_seconds
        self.max_age = max(settings.shms_oidc_jwks_max_age_seconds, self.refresh_interval)
        self.min_interval = settings.shms_oidc_jwks_unknown_kid_seconds
        self.fetches = 0  # attempts so far, for tests and metrics
        self._client = client or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._owns_client = client is None
        self._clock = clock
        self._keys: dict[str, Key] | None = None
        self._fetched_at = 0.0  # of the last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt, of any cause
        self._unknown_kid_at: float | None = None  # last attempt caused by an unknown kid
        self._inflight: asyncio.Task[bool] | None = None

    async def find(self, kid: str) -> Key | None:
        """The key ``kid`` names; ``None`` when the IdP does not publish it (``unknown_kid``)."""
        fetched: bool | None = None
        if self._stale():
            # With no usable copy everyone waits for the fetch; otherwise only its starter.
            fetched = await self._refresh(join=self._fresh_keys() is None)
        keys = self._fresh_keys()
        if keys is None:
            raise _unavailable()
        if kid in keys:
            return keys[kid]
        if not fetched:  # unless this lookup just waited for a fetch: the IdP may have rotated
            fetched = await self._refresh(join=True, unknown_kid=True)
        if fetched is False:
            raise _unavailable()  # it could not be asked: say so rather than "no such key"
        keys = self._fresh_keys()
        if keys is None:
            raise _unavailable()
        return keys.get(kid)

    def _stale(self) -> bool:
        return self._keys is None or self._clock() - self._fetched_at >= self.refresh_interval

    def _fresh_keys(self) -> dict[str, Key] | None:
        """The cached keys, unless there are none or they outlived ``max_age``."""
        if self._keys is None or self._clock() - self._fetched_at >= self.max_age:
            return None
        return self._keys

    async def _refresh(self, *, join: bool, unknown_kid: bool = False) -> bool | None:
        """Fetch the JWKS, or share the fetch in flight (only when ``join``).

        A new fetch for an ``unknown_kid`` needs the last such fetch to be ``min_interval``
        old; any other (first, periodic) needs the last attempt of any cause to be, which
        paces retries while the IdP is down. Returns whether the fetch this caller waited for
        succeeded; ``None`` when it waited for none.
        """
        task = self._inflight
        if task is None:
            now = self._clock()
            last = self._unknown_kid_at if unknown_kid else self._attempted_at
            if last is not None and now - last < self.min_interval:
                return None
            self._attempted_at = now
            if unknown_kid:
                self._unknown_kid_at = now
            task = self._inflight = asyncio.create_task(self._fetch_and_keep())
        elif not join:
            return None
        # Shielded: a caller that gives up (a client hanging up) does not cancel the others'.
        return await asyncio.shield(task)

    async def _fetch_and_keep(self) -> bool:
        self.fetches += 1
        try:
            keys = await self._fetch()
        except Exception as exc:  # any failure of the IdP must fail closed, never with a 500
            log.warning("fetching the JWKS from %s failed: %s", self.url, exc)
            return False
        else:
            self._keys, self._fetched_at = keys, self._clock()
            return True
        finally:
            self._inflight = None

    async def _fetch(self) -> dict[str, Key]:
        response = await self._client.get(self.url, headers={"accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys: dict[str, Key] = {}
        for data in document["keys"]:
            key = self._usable(data)
            if key is not None and key.kid is not None:
                keys[key.kid] = key
        return keys

    def _usable(self, data: Any) -> Key | None:
        """A signature-verification key we accept, or ``None`` to skip it."""
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            return None
        if data.get("kty") not in _REMOTE_KEY_TYPES or data.get("use", "sig") != "sig":
            return None
        if "alg" in data and data["alg"] not in self.algorithms:
            return None
        public = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            return JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("skipping JWKS key %s: %s", data.get("kid"), exc)
            return None

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        if self._owns_client:
            await self._client.aclose()
