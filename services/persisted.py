"""Persisted operations (Apollo's automatic persisted queries) and the allow-list mode.

A front end sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": H}``:

* without ``query``: the document stored under H runs; unknown H answers
  ``PersistedQueryNotFound`` (``PERSISTED_QUERY_NOT_FOUND``) and the client retries with the text;
* with ``query``: H must be the sha256 (lowercase hex) of the text, else ``BAD_USER_INPUT`` and
  nothing is stored; a document that parses is then stored under H (idempotent) and runs.

Any other ``version`` answers ``PersistedQueryNotSupported`` (``PERSISTED_QUERY_NOT_SUPPORTED``),
which makes Apollo clients fall back to sending the text.

Rows are content-addressed (the id is the hash of the text), so they never change: an
in-process LRU of hash -> text sits in front of MongoDB and can never be stale.

Allow-list mode (``SHMS_ALLOWLIST_ROLES``, see ``Settings.allowlisted``): a restricted caller may
run only documents already persisted (by hash, or as text whose hash is stored) and queries whose
every root field is a saved-query field; anything else is ``OPERATION_NOT_ALLOWED``, and such a
caller never stores a document. With ``*``, anonymous callers are restricted too (they hold no
admin role). Only authenticated callers store documents: anonymous text + hash runs unstored,
so no unauthenticated client can fill the collection. ``shms persist`` registers documents at
deploy time. ``app.py`` applies ``resolve`` to every HTTP request and every WebSocket operation.

This module never parses GraphQL: the API layer (``schema.persisted_documents``) does, and hands
in what a decision needs as plain facts (``Analysed``), so storage and the allow-list rules stay
independent of graphql-core.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from config import Settings
from errors import BadUserInput, ShmsError
from models.persisted import PersistedOperation

log = logging.getLogger(__name__)

SUPPORTED_VERSION = 1
CACHE_SIZE = 2048
"""Documents the in-process LRU keeps (a front end persists a few hundred at most)."""

SAVED_QUERY_FIELDS = frozenset({"runSavedQuery", "savedQuery", "savedQueries"})
"""Root query fields an allow-listed caller may use in a document of its own."""

_HASH = re.compile(r"[0-9a-f]{64}")
_HASH_FIELD = "extensions.persistedQuery.sha256Hash"


class PersistedQueryNotFound(ShmsError):
    """The message is the one Apollo clients match on before retrying with the text."""

    code = "PERSISTED_QUERY_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(ShmsError):
    code = "PERSISTED_QUERY_NOT_SUPPORTED"

    def __init__(self, reason: str) -> None:
        super().__init__("PersistedQueryNotSupported", reason=reason)


class OperationNotAllowed(ShmsError):
    code = "OPERATION_NOT_ALLOWED"


@dataclass(frozen=True)
class Operation:
    """One operation of a document, as the allow-list rules see it."""

    kind: str  # "query", "mutation" or "subscription"
    root_fields: tuple[str | None, ...]
    """Names (not aliases) of its root fields through fragments; ``None``: a missing fragment."""


@dataclass(frozen=True)
class Analysed:
    """What the API layer found in a document that parses."""

    operations: tuple[Operation, ...]
    executable: bool
    """False when it also holds definitions that are neither operations nor fragments."""


Analyser = Callable[[str], Analysed]
"""Parses a document into ``Analysed``, or raises ``BadUserInput`` when it does not parse."""


class _Recent:
    """A bounded LRU of hash -> document text; safe forever because rows never change."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()

    def get(self, sha: str) -> str | None:
        text = self._items.get(sha)
        if text is not None:
            self._items.move_to_end(sha)
        return text

    def put(self, sha: str, text: str) -> None:
        self._items[sha] = text
        self._items.move_to_end(sha)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


recent = _Recent(CACHE_SIZE)


