"""Master keys: they only wrap data keys, never data, so rotating one re-wraps a few documents.

A ``KeyProvider`` wraps and unwraps data keys under master keys named by key ids; several may
coexist while rotating (the primary wraps, every one unwraps). ``LocalMasterKeys`` holds them in
memory, from ``SHMS_MASTER_KEY`` or, in development, from a file in ``SHMS_STATE_DIR``
generated on first use (as the token signing key is). A KMS adapter implements the same
protocol (its ``wrap``/``unwrap`` become calls to the KMS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import Settings

log = logging.getLogger(__name__)

KEY_FILE = "master-keys.json"
KEY_BYTES = 32
NONCE_BYTES = 12


class KeyProvider(Protocol):
    """Wraps data keys under master keys; ``unwrap`` raises ``KeyError`` for an unknown id."""

    @property
    def primary(self) -> str:
        """The id of the master key that wraps new and re-wrapped data keys."""
        ...

    def ids(self) -> tuple[str, ...]: ...

    def wrap(self, data_key: bytes, context: str) -> tuple[str, str]:
        """``(master key id, wrapped)`` under the primary key, bound to ``context``."""
        ...

    def unwrap(self, key_id: str, wrapped: str, context: str) -> bytes: ...


def key_id(key: bytes) -> str:
    """A master key's id: derived from the key, so configuration never has to name it."""
    return "mk-" + hashlib.sha256(b"shms master key id\0" + key).hexdigest()[:12]


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("SHMS_MASTER_KEY: not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"SHMS_MASTER_KEY: a key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def new_key() -> str:
    """A fresh master key, base64, as SHMS_MASTER_KEY takes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class LocalMasterKeys:
    """Master keys held by this process; the first one given is the primary."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self._primary = key_id(keys[0])

    @property
    def primary(self) -> str:
        return self._primary

    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def wrap(self, data_key: bytes, context: str) -> tuple[str, str]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(nonce, data_key, context.encode())
        return self._primary, base64.b64encode(nonce + sealed).decode()

    def unwrap(self, key_id: str, wrapped: str, context: str) -> bytes:
        blob = base64.b64decode(wrapped)
        return self._keys[key_id].decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode())


def _state_file(state_dir: str | Path) -> Path:
    return Path(state_dir) / KEY_FILE


def state_keys(state_dir: str | Path) -> list[str]:
    """The development master keys kept in ``state_dir``, primary first; created if absent.

    Written to a temporary file and hard-linked into place, so workers starting together all
    end up with the first one's key (as ``auth.keys`` does for the signing key)."""
    path = _state_file(state_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        _write_new(path, [new_key()], replace=False)
    keys: list[str] = json.loads(path.read_text(encoding="utf-8"))["keys"]
    return keys


def _write_new(path: Path, keys: list[str], *, replace: bool) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".master-keys-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp opens it 0600
            json.dump({"keys": keys}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
            log.info("generated a development master key in %s", path)
        except FileExistsError:
            pass
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def add_state_key(state_dir: str | Path) -> str:
    """Development rotation: a new primary key in ``state_dir``, the old ones kept to unwrap."""
    keys = state_keys(state_dir)
    fresh = new_key()
    _write_new(_state_file(state_dir), [fresh, *keys], replace=True)
    return key_id(decode_key(fresh))


def configured_keys(settings: Settings) -> list[bytes]:
    """SHMS_MASTER_KEY's keys (primary first), or the development keys in the state dir."""
    text = settings.shms_master_key.get_secret_value()
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:  # development (``Settings`` refuse production without SHMS_MASTER_KEY)
        parts = state_keys(settings.shms_state_dir)
    return [decode_key(p) for p in parts]


def provider_for(settings: Settings) -> KeyProvider:
    return LocalMasterKeys(configured_keys(settings))
