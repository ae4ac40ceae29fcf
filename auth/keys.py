"""Where verification keys come from: SHMS's own signing key, or an external IdP's JWKS.

Embedded (no ``SHMS_OIDC_JWKS_URL``): one signing key is generated on first use into
``SHMS_STATE_DIR`` and reused on every restart, so tokens survive restarts and every worker
process signs with the same key. Production: keys are fetched from the IdP's JWKS URL, cached,
and refetched when a token names a key we do not know (the IdP rotated), at most once a minute.
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

from errors import Unauthenticated

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The only algorithms SHMS will ever verify: a public key can never double as an HMAC secret."""

KEY_FILE = "jwt-signing-key.json"
EMBEDDED_ALGORITHMS = ("RS256", "ES256")  # what the embedded key can be, in order of preference
_REMOTE_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})  # never "oct": no shared secrets from a JWKS


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
    """An external IdP's keys, cached; refetched on an unknown ``kid`` or when stale.

    Fetches are rate-limited (one attempt per ``min_refresh_interval`` seconds, failed or not)
    so tokens with made-up ``kid`` values cannot make us hammer the IdP, and concurrent
    requests for an unknown ``kid`` share one fetch.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Collection[str],
        client: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 60.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = frozenset(algorithms)
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self.fetches = 0  # attempts so far, for tests and metrics
        self._client = client or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._owns_client = client is None
        self._clock = clock
        self._keys: dict[str, Key] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def find(self, kid: str) -> Key | None:
        if self._keys is None or self._clock() - self._fetched_at >= self.max_age:
            await self.refresh()
        if self._keys is not None and kid in self._keys:
            return self._keys[kid]
        await self.refresh()  # the IdP may have rotated; refresh() says no if it is too soon
        if self._keys is None:
            raise Unauthenticated("Invalid or expired token", reason="keys_unavailable")
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Fetch the JWKS unless one was attempted too recently or another caller just did."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return  # someone refreshed while we waited: use their result
            now = self._clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self.min_refresh_interval
            ):
                return
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("fetching the JWKS from %s failed: %s", self.url, exc)
                return
            finally:
                self._generation += 1
            self._keys, self._fetched_at = keys, now

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
        if self._owns_client:
            await self._client.aclose()