def digest(text: str) -> str:
    """The persisted-query hash of a document: sha256 of its UTF-8 text, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def lookup(sha: str) -> str | None:
    """The document stored under ``sha``: from the LRU, else one read by id from MongoDB."""
    text = recent.get(sha)
    if text is not None:
        return text
    row = await PersistedOperation.get(sha)
    if row is None:
        return None
    if digest(row.document) != sha:  # a hand-edited row: never run text under a false hash
        log.warning("persisted operation %s does not match its hash; ignored", sha)
        return None
    recent.put(sha, row.document)
    return row.document


async def register(text: str, registered_by: str | None) -> str:
    """Store ``text`` under its hash (idempotent: a second registration changes nothing).

    Only documents that parse may be stored: the caller has analysed ``text`` first."""
    sha = digest(text)
    if recent.get(sha) is None:
        # Registered before (or concurrently): the same text, by construction.
        with contextlib.suppress(DuplicateKeyError):
            await PersistedOperation(id=sha, document=text, registered_by=registered_by).insert()
        recent.put(sha, text)
    return sha


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    raw = (extensions or {}).get("persistedQuery")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise BadUserInput(
            "extensions.persistedQuery must be an object",
            fields={"extensions.persistedQuery": "must be an object"},
        )
    version = raw.get("version")
    if type(version) is not int or version != SUPPORTED_VERSION:
        raise PersistedQueryNotSupported(
            f"only persistedQuery version {SUPPORTED_VERSION} is supported"
        )
    sha = raw.get("sha256Hash")
    if not isinstance(sha, str) or not _HASH.fullmatch(sha):
        raise BadUserInput(
            "sha256Hash must be 64 lowercase hex digits",
            fields={_HASH_FIELD: "must be 64 lowercase hex digits"},
        )
    return sha


def only_saved_queries(document: Analysed) -> bool:
    """Whether every operation of ``document`` is a query selecting saved-query fields only."""
    return (
        document.executable
        and bool(document.operations)
        and all(
            operation.kind == "query"
            and bool(operation.root_fields)
            and all(name in SAVED_QUERY_FIELDS for name in operation.root_fields)
            for operation in document.operations
        )
    )


async def resolve(
    query: str | None,
    extensions: Mapping[str, Any] | None,
    *,
    subject: str | None,
    roles: Iterable[str],
    settings: Settings,
    analyse: Analyser,
) -> str | None:
    """The document text one request runs, or a refusal raised before any other work.

    ``None`` back means there is no document at all (the GraphQL layer answers that). A refused
    request reads at most one persisted row by id and writes nothing. ``analyse`` runs
    only when a rule must look inside the text: an ordinary request is parsed by its execution
    alone.
    """
    sha = _requested_hash(extensions)
    restricted = settings.allowlisted(roles)
    if not query:
        if sha is None:
            return query
        text = await lookup(sha)
        if text is None:
            raise PersistedQueryNotFound
        return text
    if sha is None and not restricted:
        return query  # the common case: ordinary text, nothing to check
    own = digest(query)
    if sha is not None and sha != own:
        raise BadUserInput("provided sha does not match query", fields={_HASH_FIELD: "mismatch"})
    if not restricted:
        if sha is not None and subject is not None:
            # A document that does not parse is not stored; running it reports the error.
            with contextlib.suppress(BadUserInput):
                analyse(query)
                await register(query, subject)
        return query
    try:
        document = analyse(query)
    except BadUserInput:
        return query  # runs nothing: execution reports the syntax (or token) error
    if only_saved_queries(document) or await lookup(own) is not None:
        return query
    if sha is not None:
        raise OperationNotAllowed(
            "Your role may not register persisted operations (SHMS_ALLOWLIST_ROLES); "
            "this one must be persisted at deploy time (`shms persist`)."
        )
    raise OperationNotAllowed(
        "Your role may run only persisted operations and saved queries "
        "(SHMS_ALLOWLIST_ROLES); this document is neither."
    )
