"""Password hashing with argon2id: secure defaults for real accounts, a cheap profile for demos.

Hashing is deliberately slow (about 0.1 s with the defaults), so async callers run these
functions in a worker thread (``asyncio.to_thread``) to keep the event loop free.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_HASHER = PasswordHasher()
"""argon2-cffi's defaults (RFC 9106 low-memory profile): what every real account gets."""

DEMO_HASHER = PasswordHasher(time_cost=1, memory_cost=2 * 1024, parallelism=1)
"""Cheap parameters for the published demo credentials only; a sign-in upgrades them."""

MAX_PASSWORD_LENGTH = 1024
"""Longer inputs are refused before hashing, so a huge password cannot cost a huge hash."""


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or DEFAULT_HASHER).hash(password)


def verify(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; a malformed stored hash is a mismatch, never an error."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return DEFAULT_HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current defaults."""
    try:
        return DEFAULT_HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=4)
def _decoy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("decoy password for unknown users")


def burn_time(password: str) -> None:
    """Spend what a real verification costs, so an unknown username answers no faster."""
    verify(_decoy_hash(DEFAULT_HASHER), password)
